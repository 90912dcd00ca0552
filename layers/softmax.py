"""A numerically stable softmax, log-softmax and softmax layer.

softmax(x)_i = exp(x_i - logsumexp(x)), with logsumexp(x) = m + log(s), s = sum(exp(x - m)),
and m the maximum of *each row* along `axis`.

Why per row: subtracting one maximum for the whole batch (a common hand-written bug) leaves
rows whose logits are far below the batch maximum with exp(x - m) == 0 everywhere; their sum
is 0 and the row becomes 0/0 = NaN. With the row's own maximum, every row has one entry equal
to exp(0) = 1, so the sum is at least 1 and the logarithm is always finite.

Why we shift before subtracting logsumexp: for |x| around 1e4, x and logsumexp(x) are both
about 1e4 and their difference loses four decimal digits to cancellation in float32. Computing
(x - m) first is exact for the entries that matter (Sterbenz), and the log-sum term is a
number of order log(n).

Two evaluations of the formula. `log_softmax` returns (x - m) - logsumexp(x - m) through
`keras.ops.logsumexp`. `stable_softmax` calls the backend's fused softmax kernel
(`keras.ops.softmax`: tf.nn.softmax, jax.nn.softmax, torch.softmax), which computes exactly
exp(x - m) / sum(exp(x - m)) with the per-row maximum m; spelled out op by op, the same formula
took 1.3-2x as long as the kernel without XLA (benchmarks/softmax.py, 2 CPU cores). Around the
kernel this module adds float32 compute for float16 and bfloat16, masks, a closed-form gradient
and the logits Keras' losses pick up; the tests hold it to a float64 reference.

Masks follow NumPy broadcasting (shapes aligned on the right) in the functions; the layer also
takes Keras' automatic per-step masks (see `StableSoftmax`).
"""

import keras
from keras import ops

_LOW_PRECISION = ("float16", "bfloat16")


def _check_floating(x, name="x"):
    dtype = keras.backend.standardize_dtype(x.dtype)
    if "float" not in dtype:
        raise ValueError(
            f"Argument `{name}` must be a floating-point tensor (float16, bfloat16, float32 or "
            f"float64); softmax of integers is not defined. Received: {name}.dtype={dtype}. "
            f"Cast it first, e.g. keras.ops.cast({name}, 'float32')."
        )
    return dtype


def _check_axis(axis, rank):
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise ValueError(f"Argument `axis` must be an int. Received: axis={axis!r}")
    if rank is not None and not -rank <= axis < rank:
        raise ValueError(
            f"Argument `axis` is out of range for an input of rank {rank}: allowed values are "
            f"{-rank} to {rank - 1}. Received: axis={axis}"
        )


def _shape_text(shape):
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _check_mask(mask, x):
    """The mask as booleans, after checking that it broadcasts to x's shape (NumPy rules)."""
    mask = ops.convert_to_tensor(mask)
    mask_shape, x_shape = tuple(mask.shape), tuple(x.shape)
    fits = len(mask_shape) <= len(x_shape) and all(
        m is None or d is None or m in (1, d)
        for m, d in zip(reversed(mask_shape), reversed(x_shape))
    )
    if not fits:
        raise ValueError(
            "Argument `mask` must be broadcastable to `x` (NumPy rules: shapes aligned on the "
            "right, each mask size equal to x's or 1, no more axes than x). "
            f"Received: mask.shape={_shape_text(mask_shape)} for x.shape={_shape_text(x_shape)}. "
            "A mask over the leading axes needs trailing size-1 axes, e.g. mask[..., None]."
        )
    return ops.cast(mask, "bool")


def _shift_by_row_max(x, axis, mask):
    """x - m with m the row maximum (masked entries -inf; all -inf rows shifted by 0)."""
    if mask is not None:
        x = ops.where(mask, x, float("-inf"))
    row_max = ops.max(x, axis=axis, keepdims=True)
    # A row that is all -inf (fully masked) has no finite maximum; shift by 0 instead so the
    # arithmetic below stays free of inf - inf.
    row_max = ops.where(ops.isfinite(row_max), row_max, ops.zeros_like(row_max))
    return x - ops.stop_gradient(row_max)


def _log_softmax_float32(x, axis, mask):
    shifted = _shift_by_row_max(x, axis, mask)
    log_sum = ops.logsumexp(shifted, axis=axis, keepdims=True)
    # For empty rows log_sum is -inf; replacing it by 0 makes every log-probability -inf
    # (probability exactly 0) instead of NaN, and keeps gradients finite.
    log_sum = ops.where(ops.isfinite(log_sum), log_sum, ops.zeros_like(log_sum))
    return shifted - log_sum


def _prepare(x, axis):
    x = ops.convert_to_tensor(x)
    dtype = _check_floating(x)
    _check_axis(axis, len(x.shape))
    compute = "float32" if dtype in _LOW_PRECISION else dtype
    return ops.cast(x, compute), dtype


def _attach_logits(output, logits, mask):
    # Keras' TensorFlow losses look for `_keras_logits` on a probability tensor and, when it is
    # there, compute cross-entropy from these logits instead of from clipped probabilities
    # (keras/src/backend/tensorflow/nn.py: _get_logits); Keras' own softmax attaches its input
    # the same way. Masked and -inf logits are replaced by a finite floor so that a zero label
    # times such a logit is 0, not NaN. `logits` is float32 or float64 here (see `_prepare`).
    # In a tf.function these ops are pruned unless a loss uses them. Tensors of some backends
    # take no attributes: losses then use the probabilities.
    if mask is not None:
        logits = ops.where(mask, logits, float("-inf"))
    try:
        output._keras_logits = ops.maximum(logits, -1e30)
    except AttributeError:
        pass
    return output


def log_softmax(x, axis=-1, mask=None):
    """Log-probabilities along `axis`, stable for logits of any magnitude.

    Args:
        x: Floating-point tensor of logits.
        axis: The axis to normalise over (per row: the maximum is taken along this axis only).
        mask: Optional boolean tensor broadcastable to `x` (NumPy rules, e.g. shape
            `(classes,)` masks classes in every row); False entries get log-probability -inf.
            A fully masked row gives all -inf.

    Returns:
        Tensor of the same shape and dtype as `x`. float16 and bfloat16 inputs are computed in
        float32 and cast back. A row of all -inf logits gives all -inf.

    Raises:
        ValueError: if `x` is not floating point, `axis` is out of range or `mask` does not
            broadcast to `x`.
    """
    x, dtype = _prepare(x, axis)
    if mask is not None:
        mask = _check_mask(mask, x)
    return ops.cast(_log_softmax_float32(x, axis, mask), dtype)


def _softmax_float32(x, axis, mask):
    @ops.custom_gradient
    def softmax(logits):
        if mask is None:
            probs = ops.softmax(logits, axis=axis)
        else:
            probs = ops.softmax(ops.where(mask, logits, float("-inf")), axis=axis)
            # A fully masked row is 0/0 = NaN in the kernel; every entry of it is masked.
            probs = ops.where(mask, probs, 0.0)

        def gradient(*args, upstream=None):
            upstream = args[0] if upstream is None else upstream
            # The softmax Jacobian in closed form, J^T g = (g - <g, p>) * p, in the order of
            # TensorFlow's own softmax gradient (under XLA both compile to the same program).
            # Masked entries have p = 0 and so get no gradient, without differentiating
            # through the masks' `where`s.
            return (upstream - ops.sum(upstream * probs, axis=axis, keepdims=True)) * probs

        return probs, gradient

    return softmax(x)


def stable_softmax(x, axis=-1, mask=None):
    """Softmax along `axis`: exp(x - m) / sum(exp(x - m)) with m the maximum of each row.

    Args:
        x: Floating-point tensor of logits.
        axis: The axis to normalise over.
        mask: Optional boolean tensor broadcastable to `x` (NumPy rules, e.g. shape
            `(classes,)` masks classes in every row); False entries get probability 0, and a
            fully masked row is all zeros (never NaN).

    Returns:
        Probabilities with the shape and dtype of `x`; float16 and bfloat16 inputs are
        computed in float32 and rounded once. -inf logits get probability 0; a row with no
        finite logit has no distribution and, without a mask, comes out NaN as from
        `tf.nn.softmax` (mask it, or use `log_softmax`, which gives -inf). The returned
        tensor carries its logits for Keras' cross-entropy losses (see `StableSoftmax`).

    Raises:
        ValueError: if `x` is not floating point, `axis` is out of range or `mask` does not
            broadcast to `x`.
    """
    x, dtype = _prepare(x, axis)
    if mask is not None:
        mask = _check_mask(mask, x)
    return _attach_logits(ops.cast(_softmax_float32(x, axis, mask), dtype), x, mask)


def _keras_mask_to_full_rank(mask, inputs):
    """Keras' per-step mask (rank one lower, shape inputs.shape[:-1]) gets a trailing axis."""
    mask = ops.convert_to_tensor(mask)
    mask_shape, input_shape = tuple(mask.shape), tuple(inputs.shape)
    if len(mask_shape) == len(input_shape):
        return mask  # stable_softmax checks the broadcast
    if len(mask_shape) == len(input_shape) - 1 and all(
        m is None or d is None or m in (1, d) for m, d in zip(mask_shape, input_shape)
    ):
        return ops.expand_dims(mask, -1)
    raise ValueError(
        "StableSoftmax takes a `mask` with the inputs' rank (broadcastable to them), or Keras' "
        "per-step mask of shape inputs.shape[:-1]. "
        f"Received: mask.shape={_shape_text(mask_shape)} for "
        f"inputs.shape={_shape_text(input_shape)}."
    )


@keras.saving.register_keras_serializable(package="layers")
class StableSoftmax(keras.layers.Layer):
    """Softmax (or log-softmax) layer that cannot overflow and never returns NaN for finite input.

    The maximum is subtracted per row along `axis` (never across the batch), so results are
    within float32 rounding of a float64 reference for logits of any size (e.g. rows around
    -5000 or 1e4). See `stable_softmax` and `log_softmax`.

    Cross-entropy without precision loss: the probabilities this layer returns carry their
    logits, which Keras' `CategoricalCrossentropy` and
    `SparseCategoricalCrossentropy` (with `from_logits=False`) use instead of the clipped
    probabilities, exactly as they do for Keras' own softmax. So a model ending in this layer
    gets the same loss as logits with `from_logits=True`, even for confident wrong predictions.
    That is TensorFlow's: JAX arrays take no attributes and Keras' PyTorch losses do not look,
    so there the loss uses the probabilities (clipped at 1e-7, as with Keras' own softmax);
    end in logits with `from_logits=True` for exact losses on those backends.
    Under mixed precision, build it with `dtype="float32"` so that the loss sees float32 values.

    Args:
        axis: Axis to normalise over.
        log: If True, return log-probabilities (use with `from_logits=True` losses).
        **kwargs: Base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: Floating-point logits.
        mask: Optional boolean mask; False entries get probability 0. Either broadcastable to
            `inputs` with the same rank (NumPy rules), or Keras' automatic per-step mask: one
            rank lower with shape `inputs.shape[:-1]`, e.g. `(batch, time)` from
            `Embedding(mask_zero=True)` for `(batch, time, features)` values, which masks whole
            steps (whatever `axis` is). Any other mask raises a ValueError. So a `(3,)` mask
            for `(3, 3)` inputs masks rows here, columns in `stable_softmax`: give the layer
            shape `(1, 3)` to mask columns.

    Example:
        >>> layer = StableSoftmax()
        >>> layer(np.array([[1e4, 0.0], [-5000.0, -5001.0]], "float32"))  # no NaN, no overflow
    """

    def __init__(self, axis=-1, log=False, **kwargs):
        super().__init__(**kwargs)
        _check_axis(axis, None)
        if not isinstance(log, bool):
            raise ValueError(f"Argument `log` must be True or False. Received: log={log!r}")
        self.axis = axis
        self.log = log
        self.supports_masking = True

    def build(self, input_shape):
        _check_axis(self.axis, len(input_shape))
        super().build(input_shape)

    def call(self, inputs, mask=None):
        if mask is not None:
            mask = _keras_mask_to_full_rank(mask, inputs)
        if self.log:
            return log_softmax(inputs, axis=self.axis, mask=mask)
        return stable_softmax(inputs, axis=self.axis, mask=mask)

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_mask(self, inputs, mask=None):
        # The mask is consumed here: downstream layers see plain probabilities.
        return None

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "log": self.log}
