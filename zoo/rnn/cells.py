"""Recurrent cells as the papers describe them, shared by every recurrent model of the zoo.

One name per cell everywhere: "rnn" (Elman 1990, tanh; or IRNN, Le et al. 2015), "lstm"
(Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000) and "gru" (Cho et
al. 2014). `default_optimizer` is the recurrent models' Adam with global-norm clipping.
"""

import keras

from zoo.validation import check_choice

CELL_TYPES = ("rnn", "lstm", "gru")


def check_cell_type(cell):
    """Validate a cell type name ("rnn", "lstm" or "gru"); unknown names suggest the closest."""
    return check_choice("cell", cell, CELL_TYPES)


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
