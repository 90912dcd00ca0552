"""What a run leaves in its directory, written so that a crash never leaves a half file.

Every file is written to a temporary name in the same directory and renamed over the old one
(`os.replace` is atomic on POSIX and Windows), so a reader sees the old file or the new one.

The order of one epoch's writes (see `zoo.training.run`), with the checkpoint as the commit
point:

1. `best.keras`, when the epoch improved the validation loss, is *staged* as
   `.best-STEP.keras` (STEP: the checkpoint the epoch ends in);
2. the checkpoint STEP is written (it holds the history rows);
3. the staged `best.keras` is renamed into place; `history.csv` is rewritten.

A kill before 2 leaves a staged file newer than the newest checkpoint: the next run deletes it
(`settle_staged_best`). A kill between 2 and 3 leaves it older: the next run renames it into
place, and rewrites `history.csv` from the checkpoint. So after any kill, the same command
finds files that agree with the newest checkpoint before it trains on.
"""

import csv
import errno
import glob
import io
import os
import re
import shutil
import tempfile
import zipfile

import numpy as np
import tensorflow as tf

from zoo.validation import rename_arguments

HISTORY_FILE = "history.csv"
RECORD_FILE = "config.json"
MODEL_FILE = "model.keras"
BEST_FILE = "best.keras"
PLOT_FILE = "history.png"
LOG_DIR = "logs"
# What `zoo export` writes into a run directory (zoo.training.export's default names).
EXPORT_FILES = ("saved_model", "model.onnx", "model.tflite")
# Columns that are neither training metrics nor split metrics.
BOOKKEEPING = ("epoch", "lr", "global_batch", "seconds")


def upgrade_record(record):
    """A run record (`config.json`) or search record as the current code writes it: model and
    dataset arguments saved under their old names (`zoo.validation.RENAMED_ARGUMENTS`, e.g.
    `vocab_size`) get their new names, so a run directory of the old code still resumes."""
    if not isinstance(record, dict):
        return record
    record = dict(record)
    for key in ("model_kwargs", "dataset_kwargs"):
        if key in record:
            record[key] = rename_arguments(record[key])
    if isinstance(record.get("config"), dict):  # a `zoo tune` search record
        record["config"] = upgrade_record(record["config"])
    return record


class DiskFull(ValueError):
    """The disk filled up while a run file was written (one line for the command line)."""


def _no_space(error):
    # h5py and zipfile report a full disk as OSError(ENOSPC), sometimes wrapped once.
    while error is not None:
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return True
        error = error.__cause__ or error.__context__
    return False


def _temporary(path, suffix=""):
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.{os.getpid()}.tmp{suffix}")


def remove_temporaries(directory):
    """Delete the temporary files that dead processes left (`.NAME.PID.tmp*`); return them.

    Called under the run directory's lock (`zoo.training.lock`), so no other run writes here;
    a file of a live process (not this one) is kept all the same.
    """
    from zoo.training.lock import process_alive

    removed = []
    for path in glob.glob(os.path.join(directory, ".*.tmp*")):
        match = re.search(r"\.(\d+)\.tmp(\.\w+)?$", path)
        if match and (int(match.group(1)) == os.getpid() or not process_alive(int(match.group(1)))):
            os.remove(path)
            removed.append(path)
    return removed


def write_text_atomic(path, text):
    """Write a text file under a temporary name, then rename it into place."""
    tmp = _temporary(path)
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_model_atomic(model, path):
    """`model.save(path)` through a temporary `.keras` file and a rename."""
    tmp = _temporary(path, ".keras")  # Keras insists on the extension
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except OSError as error:
        if _no_space(error):
            raise DiskFull(
                f"No space left on the device to write {path!r}: free some space and run the "
                "same command again (the run resumes from its newest checkpoint)."
            ) from error
        raise
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _staged_best(run_dir):
    staged = {}
    for path in glob.glob(os.path.join(run_dir, ".best-*.keras")):
        match = re.search(r"\.best-(\d+)\.keras$", path)
        if match:
            staged[int(match.group(1))] = path
    return staged


def stage_best(model, run_dir, number):
    """Save the model as the candidate `best.keras` of checkpoint `number` (not yet in place)."""
    save_model_atomic(model, os.path.join(run_dir, f".best-{number}.keras"))


def settle_staged_best(run_dir, newest):
    """Put the newest staged `best.keras` of a checkpoint <= `newest` into place; delete the
    staged files of checkpoints that do not exist (a kill came before their checkpoint)."""
    staged = _staged_best(run_dir)
    kept = [n for n in staged if n <= newest]
    if kept:
        os.replace(staged[max(kept)], os.path.join(run_dir, BEST_FILE))
    for number, path in staged.items():
        if number != (max(kept) if kept else None) and os.path.exists(path):
            os.remove(path)


def clear_run_files(directory, chief, restart=False):
    """Remove what an earlier run left in `directory` (on `--restart`, or when it has no
    checkpoint to resume from); return the names removed, for the run to say."""
    names = [MODEL_FILE]
    if chief:
        names += [HISTORY_FILE, BEST_FILE, PLOT_FILE, LOG_DIR]
        settle_staged_best(directory, -1)
        if restart:  # exports of the earlier model would sit beside the new one
            names += list(EXPORT_FILES)
    removed = []
    for name in names:
        path = os.path.join(directory, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)
        else:
            continue
        removed.append(name + ("/" if name in (LOG_DIR, "saved_model") else ""))
    return removed


def keras_file_problem(path):
    """Why the `.keras` file at `path` is damaged (not a zip archive, a member that fails its
    CRC, no weights), or None. Cheaper than loading it: a `.keras` file is a zip archive."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile) as error:
        return f"{type(error).__name__}: {error}"
    if bad is not None:
        return f"{bad} fails its checksum"
    if "config.json" not in names or not any(n.endswith(".weights.h5") for n in names):
        return "it holds no model config or no weights"
    return None


def check_best(run_dir, model, progress, save_best):
    """On a resume: keep `best.keras` only if it is sound and wanted. Returns a note or None.

    A damaged file is rewritten from the model when the restored checkpoint ends the best
    epoch (the model *is* the best one), else removed: the next improving epoch writes it. With
    `save_best` off (`--no-best` on a resume), an existing file covers only the epochs before,
    so it is removed rather than left to look like the run's best.
    """
    path = os.path.join(run_dir, BEST_FILE)
    if not os.path.exists(path):
        return None
    if not save_best:
        os.remove(path)
        return (f"--no-best: removed {path}, the best model of the epochs before this resume "
                "only")
    problem = keras_file_problem(path)
    if problem is None:
        return None
    best = progress.get("best_epoch")
    if best is not None and best == progress["epoch"] and not progress["step"]:
        save_model_atomic(model, path)
        return f"{path} was damaged ({problem}); rewrote it from the checkpoint of epoch {best}"
    os.remove(path)
    return (f"{path} was damaged ({problem}); removed it (its epoch's weights are not in the "
            "checkpoint resumed from): the next epoch that improves the validation loss "
            "writes it again")


def rewrite_tensorboard(log_dir, history):
    """Rewrite the TensorBoard logs from the checkpoint's history rows.

    Run on every resume, so that the epochs after the checkpoint (trained again after a kill,
    a fallback to an older checkpoint or a rerun) are logged once, not twice: TensorBoard
    shows every event file of a directory, and an epoch written twice draws a zigzag.
    """
    shutil.rmtree(log_dir, ignore_errors=True)
    if history:
        writer = TensorBoardWriter(log_dir)
        for row in history:
            writer.write(row)
        writer.close()


def history_columns(history):
    """The union of the rows' keys, in order of first appearance."""
    columns = []
    for row in history:
        columns.extend(k for k in row if k not in columns)
    return columns


def write_history_csv(path, history):
    """Write the list of per-epoch dicts as CSV (columns: the union of keys, in order)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=history_columns(history))
    writer.writeheader()
    writer.writerows(history)
    write_text_atomic(path, buffer.getvalue())


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
    """Save a PNG of the loss and the first other metric (train and validation) per epoch."""
    # A bare Figure renders to PNG without pyplot: no global backend switch, so a notebook
    # that calls train() keeps its inline plots.
    from matplotlib.figure import Figure

    epochs = [row["epoch"] for row in history]
    metrics = ["loss"] + [
        k for k in history[0]
        if k not in BOOKKEEPING and not k.startswith(("val_", "test_")) and k != "loss"
    ][:1]
    fig = Figure(figsize=(5 * len(metrics), 3.5))
    axes = fig.subplots(1, len(metrics), squeeze=False)
    for ax, name in zip(axes[0], metrics):
        ax.plot(epochs, [row.get(name, np.nan) for row in history], "o-", label="train")
        if f"val_{name}" in history[0]:
            ax.plot(epochs, [row.get(f"val_{name}", np.nan) for row in history], "s-",
                    label="validation")
        test = history[-1].get(f"test_{name}")
        if test is not None:
            ax.plot([epochs[-1]], [test], "k*", markersize=10, label="test (final)")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    tmp = _temporary(path, ".png")
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, path)


def _scalar(name, value, step):
    # What tf.summary.scalar writes, through TensorFlow's core summary op: the `tensorboard`
    # package (which implements tf.summary.scalar) need not be imported.
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
    )
    tf.summary.write(name, tf.constant(float(value), tf.float32), step=step, metadata=metadata)


class TensorBoardWriter:
    """Per-epoch scalars for TensorBoard (`tensorboard --logdir RUN_DIR/logs`): training metrics
    under `train/`, `val_*` under `validation/`, `test_*` under `test/`."""

    SPLITS = (("train", ""), ("validation", "val_"), ("test", "test_"))

    def __init__(self, log_dir):
        self.writers = {
            split: tf.summary.create_file_writer(os.path.join(log_dir, split))
            for split, _ in self.SPLITS
        }

    def write(self, row):
        epoch = int(row["epoch"])
        for split, prefix in self.SPLITS:
            with self.writers[split].as_default():
                for key, value in row.items():
                    if key == "epoch" or not isinstance(value, (int, float)):
                        continue
                    if prefix and key.startswith(prefix):
                        _scalar(key[len(prefix):], value, epoch)
                    elif not prefix and not key.startswith(("val_", "test_")):
                        _scalar(key, value, epoch)
            self.writers[split].flush()

    def close(self):
        for writer in self.writers.values():
            writer.close()


def check_out_dir(path):
    """Check that the run directory can be written, without creating it yet.

    The directory is created only when training starts (`create_out_dir`), so a run that fails
    before (a dataset that is not there, a model that does not fit) leaves nothing behind.
    """
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
        reason = "not a directory" if not os.path.isdir(existing) else "permission denied"
        raise ValueError(
            f"Cannot write to the run directory {path!r} ({existing!r}: {reason}). "
            "Pass a writable --out DIR."
        )


def create_out_dir(path):
    """Create the run directory and check that this process can write to it.

    The probe is a fresh temporary file per process, so the workers of one run never touch
    the same file.
    """
    try:
        os.makedirs(path, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".write-test-", dir=path)
        os.close(handle)
        os.remove(probe)
    except OSError as error:
        raise ValueError(
            f"Cannot write to the run directory {path!r} ({error.strerror or error}). "
            "Pass a writable --out DIR."
        ) from error
