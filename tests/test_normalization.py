"""LocalResponseNormalization against TensorFlow's op and a float64 NumPy loop."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.layers import LocalResponseNormalization


def reference_lrn(a, r, k, alpha, beta):
    a = a.astype(np.float64)
    out = np.empty_like(a)
    channels = a.shape[-1]
    for c in range(channels):
        lo, hi = max(0, c - r), min(channels, c + r + 1)
        out[..., c] = a[..., c] / (k + alpha * np.sum(a[..., lo:hi] ** 2, axis=-1)) ** beta
    return out


@pytest.mark.parametrize("r, k, alpha, beta", [(2, 2.0, 1e-4, 0.75), (1, 1.0, 0.1, 0.5)])
def test_matches_references(r, k, alpha, beta):
    x = np.random.default_rng(0).standard_normal((2, 3, 3, 7)).astype(np.float32) * 10
    layer = LocalResponseNormalization(depth_radius=r, bias=k, alpha=alpha, beta=beta)
    ours = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(ours, reference_lrn(x, r, k, alpha, beta), rtol=1e-5)
    tf_out = tf.nn.local_response_normalization(x, r, k, alpha, beta).numpy()
    np.testing.assert_allclose(ours, tf_out, rtol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="depth_radius.*Received: depth_radius=-1"):
        LocalResponseNormalization(depth_radius=-1)
    with pytest.raises(ValueError, match="bias.*> 0.*bias=0"):
        LocalResponseNormalization(bias=0)


@pytest.mark.parametrize("policy", ["mixed_float16", "float16"])
def test_float16_computes_the_window_in_float32(policy):
    # |a| of about 115 with five equal channels overflows a float16 sum of squares (65504);
    # the layer must square and sum in float32 and only round its output to float16.
    keras.mixed_precision.set_global_policy(policy)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1e3, 1e3, (2, 3, 3, 8)).astype(np.float16)
    x[0, 0, 0] = 1e3  # a whole window at the top of the range
    x[0, 0, 1] = 300.0
    layer = LocalResponseNormalization()
    out = layer(x)
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    ours = keras.ops.convert_to_numpy(keras.ops.cast(out, "float32"))
    expected = reference_lrn(x, 2, 2.0, 1e-4, 0.75)  # float64, from the same float16 inputs
    # One float16 rounding of the output: relative error <= 2**-11 (4.9e-4), with margin.
    np.testing.assert_allclose(ours, expected, rtol=1e-3, atol=0)
