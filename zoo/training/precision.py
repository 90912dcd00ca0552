"""Mixed precision: the run's dtype policy, float16's loss scaling, the caller's policy kept.

* "bfloat16" (Keras' "mixed_bfloat16" policy): bfloat16 has float32's exponent range, so
  gradients do not underflow and no loss scaling is needed. The fast path on TPUs, Ampere and
  newer GPUs, and CPUs with AVX512-BF16/AMX.
* "float16" ("mixed_float16"): the fast path on GPUs without bfloat16 tensor cores (V100,
  T4). Its 5-bit exponent underflows small gradients, so the loss is multiplied by a dynamic
  scale before the backward pass (`keras.optimizers.LossScaleOptimizer`; Micikevicius et al.
  2018, "Mixed Precision Training", https://arxiv.org/abs/1710.03740): a step whose gradients
  overflow is skipped and the scale halved; after 2,000 finite steps it doubles. The scale and
  its counter are optimizer variables, so the run checkpoint keeps them (exact resume).

Either way the zoo computes softmax, losses and metrics in float32 (`zoo.training.task`), and
weights stay float32. The global policy is set for the run and the caller's restored after it.
"""

import contextlib

import keras

from zoo.validation import PRECISIONS, check_choice


def normalize_precision(value):
    """`mixed_precision` as given -> None (float32), "bfloat16" or "float16".

    True means "bfloat16" (the option's meaning before float16 was offered); False and None
    mean float32; Keras' policy names ("mixed_float16") are accepted too.

    Raises:
        ValueError: for anything else.
    """
    if value is None or value is False:
        return None
    if value is True:
        return "bfloat16"
    if isinstance(value, str) and value.startswith("mixed_"):
        value = value[len("mixed_"):]
    check_choice("mixed_precision", value, PRECISIONS)
    return value


@contextlib.contextmanager
def precision_policy(precision):
    """Run the block under the mixed policy of `precision` (None: leave the policy as it is),
    then restore the caller's global policy, whatever it was."""
    previous = keras.mixed_precision.global_policy()
    if precision is not None:
        keras.mixed_precision.set_global_policy(f"mixed_{precision}")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def with_loss_scaling(optimizer, precision):
    """The optimizer a run applies gradients with: wrapped in a dynamic loss scale for float16."""
    if precision == "float16":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def loss_scale(optimizer):
    """The current dynamic loss scale (a float), or None without loss scaling."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer) and optimizer.built:
        return float(optimizer.dynamic_scale.numpy())
    return None
