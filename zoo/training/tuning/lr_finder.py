"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates for Training Neural
Networks", https://arxiv.org/abs/1506.01186, section 3.3; the form of fastai's `lr_find`).

Train for at most `steps` steps while the learning rate grows exponentially, per step, from
`start_lr` to `end_lr`; follow an exponentially smoothed loss (bias-corrected, as Adam's
moments are); stop when it exceeds `stop_factor` times the lowest smoothed loss so far (or
becomes NaN); put every weight and optimizer variable back.

The suggestion is the rate where the loss falls fastest per decade of learning rate, before its
lowest point: the middle of the useful range, where the loss is already moving and still far
from blowing up. It is read from a centred moving average of the losses (a few steps either
side), not from the running average that decides when to stop: with 0.98 smoothing and ~12
steps per decade, the running average lags the rate by about four decades, and its steepest
point would lie that far to the right.

The steps are the engine's own (`DistributedTrainer`, any strategy, several replicas), on the
run's shuffled training batches, with the recipe's optimizer; the rate is the one each step
applies. The suggestion is also given as `--lr`, i.e. for the recipe's reference batch, so
that `zoo train --lr RATE` (which scales it to the global batch) applies the same rate.
"""

import dataclasses
import math
import os

import numpy as np

from zoo.training import precision
from zoo.training.pipeline import training_stream
from zoo.training.tuning.common import prepared_run, restore_state, save_figure, save_state
from zoo.validation import check_int, check_number

PLOT_FILE = "lr_find.png"
# The first steps are left out of the suggestion: the smoothed loss has seen too few steps.
SKIP_START = 5


@dataclasses.dataclass
class RangeTest:
    """What `find_learning_rate` returns.

    Attributes:
        rates: The learning rate each step applied.
        losses: Each step's training loss (mean over its global batch).
        smoothed: The centred moving average of `losses` the suggestion is read from.
        suggestion: The suggested `--lr` (stated for the recipe's reference batch, as `zoo
            train --lr` takes it).
        applied: The rate the suggestion applies at this run's global batch (`rates` units).
        lowest: The applied rate where the smoothed loss was lowest.
        reason: One line: why this rate.
        stopped: Why the test stopped ("the smoothed loss exceeded 4x its lowest", ...).
        plot: Path of the saved plot, or None.
    """

    rates: list
    losses: list
    smoothed: list
    suggestion: float
    applied: float
    lowest: float
    reason: str
    stopped: str
    plot: str | None = None


def centred_average(losses, window):
    """Each loss averaged with its `window // 2` neighbours either side (fewer at the ends)."""
    half, values = window // 2, np.asarray(losses, np.float64)
    return [float(values[max(i - half, 0):i + half + 1].mean()) for i in range(len(values))]


def steepest_descent(rates, smoothed, skip_start=SKIP_START):
    """The index where the smoothed loss falls fastest against log10(rate), before its lowest
    point, and that slope (loss per decade)."""
    lowest = int(np.argmin(smoothed))
    start = min(skip_start, max(lowest - 1, 0))
    if lowest - start < 2:  # too few points before the minimum: take the minimum's left side
        return max(lowest - 1, 0), 0.0
    slopes = np.gradient(np.asarray(smoothed[start:lowest + 1], np.float64),
                         np.log10(np.asarray(rates[start:lowest + 1], np.float64)))
    index = int(np.argmin(slopes))
    return start + index, float(slopes[index])


def plot_range_test(result, path):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4))
    ax = figure.subplots()
    ax.semilogx(result.rates, result.losses, alpha=0.35, label="loss per step")
    ax.semilogx(result.rates, result.smoothed, label="centred average")
    ax.axvline(result.applied, color="C2", ls="--",
               label=f"suggested: {result.applied:.3g} (--lr {result.suggestion:.3g})")
    ax.axvline(result.lowest, color="k", ls=":", label=f"lowest smoothed loss: {result.lowest:.3g}")
    top = max(result.smoothed[: SKIP_START + 1] or result.smoothed)
    ax.set_ylim(min(result.smoothed) * 0.9, top * 1.6)
    ax.set(xlabel="learning rate applied (log)", ylabel="training loss",
           title="learning-rate range test")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figure.tight_layout()
    return save_figure(figure, path)


def find_learning_rate(config=None, strategy=None, start_lr=1e-7, end_lr=10.0, steps=100,
                       smoothing=0.98, stop_factor=4.0, plot=True, **overrides):
    """Run the learning-rate range test on the model and data `train(config)` would use.

    Args:
        config: A `TrainConfig` (its model, dataset, recipe, devices, seed); `**overrides`
            replace its fields, as in `train`.
        strategy: A `tf.distribute.Strategy`; None: from `config.devices`/`cpu_replicas`.
        start_lr: The first step's learning rate (> 0).
        end_lr: The last step's learning rate (> start_lr).
        steps: The most steps (>= 10): the rate is multiplied by (end/start)^(1/(steps-1)) each.
        smoothing: Weight of the past in the moving average of the loss, in [0, 1).
        stop_factor: Stop when the smoothed loss exceeds this multiple of its lowest (> 1).
        plot: Save the plot as `lr_find.png` in the run directory (`config.out`, default
            `runs/MODEL-DATASET`).

    Returns:
        `RangeTest`. The model's and optimizer's variables are restored afterwards.
    """
    check_number("start_lr", start_lr, low=0, low_inclusive=False)
    check_number("end_lr", end_lr, low=start_lr, low_inclusive=False)
    check_int("steps", steps, minimum=10)
    check_number("smoothing", smoothing, low=0, high=1, high_inclusive=False)
    check_number("stop_factor", stop_factor, low=1, low_inclusive=False)
    run, policy = prepared_run(config, strategy, **overrides)
    with precision.precision_policy(policy):
        losses, rates, stopped = _ramp(run, start_lr, end_lr, steps, smoothing, stop_factor)
    if len(losses) < 3:
        raise ValueError(
            f"The range test stopped after {len(losses)} step(s) ({stopped}): start lower. "
            f"Received: start_lr={start_lr}"
        )
    # About half a decade of learning rate either side at the default 100 steps over 8 decades.
    smoothed = centred_average(losses, 2 * (steps // 25) + 1)
    index, slope = steepest_descent(rates, smoothed)
    factor = run.plan.scaled_lr(run.global_batch) / run.plan.base_lr
    lowest = rates[int(np.argmin(smoothed))]
    reason = (
        f"the loss (centred average) falls fastest there ({slope:.3g} per tenfold increase of the rate, "
        f"at loss {smoothed[index]:.3g}); it is lowest at {lowest:.3g} and the test stopped at "
        f"{rates[-1]:.3g} ({stopped})"
    )
    result = RangeTest(rates, losses, smoothed, rates[index] / factor, rates[index], lowest,
                       reason, stopped)
    if plot and run.chief:
        result.plot = plot_range_test(result, os.path.join(run.run_dir, PLOT_FILE))
    scaled = "" if factor == 1 else (
        f" (applies {result.applied:.3g} at global batch {run.global_batch}: "
        f"{run.config.lr_scaling} scaling from the reference batch {run.plan.reference_batch})")
    run.say(f"suggested learning rate: --lr {result.suggestion:.3g}{scaled}\nwhy: {reason}"
            + (f"\nplot: {result.plot}" if result.plot else ""))
    return result


def _ramp(run, start_lr, end_lr, steps, smoothing, stop_factor):
    """The steps of the test; the model and optimizer are put back afterwards."""
    state = save_state(run.model, run.optimizer)
    train_data, _, buffer = run.training_data()
    per_epoch = max(run.splits.num_train // run.global_batch, 1)
    stream = training_stream(train_data, run.global_batch, run.config.seed, 0,
                             math.ceil(steps / per_epoch), run.splits.num_train, run.augment,
                             buffer=buffer)
    step = run.trainer.bind_steps(iter(run.strategy.experimental_distribute_dataset(stream)))
    growth = (end_lr / start_lr) ** (1 / (steps - 1))
    losses, rates, best, average = [], [], math.inf, 0.0
    stopped = f"reached end_lr {end_lr:g}"
    try:
        for index in range(steps):
            rate = start_lr * growth ** index
            result = step([rate])
            if result.diverged:
                stopped = "the loss became NaN or infinite, or exploded"
                break
            loss = result.totals["loss"] / max(result.totals["count"], 1e-12)
            losses.append(loss)
            rates.append(rate)
            average = smoothing * average + (1 - smoothing) * loss
            smoothed = average / (1 - smoothing ** (index + 1))
            best = min(best, smoothed)
            if smoothed > stop_factor * best:
                stopped = f"the smoothed loss exceeded {stop_factor:g}x its lowest"
                break
    finally:
        restore_state(run.model, run.optimizer, state)
        run.trainer.loss_limit = math.inf  # training sets its own from its first step
    return losses, rates, stopped
