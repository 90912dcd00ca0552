"""Recurrent sequence classifiers and regressors: SimpleRNN (and IRNN), LSTM, GRU, BiLSTM.

One private builder, `_sequence_model`, documents every argument; each public model is a
short function over it, and `VARIANTS` holds what differs (cell, defaults, paper, parameter
count, recipe). One convention for the whole family:

    inputs --(vocabulary_size: Embedding with id 0 = padding, masked)
           --(input_dim:  Masking(mask_value) + a per-step Dense projection)
    -> num_layers recurrent layers (optionally Bidirectional)
    -> Dropout -> Dense "logits" -> StableSoftmax (float32), or logits, or (classes=None)
       one linear regression output.

Padding is masked end to end: Keras skips masked steps in every recurrent layer (the state is
carried over unchanged), so appending padding never changes a prediction.

The vanishing-gradient fixes the literature gives are options here:

* LSTM forget-gate bias initialised to 1 (`unit_forget_bias=True`, the default; Gers,
  Schmidhuber & Cummins 2000; Jozefowicz, Zaremba & Sutskever 2015).
* IRNN for the vanilla RNN (`irnn=True`): identity recurrent weights, zero biases and ReLU
  (Le, Jaitly & Hinton 2015, "A Simple Way to Initialize Recurrent Networks of Rectified
  Linear Units").
* Gradient clipping by global norm (Pascanu, Mikolov & Bengio 2013) belongs to the optimizer:
  every recipe here clips at 1.0, and `zoo.rnn.default_optimizer()` returns Adam with
  `global_clipnorm=1.0`.

The cells themselves (`recurrent_layer`, `check_cell_type`) live in `zoo.rnn.cells`, shared
with `zoo.rnn.char_lm`; they are imported here too for code that found them here before.
"""

import typing

import keras

import zoo.layers as layers
from zoo.registry import Paper, Recipe, Variant, register_variant
from zoo.rnn.cells import CELL_TYPES, check_cell_type, recurrent_layer  # noqa: F401
from zoo.validation import check_bool, check_choice, check_int, check_rate

DEFAULT_VOCABULARY_SIZE = 20000

_ELMAN = Paper(
    "Elman",
    1990,
    "Finding Structure in Time",
    "https://doi.org/10.1207/s15516709cog1402_1",
)
_LSTM = Paper(
    "Hochreiter & Schmidhuber",
    1997,
    "Long Short-Term Memory",
    "https://doi.org/10.1162/neco.1997.9.8.1735",
)
_GRU = Paper(
    "Cho et al.",
    2014,
    "Learning Phrase Representations using RNN Encoder-Decoder for Statistical Machine Translation",
    "https://arxiv.org/abs/1406.1078",
)
_BIRNN = Paper(
    "Schuster & Paliwal",
    1997,
    "Bidirectional Recurrent Neural Networks",
    "https://doi.org/10.1109/78.650093",
)

_PAPER_SETTINGS = {
    "rnn": "plain backpropagation through time with a fixed step (Elman 1990)",
    "lstm": (
        "online gradient descent with truncated gradients, lr 0.1-1 depending on the task "
        "(Hochreiter & Schmidhuber 1997); the forget gate of Gers et al. 2000"
    ),
    "gru": "Adadelta (epsilon 1e-6, rho 0.95), batch 64 (Cho et al. 2014)",
    "bilstm": "SGD, lr 1e-5, momentum 0.9, one sequence per update (Graves & Schmidhuber 2005)",
}
_STANDARD = "Adam with global-norm clipping at 1.0 (Pascanu et al. 2013), the standard practice"


def _recipe(cell, regressor):
    """Adam + clipping; the regressors' higher lr is what the adding problem needed."""
    lr = 3e-3 if regressor else 1e-3
    measured = (
        ": reaches test MSE < 0.01 on the adding problem at T=100 within 10 epochs (LSTM, GRU)"
        if regressor
        else ""
    )
    return Recipe(
        optimizer="adam",
        lr=lr,
        reference_batch=32,
        batch_size=32,
        schedule="cosine",
        epochs=10,
        clip_norm=1.0,
        augment=False,
        paper_setting=_PAPER_SETTINGS[cell],
        adaptation=f"{_STANDARD}, lr {lr:g} with a cosine decay{measured}",
    )


class SequenceSpec(typing.NamedTuple):
    """The architecture row of one variant."""

    cell: str
    regressor: bool  # one linear output: `classes` must stay None


_CLASSIFIER = {"classes": 2}
_REGRESSOR = {"classes": None, "input_dim": 2}
_CLASSIFIER_SMALL = {"vocabulary_size": 20, "embedding_dim": 8, "units": 8, "classes": 3}
_REGRESSOR_SMALL = {"units": 32, "embedding_dim": 16}


def _row(cell, defaults, paper, params, summary, regressor=False, bidirectional=False):
    recipe_cell = "bilstm" if bidirectional else cell
    return Variant(
        summary=summary,
        params=params,
        recipe=_recipe(recipe_cell, regressor),
        paper=paper,
        small_config=_REGRESSOR_SMALL if regressor else _CLASSIFIER_SMALL,
        spec=SequenceSpec(cell, regressor),
        defaults=defaults,
        # A regressor's output is one linear value: no classifier head to choose.
        excluded=("classifier_activation",) if regressor else (),
    )


VARIANTS = {
    "rnn_classifier": _row(
        "rnn",
        _CLASSIFIER,
        _ELMAN,
        2_593_154,
        "Elman (tanh) RNN; `irnn=True` gives the identity-initialised ReLU RNN of Le et al. "
        "2015; `classes=None` regresses",
    ),
    "lstm_classifier": _row(
        "lstm",
        _CLASSIFIER,
        _LSTM,
        2_691_842,
        "LSTM (with forget gate, bias initialised to 1); `classes=None` regresses",
    ),
    "gru_classifier": _row(
        "gru",
        _CLASSIFIER,
        _GRU,
        2_658_946,
        "Gated recurrent unit, reset gate before the recurrent product as in the paper; "
        "`classes=None` regresses",
    ),
    "bilstm_classifier": _row(
        "lstm",
        {**_CLASSIFIER, "bidirectional": True},
        _BIRNN,
        2_823_682,
        "Bidirectional LSTM (Schuster & Paliwal 1997; LSTM form of Graves & Schmidhuber "
        "2005); `classes=None` regresses",
        bidirectional=True,
    ),
    "rnn_regressor": _row(
        "rnn",
        _REGRESSOR,
        _ELMAN,
        33_409,
        "rnn_classifier with one linear output (adding problem); `irnn=True` for IRNN",
        regressor=True,
    ),
    "lstm_regressor": _row(
        "lstm",
        _REGRESSOR,
        _LSTM,
        132_097,
        "lstm_classifier with one linear output (adding problem)",
        regressor=True,
    ),
    "gru_regressor": _row(
        "gru",
        _REGRESSOR,
        _GRU,
        99_201,
        "gru_classifier with one linear output (adding problem)",
        regressor=True,
    ),
}


# Options that belong to one cell type: (cell, default).
_CELL_OPTIONS = {"irnn": ("rnn", False), "unit_forget_bias": ("lstm", True),
                 "reset_after": ("gru", False)}


def _cell_options(cell, given):
    """The cell's options with their defaults; an option of another cell is an error."""
    options = {}
    for option, (owner, default) in _CELL_OPTIONS.items():
        value = given.get(option)
        if value is not None and owner != cell:
            raise ValueError(
                f"Argument `{option}` applies to {owner!r} cells only; this model's cell is "
                f"{cell!r}. Received: {option}={value!r}"
            )
        options[option] = default if value is None else check_bool(option, value)
    return options


def _sequence_model(
    variant,
    *,
    vocabulary_size=None,
    input_dim=None,
    classes=None,
    units=128,
    num_layers=1,
    dropout=0.0,
    recurrent_dropout=0.0,
    bidirectional=False,
    embedding_dim=128,
    sequence_length=None,
    return_sequences=False,
    classifier_activation="softmax",
    mask_value=0.0,
    irnn=None,
    unit_forget_bias=None,
    reset_after=None,
    name=None,
):
    """Build the sequence model `variant` (a key of `VARIANTS`).

    The public functions fill in their variant's defaults (`VARIANTS[variant].defaults`):
    classifiers `classes=2`, `bilstm_classifier` also `bidirectional=True`, regressors
    `classes=None` and `input_dim=2` (the adding problem's (value, marker) steps).

    Cells: "rnn" is Elman's h_t = tanh(W x_t + U h_{t-1} + b), whose gradient through time is
    a product of Jacobians that typically shrinks geometrically (Bengio, Simard & Frasconi
    1994): on the adding problem at T=100 it stays at the trivial MSE. "lstm" updates its cell
    state additively, c_t = f_t * c_{t-1} + i_t * g_t (the "constant error carousel"), so the
    gradient through it is scaled by the forget gate only. "gru" gates an interpolation
    h_t = z_t * h_{t-1} + (1 - z_t) * tanh(W x_t + U (r_t * h_{t-1})), also additive.
    Bidirectional models run a second layer backwards and concatenate the two; with masking
    the backward one starts at the last real step, not at the padding.

    Args:
        variant: A key of `VARIANTS` ("lstm_classifier", "gru_regressor", ...).
        vocabulary_size: Number of token ids for integer inputs of shape (batch, time); id 0 is
            padding and is masked. Give this or `input_dim`; if neither is given,
            vocabulary_size=20000 (classifiers) or input_dim=2 (regressors).
        input_dim: Number of real-valued features per step, for inputs of shape
            (batch, time, input_dim). Steps whose features all equal `mask_value` are padding.
        classes: Number of classes (>= 2); None makes a regressor with one linear output
            (the `*_regressor` variants require None).
        units: Hidden-state size of each recurrent layer.
        num_layers: Number of stacked recurrent layers.
        dropout: Dropout rate on the inputs of every recurrent layer and before the head.
        recurrent_dropout: Dropout rate on the recurrent state (Gal & Ghahramani 2016).
        bidirectional: Wrap every recurrent layer in `keras.layers.Bidirectional`
            (Schuster & Paliwal 1997).
        embedding_dim: Size of the token embedding or of the per-step input projection.
        sequence_length: Fixed number of steps, or None for variable-length input.
        return_sequences: Predict at every step (output (batch, time, classes)) instead of once.
        classifier_activation: "softmax" for a `zoo.layers.StableSoftmax` head (float32) or None
            for logits. Ignored for regression.
        mask_value: For `input_dim` models: steps whose features all equal this value are
            masked (padding); None disables masking.
        irnn: "rnn" cells only: ReLU with identity-initialised recurrent weights and zero
            biases (Le, Jaitly & Hinton 2015), which keeps the gradient norm near 1 through
            time at initialisation. Default False.
        unit_forget_bias: "lstm" cells only: initialise the forget-gate bias to 1 (Gers et al.
            2000; Jozefowicz et al. 2015), so the cell remembers by default at the start of
            training. Default True.
        reset_after: "gru" cells only: False (default) applies the reset gate before the
            recurrent matrix product, as Cho et al. (2014) write it; True applies it after,
            the variant cuDNN implements (faster on GPUs, one more bias vector).
        name: Model name (default: the variant's name).

    Returns:
        A functional `keras.Model`.

    Raises:
        ValueError: for non-positive sizes, rates outside [0, 1), both `vocabulary_size` and
            `input_dim`, `classes` on a regressor, or an option of another cell type.
    """
    cell = VARIANTS[variant].spec.cell
    options = _cell_options(
        cell, {"irnn": irnn, "unit_forget_bias": unit_forget_bias, "reset_after": reset_after}
    )
    if vocabulary_size is not None and input_dim is not None:
        raise ValueError(
            "Give either `vocabulary_size` (token ids) or `input_dim` (real-valued features), "
            f"not both. Received: vocabulary_size={vocabulary_size!r}, input_dim={input_dim!r}"
        )
    if vocabulary_size is None and input_dim is None:
        vocabulary_size = DEFAULT_VOCABULARY_SIZE
    check_int("vocabulary_size", vocabulary_size, minimum=2, allow_none=True)  # id 0 is padding
    check_int("input_dim", input_dim, allow_none=True)
    check_int("classes", classes, minimum=2, allow_none=True)
    check_int("sequence_length", sequence_length, allow_none=True)
    check_int("embedding_dim", embedding_dim)
    check_int("units", units)
    check_int("num_layers", num_layers)
    check_rate("dropout", dropout)
    check_rate("recurrent_dropout", recurrent_dropout)
    check_bool("bidirectional", bidirectional)
    check_bool("return_sequences", return_sequences)
    check_choice("classifier_activation", classifier_activation, ("softmax", None))

    if vocabulary_size is not None:
        inputs = keras.Input(shape=(sequence_length,), dtype="int32", name="token_ids")
        x = keras.layers.Embedding(
            vocabulary_size, embedding_dim, mask_zero=True, name="embedding"
        )(inputs)
    else:
        inputs = keras.Input(shape=(sequence_length, input_dim), name="features")
        x = inputs
        if mask_value is not None:
            x = keras.layers.Masking(mask_value=mask_value, name="masking")(x)
        x = keras.layers.Dense(embedding_dim, name="projection")(x)

    for index in range(num_layers):
        last = index == num_layers - 1
        layer = recurrent_layer(
            cell,
            units,
            return_sequences=return_sequences or not last,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            name=f"{cell}_{index + 1}",
            **options,
        )
        if bidirectional:
            layer = keras.layers.Bidirectional(layer, name=f"bidirectional_{index + 1}")
        x = layer(x)

    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(classes or 1, name="logits")(x)
    if classes is not None and classifier_activation == "softmax":
        outputs = layers.StableSoftmax(dtype="float32", name="predictions")(outputs)
    elif classes is None:
        # Regression: one linear output, computed in float32 under mixed precision.
        outputs = keras.layers.Activation("linear", dtype="float32", name="predictions")(outputs)
    return keras.Model(inputs, outputs, name=name or variant)


def _build(variant, kwargs):
    """`_sequence_model` with the variant's defaults under the caller's arguments."""
    row = VARIANTS[variant]
    arguments = row.arguments(variant, kwargs)
    if row.spec.regressor and arguments["classes"] is not None:
        raise ValueError(
            f"{variant} has one linear output: argument `classes` must be None (use the "
            f"*_classifier models for classes). Received: classes={arguments['classes']!r}"
        )
    if "vocabulary_size" in kwargs and "input_dim" not in kwargs:
        arguments.pop("input_dim", None)  # token ids replace the default features
    return _sequence_model(variant, **arguments)


_classifier = register_variant(
    VARIANTS,
    _sequence_model,
    task="sequence-classification",
    default_input_shape=(None,),
    min_input_shape=(1,),
    default_dataset="imdb_reviews",
)
_regressor = register_variant(
    VARIANTS,
    _sequence_model,
    task="sequence-regression",
    default_input_shape=(None, 2),
    min_input_shape=(1, 2),
    default_dataset="adding_problem",
)


@_classifier
def rnn_classifier(**kwargs):
    """Vanilla (Elman) recurrent network of Elman 1990; see `_sequence_model`."""
    return _build("rnn_classifier", kwargs)


@_classifier
def lstm_classifier(**kwargs):
    """Long short-term memory network (Hochreiter & Schmidhuber 1997); see `_sequence_model`."""
    return _build("lstm_classifier", kwargs)


@_classifier
def gru_classifier(**kwargs):
    """Gated recurrent unit network (Cho et al. 2014); see `_sequence_model`."""
    return _build("gru_classifier", kwargs)


@_classifier
def bilstm_classifier(**kwargs):
    """Bidirectional LSTM (Schuster & Paliwal 1997); see `_sequence_model`."""
    return _build("bilstm_classifier", kwargs)


@_regressor
def rnn_regressor(**kwargs):
    """Elman RNN (Elman 1990) with one linear output; see `_sequence_model`."""
    return _build("rnn_regressor", kwargs)


@_regressor
def lstm_regressor(**kwargs):
    """LSTM (Hochreiter & Schmidhuber 1997) with one linear output; see `_sequence_model`."""
    return _build("lstm_regressor", kwargs)


@_regressor
def gru_regressor(**kwargs):
    """GRU (Cho et al. 2014) with one linear output; see `_sequence_model`."""
    return _build("gru_regressor", kwargs)
