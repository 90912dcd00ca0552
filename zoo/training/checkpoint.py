"""The run checkpoint: everything that decides the next step, saved together.

A `RunCheckpoint` is a `tf.train.Checkpoint` of

* the model (weights, batch-norm statistics) and the optimizer (slots, step counter);
* every random state: the `keras.random.SeedGenerator` of each layer (dropout masks; Keras 3
  keeps them outside the weights, so a checkpoint of the model alone replays the first
  epochs' masks after a resume) and Keras' global seed generator;
* the progress, as JSON: the data position (completed epochs, steps into the current epoch,
  global step), the running sums of the current epoch, the history rows, the early-stopping
  state, whether the run has finished.

Augmentation needs no state: its seeds are a function of (seed, epoch, example index), see
`zoo.training.pipeline`. So a run restored from a checkpoint continues exactly as the
uninterrupted run (bit for bit on CPU).

Checkpoints are numbered by the global step. Restoring takes the newest usable one: a damaged
file (a truncated `ckpt-N.data-*`) is reported and the previous checkpoint used. Under
`MultiWorkerMirroredStrategy` every worker keeps its own checkpoints, and the workers agree,
through one collective, on the newest step that every one of them holds (`agree`), so they
cannot resume out of step.
"""

import json
import math
import os
import re
import time
import warnings

import numpy as np
import tensorflow as tf

from zoo.training import keras_internals
from zoo.training.records import write_text_atomic
from zoo.training.strategy import is_multi_worker

MAX_TO_KEEP = 3
# tf.train.CheckpointManager's record of its checkpoints (rewritten by `repair`).
STATE_FILE = "checkpoint"
# Agreement status codes, gathered from every worker.
READY, DIFFERENT_RUN, NONE_USABLE = 0, 1, 2


def seed_generators(model):
    """Every `keras.random.SeedGenerator` of the model's layers (dropout, noise, augmentation
    layers), in a fixed order, plus Keras' global one (private Keras internals, read through
    `zoo.training.keras_internals`, which fails loudly if a Keras renamed them)."""
    found, seen = [], set()
    for layer in keras_internals.flatten_layers(model):
        for generator in keras_internals.layer_seed_generators(layer):
            if id(generator) not in seen:
                seen.add(id(generator))
                found.append(generator)
    found.append(keras_internals.global_seed_generator())
    return found


class EarlyStopping:
    """Stop when `monitor` has not improved by `min_delta` for `patience` epochs.

    Its state (`best`, `wait`) is part of the run checkpoint's progress, so it survives a
    restart and every worker of a multi-worker run takes the same decision.

    Args:
        patience: Epochs without improvement before stopping; None disables stopping (the best
            value is still tracked, for `best.keras`).
        mode: "min" (losses) or "max" (accuracies).
        min_delta: Smallest change that counts as an improvement.
    """

    def __init__(self, patience=None, mode="min", min_delta=0.0):
        from zoo.validation import check_choice, check_int

        check_choice("mode", mode, ("min", "max"))
        check_int("patience", patience, allow_none=True)
        self.patience = patience
        self.sign = 1.0 if mode == "min" else -1.0
        self.min_delta = min_delta
        self.best = math.inf
        self.wait = 0

    def update(self, value):
        """Feed one epoch's monitored value. Returns (improved, should_stop)."""
        signed = self.sign * float(value)
        improved = signed < self.best - self.min_delta
        if improved:
            self.best, self.wait = signed, 0
        else:
            self.wait += 1
        return improved, self.patience is not None and self.wait >= self.patience

    def state(self):
        return {"best": self.best, "wait": self.wait}

    def load(self, state):
        self.best, self.wait = float(state["best"]), int(state["wait"])


def initial_progress():
    """The progress of a run that has not taken a step."""
    return {"epoch": 0, "step": 0, "global_step": 0, "totals": {}, "history": [],
            "early_stopping": EarlyStopping().state(), "best_epoch": None, "finished": False}


class RunCheckpoint:
    """Model, optimizer, random states and progress, saved and restored together.

    Args:
        directory: Where checkpoints go (e.g. `run_dir/checkpoints`).
        model: The Keras model.
        optimizer: Its optimizer (built, so that the slot variables exist), or None.
        max_to_keep: Number of recent checkpoints kept.
    """

    def __init__(self, directory, model, optimizer=None, max_to_keep=MAX_TO_KEEP):
        self.directory = directory
        self.max_to_keep = max_to_keep
        # Create it outside any `strategy.scope()`: a string variable cannot be mirrored.
        self.progress = tf.Variable("", dtype=tf.string, trainable=False, name="progress")
        parts = {"model": model, "seeds": [g.state for g in seed_generators(model)],
                 "progress": self.progress}
        if optimizer is not None:
            parts["optimizer"] = optimizer
        self.checkpoint = tf.train.Checkpoint(**parts)
        # What `repair` found and did, one line each, for the run to print.
        self.notes = []
        self.repair()

    def numbers(self):
        """The step numbers of the checkpoints on disk (their `ckpt-N.index` files), oldest
        first."""
        found = []
        for name in tf.io.gfile.listdir(self.directory) if tf.io.gfile.isdir(self.directory) \
                else []:
            match = re.fullmatch(r"ckpt-(\d+)\.index", name)
            if match:
                found.append(int(match.group(1)))
        return sorted(found)

    def repair(self):
        """Make the manager see exactly the checkpoints on disk; remove killed writes' leftovers.

        The checkpoints are found from their `ckpt-N.index` files, not from the manager's state
        file (`checkpoints/checkpoint`): that file can be lost, damaged, or hold timestamps
        later than this machine's clock, and `tf.train.CheckpointManager` then lists nothing
        (or raises). So the state file is rewritten from the index files, with this clock's
        time, before the manager reads it. A note says when it disagreed with them.
        """
        self.notes = []
        if tf.io.gfile.isdir(self.directory):
            for name in sorted(tf.io.gfile.listdir(self.directory)):
                name = name.rstrip("/")
                # TensorFlow writes a checkpoint into `ckpt-N_temp/` and merges it into
                # `ckpt-N.*` at the end: a process killed in between leaves it, full size.
                if re.fullmatch(r"ckpt-\d+_temp.*", name):
                    tf.io.gfile.rmtree(os.path.join(self.directory, name))
                    self.notes.append(
                        f"removed {os.path.join(self.directory, name)}, left by a checkpoint "
                        "write that was interrupted")
        numbers = self.numbers()
        state_file = os.path.join(self.directory, STATE_FILE)
        problem = _state_problem(self.directory, numbers)
        if numbers:
            # The manager's own text format, with relative paths (as it writes them), so the
            # run directory can still be moved.
            now = time.time()
            lines = [f'model_checkpoint_path: "ckpt-{numbers[-1]}"']
            lines += [f'all_model_checkpoint_paths: "ckpt-{n}"' for n in numbers]
            lines += [f"all_model_checkpoint_timestamps: {now!r}" for _ in numbers]
            lines.append(f"last_preserved_timestamp: {now - 1.0!r}")
            write_text_atomic(state_file, "\n".join(lines) + "\n")
        elif tf.io.gfile.exists(state_file):
            tf.io.gfile.remove(state_file)
        if problem and numbers:
            self.notes.append(
                f"the checkpoint state file {state_file} {problem}; rewrote it from the "
                f"checkpoints on disk (ckpt-{', ckpt-'.join(map(str, numbers))})")
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self.directory, max_to_keep=self.max_to_keep
        )

    def path(self, number):
        return os.path.join(self.directory, f"ckpt-{number}")

    def resumable(self, saved_differences, workers):
        """What this worker can resume from: `(status, numbers, differences)`.

        Args:
            saved_differences: A function returning how the saved run record differs from this
                run's (empty: the same run); called only when there are checkpoints (without
                them a damaged record does not matter: the run starts afresh).
            workers: Workers of the run. One worker takes its newest readable checkpoint;
                several list every readable one, so that they can agree on a common one
                (`agree`).

        Returns:
            `READY` with the usable step numbers (none: start afresh), `DIFFERENT_RUN` with
            the differences, or `NONE_USABLE` when checkpoints exist but none reads back.
        """
        numbers = self.numbers()
        if not numbers:
            return READY, [], []
        differences = saved_differences()
        if differences:
            return DIFFERENT_RUN, [], differences
        usable = []
        for number in reversed(numbers):
            if self.usable(number):
                usable.append(number)
                if workers == 1:
                    break
        return (READY if usable else NONE_USABLE), usable, []

    def usable(self, number):
        """True when checkpoint `number` reads back completely; a warning says why not."""
        path = self.path(number)
        try:
            reader = tf.train.load_checkpoint(path)
            for name in reader.get_variable_to_dtype_map():
                reader.get_tensor(name)
            # Progress is what a restore needs first: it must be valid JSON.
            keys = [k for k in reader.get_variable_to_dtype_map() if k.startswith("progress/")]
            if not keys:
                raise ValueError("it has no progress record (written by an older zoo?)")
            json.loads(reader.get_tensor(keys[0]))
            return True
        except Exception as error:  # any damage: truncated data, bad index, missing shard
            warnings.warn(
                f"The checkpoint {path} cannot be read ({type(error).__name__}: "
                f"{str(error).splitlines()[0] if str(error) else ''}); using an older one.",
                RuntimeWarning,
                stacklevel=2,
            )
            return False

    def restore(self, number):
        """Restore checkpoint `number` into the model, optimizer and seeds; return its progress."""
        self.checkpoint.restore(self.path(number)).assert_existing_objects_matched()
        return json.loads(self.progress.numpy().decode("utf-8"))

    def save(self, number, progress):
        """Write checkpoint `number` (the global step) with `progress` (a JSON-able dict)."""
        self.progress.assign(json.dumps(progress))
        return self.manager.save(checkpoint_number=number)

    def clear(self):
        """Delete every checkpoint (for `--restart`)."""
        for number in self.numbers():
            for name in tf.io.gfile.glob(self.path(number) + ".*"):
                tf.io.gfile.remove(name)
        self.repair()


def _state_problem(directory, numbers):
    """What is wrong with the manager's state file for the checkpoints `numbers`, or None."""
    path = os.path.join(directory, STATE_FILE)
    if not tf.io.gfile.exists(path):
        return "was missing" if numbers else None
    try:
        state = tf.train.get_checkpoint_state(directory)
    except Exception as error:  # binary or half-written: TensorFlow's parser raises
        return f"was unreadable ({type(error).__name__})"
    if state is None:
        return "was unreadable"
    listed = []
    for listed_path in state.all_model_checkpoint_paths:
        match = re.search(r"ckpt-(\d+)$", listed_path)
        listed.append(int(match.group(1)) if match else -1)
    if sorted(listed) != numbers:
        names = [os.path.basename(p) for p in state.all_model_checkpoint_paths]
        return f"listed {', '.join(names) or 'nothing'}"
    if any(t > time.time() for t in state.all_model_checkpoint_timestamps) or (
            state.last_preserved_timestamp > time.time()):
        return "held times later than this machine's clock"
    return None


def agree(strategy, status, numbers):
    """The checkpoint every worker restores: the newest step all of them hold.

    Outside multi-worker this is the newest of `numbers`. Under multi-worker each worker
    contributes its status and usable checkpoint numbers in one collective (`strategy.gather`),
    and every worker computes the same answer from the same gathered table.

    Args:
        strategy: The run's strategy.
        status: This worker's READY, DIFFERENT_RUN or NONE_USABLE.
        numbers: This worker's usable checkpoint numbers.

    Returns:
        `(number or None, worst status of any worker)`.
    """
    row = [status] + sorted(numbers)[-MAX_TO_KEEP:]
    row += [-1] * (MAX_TO_KEEP + 1 - len(row))
    if not is_multi_worker(strategy):
        return choose([row])
    value = tf.constant([row], tf.int64)
    per_replica = strategy.experimental_distribute_values_from_function(lambda _: value)
    return choose(np.asarray(strategy.gather(per_replica, axis=0)).tolist())


def choose(table):
    """From one row per worker, `[status, checkpoint numbers..., -1 padding]`: the newest
    number in every row (None if none) and the worst status."""
    worst = max(int(row[0]) for row in table)
    common = set.intersection(*({int(n) for n in row[1:] if n >= 0} for row in table))
    return (max(common) if common else None), worst
