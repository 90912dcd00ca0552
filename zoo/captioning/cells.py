"""Recurrent cells of the caption decoders: the image-injected cell and the soft-attention LSTM.

Both are Keras RNN cells (`call(inputs, states) -> (output, new_states)`); the decoders run
them over a caption with `keras.layers.RNN` (teacher forcing) or one token at a time
(generation).
"""

import keras
from keras import ops

from zoo.layers import stable_softmax
from zoo.validation import check_choice, check_int

CELLS = ("rnn", "lstm", "gru")


def check_cell(cell):
    """`cell` must be "rnn", "lstm" or "gru" (the project-wide names)."""
    if cell == "vanilla":
        raise ValueError(
            "Argument `cell` must be one of ('rnn', 'lstm', 'gru'). Did you mean 'rnn'? (The "
            "Elman cell is called 'rnn' everywhere in the zoo.) Received: cell='vanilla'"
        )
    return check_choice("cell", cell, CELLS)


def make_cell(cell, units, name):
    """A Keras cell: "rnn" (Elman, tanh), "lstm" or "gru"."""
    check_cell(cell)
    if cell == "rnn":
        return keras.layers.SimpleRNNCell(units, activation="tanh", name=name)
    if cell == "lstm":
        return keras.layers.LSTMCell(units, name=name)
    return keras.layers.GRUCell(units, name=name)


@keras.saving.register_keras_serializable(package="zoo")
class ImageInjectedCell(keras.layers.Layer):
    """One step of the image-injected RNN.

    With `every_step=True` the cell sees [x_t, v] at every step and its states are the cell's
    own (h, or h and c for an LSTM), then the image vector v, carried unchanged. With
    `every_step=False` it is the plain cell: the image enters once, as the first input
    (Vinyals et al. 2015), see `InjectedRNNDecoder`.

    Args:
        cell: "rnn" (h_t = tanh(W_xh x_t + W_hh h_{t-1} + W_ih v + b)), "lstm" or "gru".
        units: Hidden size.
        image_dim: Size of v.
        every_step: Inject v at every step (True) or not at all in this cell (False).
    """

    def __init__(self, cell="rnn", units=256, image_dim=256, every_step=True, **kwargs):
        super().__init__(**kwargs)
        self.cell_type = check_cell(cell)
        self.units = check_int("units", units)
        self.image_dim = check_int("image_dim", image_dim)
        self.every_step = bool(every_step)
        self.inner = make_cell(cell, units, name="inner")
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

    e_ti = w^T tanh(W_a a_i + W_h h_{t-1}), alpha_t = softmax(e_t),
    z_t = sigmoid(f_beta(h_{t-1})) * sum_i alpha_ti a_i (section 4.2.1), LSTM input [x_t, z_t].

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
        self.units = check_int("units", units)
        self.attention_units = check_int("attention_units", attention_units)
        self.num_locations = check_int("num_locations", num_locations)
        self.feature_dim = check_int("feature_dim", feature_dim)
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
