"""Custom Keras layers the zoo stands on. Backend-neutral: keras.ops only, never TensorFlow."""

from layers.activations import ShiftedReLU, activation_layer, shifted_relu
from layers.dropout import ScaledDropout
from layers.normalization import LocalResponseNormalization
from layers.softmax import StableSoftmax, log_softmax, stable_softmax

__all__ = [
    "LocalResponseNormalization",
    "ScaledDropout",
    "ShiftedReLU",
    "StableSoftmax",
    "activation_layer",
    "log_softmax",
    "shifted_relu",
    "stable_softmax",
]
