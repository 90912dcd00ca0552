"""The custom layers' numerics on this backend, against float64 NumPy: StableSoftmax (extremes,
masks, low precision, gradient), ScaledDropout (scalings, keep rates, shared masks), ShiftedReLU
and LocalResponseNormalization; and a `.keras` round trip and `fit` of a model holding all."""

import keras
import numpy as np
import pytest

from zoo.layers import (
    LocalResponseNormalization,
    ScaledDropout,
    ShiftedReLU,
    StableSoftmax,
    activation_layer,
    log_softmax,
    stable_softmax,
)

BACKEND = keras.backend.backend()


def numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def reference_log_softmax(x, axis=-1):
    x = np.asarray(x, np.float64)
    row_max = np.max(x, axis=axis, keepdims=True)
    row_max = np.where(np.isfinite(row_max), row_max, 0.0)
    shifted = x - row_max
    with np.errstate(divide="ignore"):
        log_sum = np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return shifted - np.where(np.isfinite(log_sum), log_sum, 0.0)


def backend_gradient(fn, x, upstream):
    """d<fn(x), upstream>/dx by the backend's own automatic differentiation."""
    if BACKEND == "jax":
        import jax

        return np.asarray(jax.grad(lambda v: (fn(v) * upstream).sum())(x))
    import torch

    tensor = torch.tensor(x, requires_grad=True)
    (fn(tensor) * torch.tensor(upstream)).sum().backward()
    return tensor.grad.numpy()


EXTREME_ROWS = np.array(
    [
        [1e4, 0.0, -1e4, 5.0],
        [-1e4, -1e4 + 1, -1e4 + 2, -1e4 - 3],
        [-5000.0, -5001.0, -5002.5, -5000.5],
        [3e38, -3e38, 0.0, 3e38],
        [0.1, 0.2, 0.3, 0.4],
    ],
    np.float32,
)


@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_of_extreme_logits_matches_float64(axis):
    want = reference_log_softmax(EXTREME_ROWS, axis)
    np.testing.assert_allclose(numpy(stable_softmax(EXTREME_ROWS, axis=axis)), np.exp(want),
                               atol=1e-6, rtol=0)
    got = numpy(log_softmax(EXTREME_ROWS, axis=axis))
    finite = want > np.finfo(np.float32).min  # -6e38 (3e38 - 3e38 below) is -inf in float32
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-6, atol=1e-6)
    assert np.all(np.isinf(got[~finite]))
    layer = numpy(StableSoftmax(axis=axis, log=True)(EXTREME_ROWS))
    np.testing.assert_array_equal(layer, got)


def test_softmax_infinities_and_empty_rows():
    x = np.array([[-np.inf, 0.0, 1.0], [-np.inf] * 3], np.float32)
    probabilities = numpy(stable_softmax(x))
    assert probabilities[0, 0] == 0 and np.isclose(probabilities[0].sum(), 1)
    assert np.all(numpy(log_softmax(x))[1] == -np.inf)  # no distribution: all -inf, not NaN


def test_softmax_masks_broadcast_and_fully_masked_rows_are_zero():
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32) * 50
    columns = np.array([True, False, True, True])
    want = np.exp(reference_log_softmax(np.where(columns, x, -np.inf)))
    np.testing.assert_allclose(numpy(stable_softmax(x, mask=columns)), want, atol=1e-6)
    rows = np.array([[True], [False], [True]])
    got = numpy(stable_softmax(x, mask=rows))
    assert np.all(got[1] == 0) and np.allclose(got[[0, 2]].sum(-1), 1)
    # Keras' per-step mask (rank one lower): whole steps masked.
    steps = np.array([[True, False, True]])
    values = np.random.default_rng(1).standard_normal((1, 3, 4)).astype(np.float32)
    got = numpy(StableSoftmax()(values, mask=steps))
    assert np.all(got[0, 1] == 0)
    np.testing.assert_allclose(got[0, 0], np.exp(reference_log_softmax(values[0, 0])), atol=1e-6)
    with pytest.raises(ValueError, match="must be broadcastable.*mask.shape=.2, 4."):
        stable_softmax(x, mask=np.ones((2, 4), bool))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_softmax_in_low_precision_is_computed_in_float32(dtype):
    x = np.array([[100.0, 99.0, 90.0], [-60.0, -61.0, -62.0]], np.float32)
    got = stable_softmax(keras.ops.cast(x, dtype))
    assert keras.backend.standardize_dtype(got.dtype) == dtype
    tolerance = 1e-3 if dtype == "float16" else 1e-2
    np.testing.assert_allclose(numpy(keras.ops.cast(got, "float32")),
                               np.exp(reference_log_softmax(x)), atol=tolerance)


def test_softmax_gradient_is_the_closed_form():
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((3, 5)) * 30).astype(np.float32)
    upstream = rng.standard_normal((3, 5)).astype(np.float32)
    p = np.exp(reference_log_softmax(x))
    want = (upstream - (upstream * p).sum(-1, keepdims=True)) * p
    got = backend_gradient(lambda v: stable_softmax(v), x, upstream)
    np.testing.assert_allclose(got, want, atol=1e-6)
    got = backend_gradient(lambda v: log_softmax(v), x, upstream)
    np.testing.assert_allclose(got, upstream - p * upstream.sum(-1, keepdims=True), atol=1e-5)


def test_softmax_rejects_integers():
    with pytest.raises(ValueError, match="floating-point"):
        stable_softmax(np.array([[1, 2]], np.int32))


INPUTS = np.random.default_rng(3).standard_normal((200, 500)).astype(np.float32) + 3.0


@pytest.mark.parametrize("scaling, kept_value, inference_factor",
                         [("inverted", 1 / 0.6, 1.0), ("none", 1.0, 1.0),
                          ("inference", 1.0, 0.6)])
def test_dropout_scalings_and_keep_rate(scaling, kept_value, inference_factor):
    layer = ScaledDropout(0.4, scaling=scaling, seed=1)
    out = numpy(layer(INPUTS, training=True))
    kept = out != 0
    # 100,000 units: the kept fraction within 5 binomial standard deviations of 0.6.
    assert abs(kept.mean() - 0.6) < 5 * np.sqrt(0.6 * 0.4 / kept.size)
    np.testing.assert_allclose(out[kept], INPUTS[kept] * kept_value, rtol=1e-6)
    np.testing.assert_allclose(numpy(layer(INPUTS, training=False)), INPUTS * inference_factor,
                               rtol=1e-6)


def test_dropout_shared_mask_seeds_and_bfloat16():
    x = np.ones((4, 6, 100), np.float32)
    out = numpy(ScaledDropout(0.5, noise_shape=(None, 1, None), seed=0)(x, training=True))
    assert np.all(out == out[:, :1])  # one mask for every step
    first = numpy(ScaledDropout(0.3, seed=7)(INPUTS, training=True))
    np.testing.assert_array_equal(first, numpy(ScaledDropout(0.3, seed=7)(INPUTS, training=True)))
    # Noise in float32: bfloat16 noise would keep 76/128 = 0.594 at rate 0.4.
    low = numpy(keras.ops.cast(ScaledDropout(0.4, seed=2)(
        keras.ops.cast(INPUTS, "bfloat16"), training=True), "float32"))
    assert abs((low != 0).mean() - 0.6) < 5 * np.sqrt(0.24 / low.size)


@pytest.mark.parametrize("shift, threshold", [(0.5, 0.0), (1.0, -1.0), (0.0, 0.3)])
def test_shifted_relu_matches_float64(shift, threshold):
    x = np.linspace(-3, 3, 61, dtype=np.float32)
    want = np.maximum(x.astype(np.float64) - threshold, 0) - shift
    np.testing.assert_allclose(numpy(ShiftedReLU(shift, threshold)(x)), want, atol=1e-6)
    gradient = backend_gradient(lambda v: ShiftedReLU(shift, threshold)(v), x, np.ones_like(x))
    away = np.abs(x - threshold) > 1e-3
    np.testing.assert_array_equal(gradient[away], (x > threshold)[away].astype(np.float32))
    assert isinstance(activation_layer("shifted_relu"), ShiftedReLU)


def reference_lrn(x, radius, bias, alpha, beta):
    x = np.asarray(x, np.float64)
    squares = x**2
    out = np.empty_like(x)
    channels = x.shape[-1]
    for c in range(channels):
        window = squares[..., max(0, c - radius) : min(channels, c + radius + 1)].sum(-1)
        out[..., c] = x[..., c] / (bias + alpha * window) ** beta
    return out


@pytest.mark.parametrize("radius, bias, alpha, beta", [(2, 2.0, 1e-4, 0.75), (1, 1.0, 0.1, 0.5),
                                                       (0, 0.5, 1.0, 1.0)])
def test_local_response_normalization_matches_float64(radius, bias, alpha, beta):
    x = np.random.default_rng(4).standard_normal((2, 3, 3, 7)).astype(np.float32) * 4
    got = numpy(LocalResponseNormalization(radius, bias, alpha, beta)(x))
    np.testing.assert_allclose(got, reference_lrn(x, radius, bias, alpha, beta), rtol=1e-5)


def test_local_response_normalization_float16_does_not_overflow():
    x = np.full((1, 2, 2, 5), 200.0, np.float32)  # a sum of five squares is 2e5 > 65504
    got = LocalResponseNormalization(alpha=1.0, dtype="float16")(x)
    assert keras.backend.standardize_dtype(got.dtype) == "float16"
    np.testing.assert_allclose(numpy(keras.ops.cast(got, "float32")),
                               reference_lrn(x, 2, 2.0, 1.0, 0.75), rtol=1e-3)


def test_model_of_every_layer_saves_loads_and_trains(tmp_path):
    inputs = keras.Input((4, 4, 6))
    x = keras.layers.Conv2D(6, 3, padding="same")(inputs)
    x = LocalResponseNormalization(depth_radius=1)(x)
    x = ShiftedReLU(shift=1.0, threshold=-1.0)(x)
    x = ScaledDropout(0.3, scaling="inference", seed=0)(keras.layers.Flatten()(x))
    model = keras.Model(inputs, StableSoftmax()(keras.layers.Dense(3)(x)))
    data = np.random.default_rng(5).standard_normal((8, 4, 4, 6)).astype(np.float32)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(data, np.arange(8) % 3, batch_size=4, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    model.save(tmp_path / "layers.keras")
    loaded = keras.saving.load_model(tmp_path / "layers.keras")
    np.testing.assert_array_equal(numpy(loaded(data)), numpy(model(data)))
