"""Measuring vanishing gradients: the norm of dLoss/dh_t against the step t.

Backpropagation through time multiplies one Jacobian dh_{t+1}/dh_t per step, so the gradient
that reaches an early hidden state from a loss at the end is a product of T - t matrices. For
a tanh RNN their norms are typically below 1 and the product decays geometrically (Bengio,
Simard & Frasconi 1994; Hochreiter 1991; Pascanu, Mikolov & Bengio 2013); the LSTM's additive
cell state keeps a path whose factor is the forget gate alone. This module measures it.

How: the recurrent layer is unrolled step by step with its own cell, and a zero "probe" tensor
is added to every hidden state h_t. The loss does not change, but d loss / d probe_t equals the
total derivative d loss / d h_t (through every later step). Automatic differentiation of a
Python loop is backend-specific; this module uses TensorFlow's `GradientTape` (imported only
when called), like `zoo.training`.
"""

import keras
import numpy as np

import zoo.layers as layers

_RECURRENT_TYPES = (keras.layers.SimpleRNN, keras.layers.LSTM, keras.layers.GRU)


def _find_recurrent_layer(model):
    found = [layer for layer in model.layers if isinstance(layer, _RECURRENT_TYPES)]
    wrapped = [layer for layer in model.layers if isinstance(layer, keras.layers.Bidirectional)]
    if wrapped or len(found) != 1:
        raise ValueError(
            "hidden_state_gradient_norms needs a model with exactly one unidirectional recurrent "
            "layer (e.g. zoo.lstm_classifier(num_layers=1)). Received a model with "
            f"{len(found)} recurrent and {len(wrapped)} bidirectional layers."
        )
    if found[0].return_sequences:
        raise ValueError(
            "hidden_state_gradient_norms measures a loss on the last step; the recurrent layer "
            "must have return_sequences=False."
        )
    return found[0]


def hidden_state_gradient_norms(model, inputs, targets):
    """Mean over the batch of ||d loss / d h_t||_2 for every step t.

    The loss is each example's own loss on the final prediction (squared error for a
    regressor, cross-entropy from the logits for a classifier), so the numbers do not depend
    on the batch size. Masks are ignored: use unpadded inputs.

    Args:
        model: A single-layer model from `zoo.rnn_classifier`, `lstm_classifier` or
            `gru_classifier` (`num_layers=1`, `bidirectional=False`, `return_sequences=False`).
        inputs: A batch of inputs, (batch, time) ids or (batch, time, input_dim) features.
        targets: (batch,) class ids, or (batch,) / (batch, 1) regression targets.

    Returns:
        A float64 NumPy array of shape (time,): entry t is the mean norm of the gradient with
        respect to the hidden state after step t (t = 0 is the first step).

    Raises:
        ValueError: for models with several, bidirectional or sequence-returning recurrent
            layers, or inputs of the wrong rank.
    """
    import tensorflow as tf

    recurrent = _find_recurrent_layer(model)
    index = model.layers.index(recurrent)
    # The zoo's builders are linear stacks: the layer before the recurrent one gives its input.
    feature_model = keras.Model(model.inputs[0], model.layers[index - 1].output)
    expected_rank = len(model.inputs[0].shape)
    inputs = np.asarray(inputs)
    if inputs.ndim != expected_rank:
        raise ValueError(
            f"Argument `inputs` must have rank {expected_rank} (batch first) for this model. "
            f"Received: inputs.shape={inputs.shape}"
        )
    head = [
        layer for layer in model.layers[index + 1 :] if not isinstance(layer, layers.StableSoftmax)
    ]
    regression = head[-1].name == "predictions" or model.outputs[0].shape[-1] == 1
    features = tf.convert_to_tensor(feature_model(inputs, training=False))
    batch, steps = features.shape[0], features.shape[1]
    cell = recurrent.cell
    state_sizes = (
        cell.state_size if isinstance(cell.state_size, (list, tuple)) else [cell.state_size]
    )
    states = [tf.zeros((batch, size), features.dtype) for size in state_sizes]
    probes = [tf.zeros((batch, state_sizes[0]), features.dtype) for _ in range(steps)]
    targets = np.asarray(targets)
    with tf.GradientTape() as tape:
        tape.watch(probes)
        hidden = None
        for t in range(steps):
            hidden, new_states = cell(features[:, t], states, training=False)
            hidden = hidden + probes[t]
            new_states = list(new_states) if isinstance(new_states, (list, tuple)) else [new_states]
            states = [hidden, *new_states[1:]]
        output = hidden
        for layer in head:
            output = layer(output, training=False)
        output = tf.cast(output, "float32")
        if regression:
            predicted = tf.reshape(output, (batch,))
            loss = tf.reduce_sum(tf.square(predicted - targets.reshape(batch).astype("float32")))
        else:
            log_probs = layers.log_softmax(output, axis=-1)
            picked = tf.gather(log_probs, targets.reshape(batch).astype("int32"), batch_dims=1)
            loss = -tf.reduce_sum(picked)
    gradients = tape.gradient(loss, probes)
    norms = [tf.reduce_mean(tf.norm(tf.cast(g, "float64"), axis=-1)) for g in gradients]
    return np.array([float(n) for n in norms])


def plot_gradient_norms(norms_by_model, path=None, title=None, dashed=()):
    """Plot ||d loss / d h_t|| against t on a log scale, one line per model.

    Args:
        norms_by_model: dict label -> array from `hidden_state_gradient_norms`.
        path: If given, save the figure there (PNG by extension).
        title: Optional title.
        dashed: Labels to draw dashed (e.g. the measurements at initialisation).

    Returns:
        The matplotlib `Figure`.
    """
    # pyplot picks a non-interactive backend by itself where there is no display; never
    # switch it here, or a notebook calling this would lose its inline plots.
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    for label, norms in norms_by_model.items():
        norms = np.asarray(norms, dtype="float64")
        # Zero gradients (complete underflow) cannot be drawn on a log axis.
        axis.semilogy(
            np.arange(len(norms)),
            np.maximum(norms, 1e-45),
            label=label,
            linestyle="--" if label in dashed else "-",
        )
    if any(np.any(np.asarray(n) == 0) for n in norms_by_model.values()):
        axis.annotate(
            "exactly 0 (float32 underflow), drawn at 1e-45",
            xy=(0.01, 0.02),
            xycoords="axes fraction",
            fontsize=8,
        )
    axis.set_xlabel("step t (the loss is on the last step)")
    axis.set_ylabel("mean ||dLoss / dh_t||")
    axis.set_title(title or "Vanishing gradients through time")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=120)
    return figure
