"""Shifted ReLU, and a helper that turns an activation name into a layer."""

import keras
from keras import ops


def _check_number(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"Argument `{name}` must be a number. Received: {name}={value!r}")
    return float(value)


@keras.saving.register_keras_serializable(package="layers", name="shifted_relu")
def shifted_relu(x, shift=0.5, threshold=0.0):
    """f(x) = max(x - threshold, 0) - shift.

    The defaults give fast.ai's "general ReLU" (ReLU moved down by 0.5, so that its mean over a
    standard normal input is near zero); threshold=-1, shift=1 gives max(x, -1), the "SReLU" of
    Clevert et al. 2015 (arXiv:1511.07289).
    """
    return ops.relu(x - threshold) - shift


@keras.saving.register_keras_serializable(package="layers")
class ShiftedReLU(keras.layers.Layer):
    """ReLU moved down (and optionally right): f(x) = max(x - threshold, 0) - shift.

    A plain ReLU's outputs are all non-negative, so their mean is positive and each layer's
    pre-activations drift upward with depth. Shifting the output down re-centres it.

    * `ShiftedReLU()` (shift=0.5, threshold=0): ReLU minus 0.5, fast.ai's "general ReLU".
    * `ShiftedReLU(shift=1, threshold=-1)`: max(x, -1), the shifted ReLU ("SReLU") of
      Clevert, Unterthiner & Hochreiter 2015, "Fast and Accurate Deep Network Learning by
      Exponential Linear Units" (arXiv:1511.07289).

    Zoo models accept `activation="shifted_relu"` (see `activation_layer`).

    Args:
        shift: Amount subtracted from the output.
        threshold: Input value below which the output is constant (`-shift`).
        **kwargs: Base layer arguments.
    """

    def __init__(self, shift=0.5, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self.shift = _check_number("shift", shift)
        self.threshold = _check_number("threshold", threshold)
        self.supports_masking = True

    def call(self, inputs):
        return shifted_relu(inputs, self.shift, self.threshold)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "shift": self.shift, "threshold": self.threshold}


def activation_layer(identifier, name=None):
    """A layer for an activation given by name, callable or layer.

    "shifted_relu" gives `ShiftedReLU()`; any name Keras knows ("relu", "gelu", ...) or a
    callable gives `keras.layers.Activation`; a layer instance is returned as is (it must not be
    shared between call sites, so pass names, not instances, to models).

    Raises:
        ValueError: for an unknown name, listing the accepted forms.
    """
    if isinstance(identifier, keras.layers.Layer):
        return identifier
    if identifier == "shifted_relu":
        return ShiftedReLU(name=name)
    try:
        keras.activations.get(identifier)
    except (ValueError, TypeError) as error:
        raise ValueError(
            "Argument `activation` must be a Keras activation name (e.g. 'relu', 'tanh', "
            f"'gelu'), 'shifted_relu', or a callable. Received: activation={identifier!r}"
        ) from error
    return keras.layers.Activation(identifier, name=name)
