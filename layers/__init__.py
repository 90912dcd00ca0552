"""Custom Keras layers the zoo stands on. Backend-neutral: keras.ops only, never TensorFlow."""

from .activations import ShiftedReLU, activation_layer, shifted_relu
from .dropout import ScaledDropout
from .normalization import LocalResponseNormalization
from .softmax import StableSoftmax, log_softmax, stable_softmax

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
