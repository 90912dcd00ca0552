"""ScaledDropout: each scaling mode's expected value, checked statistically with fixed seeds."""

import keras
import numpy as np
import pytest

from layers import ScaledDropout

N = 200_000
RATE = 0.3
KEEP = 1 - RATE


def _mean_tolerance(scale):
    # 5 standard errors of the mean of scale * Bernoulli(KEEP) over N units.
    return 5 * scale * np.sqrt(KEEP * RATE / N)


@pytest.mark.parametrize(
    "scaling, train_scale, inference_scale",
    [("inverted", 1 / KEEP, 1.0), ("none", 1.0, 1.0), ("inference", 1.0, KEEP)],
)
def test_expected_values_in_training_and_inference(scaling, train_scale, inference_scale):
    layer = ScaledDropout(RATE, scaling=scaling, seed=7)
    x = np.ones((N,), np.float32)
    trained = keras.ops.convert_to_numpy(layer(x, training=True))
    # Kept units carry exactly the training scale, dropped ones are 0.
    np.testing.assert_allclose(np.unique(trained), [0.0, train_scale], rtol=1e-6)
    assert abs((trained == 0).mean() - RATE) < 5 * np.sqrt(KEEP * RATE / N)
    assert abs(trained.mean() - KEEP * train_scale) < _mean_tolerance(train_scale)
    inferred = keras.ops.convert_to_numpy(layer(x, training=False))
    np.testing.assert_allclose(inferred, inference_scale, rtol=1e-6)


@pytest.mark.parametrize("scaling", ["inverted", "inference"])
def test_corrected_modes_match_training_and_inference_means(scaling):
    # For these two modes E[training output] == inference output, for any input.
    x = np.random.default_rng(0).standard_normal((400, 500)).astype(np.float32) + 2.0
    layer = ScaledDropout(RATE, scaling=scaling, seed=1)
    ratio = keras.ops.convert_to_numpy(layer(x, training=True)).mean() / (
        keras.ops.convert_to_numpy(layer(x, training=False)).mean()
    )
    assert abs(ratio - 1.0) < 0.01


def test_noise_shape_shares_the_mask():
    layer = ScaledDropout(0.5, noise_shape=(None, 1, None), seed=3)
    out = keras.ops.convert_to_numpy(layer(np.ones((4, 6, 8), np.float32), training=True))
    dropped = out == 0
    assert np.all(dropped == dropped[:, :1, :])  # same units dropped at every time step
    assert 0 < dropped.mean() < 1
    with pytest.raises(ValueError, match=r"noise_shape.*rank 3"):
        ScaledDropout(0.5, noise_shape=(None, 1))(np.ones((4, 6, 8), np.float32), training=True)


def test_seed_makes_masks_reproducible_and_calls_differ():
    x = np.ones((1000,), np.float32)
    a, b = ScaledDropout(0.5, seed=11), ScaledDropout(0.5, seed=11)
    first_a = keras.ops.convert_to_numpy(a(x, training=True))
    np.testing.assert_array_equal(first_a, keras.ops.convert_to_numpy(b(x, training=True)))
    assert not np.array_equal(first_a, keras.ops.convert_to_numpy(a(x, training=True)))


def test_rate_zero_is_identity():
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    for scaling in ("inverted", "none", "inference"):
        for training in (True, False):
            out = ScaledDropout(0.0, scaling=scaling)(x, training=training)
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(out), x)


def test_fit_uses_training_mode():
    inputs = keras.Input((50,))
    model = keras.Model(inputs, ScaledDropout(0.5, scaling="inference", seed=0)(inputs))
    x = np.ones((2, 50), np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), 0.5)  # inference: scaled by keep


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, "0.5", True, None])
def test_bad_rate(rate):
    with pytest.raises(ValueError, match=r"rate.*\[0, 1\).*Received: rate="):
        ScaledDropout(rate)


def test_bad_scaling_lists_valid_ones():
    with pytest.raises(ValueError, match=r"'inverted', 'none', 'inference'.*scaling='classic'"):
        ScaledDropout(0.5, scaling="classic")
