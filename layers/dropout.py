"""Dropout with a choice of where the 1/(1-rate) correction goes."""

import keras
from keras import ops

SCALINGS = ("inverted", "none", "inference")


def _scaled(inputs, factor):
    """inputs * factor with the product taken in float32 and rounded once to inputs' dtype.

    A bfloat16 factor would bias every output the same way (bfloat16(1 / 0.6) is 0.16% low).
    """
    dtype = keras.backend.standardize_dtype(inputs.dtype)
    if dtype not in ("float16", "bfloat16"):
        return inputs * factor
    return ops.cast(ops.cast(inputs, "float32") * factor, dtype)


@keras.saving.register_keras_serializable(package="layers")
class ScaledDropout(keras.layers.Layer):
    """Dropout (Srivastava et al. 2014, JMLR 15) with configurable scaling.

    During training each unit is kept with probability p = 1 - rate. The three scalings differ
    in how training and inference outputs are made comparable:

    * ``"inverted"`` (TensorFlow's and Keras' default): kept units are multiplied by 1/p during
      training; inference is the identity.
    * ``"inference"`` (the paper's original form): training keeps units unscaled; at inference
      every output is multiplied by p, the expected fraction of units that were kept.
    * ``"none"``: no correction at all. Training outputs have mean p * E[x] while inference
      outputs have mean E[x].

    When each preserves the expected activation: "inverted" and "inference" both make the mean
    at inference equal the mean in training, E[mask * x / p] = E[x], for any input. That is
    exact for the next layer's *pre-activation* (a linear function of the dropped units), which
    is what matters. It is not exact after a non-linearity: the next layer's sigmoid or tanh of
    a scaled sum is not the scaled sigmoid/tanh. For zero-centred inputs (tanh outputs,
    shifted ReLU), "none" also keeps the mean near zero, but not the variance. For ReLU and
    sigmoid outputs, which are all positive, "none" shrinks the training mean by p and the
    layers after it see a different distribution at inference: use "inverted" or "inference".

    Under mixed precision the noise is drawn, and the scaling applied, in float32, then the
    output is rounded once to the compute dtype: bfloat16 noise has only 128 levels in
    [0.5, 1), which would keep 0.594 instead of 0.6 of the units at rate 0.4.

    Args:
        rate: Fraction of units to drop, in [0, 1).
        scaling: One of "inverted", "none", "inference".
        noise_shape: Optional shape of the binary mask, broadcast against the input; `None`
            entries take the input's size (e.g. `(None, 1, None)` shares the mask across time).
        seed: Optional int for reproducible masks.
        **kwargs: Base layer arguments.
    """

    def __init__(self, rate, scaling="inverted", noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ValueError(
                f"Argument `rate` must be a number in [0, 1) (the fraction of units dropped). "
                f"Received: rate={rate!r}"
            )
        if scaling not in SCALINGS:
            raise ValueError(
                f"Argument `scaling` must be one of {', '.join(repr(s) for s in SCALINGS)}. "
                f"Received: scaling={scaling!r}"
            )
        if noise_shape is not None:
            noise_shape = tuple(noise_shape)
        self.rate = float(rate)
        self.scaling = scaling
        self.noise_shape = noise_shape
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed) if rate > 0 else None
        self.supports_masking = True

    def _mask_shape(self, inputs):
        shape = ops.shape(inputs)
        if self.noise_shape is None:
            return shape
        if len(self.noise_shape) != len(shape):
            raise ValueError(
                f"Argument `noise_shape` must have the input's rank {len(shape)}. "
                f"Received: noise_shape={self.noise_shape} for input shape {tuple(inputs.shape)}"
            )
        return tuple(s if n is None else n for n, s in zip(self.noise_shape, shape))

    def call(self, inputs, training=False):
        if self.rate == 0:
            return inputs
        keep = 1.0 - self.rate
        if training:
            # Noise in float32 whatever the compute dtype: bfloat16 uniform noise has only 128
            # levels in [0.5, 1), so rate 0.4 would keep 76/128 = 0.594 of the units.
            noise = keras.random.uniform(
                self._mask_shape(inputs), seed=self.seed_generator, dtype="float32"
            )
            outputs = _scaled(inputs, 1.0 / keep) if self.scaling == "inverted" else inputs
            return ops.where(noise >= self.rate, outputs, ops.zeros_like(outputs))
        if self.scaling == "inference":
            return _scaled(inputs, keep)
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "rate": self.rate,
            "scaling": self.scaling,
            "noise_shape": self.noise_shape,
            "seed": self.seed,
        }
