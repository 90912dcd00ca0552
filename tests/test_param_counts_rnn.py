"""Parameter counts of the recurrent models against closed forms derived layer by layer.

Per recurrent layer with input size d and u units (weights W: d x u, U: u x u, bias u):
SimpleRNN u(u + d) + u; LSTM four gates, 4(u(u + d) + u); GRU three gates, 3(u(u + d) + u),
plus a second recurrent bias 3u with `reset_after=True` (cuDNN's form). Bidirectional doubles
a layer and doubles the next layer's input. Token models add an embedding (vocab x e),
feature models a per-step projection (d x e + e); the head is a Dense to `classes` (or 1).
"""

import pytest

import zoo


def recurrent(cell, units, inputs, reset_after=False):
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    count = gates * (units * (units + inputs) + units)
    return count + (gates * units if cell == "gru" and reset_after else 0)


def closed_form(cell, *, vocabulary_size=None, input_dim=None, classes, units=128,
                embedding_dim=128, num_layers=1, bidirectional=False, reset_after=False):
    directions = 2 if bidirectional else 1
    total = (vocabulary_size * embedding_dim if vocabulary_size
             else input_dim * embedding_dim + embedding_dim)
    width = embedding_dim
    for _ in range(num_layers):
        total += directions * recurrent(cell, units, width, reset_after)
        width = directions * units
    outputs = classes or 1
    return total + width * outputs + outputs


DEFAULTS = {  # the public functions' defaults: 20000 token ids / 2 features, 128 units
    "rnn_classifier": ("rnn", dict(vocabulary_size=20000, classes=2)),
    "lstm_classifier": ("lstm", dict(vocabulary_size=20000, classes=2)),
    "gru_classifier": ("gru", dict(vocabulary_size=20000, classes=2)),
    "bilstm_classifier": ("lstm", dict(vocabulary_size=20000, classes=2, bidirectional=True)),
    "rnn_regressor": ("rnn", dict(input_dim=2, classes=None)),
    "lstm_regressor": ("lstm", dict(input_dim=2, classes=None)),
    "gru_regressor": ("gru", dict(input_dim=2, classes=None)),
}


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_default_counts_match_the_closed_form(name):
    cell, arguments = DEFAULTS[name]
    expected = closed_form(cell, **arguments)
    assert zoo.create_model(name).count_params() == expected
    assert zoo.model_info(name).params == expected


def test_hand_computed_lstm_count():
    # lstm_regressor at its defaults, written out: projection 2*128 + 128 = 384;
    # LSTM 4 * (128 * (128 + 128) + 128) = 131,584; head 128 + 1 = 129.
    assert zoo.model_info("lstm_regressor").params == 384 + 131_584 + 129 == 132_097


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("gru_classifier", dict(vocabulary_size=50, classes=7, units=9, embedding_dim=5,
                                num_layers=2, reset_after=True)),
        ("lstm_classifier", dict(input_dim=3, classes=4, units=6, embedding_dim=4,
                                 num_layers=3, bidirectional=True)),
        ("rnn_regressor", dict(units=11, embedding_dim=3, num_layers=2)),
        ("bilstm_classifier", dict(vocabulary_size=30, classes=None, units=5, embedding_dim=4)),
    ],
)
def test_other_configurations_match_the_closed_form(name, kwargs):
    cell = {"gru": "gru", "lst": "lstm", "rnn": "rnn", "bil": "lstm"}[name[:3]]
    arguments = {"input_dim": 2, "classes": None} if name.endswith("regressor") else {}
    if name == "bilstm_classifier":
        arguments["bidirectional"] = True
    arguments.update(kwargs)
    model = zoo.create_model(name, **kwargs)
    assert model.count_params() == closed_form(cell, **arguments)
