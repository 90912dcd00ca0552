"""Caption decoders: the image-injected RNN and Xu et al.'s soft-attention LSTM.

A decoder is a layer with three entry points:

* `call(features, caption_in)`: logits `[B, T, V]` under teacher forcing (training, loss);
* `initial_state(features)`: the state before the `<start>` token;
* `step(tokens, states)`: logits `[B, V]` for the next token and the new states, the
  `next(tokens, state)` function of `zoo.samplers`.

`features` is what the image encoder gives: a vector `[B, D]` for `InjectedRNNDecoder`, the
annotations `[B, L, D]` for `SoftAttentionDecoder` (`features_rank` says which).
"""

import keras
from keras import ops

from zoo.captioning.cells import ImageInjectedCell, SoftAttentionLSTMCell, check_cell
from zoo.text import END_ID, PAD_ID
from zoo.validation import check_choice, check_int, check_number, check_rate

INJECTIONS = ("every_step", "first_step")


def output_steps(caption_in):
    """The steps whose prediction the loss counts: every input but padding and `<end>`.

    `caption_in` is `<start> w_1 .. w_n <end>` then padding (the last token, `<end>`, is there
    when the caption was not cut); the targets are `w_1 .. w_n <end>`, n + 1 tokens, which are
    the predictions made after `<start> w_1 .. w_n`. The step that reads `<end>` predicts
    padding: it is masked out of the recurrence, so nothing (the attention penalty included)
    counts it.
    """
    return ops.logical_and(ops.not_equal(caption_in, PAD_ID), ops.not_equal(caption_in, END_ID))


@keras.saving.register_keras_serializable(package="zoo")
class InjectedRNNDecoder(keras.layers.Layer):
    """Embedding -> image-injected RNN -> y_t = W_hy h_t (logits).

    `injection="every_step"`: h_t = tanh(W_xh x_t + W_hh h_{t-1} + W_ih v) (or the LSTM/GRU
    fed [x_t, v]). `injection="first_step"` (Vinyals et al. 2015, "Show and Tell"): the image
    embedding W_e v is the cell's input at t = -1 only, then the words follow.

    Args:
        vocabulary_size: V, special tokens included.
        image_dim: Size of the image vector v.
        cell: "rnn", "lstm" or "gru".
        embedding_dim: Word embedding size.
        units: Hidden size.
        dropout: Dropout rate on the hidden state before the output layer.
        injection: "every_step" or "first_step".
    """

    features_rank = 2

    def __init__(
        self,
        vocabulary_size,
        image_dim,
        cell="lstm",
        embedding_dim=128,
        units=256,
        dropout=0.0,
        injection="every_step",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = check_int("vocabulary_size", vocabulary_size)
        self.image_dim = check_int("image_dim", image_dim)
        self.cell_type = check_cell(cell)
        self.embedding_dim = check_int("embedding_dim", embedding_dim)
        self.units = check_int("units", units)
        self.dropout = check_rate("dropout", dropout)
        self.injection = check_choice("injection", injection, INJECTIONS)
        every_step = injection == "every_step"
        self.embedding = keras.layers.Embedding(vocabulary_size, embedding_dim, name="embedding")
        self.cell = ImageInjectedCell(cell, units, image_dim, every_step, name="cell")
        self.image_embedding = (
            None if every_step else keras.layers.Dense(embedding_dim, name="image_embedding")
        )
        self.rnn = keras.layers.RNN(self.cell, return_sequences=True, name="rnn")
        self.dropout_layer = keras.layers.Dropout(dropout, name="dropout")
        self.output_layer = keras.layers.Dense(vocabulary_size, name="logits", dtype="float32")

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
        zeros = zeros * self.cell.num_recurrent_states
        if self.image_embedding is None:
            return [*zeros, image_vector]
        _, states = self.cell(self.image_embedding(image_vector), zeros)
        return list(states)

    def call(self, image_vector, caption_in, training=False):
        hidden = self.rnn(
            self.embedding(caption_in),
            initial_state=self.initial_state(image_vector),
            mask=output_steps(caption_in),
            training=training,
        )
        return self.output_layer(self.dropout_layer(hidden, training=training))

    def step(self, tokens, states):
        """Logits `[B, V]` for the next token after `tokens` `[B]`, and the new states."""
        output, states = self.cell(self.embedding(tokens), list(states))
        return self.output_layer(output), list(states)

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

    Initial state h_0, c_0 from MLPs of the mean annotation (section 3.1.2); the deep output
    p(y_t) = softmax(L_o(E y_{t-1} + L_h h_t + L_z z_t)) (equation 7).

    While training with `attention_regularization` lambda > 0, `call` adds the doubly
    stochastic penalty lambda * sum_i (1 - sum_t alpha_ti)^2 (equation 14) with `add_loss`,
    summed over the captions of the batch, over exactly the steps the loss counts
    (`output_steps`). The paper adds it to each caption's summed negative log-likelihood; the
    zoo's loss is that sum divided by the number of real tokens in the global batch, so the
    penalty is a SUM that the trainer divides by the same global count (the `Captioner`
    declares `add_loss_reduction = "sum"`), which keeps the paper's ratio on any number of
    replicas.

    Args:
        vocabulary_size: V, special tokens included.
        num_locations: L.
        feature_dim: D.
        embedding_dim: Word embedding size (also the deep output's size).
        units: LSTM size.
        attention_units: Size of the attention MLP.
        dropout: Dropout rate inside the deep output.
        attention_regularization: lambda of the doubly stochastic penalty (>= 0).
    """

    features_rank = 3

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
        self.vocabulary_size = check_int("vocabulary_size", vocabulary_size)
        self.num_locations = check_int("num_locations", num_locations)
        self.feature_dim = check_int("feature_dim", feature_dim)
        self.embedding_dim = check_int("embedding_dim", embedding_dim)
        self.units = check_int("units", units)
        self.attention_units = check_int("attention_units", attention_units)
        self.dropout = check_rate("dropout", dropout)
        self.attention_regularization = check_number(
            "attention_regularization", attention_regularization, low=0
        )
        self.embedding = keras.layers.Embedding(vocabulary_size, embedding_dim, name="embedding")
        self.init_h = keras.layers.Dense(units, activation="tanh", name="init_h")
        self.init_c = keras.layers.Dense(units, activation="tanh", name="init_c")
        self.cell = SoftAttentionLSTMCell(
            units, attention_units, num_locations, feature_dim, name="cell"
        )
        # Masked steps output zeros (the loss ignores them): otherwise Keras' JAX and PyTorch
        # RNNs carry the first state (h) over as the output, which is wider here.
        self.rnn = keras.layers.RNN(self.cell, return_sequences=True, return_state=True,
                                    zero_output_for_mask=True, name="rnn")
        self.hidden_to_output = keras.layers.Dense(embedding_dim, name="deep_output_h")
        self.context_to_output = keras.layers.Dense(embedding_dim, name="deep_output_z")
        self.dropout_layer = keras.layers.Dropout(dropout, name="dropout")
        self.output_layer = keras.layers.Dense(vocabulary_size, name="logits", dtype="float32")

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
        """h_0, c_0 from MLPs of the mean annotation, zero attention sum, the flattened
        annotations and their attention projection."""
        mean = ops.mean(annotations, axis=1)
        flat = ops.reshape(annotations, (-1, self.num_locations * self.feature_dim))
        return [
            self.init_h(mean),
            self.init_c(mean),
            ops.zeros_like(annotations[:, :, 0]),
            flat,
            self.cell.project_annotations(annotations),
        ]

    def _deep_output(self, embedded, hidden, context, training=False):
        x = embedded + self.hidden_to_output(hidden) + self.context_to_output(context)
        return self.output_layer(self.dropout_layer(x, training=training))

    def _split(self, outputs):
        hidden = outputs[..., : self.units]
        context = outputs[..., self.units : self.units + self.feature_dim]
        alphas = outputs[..., self.units + self.feature_dim :]
        return hidden, context, alphas

    def call(self, annotations, caption_in, training=False):
        embedded = self.embedding(caption_in)
        outputs, *final_states = self.rnn(
            embedded,
            initial_state=self.initial_state(annotations),
            mask=output_steps(caption_in),
            training=training,
        )
        hidden, context, _ = self._split(outputs)
        if training and self.attention_regularization:
            self.add_loss(self.attention_penalty(final_states[2]))
        return self._deep_output(embedded, hidden, context, training=training)

    def attention_penalty(self, alpha_sum):
        """lambda * sum_b sum_i (1 - sum_t alpha_bti)^2 from the summed weights `[B, L]`."""
        deficit = 1.0 - ops.cast(alpha_sum, "float32")
        return self.attention_regularization * ops.sum(ops.square(deficit))

    def attention_weights(self, annotations, caption_in):
        """alpha `[B, T, L]` under teacher forcing (for plots)."""
        outputs, *_ = self.rnn(
            self.embedding(caption_in), initial_state=self.initial_state(annotations)
        )
        return self._split(outputs)[2]

    def step(self, tokens, states):
        """Logits `[B, V]` for the next token after `tokens` `[B]`, and the new states."""
        embedded = self.embedding(tokens)
        output, states = self.cell(embedded, list(states))
        hidden, context, _ = self._split(output)
        return self._deep_output(embedded, hidden, context), list(states)

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
