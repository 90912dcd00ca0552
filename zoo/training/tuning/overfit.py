"""The overfit check (`zoo train --overfit-batch N`): can the model memorise N examples?

The notes' first sanity check: with augmentation and regularisation off, a model that trains
at all drives the loss on a handful of examples to about zero. One that cannot has a bug (labels
that do not match the inputs, a loss on the wrong outputs, a frozen layer, a learning rate of
zero), and more data or epochs will not fix it.

The check uses the run's own model, optimizer and training step, on the first N training
examples (the same N each step: one global batch), with augmentation, weight decay, label
smoothing, dropout and weight penalties off, at the recipe's peak learning rate (scaled to the
global batch; no warm-up, no decay). Every `check_every` steps it evaluates the N examples in
inference mode; it passes at 100% accuracy (tasks with an accuracy) or a loss below 1/1000 of
the first (the others). At the step budget it fails and reports the diagnostics of the last
steps (`zoo.training.tuning.diagnostics`).
"""

import dataclasses

import keras

from zoo.layers import ScaledDropout
from zoo.training import keras_internals, precision
from zoo.training.config import TrainConfig
from zoo.training.pipeline import distribute_options, evaluation_batches
from zoo.training.strategy import get_strategy
from zoo.training.tuning.common import prepared_run
from zoo.training.tuning.diagnostics import LayerProbe, warnings_for
from zoo.validation import check_int, check_number

# Without an accuracy: passed when the loss is below this fraction of the first evaluation's.
LOSS_FRACTION = 1e-3


@dataclasses.dataclass
class OverfitResult:
    """What `overfit_batch` returns.

    Attributes:
        passed: The model memorised the examples within the budget.
        steps: Training steps taken.
        metrics: The last evaluation of the examples ({"loss", "accuracy", ...}).
        initial_loss: The loss before the first step.
        diagnostics: When it failed, the per-layer measurements of the last steps
            (`update_ratio/LAYER`, `grad_norm/LAYER`, `dead_fraction/LAYER`); else {}.
        diagnosis: When it failed, one line per problem the diagnostics show.
        message: What the command prints.
        curve: (steps taken, loss, accuracy or None) at each evaluation, the first at step 0.
    """

    passed: bool
    steps: int
    metrics: dict
    initial_loss: float
    diagnostics: dict
    diagnosis: list
    message: str
    curve: list = dataclasses.field(default_factory=list)


def switch_off_regularisation(model):
    """Dropout rates to 0 and weight penalties off, in place; returns how many were changed."""
    changed = 0
    for layer in keras_internals.flatten_layers(model, include_self=False):
        if isinstance(layer, (keras.layers.Dropout, ScaledDropout)) and layer.rate:
            layer.rate, changed = 0.0, changed + 1
        if getattr(layer, "activity_regularizer", None) is not None:
            layer.activity_regularizer, changed = None, changed + 1
    for variable in model.weights:
        if getattr(variable, "regularizer", None) is not None:
            variable.regularizer, changed = None, changed + 1
    return changed


def overfit_batch(config=None, strategy=None, examples=32, max_steps=500, lr=None,
                  check_every=10, **overrides):
    """Train on `examples` training examples until they are memorised or `max_steps` pass.

    Args:
        config: A `TrainConfig` (model, dataset, recipe, devices); `**overrides` as in `train`.
        strategy: A `tf.distribute.Strategy`; None: from the config.
        examples: Training examples, all of them in every step (a multiple of the replicas).
        max_steps: The step budget.
        lr: The learning rate each step applies (>= 0, 0 included: a model that cannot learn);
            None: the recipe's, scaled to the global batch.
        check_every: Steps between evaluations of the examples.

    Returns:
        `OverfitResult`.
    """
    check_int("examples", examples)
    check_int("max_steps", max_steps)
    check_int("check_every", check_every)
    check_number("lr", lr, low=0, allow_none=True)
    config = dataclasses.replace(config or TrainConfig(), **overrides)
    if strategy is None:
        strategy = get_strategy(config.devices, config.cpu_replicas)
    replicas = strategy.num_replicas_in_sync
    if examples % replicas:
        raise ValueError(
            f"Argument `examples` must be a multiple of the {replicas} replicas (each takes an "
            f"equal share of every step). Received: examples={examples}"
        )
    run, policy = prepared_run(config, strategy, batch_size=examples // replicas,
                               augment=False, weight_decay=0.0, label_smoothing=0.0)
    switch_off_regularisation(run.model)
    rate = run.plan.scaled_lr(run.global_batch) if lr is None else float(lr)
    run.say(f"overfit check: {examples} training examples, learning rate {rate:.3g}, "
            f"at most {max_steps} steps; augmentation, dropout, weight decay and label "
            "smoothing off")
    with precision.precision_policy(policy):
        return _train_until_memorised(run, examples, max_steps, rate, check_every)


def _train_until_memorised(run, examples, max_steps, rate, check_every):
    subset = run.splits.train.take(examples).cache()
    distribute = run.strategy.experimental_distribute_dataset
    batches = subset.repeat().batch(examples, drop_remainder=True).with_options(
        distribute_options())
    step = run.trainer.bind_steps(iter(distribute(batches)))

    def evaluate():
        return run.trainer.evaluate(distribute(evaluation_batches(subset, examples)))

    def memorised(metrics, initial):
        if "accuracy" in metrics:
            return metrics["accuracy"] >= 1.0
        return metrics["loss"] <= LOSS_FRACTION * initial

    metrics = evaluate()
    initial, taken = metrics["loss"], 0
    curve = [(0, metrics["loss"], metrics.get("accuracy"))]
    probe = LayerProbe(run.model, run.info.task, run.trainer.outputs,
                       next(iter(evaluation_batches(subset, examples))))
    last = 0
    while taken < max_steps and not memorised(metrics, initial):
        last = min(check_every, max_steps - taken)
        if taken + last >= max_steps:
            probe.snapshot()  # the last steps: their updates are what a failure reports
        result = step([rate] * last)
        taken += result.steps
        if result.diverged:
            break
        metrics = evaluate()
        curve.append((taken, metrics["loss"], metrics.get("accuracy")))
    passed = memorised(metrics, initial)
    shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
    if passed:
        measured = f"accuracy {metrics['accuracy']:.0%}" if "accuracy" in metrics else (
            f"loss below {LOSS_FRACTION:g} of the first")
        message = (f"overfit check passed: {measured} on the {examples} examples after "
                   f"{taken} steps (loss {initial:.4g} -> {metrics['loss']:.4g})")
        return OverfitResult(True, taken, metrics, initial, {}, [], message, curve)
    row = probe.measure(last)
    diagnosis = warnings_for(row)
    if not diagnosis:
        diagnosis = ["no layer is outside the diagnostics' ranges: try a higher learning rate "
                     "(--lr) or a larger budget (--overfit-steps)"]
    message = (f"overfit check failed: after {taken} steps, on the {examples} examples: {shown} "
               f"(loss at the start {initial:.4g}). The diagnostics of the last {last} steps:\n"
               + "\n".join(f"  {line}" for line in diagnosis))
    return OverfitResult(False, taken, metrics, initial, row, diagnosis, message, curve)
