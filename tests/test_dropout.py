"""ScaledDropout: each scaling mode's expected value, checked statistically with fixed seeds."""

import keras
import numpy as np
import pytest

from zoo.layers import ScaledDropout

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


@pytest.mark.parametrize("scaling, inference_output", [("none", 1.0), ("inference", KEEP)])
def test_fit_uses_training_mode_and_evaluate_does_not(scaling, inference_output):
    # ones -> ScaledDropout -> identity Dense (learning rate 0), mean squared error to ones.
    # fit runs the layer in training mode: every unit is 1 (kept) or 0 (dropped), so the loss
    # is the fraction dropped, about RATE. evaluate and predict run it in inference mode:
    # every unit is `inference_output`, so the loss is (1 - inference_output)**2 exactly.
    units, batch = 500, 64
    inputs = keras.Input((units,))
    dropped = ScaledDropout(RATE, scaling=scaling, seed=0)(inputs)
    outputs = keras.layers.Dense(units, use_bias=False, kernel_initializer="identity")(dropped)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="mse")
    x = y = np.ones((batch, units), np.float32)
    history = model.fit(x, y, batch_size=batch, epochs=2, verbose=0)
    standard_error = np.sqrt(KEEP * RATE / (batch * units))
    for loss in history.history["loss"]:
        assert abs(loss - RATE) < 5 * standard_error
    assert history.history["loss"][0] != history.history["loss"][1]  # a new mask per step
    expected = (1 - inference_output) ** 2
    assert model.evaluate(x, y, verbose=0) == pytest.approx(expected, abs=1e-6)
    np.testing.assert_allclose(model.predict(x, verbose=0), inference_output, rtol=1e-6)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_keep_rate_is_exact_under_mixed_precision(policy):
    # Uniform noise drawn in bfloat16 has 128 levels in [0.5, 1): rate 0.4 would keep
    # 76/128 = 0.594 of the units, a 1% bias. The noise must be float32 whatever the policy.
    keras.mixed_precision.set_global_policy(policy)
    rate, draws = 0.4, 1_000_000
    layer = ScaledDropout(rate, scaling="inverted", seed=5)
    out = layer(np.ones((draws,), np.float32), training=True)
    assert keras.backend.standardize_dtype(out.dtype) == policy.split("_")[1]
    out = keras.ops.convert_to_numpy(keras.ops.cast(out, "float32"))
    keep_rate = (out != 0).mean()
    assert abs(keep_rate / (1 - rate) - 1) < 0.003  # 3.7 standard errors at 10^6 draws
    # The 1/(1-rate) correction is applied in float32 and rounded once, so E[output] = 1 to
    # within the sampling error (a bfloat16 factor 1/0.6 would be 0.16% low).
    assert abs(out.mean() - 1) < 0.003


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, "0.5", True, None])
def test_bad_rate(rate):
    with pytest.raises(ValueError, match=r"rate.*\[0, 1\).*Received: rate="):
        ScaledDropout(rate)


def test_bad_scaling_lists_valid_ones():
    with pytest.raises(ValueError, match=r"'inverted', 'none', 'inference'.*scaling='classic'"):
        ScaledDropout(0.5, scaling="classic")
