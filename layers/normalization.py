"""Local response normalization across channels (AlexNet)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="layers")
class LocalResponseNormalization(keras.layers.Layer):
    """Cross-channel local response normalization of Krizhevsky, Sutskever & Hinton 2012.

    b_c = a_c / (bias + alpha * sum_{c' = c-r}^{c+r} a_{c'}^2) ** beta, with r = depth_radius
    and the sum clipped at the first and last channel. The defaults are the paper's
    (k=2, n=5, alpha=1e-4, beta=0.75). As in `tf.nn.local_response_normalization`, alpha
    multiplies the plain sum (not the mean) of squares. Under float16 and bfloat16 the window
    sum and the power are computed in float32 and only the output is rounded back.

    Args:
        depth_radius: r, half-width of the channel window (window size 2r + 1).
        bias: k, added before the power; must be positive.
        alpha: Scale of the sum of squares.
        beta: Exponent.
        **kwargs: Base layer arguments. Expects channels-last input.
    """

    def __init__(self, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75, **kwargs):
        super().__init__(**kwargs)
        if isinstance(depth_radius, bool) or not isinstance(depth_radius, int) or depth_radius < 0:
            raise ValueError(
                f"Argument `depth_radius` must be an int >= 0. Received: depth_radius={depth_radius!r}"
            )
        if not bias > 0:
            raise ValueError(f"Argument `bias` must be > 0. Received: bias={bias!r}")
        self.depth_radius = depth_radius
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, inputs):
        # The window sum and the power run in float32 whatever the compute dtype: in float16
        # the sum of five squares overflows (65504) from |a| of about 115, and the output
        # would be a / inf = 0. Only the result is rounded back.
        dtype = keras.backend.standardize_dtype(inputs.dtype)
        compute = "float32" if dtype in ("float16", "bfloat16") else dtype
        values = ops.cast(inputs, compute)
        squares = ops.square(values)
        r = self.depth_radius
        padding = [[0, 0]] * (len(inputs.shape) - 1) + [[r, r]]
        padded = ops.pad(squares, padding)
        channels = inputs.shape[-1]
        # 2r + 1 shifted slices summed: a short, backend-neutral sliding window over channels.
        window_sum = padded[..., 0:channels]
        for offset in range(1, 2 * r + 1):
            window_sum = window_sum + padded[..., offset : offset + channels]
        outputs = values / ops.power(self.bias + self.alpha * window_sum, self.beta)
        return ops.cast(outputs, dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "depth_radius": self.depth_radius,
            "bias": self.bias,
            "alpha": self.alpha,
            "beta": self.beta,
        }
