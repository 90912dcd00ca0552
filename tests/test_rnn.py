"""The recurrent sequence models: shapes, masking, float64 references, saving, learning."""

import keras
import numpy as np
import pytest

import zoo
from zoo.data.sequences import adding_problem_arrays
from zoo.rnn.cells import check_cell_type

CLASSIFIERS = ["rnn_classifier", "lstm_classifier", "gru_classifier", "bilstm_classifier"]
REGRESSORS = ["rnn_regressor", "lstm_regressor", "gru_regressor"]
SMALL = {"units": 6, "embedding_dim": 5}


def _predict(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False)).astype("float64")


# ------------------------------------------------------------------ shapes
@pytest.mark.parametrize("name", CLASSIFIERS)
def test_output_shapes_for_every_input_kind(name, rng):
    tokens = rng.integers(1, 20, size=(3, 7)).astype("int32")
    features = rng.uniform(size=(3, 7, 2)).astype("float32")
    classifier = zoo.create_model(name, vocabulary_size=20, classes=4, **SMALL)
    assert _predict(classifier, tokens).shape == (3, 4)
    np.testing.assert_allclose(_predict(classifier, tokens).sum(-1), 1.0, atol=1e-6)
    regressor = zoo.create_model(name, input_dim=2, classes=None, **SMALL)
    assert _predict(regressor, features).shape == (3, 1)
    tagger = zoo.create_model(
        name,
        vocabulary_size=20,
        classes=4,
        return_sequences=True,
        classifier_activation=None,
        num_layers=2,
        **SMALL,
    )
    assert _predict(tagger, tokens).shape == (3, 7, 4)


@pytest.mark.parametrize("name", [*CLASSIFIERS, *REGRESSORS])
def test_parameter_count_matches_registry(name):
    assert zoo.create_model(name).count_params() == zoo.model_info(name).params


# ------------------------------------------------------------------ masking
@pytest.mark.parametrize("name", CLASSIFIERS)
def test_appending_padding_never_changes_a_prediction(name, rng):
    # Variable real lengths in one batch, right-padded with id 0.
    lengths = [7, 3, 5]
    real = rng.integers(1, 20, size=(3, 7)).astype("int32")
    for row, length in enumerate(lengths):
        real[row, length:] = 0
    padded = np.concatenate([real, np.zeros((3, 6), "int32")], axis=1)
    # Two stacked layers: the mask must reach the second one too.
    model = zoo.create_model(name, vocabulary_size=20, classes=3, num_layers=2, **SMALL)
    padded_prediction = _predict(model, padded)
    np.testing.assert_allclose(padded_prediction, _predict(model, real), atol=1e-6)
    # A row alone, without any padding, gives the same prediction as in the padded batch.
    alone = _predict(model, real[1:2, : lengths[1]])
    np.testing.assert_allclose(alone, padded_prediction[1:2], atol=1e-6)


@pytest.mark.parametrize("name", ["lstm_classifier", "bilstm_classifier"])
def test_masking_for_real_valued_steps_and_per_step_outputs(name, rng):
    features = rng.uniform(0.1, 1.0, size=(2, 5, 2)).astype("float32")
    padded = np.concatenate([features, np.zeros((2, 4, 2), "float32")], axis=1)
    model = zoo.create_model(name, input_dim=2, classes=None, **SMALL)
    np.testing.assert_allclose(_predict(model, padded), _predict(model, features), atol=1e-6)
    tagger = zoo.create_model(name, vocabulary_size=20, classes=3, return_sequences=True, **SMALL)
    tokens = rng.integers(1, 20, size=(2, 5)).astype("int32")
    padded_tokens = np.concatenate([tokens, np.zeros((2, 4), "int32")], axis=1)
    np.testing.assert_allclose(
        _predict(tagger, padded_tokens)[:, :5], _predict(tagger, tokens), atol=1e-6
    )


# ------------------------------------------------------------------ float64 references
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _reference_forward(cell, weights, x, units):
    """Float64 NumPy forward pass of one recurrent layer (Keras' weight layout)."""
    kernel, recurrent, bias = (w.astype("float64") for w in weights)
    h = np.zeros((x.shape[0], units))
    c = np.zeros_like(h)
    for t in range(x.shape[1]):
        xt = x[:, t]
        if cell == "rnn":
            h = np.tanh(xt @ kernel + h @ recurrent + bias)
        elif cell == "lstm":  # gate order i, f, c, o (Gers et al. 2000 forget gate)
            z = xt @ kernel + h @ recurrent + bias
            i, f, g, o = np.split(z, 4, axis=-1)
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
        else:  # GRU as written by Cho et al. (2014): reset before the recurrent product
            kz, kr, kh = np.split(kernel, 3, axis=-1)
            rz, rr, rh = np.split(recurrent, 3, axis=-1)
            bz, br, bh = np.split(bias, 3, axis=-1)
            z = _sigmoid(xt @ kz + h @ rz + bz)
            r = _sigmoid(xt @ kr + h @ rr + br)
            candidate = np.tanh(xt @ kh + (r * h) @ rh + bh)
            h = z * h + (1 - z) * candidate
    return h


@pytest.mark.parametrize(
    "name, cell",
    [("rnn_classifier", "rnn"), ("lstm_classifier", "lstm"), ("gru_classifier", "gru")],
)
def test_forward_pass_matches_float64_numpy_reference(name, cell, rng):
    model = zoo.create_model(name, input_dim=3, classes=4, classifier_activation=None, **SMALL)
    # Non-trivial weights everywhere (biases are zero at initialisation).
    for weight in model.weights:
        weight.assign(rng.normal(scale=0.5, size=weight.shape).astype("float32"))
    x = rng.normal(size=(2, 6, 3))
    projection = model.get_layer("projection").get_weights()
    projected = x @ projection[0] + projection[1]
    h = _reference_forward(cell, model.get_layer(f"{cell}_1").get_weights(), projected, 6)
    head = model.get_layer("logits").get_weights()
    expected = h @ head[0] + head[1]
    np.testing.assert_allclose(_predict(model, x.astype("float32")), expected, atol=1e-4)


def test_vanishing_gradient_fixes_are_configured():
    lstm = zoo.lstm_classifier(input_dim=2, units=4, embedding_dim=3)
    bias = lstm.get_layer("lstm_1").get_weights()[2]
    np.testing.assert_array_equal(bias[4:8], 1.0)  # forget gate (Gers et al. 2000)
    np.testing.assert_array_equal(np.delete(bias, np.s_[4:8]), 0.0)
    no_bias = zoo.lstm_classifier(input_dim=2, units=4, embedding_dim=3, unit_forget_bias=False)
    np.testing.assert_array_equal(no_bias.get_layer("lstm_1").get_weights()[2], 0.0)
    irnn = zoo.rnn_classifier(input_dim=2, units=5, embedding_dim=3, irnn=True)
    layer = irnn.get_layer("rnn_1")
    np.testing.assert_array_equal(layer.get_weights()[1], np.eye(5))  # Le et al. (2015)
    np.testing.assert_array_equal(layer.get_weights()[2], 0.0)
    assert layer.cell.activation is keras.activations.relu
    assert zoo.rnn_classifier().get_layer("rnn_1").cell.activation is keras.activations.tanh
    optimizer = zoo.default_optimizer()
    assert optimizer.global_clipnorm == 1.0


def test_hidden_state_gradient_norms_match_float64_backpropagation(rng):
    units, steps = 5, 12
    model = zoo.rnn_classifier(input_dim=2, classes=None, units=units, embedding_dim=3)
    for weight in model.weights:
        weight.assign(rng.normal(scale=0.6, size=weight.shape).astype("float32"))
    x, y = adding_problem_arrays(4, steps, seed=3)
    norms = zoo.hidden_state_gradient_norms(model, x, y)
    # Independent reference: forward in float64, then the closed-form backward recursion
    # dL/dh_{t-1} = (dL/dh_t * (1 - h_t^2)) @ R^T for h_t = tanh(x_t K + h_{t-1} R + b).
    p_kernel, p_bias = (w.astype("float64") for w in model.get_layer("projection").get_weights())
    kernel, recurrent, bias = (w.astype("float64") for w in model.get_layer("rnn_1").get_weights())
    out_kernel, out_bias = (w.astype("float64") for w in model.get_layer("logits").get_weights())
    inputs = x.astype("float64") @ p_kernel + p_bias
    hidden = [np.zeros((4, units))]
    for t in range(steps):
        hidden.append(np.tanh(inputs[:, t] @ kernel + hidden[-1] @ recurrent + bias))
    prediction = hidden[-1] @ out_kernel + out_bias
    grad = 2 * (prediction - y.astype("float64")) @ out_kernel.T
    expected = [None] * steps
    for t in range(steps - 1, -1, -1):
        expected[t] = np.linalg.norm(grad, axis=-1).mean()
        grad = (grad * (1 - hidden[t + 1] ** 2)) @ recurrent.T
    np.testing.assert_allclose(norms, expected, rtol=1e-4)


# ------------------------------------------------------------------ saving
@pytest.mark.parametrize("name", CLASSIFIERS)
def test_keras_round_trip_gives_identical_outputs(name, tmp_path, rng):
    model = zoo.create_model(
        name,
        vocabulary_size=20,
        classes=3,
        num_layers=2,
        dropout=0.1,
        recurrent_dropout=0.1,
        **SMALL,
    )
    tokens = rng.integers(0, 20, size=(2, 6)).astype("int32")
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(_predict(loaded, tokens), _predict(model, tokens))
    regressor = zoo.create_model(name, input_dim=2, classes=None, **SMALL)
    regressor.save(tmp_path / "regressor.keras")
    features = rng.uniform(size=(2, 6, 2)).astype("float32")
    np.testing.assert_array_equal(
        _predict(keras.saving.load_model(tmp_path / "regressor.keras"), features),
        _predict(regressor, features),
    )


@pytest.mark.parametrize("name", [*CLASSIFIERS, "char_lm"])
def test_small_config_takes_ids_below_ten_and_round_trips(name, tmp_path, rng):
    # What the registry-wide tests feed: ids in [0, 10), unknown time dimensions as 8.
    info = zoo.model_info(name)
    assert info.default_input_shape == (None,)
    model = zoo.create_model(name, **info.small_config)
    ids = rng.integers(0, 10, size=(2, 8)).astype("int32")
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(_predict(loaded, ids), _predict(model, ids))


@pytest.mark.parametrize("name", REGRESSORS)
def test_regressors_take_real_valued_steps_and_round_trip(name, tmp_path, rng):
    info = zoo.model_info(name)
    assert (info.task, info.default_input_shape) == ("sequence-regression", (None, 2))
    model = zoo.create_model(name, **info.small_config)
    features = rng.uniform(size=(2, 8, 2)).astype("float32")
    assert _predict(model, features).shape == (2, 1)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(_predict(loaded, features), _predict(model, features))
    with pytest.raises(ValueError, match="classes=3"):
        zoo.create_model(name, classes=3)


def test_heads_stay_float32_under_mixed_precision(rng):
    keras.mixed_precision.set_global_policy("mixed_float16")  # the fixture resets it
    tokens = rng.integers(1, 20, size=(2, 5)).astype("int32")
    classifier = zoo.gru_classifier(vocabulary_size=20, classes=3, **SMALL)
    probabilities = classifier(tokens)
    assert keras.backend.standardize_dtype(probabilities.dtype) == "float32"
    regressor = zoo.lstm_regressor(**SMALL)
    prediction = regressor(rng.uniform(size=(2, 5, 2)).astype("float32"))
    assert keras.backend.standardize_dtype(prediction.dtype) == "float32"
    language_model = zoo.char_lm(vocabulary="abc", units=4, num_layers=1, embedding_dim=4)
    assert keras.backend.standardize_dtype(language_model(tokens % 5).dtype) == "float32"
    assert len(language_model.generate("ab", length=3, seed=0)) == 3


# ------------------------------------------------------------------ learning
def test_adding_problem_at_t10_learns_well_below_the_trivial_baseline():
    keras.utils.set_random_seed(1)
    x, y = adding_problem_arrays(3200, 10, seed=0)
    test_x, test_y = adding_problem_arrays(500, 10, seed=99)
    baseline = float(np.mean((test_y - 1.0) ** 2))
    model = zoo.gru_regressor(units=16, embedding_dim=16)
    model.compile(optimizer=zoo.default_optimizer(learning_rate=1e-2), loss="mse")
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    mse = float(model.evaluate(test_x, test_y, verbose=0))
    assert mse < baseline / 5, (mse, baseline)


def test_training_under_two_replica_mirrored_strategy(two_replica_strategy):
    import tensorflow as tf

    x, y = adding_problem_arrays(64, 8, seed=0)
    with two_replica_strategy.scope():
        model = zoo.lstm_classifier(input_dim=2, classes=None, **SMALL)
        model.compile(optimizer=zoo.default_optimizer(), loss="mse")
    assert two_replica_strategy.num_replicas_in_sync == 2
    assert isinstance(model.weights[0].value, tf.distribute.DistributedValues)
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    tokens = np.array([[1, 2, 3, 0]], "int32")
    with two_replica_strategy.scope():
        classifier = zoo.bilstm_classifier(vocabulary_size=10, classes=2, **SMALL)
    np.testing.assert_allclose(_predict(classifier, tokens), _predict(classifier, tokens[:, :3]))


# ------------------------------------------------------------------ bad input
def test_wrong_input_rank_is_rejected(rng):
    tokens_model = zoo.lstm_classifier(vocabulary_size=20, **SMALL)
    with pytest.raises(ValueError):
        tokens_model(rng.uniform(size=(2, 5, 2)).astype("float32"))
    features_model = zoo.lstm_classifier(input_dim=2, **SMALL)
    with pytest.raises(ValueError):
        features_model(rng.uniform(size=(2, 5)).astype("float32"))
    with pytest.raises(ValueError, match="rank 3"):
        zoo.hidden_state_gradient_norms(
            zoo.rnn_classifier(input_dim=2, classes=None, **SMALL), np.ones((2, 5)), [1, 1]
        )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"units": 0}, "units=0"),
        ({"units": -3}, "units=-3"),
        ({"num_layers": 0}, "num_layers"),
        ({"dropout": 1.0}, "dropout"),
        ({"classes": 1}, "classes"),
        ({"vocabulary_size": 10, "input_dim": 2}, "not both"),
        ({"classifier_activation": "sigmoid"}, "classifier_activation"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        zoo.lstm_classifier(**kwargs)


def test_unknown_cell_type_suggests_the_closest():
    with pytest.raises(ValueError, match="Did you mean 'lstm'"):
        check_cell_type("lstn")
    with pytest.raises(ValueError, match="cell='transformer'"):
        zoo.char_lm(cell="transformer")


def test_gradient_measurement_rejects_stacked_models():
    with pytest.raises(ValueError, match="exactly one"):
        zoo.hidden_state_gradient_norms(
            zoo.lstm_classifier(input_dim=2, num_layers=2, **SMALL), np.ones((1, 3, 2)), [1]
        )
