"""Image captioning: a CNN encoder and an RNN decoder trained with teacher forcing.

Two decoders share one `Captioner` model:

* `"injection"` -- the image-injected RNN (the seed's formulation, in the family of Vinyals et
  al. 2015, "Show and Tell"): the image goes through the CNN to a vector v and the hidden state
  is h_t = tanh(W_xh x_t + W_hh h_{t-1} + W_ih v), y_t = W_hy h_t. With `cell="lstm"` or
  `"gru"` the same injection feeds [x_t, v] to an LSTM or GRU cell (for a vanilla cell this is
  exactly W_xh x_t + W_ih v).
* `"attention"` -- Xu et al. 2015, "Show, Attend and Tell": an LSTM with deterministic soft
  attention over the CNN's feature grid a_1..a_L; e_ti = w^T tanh(W_a a_i + W_h h_{t-1}),
  alpha_t = softmax(e_t), z_t = beta_t * sum_i alpha_ti a_i with the gate
  beta_t = sigmoid(f_beta(h_{t-1})) (section 4.2.1), LSTM input [E y_{t-1}, z_t], initial
  state from MLPs of the mean annotation, the deep output
  p(y_t) = softmax(L_o(E y_{t-1} + L_h h_t + L_z z_t)) and the doubly stochastic attention
  penalty lambda * sum_i (1 - sum_t alpha_ti)^2 (added with `add_loss` while training).

The model's training call takes `(images, caption_in)` and returns logits `[B, T, V]`; the loss
is `masked_caption_loss` (token-level sparse cross-entropy from logits, weighted by the mask).
Generation (`Captioner.greedy`, `Captioner.beam_search`, `Captioner.caption`) runs in-graph,
see `zoo.captioning.decoding`.
"""

import difflib

import keras
from keras import ops

from layers import log_softmax, stable_softmax
from zoo.captioning import text
from zoo.registry import Paper, register_model

DECODERS = ("injection", "attention")
CELLS = ("vanilla", "lstm", "gru")
INJECTIONS = ("every_step", "first_step")
POOLINGS = ("flatten", "avg", "max")
_BUILT_IN_ENCODER = "small_cnn"


def _check_choice(name, value, allowed):
    if value not in allowed:
        close = difflib.get_close_matches(str(value), allowed, n=2, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"Argument `{name}` must be one of {allowed}.{hint} Received: {name}={value!r}"
        )


def _check_positive_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"Argument `{name}` must be a positive int. Received: {name}={value!r}")


def masked_caption_loss(caption_out, logits, mask):
    """Token-level sparse categorical cross-entropy from logits, averaged over real tokens.

    loss = sum_{b,t} mask_bt * (-log softmax(logits_bt)[caption_out_bt]) / sum_{b,t} mask_bt,
    computed in float32 (Keras' `SparseCategoricalCrossentropy(from_logits=True,
    reduction="mean_with_sample_weight")` with `sample_weight=mask` gives the same number).

    Args:
        caption_out: Integer targets `[B, T]`.
        logits: `[B, T, V]`.
        mask: `[B, T]`, 1 on real tokens, 0 on padding.

    Returns:
        A scalar (0 when the mask is all zeros).
    """
    logits = ops.cast(logits, "float32")
    log_probs = log_softmax(logits, axis=-1)
    targets = ops.cast(caption_out, "int32")
    picked = ops.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
    mask = ops.cast(mask, "float32")
    return -ops.sum(picked * mask) / ops.maximum(ops.sum(mask), 1.0)


# ----------------------------------------------------------------------------------- encoder


def small_cnn_encoder(input_shape, conv_filters=(32, 64, 64), name="small_cnn"):
    """The seed's [CONV-POOL]*n encoder: 3x3 same-padded ReLU convolutions, 2x2 max pooling.

    Returns a `keras.Model` from images to the feature grid `[B, H / 2^n, W / 2^n, filters]`.
    """
    images = keras.Input(shape=input_shape, name="images")
    x = images
    for i, filters in enumerate(conv_filters, start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
    return keras.Model(images, x, name=name)


def build_encoder(encoder, input_shape, *, conv_filters=(32, 64, 64), encoder_weights=None):
    """A CNN without its classifier, from a name, a model or a serialised config.

    Args:
        encoder: `None` or "small_cnn" (the built-in [CONV-POOL]*n encoder), a name registered
            in the zoo (built with `zoo.create_model(name, include_top=False, ...)`), the name
            of a `keras.applications` function (e.g. "MobileNetV2", built with
            `include_top=False, weights=encoder_weights`), a `keras.Model`, or the dict that
            `keras.saving.serialize_keras_object` gives for one.
        input_shape: Image shape `(H, W, C)`.
        conv_filters: Filters per block of the built-in encoder.
        encoder_weights: `weights` for `keras.applications` encoders (e.g. "imagenet").

    Returns:
        A `keras.Model` mapping images to a feature grid (4D) or a vector (2D).

    Raises:
        ValueError: on an unknown name. TypeError: on another kind of object.
    """
    if encoder is None or encoder == _BUILT_IN_ENCODER:
        return small_cnn_encoder(input_shape, conv_filters)
    if isinstance(encoder, keras.Model):
        return encoder
    if isinstance(encoder, dict):
        return keras.saving.deserialize_keras_object(encoder)
    if isinstance(encoder, str):
        import zoo.cnn  # noqa: F401  (registers the zoo CNNs)
        from zoo import registry

        if encoder in registry.list_models():
            return registry.create_model(encoder, include_top=False, input_shape=input_shape)
        applications = [n for n in dir(keras.applications) if n[:1].isupper()]
        if encoder in applications:
            return getattr(keras.applications, encoder)(
                include_top=False, weights=encoder_weights, input_shape=input_shape
            )
        candidates = [_BUILT_IN_ENCODER, *registry.list_models(), *applications]
        close = difflib.get_close_matches(encoder, candidates, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"Argument `encoder` names no known CNN.{hint} Allowed: '{_BUILT_IN_ENCODER}', a zoo "
            f"model name or a keras.applications name. Received: encoder={encoder!r}"
        )
    raise TypeError(
        "Argument `encoder` must be None, a name, a keras.Model or a serialised config dict. "
        f"Received: encoder of type {type(encoder).__name__}"
    )


# ----------------------------------------------------------------------------------- cells


def _make_cell(cell, units, name):
    if cell == "vanilla":
        return keras.layers.SimpleRNNCell(units, activation="tanh", name=name)
    if cell == "lstm":
        return keras.layers.LSTMCell(units, name=name)
    return keras.layers.GRUCell(units, name=name)


@keras.saving.register_keras_serializable(package="zoo")
class ImageInjectedCell(keras.layers.Layer):
    """One step of the image-injected RNN.

    With `every_step=True` (the seed) the cell sees [x_t, v] at every step and its states are
    the cell's own (h, or h and c for an LSTM), then the image vector v, carried unchanged (so
    beam search need not reorder it). With `every_step=False` it is the plain cell: the image
    enters once, as the first input (Vinyals et al. 2015), see `InjectedRNNDecoder`.

    Args:
        cell: "vanilla" (h_t = tanh(W_xh x_t + W_hh h_{t-1} + W_ih v + b)), "lstm" or "gru".
        units: Hidden size.
        image_dim: Size of v.
        every_step: Inject v at every step (True) or not at all in this cell (False).
    """

    def __init__(self, cell="vanilla", units=256, image_dim=256, every_step=True, **kwargs):
        super().__init__(**kwargs)
        _check_choice("cell", cell, CELLS)
        self.cell_type, self.units, self.image_dim = cell, units, image_dim
        self.every_step = bool(every_step)
        self.inner = _make_cell(cell, units, name="inner")
        self.num_recurrent_states = 2 if cell == "lstm" else 1
        self.state_size = [units] * self.num_recurrent_states + (
            [image_dim] if self.every_step else []
        )
        self.output_size = units

    def build(self, input_shape):
        if not self.inner.built:
            extra = self.image_dim if self.every_step else 0
            self.inner.build((None, input_shape[-1] + extra))
        self.built = True

    def call(self, inputs, states, training=False):
        states = list(states)
        if self.every_step:
            recurrent, image = states[:-1], states[-1]
            inputs = ops.concatenate([inputs, image], axis=-1)
        else:
            recurrent, image = states, None
        output, new_states = self.inner(inputs, recurrent, training=training)
        if not isinstance(new_states, (list, tuple)):
            new_states = [new_states]
        return output, [*new_states, image] if self.every_step else list(new_states)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "cell": self.cell_type,
                "units": self.units,
                "image_dim": self.image_dim,
                "every_step": self.every_step,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="zoo")
class SoftAttentionLSTMCell(keras.layers.Layer):
    """One step of Xu et al.'s LSTM with deterministic soft attention and the beta gate.

    States: h, c, the running sum of attention weights (for the doubly stochastic penalty),
    then the flattened annotations a [L * D] and their projection W_a a [L * A] (constant
    during a caption). Output: [h_t, z_t, alpha_t].

    Args:
        units: LSTM size.
        attention_units: Size A of the attention MLP.
        num_locations: L, the number of grid cells.
        feature_dim: D, the annotation size.
    """

    def __init__(self, units=256, attention_units=128, num_locations=16, feature_dim=64, **kw):
        super().__init__(**kw)
        self.units, self.attention_units = units, attention_units
        self.num_locations, self.feature_dim = num_locations, feature_dim
        self.annotation_projection = keras.layers.Dense(attention_units, name="attention_a")
        self.hidden_projection = keras.layers.Dense(attention_units, name="attention_h")
        self.score = keras.layers.Dense(1, name="attention_score")
        self.gate = keras.layers.Dense(1, activation="sigmoid", name="beta_gate")
        self.lstm = keras.layers.LSTMCell(units, name="lstm")
        self.num_recurrent_states = 3
        self.state_size = [
            units,
            units,
            num_locations,
            num_locations * feature_dim,
            num_locations * attention_units,
        ]
        self.output_size = units + feature_dim + num_locations

    def build(self, input_shape):
        for layer, shape in (
            (self.annotation_projection, (None, self.num_locations, self.feature_dim)),
            (self.hidden_projection, (None, self.units)),
            (self.score, (None, self.num_locations, self.attention_units)),
            (self.gate, (None, self.units)),
            (self.lstm, (None, input_shape[-1] + self.feature_dim)),
        ):
            if not layer.built:
                layer.build(shape)
        self.built = True

    def project_annotations(self, annotations):
        """W_a a_i for every location, flattened to `[B, L * A]`."""
        projected = self.annotation_projection(annotations)
        return ops.reshape(projected, (-1, self.num_locations * self.attention_units))

    def call(self, inputs, states, training=False):
        h, c, alpha_sum, flat_annotations, flat_projection = states
        annotations = ops.reshape(flat_annotations, (-1, self.num_locations, self.feature_dim))
        projection = ops.reshape(flat_projection, (-1, self.num_locations, self.attention_units))
        energies = self.score(ops.tanh(projection + self.hidden_projection(h)[:, None, :]))
        alpha = stable_softmax(ops.squeeze(energies, axis=-1), axis=-1)
        context = ops.sum(alpha[:, :, None] * annotations, axis=1)
        context = self.gate(h) * context
        output, (h, c) = self.lstm(
            ops.concatenate([inputs, context], -1), [h, c], training=training
        )
        new_states = [h, c, alpha_sum + alpha, flat_annotations, flat_projection]
        return ops.concatenate([output, context, alpha], axis=-1), new_states

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "attention_units": self.attention_units,
                "num_locations": self.num_locations,
                "feature_dim": self.feature_dim,
            }
        )
        return config


# ----------------------------------------------------------------------------------- decoders


@keras.saving.register_keras_serializable(package="zoo")
class InjectedRNNDecoder(keras.layers.Layer):
    """The seed's decoder: embedding -> image-injected RNN -> y_t = W_hy h_t (logits).

    `injection="every_step"` (the seed): h_t = tanh(W_xh x_t + W_hh h_{t-1} + W_ih v) (or the
    LSTM/GRU fed [x_t, v]). `injection="first_step"` (Vinyals et al. 2015, "Show and Tell"):
    the image embedding W_e v is the cell's input at t = -1 only, then the words follow.

    `call(image_vector, caption_in)` gives logits `[B, T, V]` (teacher forcing);
    `initial_state` and `step` give one token at a time for greedy and beam search.

    Args:
        vocabulary_size: V, special tokens included.
        image_dim: Size of the image vector v.
        cell: "vanilla", "lstm" or "gru".
        embedding_dim: Word embedding size.
        units: Hidden size.
        dropout: Dropout rate on the hidden state before the output layer.
        injection: "every_step" or "first_step".
    """

    def __init__(
        self,
        vocabulary_size,
        image_dim,
        cell="vanilla",
        embedding_dim=128,
        units=256,
        dropout=0.0,
        injection="every_step",
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_choice("injection", injection, INJECTIONS)
        self.injection = injection
        self.vocabulary_size, self.image_dim = vocabulary_size, image_dim
        self.cell_type, self.embedding_dim, self.units, self.dropout = (
            cell,
            embedding_dim,
            units,
            dropout,
        )
        self.embedding = keras.layers.Embedding(vocabulary_size, embedding_dim, name="embedding")
        every_step = injection == "every_step"
        self.cell = ImageInjectedCell(cell, units, image_dim, every_step, name="cell")
        self.image_embedding = (
            None if every_step else keras.layers.Dense(embedding_dim, name="image_embedding")
        )
        self.rnn = keras.layers.RNN(self.cell, return_sequences=True, name="rnn")
        self.dropout_layer = keras.layers.Dropout(dropout, name="dropout")
        self.output_layer = keras.layers.Dense(vocabulary_size, name="logits", dtype="float32")
        self.num_recurrent_states = self.cell.num_recurrent_states

    def build(self, image_vector_shape=None, caption_in_shape=None):
        self.embedding.build((None, None))
        self.cell.build((None, self.embedding_dim))
        if self.image_embedding is not None:
            self.image_embedding.build((None, self.image_dim))
        self.rnn.built = True
        self.output_layer.build((None, None, self.units))
        self.built = True

    def initial_state(self, image_vector):
        """every_step: zero hidden state(s) and v; first_step: the state after reading W_e v."""
        batch = ops.shape(image_vector)[0]
        zeros = [ops.zeros((batch, self.units), dtype=image_vector.dtype)]
        zeros = zeros * self.num_recurrent_states
        if self.image_embedding is None:
            return [*zeros, image_vector]
        _, states = self.cell(self.image_embedding(image_vector), zeros)
        return list(states)

    def call(self, image_vector, caption_in, training=False):
        embedded = self.embedding(caption_in)
        mask = ops.not_equal(caption_in, text.PAD_ID)
        hidden = self.rnn(
            embedded, initial_state=self.initial_state(image_vector), mask=mask, training=training
        )
        return self.output_layer(self.dropout_layer(hidden, training=training))

    def step(self, tokens, states):
        """Logits `[B, V]` for the next token after `tokens` `[B]`, and the new states."""
        output, states = self.cell(self.embedding(tokens), states)
        return self.output_layer(output), states

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "image_dim": self.image_dim,
                "cell": self.cell_type,
                "embedding_dim": self.embedding_dim,
                "units": self.units,
                "dropout": self.dropout,
                "injection": self.injection,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="zoo")
class SoftAttentionDecoder(keras.layers.Layer):
    """Xu et al. (2015)'s decoder: soft-attention LSTM with a deep output layer.

    `call(annotations, caption_in)` with annotations `[B, L, D]` gives logits `[B, T, V]` and,
    while training with `attention_regularization > 0`, adds the doubly stochastic penalty
    lambda * sum_i (1 - sum_t alpha_ti)^2 with `add_loss`. The paper adds it to the caption's
    summed negative log-likelihood; our loss is the mean over tokens, so the penalty is summed
    over the batch and divided by the number of real tokens, which keeps the paper's ratio.

    Args:
        vocabulary_size: V, special tokens included.
        num_locations: L.
        feature_dim: D.
        embedding_dim: Word embedding size (also the deep output's size).
        units: LSTM size.
        attention_units: Size of the attention MLP.
        dropout: Dropout rate inside the deep output.
        attention_regularization: lambda of the doubly stochastic penalty.
        return_attention: If True, `call` returns `(logits, alphas [B, T, L])`.
    """

    def __init__(
        self,
        vocabulary_size,
        num_locations,
        feature_dim,
        embedding_dim=128,
        units=256,
        attention_units=128,
        dropout=0.0,
        attention_regularization=1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size, self.num_locations, self.feature_dim = (
            vocabulary_size,
            num_locations,
            feature_dim,
        )
        self.embedding_dim, self.units, self.attention_units = (
            embedding_dim,
            units,
            attention_units,
        )
        self.dropout, self.attention_regularization = dropout, attention_regularization
        self.embedding = keras.layers.Embedding(vocabulary_size, embedding_dim, name="embedding")
        self.init_h = keras.layers.Dense(units, activation="tanh", name="init_h")
        self.init_c = keras.layers.Dense(units, activation="tanh", name="init_c")
        self.cell = SoftAttentionLSTMCell(
            units, attention_units, num_locations, feature_dim, name="cell"
        )
        self.rnn = keras.layers.RNN(self.cell, return_sequences=True, return_state=True, name="rnn")
        self.hidden_to_output = keras.layers.Dense(embedding_dim, name="deep_output_h")
        self.context_to_output = keras.layers.Dense(embedding_dim, name="deep_output_z")
        self.dropout_layer = keras.layers.Dropout(dropout, name="dropout")
        self.output_layer = keras.layers.Dense(vocabulary_size, name="logits", dtype="float32")
        self.num_recurrent_states = self.cell.num_recurrent_states

    def build(self, annotations_shape=None, caption_in_shape=None):
        self.embedding.build((None, None))
        self.init_h.build((None, self.feature_dim))
        self.init_c.build((None, self.feature_dim))
        self.cell.build((None, self.embedding_dim))
        self.rnn.built = True
        self.hidden_to_output.build((None, None, self.units))
        self.context_to_output.build((None, None, self.feature_dim))
        self.output_layer.build((None, None, self.embedding_dim))
        self.built = True

    def initial_state(self, annotations):
        """h_0, c_0 from MLPs of the mean annotation (section 3.1.2), zero attention sum,
        the flattened annotations and their attention projection."""
        mean = ops.mean(annotations, axis=1)
        alpha_sum = ops.zeros_like(annotations[:, :, 0])
        flat = ops.reshape(annotations, (-1, self.num_locations * self.feature_dim))
        return [
            self.init_h(mean),
            self.init_c(mean),
            alpha_sum,
            flat,
            self.cell.project_annotations(annotations),
        ]

    def _deep_output(self, embedded, hidden, context, training=False):
        x = embedded + self.hidden_to_output(hidden) + self.context_to_output(context)
        return self.output_layer(self.dropout_layer(x, training=training))

    def call(self, annotations, caption_in, training=False):
        embedded = self.embedding(caption_in)
        mask = ops.not_equal(caption_in, text.PAD_ID)
        outputs, *final_states = self.rnn(
            embedded, initial_state=self.initial_state(annotations), mask=mask, training=training
        )
        hidden = outputs[..., : self.units]
        context = outputs[..., self.units : self.units + self.feature_dim]
        if training and self.attention_regularization:
            alpha_sum = final_states[2]
            penalty = ops.sum(ops.square(1.0 - alpha_sum))
            tokens = ops.maximum(ops.sum(ops.cast(mask, "float32")), 1.0)
            self.add_loss(self.attention_regularization * ops.cast(penalty, "float32") / tokens)
        return self._deep_output(embedded, hidden, context, training=training)

    def attention_weights(self, annotations, caption_in):
        """alpha `[B, T, L]` under teacher forcing (for plots)."""
        embedded = self.embedding(caption_in)
        outputs, *_ = self.rnn(embedded, initial_state=self.initial_state(annotations))
        return outputs[..., self.units + self.feature_dim :]

    def step(self, tokens, states):
        """Logits `[B, V]` for the next token after `tokens` `[B]`, and the new states."""
        embedded = self.embedding(tokens)
        output, states = self.cell(embedded, states)
        hidden = output[:, : self.units]
        context = output[:, self.units : self.units + self.feature_dim]
        return self._deep_output(embedded, hidden, context), states

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "num_locations": self.num_locations,
                "feature_dim": self.feature_dim,
                "embedding_dim": self.embedding_dim,
                "units": self.units,
                "attention_units": self.attention_units,
                "dropout": self.dropout,
                "attention_regularization": self.attention_regularization,
            }
        )
        return config


# ----------------------------------------------------------------------------------- model


@keras.saving.register_keras_serializable(package="zoo")
class Captioner(keras.Model):
    """CNN encoder + RNN decoder + tokenizer, saved together in one `.keras` file.

    Inputs `[images [B, H, W, C] float, caption_in [B, T] int]`, output logits `[B, T, V]`.
    Images are floats in [0, 1] (the zoo's loaders give that); preprocess them yourself for a
    `keras.applications` encoder that expects another range.

    Args:
        vocabulary: Caption words (no special tokens); defaults to the synthetic
            coloured-shapes vocabulary (`zoo.captioning.text.SHAPES_VOCABULARY`).
        input_shape: Image shape `(H, W, C)`.
        decoder: "injection" (the seed's image-injected RNN) or "attention" (Show, Attend and
            Tell).
        injection: How the injection decoder sees the image: "every_step" (the seed, v at
            every step) or "first_step" (Vinyals et al., W_e v as the input at t = -1).
        cell: Cell of the injection decoder: "vanilla", "lstm" or "gru" (the attention
            decoder is an LSTM).
        encoder: See `build_encoder`: None (built-in [CONV-POOL]*n), a zoo or
            keras.applications name, or a `keras.Model`.
        train_encoder: If False, the encoder is frozen (and run in inference mode).
        encoder_weights: Weights for a keras.applications encoder (e.g. "imagenet").
        conv_filters: Filters per [CONV-POOL] block of the built-in encoder.
        pooling: How the injection decoder turns a feature grid into v before the FC layer:
            "flatten" (the seed), "avg" or "max". None: "flatten" for the built-in encoder,
            "avg" otherwise.
        image_units: Size of v (the FC layer after the CNN) for the injection decoder.
        embedding_dim: Word embedding size.
        units: RNN hidden size.
        attention_units: Attention MLP size (attention decoder).
        dropout: Dropout before the output layer.
        attention_regularization: lambda of the doubly stochastic penalty (attention decoder).
        max_length: Most words per caption (tokenizer truncation and default generation length).
        rescale: Optional `(scale, offset)`: the encoder sees `images * scale + offset`, e.g.
            (2.0, -1.0) for MobileNetV2's [-1, 1] or (255.0, 0.0) for EfficientNet/ConvNeXt,
            which preprocess inside the model.
        name: Model name.

    Raises:
        ValueError: on an unknown decoder, cell or pooling, a bad shape or size, or an encoder
            whose output the decoder cannot use.
    """

    def __init__(
        self,
        vocabulary=None,
        input_shape=(32, 32, 3),
        decoder="injection",
        cell="lstm",
        injection="every_step",
        encoder=None,
        train_encoder=True,
        encoder_weights=None,
        conv_filters=(32, 64, 64),
        pooling=None,
        image_units=256,
        embedding_dim=128,
        units=256,
        attention_units=128,
        dropout=0.0,
        attention_regularization=1.0,
        max_length=16,
        rescale=None,
        name="captioner",
        **kwargs,
    ):
        _check_choice("decoder", decoder, DECODERS)
        _check_choice("cell", cell, CELLS)
        _check_choice("injection", injection, INJECTIONS)
        if pooling is not None:
            _check_choice("pooling", pooling, POOLINGS)
        input_shape = tuple(input_shape) if hasattr(input_shape, "__len__") else input_shape
        if (
            not isinstance(input_shape, tuple)
            or len(input_shape) != 3
            or not all(isinstance(d, int) and d > 0 for d in input_shape)
        ):
            raise ValueError(
                "Argument `input_shape` must be (height, width, channels) of positive ints. "
                f"Received: input_shape={input_shape!r}"
            )
        for arg in ("image_units", "embedding_dim", "units", "attention_units", "max_length"):
            _check_positive_int(arg, locals()[arg])
        conv_filters = tuple(int(f) for f in conv_filters)
        vocabulary = list(text.SHAPES_VOCABULARY if vocabulary is None else vocabulary)
        tokenizer = text.CaptionTokenizer(vocabulary, max_length=max_length, name="tokenizer")

        built_in = encoder is None or encoder == _BUILT_IN_ENCODER
        min_side = 2 ** len(conv_filters)
        if built_in and min(input_shape[:2]) < min_side:
            raise ValueError(
                f"Argument `input_shape` must be at least {min_side}x{min_side} for "
                f"{len(conv_filters)} [CONV-POOL] blocks. Received: input_shape={input_shape}"
            )
        cnn = build_encoder(
            encoder, input_shape, conv_filters=conv_filters, encoder_weights=encoder_weights
        )
        cnn.trainable = bool(train_encoder)

        images = keras.Input(shape=input_shape, name="images")
        caption_in = keras.Input(shape=(None,), dtype="int32", name="caption_in")
        scaled = images
        if rescale is not None:
            if len(tuple(rescale)) != 2:
                raise ValueError(
                    "Argument `rescale` must be (scale, offset) or None. "
                    f"Received: rescale={rescale!r}"
                )
            rescale = (float(rescale[0]), float(rescale[1]))
            scaled = keras.layers.Rescaling(*rescale, name="rescale")(images)
        features = cnn(scaled, training=None if train_encoder else False)
        rank = len(features.shape)
        if decoder == "injection":
            chosen_pooling = pooling or ("flatten" if built_in else "avg")
            if rank == 4:
                pool = {
                    "flatten": keras.layers.Flatten(name="flatten"),
                    "avg": keras.layers.GlobalAveragePooling2D(name="avg_pool"),
                    "max": keras.layers.GlobalMaxPooling2D(name="max_pool"),
                }[chosen_pooling]
                features = pool(features)
            elif rank != 2:
                raise ValueError(
                    "Argument `encoder` must output a feature grid [B, H, W, C] or a vector "
                    f"[B, D]. Received an encoder with output shape {features.shape}"
                )
            features = keras.layers.Dense(image_units, activation="relu", name="image_fc")(features)
            image_model = keras.Model(images, features, name="image_model")
            caption_decoder = InjectedRNNDecoder(
                tokenizer.vocabulary_size,
                image_units,
                cell,
                embedding_dim,
                units,
                dropout,
                injection,
                name="decoder",
            )
        else:
            if rank != 4 or None in features.shape[1:]:
                raise ValueError(
                    "The attention decoder needs an encoder that outputs a feature grid "
                    f"[B, H, W, C] of known size (no pooling). Received an encoder with output "
                    f"shape {features.shape}"
                )
            _, height, width, channels = features.shape
            features = keras.layers.Reshape((height * width, channels), name="annotations")(
                features
            )
            image_model = keras.Model(images, features, name="image_model")
            caption_decoder = SoftAttentionDecoder(
                tokenizer.vocabulary_size,
                height * width,
                channels,
                embedding_dim,
                units,
                attention_units,
                dropout,
                attention_regularization,
                name="decoder",
            )
        logits = caption_decoder(image_model(images), caption_in)
        super().__init__(inputs=[images, caption_in], outputs=logits, name=name, **kwargs)

        self.tokenizer = tokenizer
        self.image_model = image_model
        self.caption_decoder = caption_decoder
        self.image_shape = input_shape
        self.max_length = max_length
        self._config = {
            "vocabulary": vocabulary,
            "input_shape": input_shape,
            "decoder": decoder,
            "injection": injection,
            "cell": cell,
            "encoder": None if built_in else keras.saving.serialize_keras_object(cnn),
            "train_encoder": bool(train_encoder),
            "encoder_weights": None,  # the weights travel in the .keras file
            "conv_filters": conv_filters,
            "pooling": pooling,
            "image_units": image_units,
            "embedding_dim": embedding_dim,
            "units": units,
            "attention_units": attention_units,
            "dropout": dropout,
            "attention_regularization": attention_regularization,
            "max_length": max_length,
            "rescale": rescale,
        }

    @property
    def vocabulary(self):
        """All tokens, id order: pad, unknown, start, end, then the words."""
        return list(self.tokenizer.tokens)

    def get_config(self):
        return {"name": self.name, **self._config}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config.pop("trainable", None)
        return cls(**config)

    def check_images(self, images):
        """Images as a float32 tensor `[B, H, W, C]`; ValueError if the shape does not fit."""
        images = ops.convert_to_tensor(images)
        shape = tuple(images.shape)
        if len(shape) == 3:
            images, shape = images[None], (1, *shape)
        if len(shape) != 4 or tuple(shape[1:]) != tuple(self.image_shape):
            raise ValueError(
                f"Argument `images` must have shape (batch, {', '.join(map(str, self.image_shape))})"
                f" (height, width, channels of this model). Received: images.shape={shape}"
            )
        if "float" not in keras.backend.standardize_dtype(images.dtype):
            images = ops.cast(images, "float32") / 255.0
        return ops.cast(images, "float32")

    def greedy(self, images, max_length=None):
        """Greedy captions (strings) for images `[B, H, W, C]`; see `decoding.greedy_search`."""
        from zoo.captioning import decoding

        ids = decoding.greedy_search(self, images, max_length=max_length)
        return self.tokenizer.decode(ids)

    def beam_search(self, images, beam_width=3, length_penalty=0.0, max_length=None):
        """Beam-search captions (strings); see `decoding.beam_search`."""
        from zoo.captioning import decoding

        ids, _ = decoding.beam_search(
            self,
            images,
            beam_width=beam_width,
            length_penalty=length_penalty,
            max_length=max_length,
        )
        return self.tokenizer.decode(ids)

    def caption(self, images, beam_width=3, length_penalty=0.0, max_length=None):
        """Captions for images: greedy if `beam_width == 1`, else beam search."""
        if beam_width == 1:
            return self.greedy(images, max_length=max_length)
        return self.beam_search(images, beam_width, length_penalty, max_length)


# ----------------------------------------------------------------------------------- registry

_SMALL = {
    "vocabulary": list(text.SHAPES_VOCABULARY),
    "input_shape": (16, 16, 3),
    "conv_filters": (8, 16),
    "embedding_dim": 16,
    "units": 32,
    "max_length": 10,
}


@register_model(
    task="image-captioning",
    paper=Paper(
        "Vinyals, Toshev, Bengio, Erhan",
        2015,
        "Show and Tell: A Neural Image Caption Generator",
        "https://arxiv.org/abs/1411.4555",
    ),
    summary="CNN -> FC image vector injected into an RNN (vanilla/LSTM/GRU) at every step",
    default_input_shape=(32, 32, 3),
    min_input_shape=(8, 8, 3),
    params=982_419,
    small_config={**_SMALL, "image_units": 32},
    default_dataset="shapes_captions",
)
def show_and_tell(
    vocabulary=None, input_shape=(32, 32, 3), cell="lstm", injection="every_step", **kwargs
):
    """Image-injected RNN captioner (the seed's formulation; Vinyals et al. 2015).

    `injection="every_step"` (default, the seed): h_t = tanh(W_xh x_t + W_hh h_{t-1} + W_ih v)
    for `cell="vanilla"`; LSTM or GRU cells see [x_t, v] at every step.
    `injection="first_step"`: Vinyals et al.'s LSTM that reads the image embedding once, at
    t = -1. Keyword arguments go to `Captioner`.
    """
    kwargs.setdefault("name", "show_and_tell")
    return Captioner(
        vocabulary, input_shape, decoder="injection", cell=cell, injection=injection, **kwargs
    )


@register_model(
    task="image-captioning",
    paper=Paper(
        "Xu, Ba, Kiros, Cho, Courville, Salakhutdinov, Zemel, Bengio",
        2015,
        "Show, Attend and Tell: Neural Image Caption Generation with Visual Attention",
        "https://arxiv.org/abs/1502.03044",
    ),
    summary="LSTM with soft attention over the CNN feature grid, beta gate, deep output",
    default_input_shape=(32, 32, 3),
    min_input_shape=(8, 8, 3),
    params=637_077,
    small_config={**_SMALL, "attention_units": 16},
    default_dataset="shapes_captions",
)
def show_attend_tell(vocabulary=None, input_shape=(32, 32, 3), **kwargs):
    """Soft-attention LSTM captioner (Xu et al. 2015). Keyword arguments go to `Captioner`."""
    kwargs.setdefault("name", "show_attend_tell")
    return Captioner(vocabulary, input_shape, decoder="attention", cell="lstm", **kwargs)
