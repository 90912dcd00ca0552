"""What a run leaves behind and how it survives a crash.

* `RunCheckpoint`: a `tf.train.Checkpoint` of the model, the optimizer (its slots and step
  counter), the number of completed epochs and the early-stopping state, saved after every
  epoch through a `tf.train.CheckpointManager`. Restarting the same command restores it and
  continues with the next epoch; because each epoch's data order is a function of the seed and
  the epoch, the resumed run ends with the weights of an uninterrupted one. This is what Keras'
  `BackupAndRestore` callback does for `model.fit`, for our custom loop.
* `EarlyStopping` state lives in the checkpoint, so every worker of a multi-worker run (and a
  resumed run) takes the same decision.
* `write_history_csv`, `plot_history`, `TensorBoardWriter`: the run directory's records.

Under `MultiWorkerMirroredStrategy` every worker saves checkpoints (TensorFlow requires all
workers to take part); the chief writes to the run directory and worker N to `worker-N/`.
"""

import csv
import math
import os

import numpy as np
import tensorflow as tf


def is_chief(strategy):
    """True on the worker that writes the run directory (always, outside multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type in (None, "chief") or (
        task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().jobs
    )


def worker_dir(run_dir, strategy):
    """Where this worker writes: the run directory for the chief, `worker-N/` for the others."""
    if is_chief(strategy):
        return run_dir
    return os.path.join(run_dir, f"worker-{strategy.cluster_resolver.task_id}")


class RunCheckpoint:
    """Model + optimizer + progress, saved after every epoch and restored on restart.

    Args:
        directory: Where checkpoints go (e.g. `run_dir/checkpoints`).
        model: The Keras model.
        optimizer: Its optimizer (built, so that the slot variables exist).
        max_to_keep: Number of recent checkpoints kept.
    """

    def __init__(self, directory, model, optimizer, max_to_keep=2):
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="completed_epochs")
        self.best = tf.Variable(math.inf, dtype=tf.float64, trainable=False, name="best_monitor")
        self.wait = tf.Variable(0, dtype=tf.int64, trainable=False, name="epochs_since_best")
        self.checkpoint = tf.train.Checkpoint(
            model=model, optimizer=optimizer, epoch=self.epoch, best=self.best, wait=self.wait
        )
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, directory, max_to_keep=max_to_keep
        )

    def restore(self):
        """Restore the latest checkpoint, if any. Returns the number of completed epochs."""
        latest = self.manager.latest_checkpoint
        if latest is None:
            return 0
        self.checkpoint.restore(latest).assert_existing_objects_matched()
        return int(self.epoch.numpy())

    def save(self, completed_epochs):
        """Record that `completed_epochs` epochs are done and write a checkpoint."""
        self.epoch.assign(completed_epochs)
        return self.manager.save(checkpoint_number=completed_epochs)


class EarlyStopping:
    """Stop when `monitor` has not improved by `min_delta` for `patience` epochs.

    Its state is kept in a `RunCheckpoint`'s variables, so it survives a restart.

    Args:
        run_checkpoint: The `RunCheckpoint` holding `best` and `wait`.
        patience: Epochs without improvement before stopping; None disables stopping (the best
            value is still tracked, for the best checkpoint).
        mode: "min" (losses) or "max" (accuracies).
        min_delta: Smallest change that counts as an improvement.
    """

    def __init__(self, run_checkpoint, patience=None, mode="min", min_delta=0.0):
        if mode not in ("min", "max"):
            raise ValueError(f"Argument `mode` must be 'min' or 'max'. Received: mode={mode!r}")
        if patience is not None and patience < 1:
            raise ValueError(f"Argument `patience` must be >= 1. Received: patience={patience}")
        self.state = run_checkpoint
        self.patience = patience
        self.sign = 1.0 if mode == "min" else -1.0
        self.min_delta = min_delta

    def update(self, value):
        """Feed one epoch's monitored value. Returns (improved, should_stop)."""
        signed = self.sign * float(value)
        improved = signed < float(self.state.best.numpy()) - self.min_delta
        if improved:
            self.state.best.assign(signed)
            self.state.wait.assign(0)
        else:
            self.state.wait.assign_add(1)
        stop = self.patience is not None and int(self.state.wait.numpy()) >= self.patience
        return improved, stop


HISTORY_FILE = "history.csv"


def write_history_csv(path, history):
    """Write the list of per-epoch dicts as CSV (columns: the union of keys, in order)."""
    columns = []
    for row in history:
        columns.extend(k for k in row if k not in columns)
    tmp = f"{path}.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, path)


def read_history_csv(path, completed_epochs=None):
    """Read a history CSV back (floats, `epoch` as int); keep only completed epochs."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        rows = [
            {k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v != ""}
            for row in csv.DictReader(f)
        ]
    if completed_epochs is not None:
        rows = [r for r in rows if r["epoch"] <= completed_epochs]
    return rows


def plot_history(path, history):
    """Save a PNG of the loss and the first other metric (train and test) per epoch."""
    # A bare Figure renders to PNG without pyplot: no global backend switch, so a notebook
    # that calls train() keeps its inline plots.
    from matplotlib.figure import Figure

    epochs = [row["epoch"] for row in history]
    metrics = ["loss"] + [
        k
        for k in history[0]
        if not k.startswith(("val_", "epoch", "lr", "global_batch", "seconds", "loss"))
    ][:1]
    fig = Figure(figsize=(5 * len(metrics), 3.5))
    axes = fig.subplots(1, len(metrics), squeeze=False)
    for ax, name in zip(axes[0], metrics):
        ax.plot(epochs, [row.get(name, np.nan) for row in history], "o-", label="train")
        if f"val_{name}" in history[0]:
            ax.plot(epochs, [row.get(f"val_{name}", np.nan) for row in history], "s-", label="test")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _scalar(name, value, step):
    # What tf.summary.scalar writes, through TensorFlow's core summary op: the `tensorboard`
    # package (which implements tf.summary.scalar) is not a dependency of zoo.
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
    )
    tf.summary.write(name, tf.constant(float(value), tf.float32), step=step, metadata=metadata)


class TensorBoardWriter:
    """Per-epoch scalars for TensorBoard (`tensorboard --logdir RUN_DIR/logs`)."""

    def __init__(self, log_dir):
        self.train = tf.summary.create_file_writer(os.path.join(log_dir, "train"))
        self.test = tf.summary.create_file_writer(os.path.join(log_dir, "test"))

    def write(self, row):
        epoch = int(row["epoch"])
        with self.train.as_default():
            for key, value in row.items():
                if key != "epoch" and not key.startswith("val_"):
                    _scalar(key, value, epoch)
        with self.test.as_default():
            for key, value in row.items():
                if key.startswith("val_"):
                    _scalar(key[4:], value, epoch)
        self.train.flush()
        self.test.flush()
