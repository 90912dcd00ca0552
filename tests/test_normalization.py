"""LocalResponseNormalization against TensorFlow's op and a float64 NumPy loop."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import LocalResponseNormalization


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
