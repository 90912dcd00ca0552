"""StableSoftmax against a float64 NumPy reference, and against the naive formulas it replaces."""

import collections
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from zoo.layers import StableSoftmax, log_softmax, stable_softmax


def reference_log_softmax(x, axis=-1):
    """float64, per-row max; -inf entries stay -inf, all -inf rows stay all -inf."""
    x = np.asarray(x, np.float64)
    row_max = np.max(x, axis=axis, keepdims=True)
    row_max = np.where(np.isfinite(row_max), row_max, 0.0)
    shifted = x - row_max
    with np.errstate(divide="ignore"):
        log_sum = np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    log_sum = np.where(np.isfinite(log_sum), log_sum, 0.0)
    return shifted - log_sum


def reference_softmax(x, axis=-1):
    return np.exp(reference_log_softmax(x, axis))


def naive_softmax(x):
    e = np.exp(np.asarray(x, np.float32))
    return e / e.sum(axis=-1, keepdims=True)


def batch_max_softmax(x):
    """The classic bug: one maximum for the whole batch instead of one per row."""
    x = np.asarray(x, np.float32)
    e = np.exp(x - x.max())
    return e / e.sum(axis=-1, keepdims=True)


HARD_ROWS = np.array(
    [
        [1e4, 0.0, -1e4, 5.0],
        [-1e4, -1e4 + 1, -1e4 + 2, -1e4 - 3],
        [-5000.0, -5001.0, -5002.5, -5000.5],
        [3e38, -3e38, 0.0, 3e38],
        [-3e38, -3e38, -3e38, -3e38],
        [0.1, 0.2, 0.3, 0.4],
    ],
    np.float32,
)


@pytest.mark.parametrize("axis", [-1, 0])
def test_matches_float64_reference_for_extreme_logits(axis):
    ours = keras.ops.convert_to_numpy(stable_softmax(HARD_ROWS, axis=axis))
    np.testing.assert_allclose(ours, reference_softmax(HARD_ROWS, axis), atol=1e-6, rtol=0)
    assert not np.isnan(ours).any()


def test_as_accurate_as_tf_nn_softmax():
    rng = np.random.default_rng(1)
    scales = np.array([1e-3, 1.0, 30.0, 1e3, 1e4], np.float32)[:, None]
    x = (rng.standard_normal((5, 1000)) * scales + rng.uniform(-5000, 5000, (5, 1))).astype(
        np.float32
    )
    ref = reference_softmax(x)
    ours_error = np.abs(keras.ops.convert_to_numpy(stable_softmax(x)) - ref).max()
    tf_error = np.abs(tf.nn.softmax(x).numpy() - ref).max()
    assert ours_error <= 1e-6
    assert ours_error <= 2 * tf_error + 1e-7


def test_log_softmax_keeps_relative_precision_for_large_logits():
    # x - logsumexp(x) computed naively loses digits to cancellation near 1e4; shifting by the
    # row maximum first keeps the small log-probabilities exact.
    x = np.array([[1e4, 1e4 - 1.0, 1e4 - 2.0], [-5000.0, -5000.25, -5003.0]], np.float32)
    ours = keras.ops.convert_to_numpy(log_softmax(x))
    ref = reference_log_softmax(x)
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)
    tf_ours = tf.nn.log_softmax(x).numpy()
    assert np.abs(ours - ref).max() <= np.abs(tf_ours - ref).max() + 1e-6


def test_rows_with_minus_infinity():
    x = np.array([[-np.inf, 1.0, 2.0], [-np.inf, -np.inf, 0.0], [-np.inf] * 3], np.float32)
    ours = keras.ops.convert_to_numpy(stable_softmax(x[:2]))
    np.testing.assert_allclose(ours, reference_softmax(x[:2]), atol=1e-7)
    # A row with no finite logit has no distribution: log_softmax gives -inf (probability 0);
    # stable_softmax gives NaN like tf.nn.softmax (a guard would cost every call a pass, see
    # benchmarks/softmax.py), and zeros when the row is masked.
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(log_softmax(x))[2], -np.inf)
    assert np.isnan(keras.ops.convert_to_numpy(stable_softmax(x))[2]).all()
    masked = keras.ops.convert_to_numpy(stable_softmax(x, mask=np.isfinite(x)))
    np.testing.assert_allclose(masked, reference_softmax(x), atol=1e-7)
    np.testing.assert_array_equal(masked[2], 0.0)


def test_naive_and_batch_max_versions_fail_where_ours_does_not():
    with np.errstate(all="ignore"):
        assert np.isnan(naive_softmax(HARD_ROWS[:1])).any()  # exp(1e4) overflows: inf / inf
        # Rows far below the batch maximum underflow to 0 / 0 with a batch-wide max.
        trapped = batch_max_softmax(HARD_ROWS[[0, 2]])
    assert np.isnan(trapped[1]).all()
    ours = keras.ops.convert_to_numpy(stable_softmax(HARD_ROWS[[0, 2]]))
    np.testing.assert_allclose(ours, reference_softmax(HARD_ROWS[[0, 2]]), atol=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_inputs_computed_in_float32(dtype):
    x = np.array([[65504.0, 65000.0, 0.0], [-65504.0, -65440.0, -65500.0], [1, 2, 3]], np.float32)
    x_low = keras.ops.cast(x, dtype)
    out = stable_softmax(x_low)
    assert keras.backend.standardize_dtype(out.dtype) == dtype
    ref = reference_softmax(keras.ops.convert_to_numpy(keras.ops.cast(x_low, "float32")))
    ours = keras.ops.convert_to_numpy(keras.ops.cast(out, "float32"))
    assert not np.isnan(ours).any()
    np.testing.assert_allclose(ours, ref, atol=1e-2 if dtype == "bfloat16" else 1e-3)


def test_float16_sums_are_not_taken_in_float16():
    # 70000 equal logits: the sum of exp(x - m) is 70000, past float16's largest value 65504,
    # so any float16 evaluation (whatever its summation order) gets inf and returns 0 for every
    # entry (tf.nn.softmax on float16 does). Computed in float32 and rounded once, each entry
    # is 1/70000 = 1.43e-5, a float16 subnormal.
    x = np.zeros((2, 70000), np.float16)
    x[1, 0] = 5.0
    expected = reference_softmax(x.astype(np.float64))
    ours = keras.ops.convert_to_numpy(keras.ops.cast(stable_softmax(x), "float32"))
    # One rounding to float16: 2**-11 relative, or one subnormal step (2**-24) absolute.
    np.testing.assert_allclose(ours, expected, rtol=2.0**-11, atol=2.0**-24)
    with np.errstate(over="ignore"):
        exps = np.exp(x - x.max(axis=-1, keepdims=True))
        in_float16 = exps / exps.sum(axis=-1, keepdims=True, dtype=np.float16)
    assert np.abs(in_float16 - expected).max() > 100 * 2.0**-24  # the same check would fail


def test_mask_zeroes_entries_and_fully_masked_rows_are_zero():
    x = np.array([[1.0, 2.0, 3.0], [5.0, -1.0, 0.5], [1e4, 2.0, 3.0]], np.float32)
    mask = np.array([[True, False, True], [False, False, False], [False, True, True]])
    ours = keras.ops.convert_to_numpy(stable_softmax(x, mask=mask))
    expected = reference_softmax(np.where(mask, x, -np.inf))
    np.testing.assert_allclose(ours, expected, atol=1e-7)
    np.testing.assert_array_equal(ours[1], 0.0)

    variable = tf.Variable(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(stable_softmax(variable, mask=mask) * np.arange(3.0, dtype=np.float32))
    gradient = tape.gradient(loss, variable).numpy()
    assert np.isfinite(gradient).all()
    np.testing.assert_array_equal(gradient[~mask], 0.0)


@pytest.mark.parametrize("function, reference", [(stable_softmax, reference_softmax),
                                                  (log_softmax, reference_log_softmax)])
def test_mask_broadcasts_like_numpy(function, reference):
    # A (3,) mask for (3, 3) logits is a mask over the last axis (columns), as in NumPy; it
    # used to get a trailing axis and silently mask row 2 instead.
    x = np.array([[1.0, 2.0, 3.0], [5.0, -1.0, 0.5], [0.0, 2.0, -3.0]], np.float32)
    columns = np.array([True, True, False])
    ours = keras.ops.convert_to_numpy(function(x, mask=columns))
    np.testing.assert_allclose(ours, reference(np.where(columns, x, -np.inf)), atol=1e-6)
    rows = np.array([[True], [False], [True]])  # (3, 1): masks row 1 entirely
    ours = keras.ops.convert_to_numpy(function(x, mask=rows))
    np.testing.assert_allclose(ours, reference(np.where(rows, x, -np.inf)), atol=1e-6)


@pytest.mark.parametrize("mask_shape", [(2,), (3, 2), (2, 3, 3), (4, 1)])
def test_mask_that_does_not_broadcast_to_x_is_refused(mask_shape):
    x = np.zeros((3, 3), np.float32)
    with pytest.raises(ValueError, match=r"mask.*broadcastable.*mask.shape=\(.*x.shape=\(3, 3\)"):
        stable_softmax(x, mask=np.ones(mask_shape, bool))
    with pytest.raises(ValueError, match=r"mask.*broadcastable"):
        log_softmax(x, mask=np.ones(mask_shape, bool))


def test_layer_consumes_keras_mask_over_time():
    # Attention-style weights over time: padded steps (token 0) must get weight 0. The Keras mask
    # has shape (batch, time) while the scores are (batch, time, 1).
    tokens = keras.Input((5,), dtype="int32")
    scores = keras.layers.Embedding(10, 1, mask_zero=True, name="scores")(tokens)
    weights = StableSoftmax(axis=1)(scores)
    model = keras.Model(tokens, weights)
    x = np.array([[3, 1, 4, 0, 0], [2, 7, 1, 8, 2]], np.int32)
    table = model.get_layer("scores").get_weights()[0][:, 0]
    expected = reference_softmax(np.where(x != 0, table[x], -np.inf))
    np.testing.assert_allclose(model.predict(x, verbose=0)[..., 0], expected, atol=1e-7)


def test_layer_masks_whole_steps_with_keras_per_step_mask():
    # Keras' automatic mask is (batch, time) for (batch, time, classes) logits: padded steps
    # come out all zeros, the others are plain softmaxes over the classes.
    tokens = keras.Input((4,), dtype="int32")
    embedded = keras.layers.Embedding(10, 3, mask_zero=True)(tokens)
    logits = keras.layers.Dense(4, name="logits")(embedded)
    model = keras.Model(tokens, StableSoftmax()(logits))
    x = np.array([[3, 1, 0, 0], [2, 7, 1, 8]], np.int32)
    probs = model.predict(x, verbose=0)
    unmasked = keras.Model(tokens, logits).predict(x, verbose=0)
    np.testing.assert_array_equal(probs[0, 2:], 0.0)
    np.testing.assert_allclose(probs[x != 0], reference_softmax(unmasked[x != 0]), atol=1e-6)


def test_layer_mask_rule():
    x = np.array([[1.0, 2.0, 3.0], [5.0, -1.0, 0.5], [0.0, 2.0, -3.0]], np.float32)
    keep = np.array([True, True, False])
    layer = StableSoftmax()
    # Rank one lower: Keras' per-step mask over inputs.shape[:-1] (here: rows).
    per_step = keras.ops.convert_to_numpy(layer(x, mask=keep))
    np.testing.assert_allclose(per_step[:2], reference_softmax(x[:2]), atol=1e-6)
    np.testing.assert_array_equal(per_step[2], 0.0)
    # Same rank: NumPy broadcasting (here: columns).
    columns = keras.ops.convert_to_numpy(layer(x, mask=keep[None, :]))
    np.testing.assert_allclose(columns, reference_softmax(np.where(keep, x, -np.inf)), atol=1e-6)
    with pytest.raises(ValueError, match=r"per-step mask.*mask.shape=\(2,\).*inputs.shape=\(3, 3\)"):
        layer(x, mask=np.ones((2,), bool))
    with pytest.raises(ValueError, match=r"mask.*broadcastable.*mask.shape=\(2, 3\)"):
        layer(x, mask=np.ones((2, 3), bool))


def test_gradient_matches_closed_form_jacobian():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 5)) * np.array([[1.0], [30.0], [1e3]])
    variable = tf.Variable(x)  # float64: compares the math, not float32 rounding
    with tf.GradientTape() as tape:
        probs = stable_softmax(variable)
    jacobian = tape.batch_jacobian(probs, variable).numpy()
    p = reference_softmax(x)
    expected = np.stack([np.diag(row) - np.outer(row, row) for row in p])
    np.testing.assert_allclose(jacobian, expected, atol=1e-12)


@pytest.mark.parametrize("masked", [False, True])
def test_custom_gradient_matches_finite_differences(masked):
    # stable_softmax's gradient is the hand-written closed form (ops.custom_gradient): checked
    # here against central differences of the forward pass, in float64, entry by entry of the
    # full Jacobian. Masked entries must get exactly no gradient.
    rng = np.random.default_rng(4)
    x = tf.constant(rng.standard_normal((3, 6)) * np.array([[1.0], [4.0], [0.2]]), tf.float64)
    mask = (rng.random((3, 6)) > 0.3) | (np.arange(6) == 0) if masked else None
    theoretical, numerical = tf.test.compute_gradient(
        lambda v: stable_softmax(v, mask=mask), [x], delta=1e-6
    )
    np.testing.assert_allclose(theoretical[0], numerical[0], atol=1e-8)
    assert np.abs(theoretical[0]).max() > 0.05  # a real Jacobian, not zeros
    if masked:
        masked_inputs = ~mask.reshape(-1)
        np.testing.assert_array_equal(theoretical[0][:, masked_inputs], 0.0)


def test_log_softmax_gradient_matches_finite_differences():
    x = tf.constant(np.random.default_rng(4).standard_normal((2, 6)), tf.float64)
    weights = tf.constant(np.arange(12.0).reshape(2, 6), tf.float64)

    def objective(v):
        return tf.reduce_sum(log_softmax(v) * weights)

    theoretical, numerical = tf.test.compute_gradient(objective, [x])
    np.testing.assert_allclose(theoretical[0], numerical[0], atol=1e-6)


def _xla_instructions(softmax, backward):
    """(opcode, shape) of every instruction of the optimized XLA program, as a multiset."""

    @tf.function(jit_compile=True, autograph=False)
    def step(x, upstream):
        with tf.GradientTape() as tape:
            tape.watch(x)
            probs = softmax(x)
        return tape.gradient(probs, x, output_gradients=upstream) if backward else probs

    x = tf.constant(np.random.default_rng(0).standard_normal((8, 16)), tf.float32)
    hlo = step.experimental_get_compiler_ir(x, x)(stage="optimized_hlo")
    return collections.Counter(re.findall(r"= (\w+\[[\d,]*\])\S* (\w+)\(", hlo))


@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
def test_compiles_to_the_same_xla_program_as_tf_nn_softmax(backward):
    # The speed claim (benchmarks/softmax.py) checked without a clock: no extra pass over the
    # data, forward or backward; the _keras_logits ops are pruned when no loss uses them.
    ours = _xla_instructions(lambda v: stable_softmax(v), backward)
    assert ours == _xla_instructions(lambda v: tf.nn.softmax(v), backward)
    assert ours[("f32[8,16]", "fusion")] >= 1  # the pattern does see the program


finite_rows = hnp.arrays(
    np.float32,
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=8),
    elements=st.floats(-(2.0**100), 2.0**100, width=32),
)


@settings(max_examples=60, deadline=None)
@given(finite_rows, st.floats(-1e4, 1e4, width=32))
def test_properties_for_finite_input(x, constant):
    probs = keras.ops.convert_to_numpy(stable_softmax(x))
    assert not np.isnan(probs).any()
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)
    # argmax preserved: the largest logit keeps (one of) the largest probabilities
    top = np.argmax(x, axis=-1)
    assert np.all(probs[np.arange(len(x)), top] >= probs.max(axis=-1) - 1e-7)
    # invariance to a per-row constant (checked where adding it is exact enough to matter)
    if np.abs(x).max() < 1e3:
        shifted = keras.ops.convert_to_numpy(stable_softmax(x + np.float32(constant % 100)))
        np.testing.assert_allclose(shifted, probs, atol=1e-4)


def _model_ending_in(head, classes=4):
    inputs = keras.Input((classes,))
    logits = keras.layers.Dense(classes, name="logits")(inputs)
    return keras.Model(inputs, head(logits) if head else logits)


@pytest.mark.parametrize(
    "loss_class, labels",
    [
        (keras.losses.SparseCategoricalCrossentropy, np.array([3, 0, 1])),
        (keras.losses.CategoricalCrossentropy, np.eye(4, dtype=np.float32)[[3, 0, 1]]),
    ],
)
def test_keras_losses_use_the_logits_even_for_confident_wrong_predictions(loss_class, labels):
    probabilities = _model_ending_in(StableSoftmax())
    logits = _model_ending_in(None)
    weights = [np.eye(4, dtype=np.float32) * 50.0, np.zeros(4, np.float32)]
    for model in (probabilities, logits):
        model.get_layer("logits").set_weights(weights)
    # Row 0 is very confidently wrong: true class 3 has a logit 200 below the predicted class.
    x = np.array([[4.0, 0.0, 0.0, 0.0], [0.3, 0.1, 0.0, 0.2], [0.0, 1.0, 0.5, 0.0]], np.float32)

    probabilities.compile(optimizer=keras.optimizers.SGD(0.01), loss=loss_class())
    logits.compile(optimizer=keras.optimizers.SGD(0.01), loss=loss_class(from_logits=True))
    expected = loss_class(from_logits=True, reduction=None)(labels, logits(x)).numpy()
    assert expected[0] > 150  # a clipped-probability loss would stop at -log(1e-7) = 16.1
    ours = loss_class(reduction=None)(labels, probabilities(x)).numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-6)

    history_probs = probabilities.fit(x, labels, epochs=3, batch_size=3, verbose=0, shuffle=False)
    history_logits = logits.fit(x, labels, epochs=3, batch_size=3, verbose=0, shuffle=False)
    np.testing.assert_allclose(
        history_probs.history["loss"], history_logits.history["loss"], rtol=1e-5
    )


def test_log_mode_outputs_log_probabilities():
    x = HARD_ROWS[:3]
    out = keras.ops.convert_to_numpy(StableSoftmax(log=True)(x))
    np.testing.assert_allclose(out, reference_log_softmax(x), rtol=1e-6, atol=1e-6)


def test_bad_input_errors():
    with pytest.raises(ValueError, match=r"floating-point.*x.dtype=int"):
        stable_softmax(np.array([[1, 2, 3]]))
    with pytest.raises(ValueError, match=r"floating-point.*int32"):
        StableSoftmax()(keras.ops.convert_to_tensor(np.array([[1, 2]], np.int32)))
    with pytest.raises(ValueError, match=r"axis.*-2 to 1.*axis=2"):
        stable_softmax(np.zeros((2, 3), np.float32), axis=2)
    with pytest.raises(ValueError, match=r"axis.*Received: axis=5"):
        StableSoftmax(axis=5)(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"axis.*int.*axis='last'"):
        StableSoftmax(axis="last")
    with pytest.raises(ValueError, match=r"log.*True or False"):
        StableSoftmax(log="yes")
