"""Per-layer training diagnostics (`zoo train --diagnostics`): what the notes say to watch.

Each epoch, for every layer with trainable weights (its weights taken together):

* `update_ratio/LAYER`: ||dw|| / ||w||, the size of one update relative to the weights. The
  notes' rule of thumb (CS231n, "Neural Networks Part 3": "ratio of the update magnitudes to
  the value magnitudes") puts it around 1e-3. Measured over the epoch's last call of the
  compiled step (k <= steps_per_execution steps) as ||w_after - w_before|| / k / ||w_before||:
  the mean update of k consecutive steps, which is the per-step update exactly with k = 1
  (`--steps-per-execution 1`) and within a small factor with momentum or Adam, whose
  consecutive updates point nearly the same way.
* `grad_norm/LAYER`: the norm of the gradient of the loss (mean over the examples) on a fixed
  batch of validation examples, in inference mode (nothing of the run changes).
* `dead_fraction/LAYER`, for ReLU-family layers (ReLU, ReLU6, the zoo's ShiftedReLU, and
  layers with a built-in ReLU): the fraction of units (channels) never active on that batch,
  at any position of any example.

Warnings, one line per layer, outside these ranges (`UPDATE_RATIO_LOW/HIGH`, `DEAD_WARNING`):
update/weight below 1e-4 (10x under the rule of thumb: the learning rate may be too low for the
layer; judged only where the measured steps ran at 10% of the peak rate or more, since warm-up
and a decayed schedule's tail are slow on purpose), above 1e-1 (100x over: too high), exactly
0 (the weights do not move), half or more of a layer's units dead. The upper bound is further
out because Adam-type optimizers train healthily at 1e-2 (LeNet-5 with Adam at 3e-3: about
5e-3 to 3e-2 per layer), and a rate too high shows itself in the loss first.

They go into the history (`history.csv`, TensorBoard under `train/`) and `diagnostics.png`.
Off (the default), nothing of this runs and the compiled step is the same; on, the cost is one
copy of the weights, one forward-backward pass on the batch and a Python call per call of the
step, per epoch (`python -m benchmarks diagnostics` measures it).
"""

import math
import os

import keras
import numpy as np
import tensorflow as tf

from zoo.training import keras_internals
from zoo.training.task import batch_statistics
from zoo.training.tuning.common import save_figure

UPDATE_RATIO_LOW = 1e-4
UPDATE_RATIO_HIGH = 1e-1
# "Too low" is judged only on steps at this fraction of the peak rate or more: warm-up and the
# tail of a decaying schedule are meant to be slow.
JUDGED_FRACTION = 0.1
DEAD_WARNING = 0.5
PLOT_FILE = "diagnostics.png"
# Validation examples of the fixed batch.
PROBE_EXAMPLES = 256
KINDS = ("update_ratio", "grad_norm", "dead_fraction")


def _relu_floor(layer):
    """The output of an inactive unit of a ReLU-family layer, or None for other layers."""
    from zoo.layers import ShiftedReLU

    if isinstance(layer, ShiftedReLU):
        return -layer.shift
    if isinstance(layer, keras.layers.ReLU):
        return 0.0 if not layer.negative_slope else None
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", "")
    return 0.0 if name in ("relu", "relu6") else None


def _leaf_layers(model):
    return [layer for layer in keras_internals.flatten_layers(model, include_self=False)
            if not keras_internals.flatten_layers(layer, include_self=False)]


class LayerProbe:
    """The measurements of one model on a fixed batch.

    Args:
        model: A built Keras model (functional for the dead-unit counts).
        task: Registry task (the loss).
        outputs: What the model returns (see `zoo.training.task`).
        batch: `(inputs, targets)` or `(inputs, targets, sample_weight)`: the fixed examples.
    """

    def __init__(self, model, task, outputs, batch):
        self.model, self.task, self.outputs = model, task, outputs
        self.batch = tuple(batch) + (None,) * (3 - len(batch))
        self.layers = [layer for layer in _leaf_layers(model) if layer.trainable_weights]
        self.relu_layers = [(layer, _relu_floor(layer)) for layer in _leaf_layers(model)
                            if _relu_floor(layer) is not None]
        self._activations = None
        if self.relu_layers and getattr(model, "inputs", None):
            try:  # a functional model: its ReLU outputs as a model of their own
                inputs = model.inputs if len(model.inputs) > 1 else model.inputs[0]
                self._activations = keras.Model(
                    inputs, [layer.output for layer, _ in self.relu_layers])
            except (ValueError, AttributeError):
                self.relu_layers = []
        variables = [v for layer in self.layers for v in layer.trainable_weights]
        self._variables = variables

        @tf.function
        def gradients():
            inputs, targets, weights = self.batch
            with tf.GradientTape() as tape:
                stats = batch_statistics(task, targets, model(inputs, training=False), weights,
                                         self.outputs)
                loss = stats["loss"] / tf.maximum(stats["count"], 1.0)
            return tape.gradient(loss, variables)

        self._gradients = gradients
        self._before = None

    def snapshot(self):
        """Remember the weights (the start of the update that `update_ratios` measures)."""
        self._before = [np.array(v.numpy(), np.float64) for v in self._variables]

    def update_ratios(self, steps):
        """{layer: ||w_now - w_snapshot|| / steps / ||w_snapshot||} (None before a snapshot)."""
        if self._before is None:
            return {}
        ratios, index = {}, 0
        for layer in self.layers:
            count = len(layer.trainable_weights)
            before = self._before[index:index + count]
            after = [np.array(v.numpy(), np.float64) for v in layer.trainable_weights]
            index += count
            change = math.sqrt(sum(float(np.sum((a - b) ** 2)) for a, b in zip(after, before)))
            size = math.sqrt(sum(float(np.sum(b ** 2)) for b in before))
            ratios[layer.name] = change / max(steps, 1) / size if size else math.inf
        self._before = None
        return ratios

    def gradient_norms(self):
        gradients, norms, index = self._gradients(), {}, 0
        for layer in self.layers:
            count = len(layer.trainable_weights)
            parts = [g for g in gradients[index:index + count] if g is not None]
            index += count
            norms[layer.name] = math.sqrt(sum(float(tf.reduce_sum(tf.square(tf.cast(
                tf.convert_to_tensor(g), tf.float64)))) for g in parts))
        return norms

    def dead_fractions(self):
        if not self.relu_layers or self._activations is None:
            return {}
        values = self._activations(self.batch[0], training=False)
        values = values if isinstance(values, (list, tuple)) else [values]
        fractions = {}
        for (layer, floor), value in zip(self.relu_layers, values):
            value = np.asarray(keras.ops.convert_to_numpy(value), np.float64)
            active = (value > floor + 1e-12).reshape(-1, value.shape[-1]).any(axis=0)
            fractions[layer.name] = float(1.0 - active.mean())
        return fractions

    def measure(self, steps=None):
        """One row: `update_ratio/LAYER` (when a snapshot was taken), `grad_norm/LAYER`,
        `dead_fraction/LAYER`."""
        row = {}
        if steps is not None:
            row.update({f"update_ratio/{k}": v for k, v in self.update_ratios(steps).items()})
        row.update({f"grad_norm/{k}": v for k, v in self.gradient_norms().items()})
        row.update({f"dead_fraction/{k}": v for k, v in self.dead_fractions().items()})
        return row


def warnings_for(row, judge_low=True):
    """One line per layer outside the ranges (see the module's docstring); `judge_low`: warn
    of ratios below `UPDATE_RATIO_LOW` (off for steps at a deliberately low rate)."""
    lines = []
    for key, value in row.items():
        kind, _, layer = key.partition("/")
        if kind == "update_ratio":
            if value == 0:
                lines.append(f"{layer}: update/weight 0, the weights do not move (a learning "
                             "rate of 0, a frozen layer, or no gradient reaches it)")
            elif value < UPDATE_RATIO_LOW and judge_low:
                lines.append(f"{layer}: update/weight {value:.1g} (below {UPDATE_RATIO_LOW:g}; "
                             "about 1e-3 is healthy), the learning rate may be too low for "
                             "this layer")
            elif value > UPDATE_RATIO_HIGH:
                lines.append(f"{layer}: update/weight {value:.1g} (above {UPDATE_RATIO_HIGH:g}; "
                             "about 1e-3 is healthy), the learning rate may be too high for "
                             "this layer")
        elif kind == "dead_fraction" and value >= DEAD_WARNING:
            lines.append(f"{layer}: {value:.0%} of its units never active on the fixed batch "
                         "(dead ReLUs: a learning rate too high, or a bad initialisation)")
    return lines


def fixed_batch(dataset, examples=PROBE_EXAMPLES):
    """The first `examples` examples of an unbatched dataset, as one batch of tensors."""
    return next(iter(dataset.take(examples).batch(examples)))


def plot_diagnostics(history, path):
    """Each kind over the epochs, one line per layer (log scale for the ratios and norms)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    kinds = [k for k in KINDS if any(key.startswith(f"{k}/") for key in history[-1])]
    figure = Figure(figsize=(5.5 * max(len(kinds), 1), 4))
    axes = figure.subplots(1, max(len(kinds), 1), squeeze=False)[0]
    epochs = [row["epoch"] for row in history]
    for ax, kind in zip(axes, kinds):
        keys = [key for key in history[-1] if key.startswith(f"{kind}/")]
        for key in keys:
            ax.plot(epochs, [row.get(key, np.nan) for row in history], "o-", ms=3,
                    label=key.partition("/")[2])
        if kind == "update_ratio":
            ax.axhspan(UPDATE_RATIO_LOW, UPDATE_RATIO_HIGH, color="C2", alpha=0.08)
            ax.axhline(1e-3, color="C2", ls=":", lw=1)
        if kind != "dead_fraction":
            ax.set_yscale("log")
        ax.set(xlabel="epoch", title=kind.replace("_", " "))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, ncol=1 + len(keys) // 12)
    figure.tight_layout()
    return save_figure(figure, path)


class Diagnostics(keras.callbacks.Callback):
    """The diagnostics of a run, as a callback of `train` (`zoo train --diagnostics`).

    Args:
        probe: A `LayerProbe` of the run's model.
        steps_per_execution: Steps per call of the compiled step (to find the epoch's last).
        steps_for_epoch: `epoch -> steps` of that epoch (None: `params["steps"]`).
        peak_lr: The run's peak learning rate (None: always judge low ratios); ratios are
            called too low only when the epoch's last rate (`logs["lr"]`) is 10% of it or more.
        plot_path: Where to save the plot when training ends (None: no plot).
        say: Prints the warnings (None: silent).
    """

    def __init__(self, probe, steps_per_execution, steps_for_epoch=None, peak_lr=None,
                 plot_path=None, say=print):
        super().__init__()
        self.probe, self.steps_per_execution, self.peak_lr = probe, steps_per_execution, peak_lr
        self.steps_for_epoch, self.plot_path, self.say = steps_for_epoch, plot_path, say
        self.history, self.warnings = [], []
        self._epoch, self._snapshot_step = 0, None

    def _steps(self):
        if self.steps_for_epoch is not None:
            return self.steps_for_epoch(self._epoch)
        return self.params.get("steps")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._snapshot_step = epoch, None

    def on_train_batch_begin(self, batch, logs=None):
        steps = self._steps()
        if steps is not None and batch + self.steps_per_execution >= steps:
            self.probe.snapshot()  # the epoch's last call starts here
            self._snapshot_step = batch

    def on_epoch_end(self, epoch, logs=None):
        steps = self._steps()
        taken = None if self._snapshot_step is None else steps - self._snapshot_step
        row = self.probe.measure(taken)
        if logs is not None:
            logs.update(row)
        self.history.append({"epoch": epoch + 1, **row})
        rate = (logs or {}).get("lr")
        judge_low = self.peak_lr is None or rate is None or rate >= JUDGED_FRACTION * self.peak_lr
        lines = warnings_for(row, judge_low)
        self.warnings.append(lines)
        if self.say is not None:
            for line in lines:
                self.say(f"  diagnostics: {line}")

    def on_train_end(self, logs=None):
        if self.plot_path and self.history:
            plot_diagnostics(self.history, self.plot_path)


def run_diagnostics(run):
    """The `Diagnostics` callback of a prepared `zoo.training.run._Run` (its validation
    examples, steps and run directory)."""
    from zoo.training.strategy import batch_size_for_epoch

    probe = LayerProbe(run.model, run.info.task, run.trainer.outputs,
                       fixed_batch(run.splits.validation))
    ramp, batch = run.config.batch_size_ramp, run.settings["batch_size"]

    def steps_for_epoch(epoch):
        return run.splits.num_train // (batch_size_for_epoch(epoch, batch, ramp) * run.replicas)

    return Diagnostics(probe, run.steps_per_execution, steps_for_epoch,
                       peak_lr=run.plan.scaled_lr(run.global_batch), plot_path=os.path.join(run.run_dir, PLOT_FILE) if run.chief else None,
                       say=run.say)
