"""Recurrent sequence classifiers and regressors: SimpleRNN (and IRNN), LSTM, GRU, BiLSTM.

One builder, one convention for the whole family:

    inputs --(vocab_size: Embedding with id 0 = padding, masked)
           --(input_dim:  Masking(mask_value) + a per-step Dense projection)
    -> num_layers recurrent layers (optionally Bidirectional)
    -> Dropout -> Dense "logits" -> StableSoftmax (float32), or logits, or one regression output.

Padding is masked end to end: Keras skips masked steps in every recurrent layer (the state is
carried over unchanged), so appending padding never changes a prediction.

The vanishing-gradient fixes the literature gives are options here:

* LSTM forget-gate bias initialised to 1 (`unit_forget_bias=True`, the default; Gers,
  Schmidhuber & Cummins 2000; Jozefowicz, Zaremba & Sutskever 2015).
* IRNN for the vanilla RNN (`irnn=True`): identity recurrent weights, zero biases and ReLU
  (Le, Jaitly & Hinton 2015, "A Simple Way to Initialize Recurrent Networks of Rectified
  Linear Units").
* Gradient clipping by global norm (Pascanu, Mikolov & Bengio 2013) belongs to the optimizer:
  `zoo.rnn.default_optimizer()` returns Adam with `global_clipnorm=1.0`.
"""

import difflib

import keras

import layers
from zoo.registry import Paper, register_model

CELL_TYPES = ("rnn", "lstm", "gru")
DEFAULT_VOCAB_SIZE = 20000

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


def default_optimizer(learning_rate=1e-3, global_clipnorm=1.0):
    """Adam with gradient clipping by global norm, the default for recurrent models.

    Clipping the global norm of the gradient (Pascanu, Mikolov & Bengio 2013, "On the
    difficulty of training recurrent neural networks") stops exploding gradients from
    throwing the weights far away in one step, while keeping the gradient's direction.

    Args:
        learning_rate: Adam learning rate.
        global_clipnorm: Maximum global L2 norm of the gradient; None disables clipping.

    Returns:
        A `keras.optimizers.Adam`.
    """
    return keras.optimizers.Adam(learning_rate=learning_rate, global_clipnorm=global_clipnorm)


def _positive_int(name, value, allow_none=False):
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        allowed = "a positive integer" + (" or None" if allow_none else "")
        raise ValueError(f"Argument `{name}` must be {allowed}. Received: {name}={value!r}")


def _rate(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"Argument `{name}` must be a float in [0, 1). Received: {name}={value!r}")


def check_cell_type(cell):
    """Validate a cell type name ("rnn", "lstm" or "gru"); unknown names suggest the closest."""
    if cell in CELL_TYPES:
        return cell
    close = difflib.get_close_matches(str(cell), CELL_TYPES, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"Argument `cell` must be one of {CELL_TYPES}.{hint} Received: cell={cell!r}")


def recurrent_layer(
    cell,
    units,
    *,
    return_sequences=False,
    return_state=False,
    dropout=0.0,
    recurrent_dropout=0.0,
    unit_forget_bias=True,
    irnn=False,
    reset_after=False,
    name=None,
):
    """One Keras recurrent layer of the given cell type, configured as the papers describe.

    Args:
        cell: "rnn" (Elman 1990, tanh), "lstm" (Hochreiter & Schmidhuber 1997, with the forget
            gate of Gers et al. 2000) or "gru" (Cho et al. 2014).
        units: Size of the hidden state.
        return_sequences: Return the output of every step instead of the last one.
        return_state: Also return the final state(s).
        dropout: Dropout rate on the layer's inputs.
        recurrent_dropout: Dropout rate on the recurrent state (Gal & Ghahramani 2016).
        unit_forget_bias: LSTM only: initialise the forget-gate bias to 1.
        irnn: RNN only: identity recurrent weights, zero bias and ReLU (Le et al. 2015).
        reset_after: GRU only: False applies the reset gate before the recurrent matrix product,
            as in Cho et al. (2014); True applies it after (the cuDNN-compatible variant).
        name: Layer name.

    Returns:
        A `keras.layers.SimpleRNN`, `LSTM` or `GRU`.
    """
    check_cell_type(cell)
    common = dict(
        units=units,
        return_sequences=return_sequences,
        return_state=return_state,
        dropout=dropout,
        recurrent_dropout=recurrent_dropout,
        name=name,
    )
    if cell == "rnn":
        if irnn:
            return keras.layers.SimpleRNN(
                activation="relu",
                recurrent_initializer=keras.initializers.Identity(),
                # Le et al. (2015): input weights drawn from N(0, 0.001^2), zero biases.
                kernel_initializer=keras.initializers.RandomNormal(stddev=0.001),
                bias_initializer="zeros",
                **common,
            )
        return keras.layers.SimpleRNN(activation="tanh", **common)
    if cell == "lstm":
        return keras.layers.LSTM(unit_forget_bias=unit_forget_bias, **common)
    return keras.layers.GRU(reset_after=reset_after, **common)


def _sequence_model(
    *,
    cell,
    vocab_size,
    input_dim,
    num_classes,
    sequence_length,
    embedding_dim,
    units,
    num_layers,
    dropout,
    recurrent_dropout,
    bidirectional,
    return_sequences,
    classifier_activation,
    mask_value,
    unit_forget_bias=True,
    irnn=False,
    reset_after=False,
    name,
):
    check_cell_type(cell)
    if vocab_size is not None and input_dim is not None:
        raise ValueError(
            "Give either `vocab_size` (token ids) or `input_dim` (real-valued features), not "
            f"both. Received: vocab_size={vocab_size!r}, input_dim={input_dim!r}"
        )
    if vocab_size is None and input_dim is None:
        vocab_size = DEFAULT_VOCAB_SIZE
    _positive_int("vocab_size", vocab_size, allow_none=True)
    _positive_int("input_dim", input_dim, allow_none=True)
    if vocab_size is not None and vocab_size < 2:
        raise ValueError(
            "Argument `vocab_size` must be at least 2 (id 0 is padding). "
            f"Received: vocab_size={vocab_size!r}"
        )
    _positive_int("num_classes", num_classes, allow_none=True)
    if num_classes == 1:
        raise ValueError(
            "Argument `num_classes` must be at least 2 for classification, or None for "
            "regression (one linear output). Received: num_classes=1"
        )
    _positive_int("sequence_length", sequence_length, allow_none=True)
    _positive_int("embedding_dim", embedding_dim)
    _positive_int("units", units)
    _positive_int("num_layers", num_layers)
    _rate("dropout", dropout)
    _rate("recurrent_dropout", recurrent_dropout)
    if classifier_activation not in ("softmax", None):
        raise ValueError(
            "Argument `classifier_activation` must be 'softmax' (a StableSoftmax head) or None "
            f"(logits). Received: classifier_activation={classifier_activation!r}"
        )

    if vocab_size is not None:
        inputs = keras.Input(shape=(sequence_length,), dtype="int32", name="token_ids")
        x = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="embedding")(
            inputs
        )
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
            unit_forget_bias=unit_forget_bias,
            irnn=irnn,
            reset_after=reset_after,
            name=f"{cell}_{index + 1}",
        )
        if bidirectional:
            layer = keras.layers.Bidirectional(layer, name=f"bidirectional_{index + 1}")
        x = layer(x)

    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(num_classes or 1, name="logits")(x)
    if num_classes is not None and classifier_activation == "softmax":
        outputs = layers.StableSoftmax(dtype="float32", name="predictions")(outputs)
    elif num_classes is None:
        # Regression: one linear output, computed in float32 under mixed precision.
        outputs = keras.layers.Activation("linear", dtype="float32", name="predictions")(outputs)
    return keras.Model(inputs, outputs, name=name)


_COMMON_ARGS_DOC = """
    Args:
        vocab_size: Number of token ids for integer inputs of shape (batch, time); id 0 is
            padding and is masked. Give this or `input_dim`; if neither is given,
            vocab_size=20000.
        input_dim: Number of real-valued features per step, for inputs of shape
            (batch, time, input_dim). Steps whose features all equal `mask_value` are padding.
        num_classes: Number of classes; None makes a regressor with one linear output.
        units: Hidden-state size of each recurrent layer.
        num_layers: Number of stacked recurrent layers.
        dropout: Dropout rate on the inputs of every recurrent layer and before the head.
        recurrent_dropout: Dropout rate on the recurrent state (Gal & Ghahramani 2016).
        bidirectional: Wrap every recurrent layer in `keras.layers.Bidirectional`
            (Schuster & Paliwal 1997).
        embedding_dim: Size of the token embedding or of the per-step input projection.
        sequence_length: Fixed number of steps, or None for variable-length input.
        return_sequences: Predict at every step (output (batch, time, classes)) instead of once.
        classifier_activation: "softmax" for a `layers.StableSoftmax` head (float32) or None
            for logits. Ignored for regression.
        mask_value: For `input_dim` models: steps whose features all equal this value are
            masked (padding); None disables masking.
        name: Model name.
"""


def _document(fn):
    fn.__doc__ = fn.__doc__.replace("    {args}\n", _COMMON_ARGS_DOC.strip("\n") + "\n")
    return fn


@register_model(
    task="sequence-classification",
    paper=_ELMAN,
    summary="Elman (tanh) RNN; `irnn=True` gives the identity-initialised ReLU RNN of Le et al. "
    "2015; `num_classes=None` regresses",
    default_input_shape=(None,),
    min_input_shape=(1,),
    params=2593154,
    small_config={"vocab_size": 20, "embedding_dim": 8, "units": 8, "num_classes": 3},
    default_dataset="imdb_reviews",
)
@_document
def rnn_classifier(
    vocab_size=None,
    input_dim=None,
    num_classes=2,
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
    irnn=False,
    name="rnn_classifier",
):
    """Vanilla recurrent network (Elman 1990, "Finding Structure in Time").

    h_t = tanh(W x_t + U h_{t-1} + b). Its gradient through time is a product of Jacobians
    whose norm typically shrinks geometrically, so it cannot learn long dependencies (Bengio,
    Simard & Frasconi 1994): on the adding problem at T=100 it stays at the trivial MSE.

    {args}
        irnn: Use ReLU with identity-initialised recurrent weights and zero biases (Le, Jaitly &
            Hinton 2015, "A Simple Way to Initialize Recurrent Networks of Rectified Linear
            Units"), which keeps the gradient norm near 1 through time at initialisation.

    Returns:
        A functional `keras.Model`.

    Raises:
        ValueError: for non-positive sizes, rates outside [0, 1), or both `vocab_size` and
            `input_dim`.
    """
    return _sequence_model(
        cell="rnn",
        irnn=irnn,
        **_pack(locals(), exclude=("irnn",)),
    )


def _pack(arguments, exclude=()):
    return {k: v for k, v in arguments.items() if k not in exclude}


@register_model(
    task="sequence-classification",
    paper=_LSTM,
    summary="LSTM (with forget gate, bias initialised to 1); `num_classes=None` regresses",
    default_input_shape=(None,),
    min_input_shape=(1,),
    params=2691842,
    small_config={"vocab_size": 20, "embedding_dim": 8, "units": 8, "num_classes": 3},
    default_dataset="imdb_reviews",
)
@_document
def lstm_classifier(
    vocab_size=None,
    input_dim=None,
    num_classes=2,
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
    unit_forget_bias=True,
    name="lstm_classifier",
):
    """Long short-term memory network (Hochreiter & Schmidhuber 1997).

    The cell state c_t = f_t * c_{t-1} + i_t * g_t is updated additively (the "constant error
    carousel"), so the gradient through it is scaled by the forget gate f_t only, not by a
    weight matrix and a squashing derivative at every step. The forget gate is Gers,
    Schmidhuber & Cummins (2000)'s addition, as in every modern LSTM.

    {args}
        unit_forget_bias: Initialise the forget-gate bias to 1 (Gers et al. 2000; Jozefowicz,
            Zaremba & Sutskever 2015), so the cell remembers by default at the start of
            training.

    Returns:
        A functional `keras.Model`.

    Raises:
        ValueError: for non-positive sizes, rates outside [0, 1), or both `vocab_size` and
            `input_dim`.
    """
    return _sequence_model(cell="lstm", **_pack(locals()))


@register_model(
    task="sequence-classification",
    paper=_GRU,
    summary="Gated recurrent unit, reset gate before the recurrent product as in the paper; "
    "`num_classes=None` regresses",
    default_input_shape=(None,),
    min_input_shape=(1,),
    params=2658946,
    small_config={"vocab_size": 20, "embedding_dim": 8, "units": 8, "num_classes": 3},
    default_dataset="imdb_reviews",
)
@_document
def gru_classifier(
    vocab_size=None,
    input_dim=None,
    num_classes=2,
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
    reset_after=False,
    name="gru_classifier",
):
    """Gated recurrent unit network (Cho et al. 2014).

    z_t and r_t gate an interpolation h_t = z_t * h_{t-1} + (1 - z_t) * tanh(W x_t +
    U (r_t * h_{t-1})): like the LSTM's cell state, the state is carried over additively.

    {args}
        reset_after: False (default) applies the reset gate before the recurrent matrix product,
            as Cho et al. (2014) write it; True applies it after, the variant cuDNN implements
            (faster on GPUs, one more bias vector).

    Returns:
        A functional `keras.Model`.

    Raises:
        ValueError: for non-positive sizes, rates outside [0, 1), or both `vocab_size` and
            `input_dim`.
    """
    return _sequence_model(cell="gru", **_pack(locals()))


@register_model(
    task="sequence-classification",
    paper=_BIRNN,
    summary="Bidirectional LSTM (Schuster & Paliwal 1997; LSTM form of Graves & Schmidhuber "
    "2005); `num_classes=None` regresses",
    default_input_shape=(None,),
    min_input_shape=(1,),
    params=2823682,
    small_config={"vocab_size": 20, "embedding_dim": 8, "units": 8, "num_classes": 3},
    default_dataset="imdb_reviews",
)
@_document
def bilstm_classifier(
    vocab_size=None,
    input_dim=None,
    num_classes=2,
    units=128,
    num_layers=1,
    dropout=0.0,
    recurrent_dropout=0.0,
    bidirectional=True,
    embedding_dim=128,
    sequence_length=None,
    return_sequences=False,
    classifier_activation="softmax",
    mask_value=0.0,
    unit_forget_bias=True,
    name="bilstm_classifier",
):
    """Bidirectional LSTM (Schuster & Paliwal 1997; Graves & Schmidhuber 2005).

    One LSTM reads the sequence forwards and one backwards; their final states are
    concatenated, so every prediction sees the whole sequence. With masking, the backward
    LSTM starts at the last real step, not at the padding.

    {args}
        unit_forget_bias: Initialise the forget-gate bias to 1 (Gers et al. 2000).

    Returns:
        A functional `keras.Model`.

    Raises:
        ValueError: for non-positive sizes, rates outside [0, 1), or both `vocab_size` and
            `input_dim`.
    """
    return _sequence_model(cell="lstm", **_pack(locals()))


def _regressor(cell, vocab_size, input_dim, num_classes, **kwargs):
    if num_classes is not None:
        raise ValueError(
            "Regressors have one linear output: argument `num_classes` must be None (use "
            f"the *_classifier models for classes). Received: num_classes={num_classes!r}"
        )
    if vocab_size is None and input_dim is None:
        input_dim = 2
    return _sequence_model(
        cell=cell,
        vocab_size=vocab_size,
        input_dim=input_dim,
        num_classes=None,
        return_sequences=False,
        classifier_activation=None,
        **kwargs,
    )


_REGRESSOR_ARGS_DOC = """
    Args:
        input_dim: Real-valued features per step (default 2, the adding problem's
            (value, marker)); steps whose features all equal `mask_value` are padding.
        vocab_size: Token ids instead of features (id 0 = padding), if given.
        num_classes: Must be None (accepted so that a dataset's `model_kwargs` fit).
        units: Hidden-state size of each recurrent layer.
        num_layers: Number of stacked recurrent layers.
        dropout: Dropout rate on the inputs of every recurrent layer and before the head.
        recurrent_dropout: Dropout rate on the recurrent state.
        bidirectional: Wrap every recurrent layer in `keras.layers.Bidirectional`.
        embedding_dim: Size of the per-step input projection (or token embedding).
        sequence_length: Fixed number of steps, or None for variable-length input.
        mask_value: Feature value that marks padding steps; None disables masking.
        name: Model name.
"""


def _document_regressor(fn):
    fn.__doc__ = fn.__doc__.replace("    {args}\n", _REGRESSOR_ARGS_DOC.strip("\n") + "\n")
    return fn


_REGRESSOR_SMALL = {"units": 8, "embedding_dim": 8}


@register_model(
    task="sequence-regression",
    paper=_ELMAN,
    summary="rnn_classifier with one linear output (adding problem); `irnn=True` for IRNN",
    default_input_shape=(None, 2),
    min_input_shape=(1, 2),
    params=33409,
    small_config=_REGRESSOR_SMALL,
    default_dataset="adding_problem",
)
@_document_regressor
def rnn_regressor(
    input_dim=None,
    vocab_size=None,
    num_classes=None,
    units=128,
    num_layers=1,
    dropout=0.0,
    recurrent_dropout=0.0,
    bidirectional=False,
    embedding_dim=128,
    sequence_length=None,
    mask_value=0.0,
    irnn=False,
    name="rnn_regressor",
):
    """Elman RNN regressor (Elman 1990): `rnn_classifier` with one linear output.

    {args}
        irnn: Identity-initialised recurrent weights with ReLU (Le, Jaitly & Hinton 2015).

    Returns:
        A functional `keras.Model` with output shape (batch, 1).
    """
    return _regressor("rnn", **_pack(locals()))


@register_model(
    task="sequence-regression",
    paper=_LSTM,
    summary="lstm_classifier with one linear output (adding problem)",
    default_input_shape=(None, 2),
    min_input_shape=(1, 2),
    params=132097,
    small_config=_REGRESSOR_SMALL,
    default_dataset="adding_problem",
)
@_document_regressor
def lstm_regressor(
    input_dim=None,
    vocab_size=None,
    num_classes=None,
    units=128,
    num_layers=1,
    dropout=0.0,
    recurrent_dropout=0.0,
    bidirectional=False,
    embedding_dim=128,
    sequence_length=None,
    mask_value=0.0,
    unit_forget_bias=True,
    name="lstm_regressor",
):
    """LSTM regressor (Hochreiter & Schmidhuber 1997): `lstm_classifier` with one linear output.

    {args}
        unit_forget_bias: Initialise the forget-gate bias to 1 (Gers et al. 2000).

    Returns:
        A functional `keras.Model` with output shape (batch, 1).
    """
    return _regressor("lstm", **_pack(locals()))


@register_model(
    task="sequence-regression",
    paper=_GRU,
    summary="gru_classifier with one linear output (adding problem)",
    default_input_shape=(None, 2),
    min_input_shape=(1, 2),
    params=99201,
    small_config=_REGRESSOR_SMALL,
    default_dataset="adding_problem",
)
@_document_regressor
def gru_regressor(
    input_dim=None,
    vocab_size=None,
    num_classes=None,
    units=128,
    num_layers=1,
    dropout=0.0,
    recurrent_dropout=0.0,
    bidirectional=False,
    embedding_dim=128,
    sequence_length=None,
    mask_value=0.0,
    reset_after=False,
    name="gru_regressor",
):
    """GRU regressor (Cho et al. 2014): `gru_classifier` with one linear output.

    {args}
        reset_after: False (default) follows the paper; True is the cuDNN variant.

    Returns:
        A functional `keras.Model` with output shape (batch, 1).
    """
    return _regressor("gru", **_pack(locals()))
