"""The run directory under damage and concurrency: a lost or wrong checkpoint state file, a
second process on the same --out, leftovers of killed writes, damaged best.keras / data.json /
config.json, TensorBoard logs after a fallback or a rerun, a full disk, and `zoo evaluate` on a
run without model.keras. (Exact resume after kills: tests/test_resume.py.)"""

import csv
import errno
import glob
import json
import os
import shutil
import signal
import subprocess
import time

import engine_helpers
import keras
import pytest
import tensorflow as tf
from cli_helpers import run_cli
from engine_helpers import PYTHON, ROOT, TESTS, env

from zoo.training import records, train

# The dropout MLP on the digits: 20 steps of 64 per epoch, so checkpoints ckpt-0, -20, -40.
SETTINGS = dict(model="test_dropout_mlp", epochs=3, batch_size=64)


class _Stop(keras.callbacks.Callback):
    """Interrupts the run at the start of epoch `epoch` (0-based), right after a checkpoint."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


@pytest.fixture(scope="module", autouse=True)
def test_models():
    engine_helpers.register()
    yield
    engine_helpers.unregister()


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A run of 3 epochs interrupted after epoch 2: checkpoints 0, 20, 40, best.keras, no
    model.keras. Tests work on copies (`copy_run`)."""
    run_dir = str(tmp_path_factory.mktemp("base") / "run")
    with pytest.raises(KeyboardInterrupt):
        train(out=run_dir, verbose=0, callbacks=[_Stop(2)], **SETTINGS)
    return run_dir


@pytest.fixture
def copy_run(interrupted, tmp_path):
    def copy():
        target = str(tmp_path / "run")
        shutil.copytree(interrupted, target)
        return target
    return copy


def _history(run_dir):
    with open(os.path.join(run_dir, "history.csv"), encoding="utf-8") as f:
        return [{k: v for k, v in row.items() if k != "seconds" and v != ""}
                for row in csv.DictReader(f)]


def _resume(run_dir, capsys, **overrides):
    result = train(out=run_dir, verbose=1, **{**SETTINGS, **overrides})
    return result, capsys.readouterr().out


# ------------------------------------------------------------------ A. the state file
STATE_DAMAGE = {
    "deleted": None,
    "garbage": b"this is {not a checkpoint state\n",
    "empty": b"",
    "binary": bytes(range(256)),
    "missing": b'model_checkpoint_path: "ckpt-99"\nall_model_checkpoint_paths: "ckpt-99"\n',
}


@pytest.mark.parametrize("damage", [*STATE_DAMAGE, "clock_behind"])
def test_a_damaged_state_file_resumes_from_the_checkpoint_files(copy_run, capsys, damage):
    run_dir = copy_run()
    before = _history(run_dir)
    state = os.path.join(run_dir, "checkpoints", "checkpoint")
    if damage == "clock_behind":
        # The state file written by a machine whose clock is a day ahead of this one's.
        with open(state, encoding="utf-8") as f:
            text = f.read()
        for stamp in {line.split(": ")[1] for line in text.splitlines() if "timestamp" in line}:
            text = text.replace(stamp, repr(float(stamp) + 86400.0))
        with open(state, "w", encoding="utf-8") as f:
            f.write(text)
    elif STATE_DAMAGE[damage] is None:
        os.remove(state)
    else:
        with open(state, "wb") as f:
            f.write(STATE_DAMAGE[damage])
    result, out = _resume(run_dir, capsys)
    assert "resuming from the checkpoint after epoch 2" in out, out
    assert "rewrote it from the checkpoints on disk (ckpt-0, ckpt-20, ckpt-40)" in out, out
    assert len(result.history) == 3 and _history(run_dir)[:2] == before
    assert os.path.exists(os.path.join(run_dir, "model.keras"))
    # The state file is whole again and lists the newest checkpoint.
    assert tf.train.get_checkpoint_state(os.path.join(run_dir, "checkpoints")) \
        .model_checkpoint_path.endswith("ckpt-60")


def test_a_run_without_checkpoints_says_which_files_it_removes(copy_run, capsys):
    run_dir = copy_run()
    shutil.rmtree(os.path.join(run_dir, "checkpoints"))
    _, out = _resume(run_dir, capsys, epochs=1)
    assert ("no checkpoint to resume from, so the run starts afresh: removed history.csv, "
            "best.keras, logs/ from") in out, out


# ------------------------------------------------------------------ B. the lock
HOLDER = """
import sys, time
sys.path.insert(0, {tests!r})
import engine_helpers, keras
engine_helpers.register()
from zoo.training import train

class Hold(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            time.sleep(600)  # killed before

train(model="test_dropout_mlp", epochs=3, batch_size=64, out=sys.argv[1], verbose=0,
      callbacks=[Hold()])
"""


@pytest.mark.slow  # two processes that import TensorFlow: ~15-40 s
def test_b_a_second_process_on_the_same_run_directory_is_refused(tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    holder = subprocess.Popen([PYTHON, "-c", HOLDER.format(tests=TESTS), run_dir], cwd=ROOT,
                              env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        deadline = time.monotonic() + 300
        while not os.path.exists(os.path.join(run_dir, "checkpoints", "ckpt-20.index")):
            assert holder.poll() is None, holder.communicate()[0]
            assert time.monotonic() < deadline, "the first run wrote no checkpoint in time"
            time.sleep(0.05)
        argv = ["train", "--model", "test_dropout_mlp", "--epochs", "3", "--batch-size", "64",
                "--out", run_dir]
        status, _, err = run_cli(argv, capsys)
        assert status == 2 and err.count("\n") == 1, err
        assert f"{run_dir!r} is in use by another run (process {holder.pid})" in err, err
        assert holder.poll() is None  # the holder is untouched
        # Killed (the OS releases the lock): the same command resumes, not blocked.
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
        status, out, err = run_cli(argv, capsys)
        assert status == 0, err
        assert "resuming from the checkpoint after epoch 1" in out, out
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_b_the_lock_is_exclusive_and_released(tmp_path):
    from zoo.training.lock import RunDirectoryBusy, RunDirectoryLock

    first = RunDirectoryLock(str(tmp_path)).acquire()
    with pytest.raises(RunDirectoryBusy, match=f"process {os.getpid()}"):
        RunDirectoryLock(str(tmp_path)).acquire()
    first.release()
    with RunDirectoryLock(str(tmp_path)):
        pass


def test_b_only_temporary_files_of_dead_writers_are_removed(tmp_path):
    live = subprocess.Popen(["sleep", "60"])
    dead = subprocess.Popen(["true"])
    dead.wait()
    try:
        names = [f".history.csv.{live.pid}.tmp", f".model.keras.{dead.pid}.tmp.keras"]
        for name in names:
            (tmp_path / name).write_text("x")
        removed = records.remove_temporaries(str(tmp_path))
        assert removed == [str(tmp_path / names[1])]
        assert sorted(os.listdir(tmp_path)) == [names[0]]
    finally:
        live.kill()
        live.wait()


# ------------------------------------------------------------------ C. a killed checkpoint write
WRITER = """
import sys
import tensorflow as tf
# 64 MB of weights, saved again and again by the manager the engine uses.
checkpoint = tf.train.Checkpoint(v=tf.Variable(tf.zeros([16 * 1024 * 1024])))
manager = tf.train.CheckpointManager(checkpoint, sys.argv[1], max_to_keep=1)
print("ready", flush=True)
for number in range(1000):
    manager.save(checkpoint_number=number)
"""


def _killed_checkpoint_write(directory):
    """SIGKILL a process while TensorFlow writes a checkpoint; the `ckpt-N_temp` it leaves."""
    for _ in range(5):
        shutil.rmtree(directory, ignore_errors=True)
        writer = subprocess.Popen([PYTHON, "-c", WRITER, directory], env=env(),
                                  stdout=subprocess.PIPE, text=True)
        try:
            writer.stdout.readline()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and writer.poll() is None:
                if glob.glob(os.path.join(directory, "ckpt-*_temp")):
                    writer.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.001)
        finally:
            writer.kill()
            writer.wait()
        left = glob.glob(os.path.join(directory, "ckpt-*_temp"))
        if left:
            return left[0]
    raise AssertionError("no kill landed inside a checkpoint write")


def test_c_a_checkpoint_write_killed_midway_leaves_nothing_after_the_next_start(
        copy_run, capsys, tmp_path):
    # A real kill inside TensorFlow's write (not a fabricated directory): what it leaves
    # is moved into the run as the leftover of its next checkpoint.
    left = _killed_checkpoint_write(str(tmp_path / "writer"))
    assert os.listdir(left)  # the partial shards
    run_dir = copy_run()
    leftover = os.path.join(run_dir, "checkpoints", "ckpt-60_temp")
    shutil.move(left, leftover)
    _, out = _resume(run_dir, capsys)
    assert (f"removed {leftover}, left by a checkpoint write that was interrupted") in out, out
    assert "resuming from the checkpoint after epoch 2" in out
    assert not glob.glob(os.path.join(run_dir, "checkpoints", "*_temp*"))


# ------------------------------------------------------------------ D. what else is checked
def test_d_a_damaged_best_keras_is_rewritten_from_the_best_checkpoint(copy_run, capsys):
    run_dir = copy_run()
    best = os.path.join(run_dir, "best.keras")
    with open(best, "r+b") as f:
        f.truncate(os.path.getsize(best) // 2)
    # Resumed at the end of epoch 2, the best epoch so far: the model is the best model.
    with pytest.raises(KeyboardInterrupt):
        train(out=run_dir, verbose=1, callbacks=[_Stop(2)], **SETTINGS)
    out = capsys.readouterr().out
    assert f"{best} was damaged" in out and "rewrote it from the checkpoint of epoch 2" in out
    assert records.keras_file_problem(best) is None
    assert keras.models.load_model(best).count_params() == 2410


def test_d_a_damaged_best_keras_of_an_older_epoch_is_removed(tmp_path):
    best = tmp_path / "best.keras"
    best.write_bytes(b"PK\x03\x04 not really")
    note = records.check_best(str(tmp_path), None, {"best_epoch": 1, "epoch": 2, "step": 0},
                              save_best=True)
    assert note.startswith(f"{best} was damaged") and "removed it" in note
    assert not best.exists()


def test_d_no_best_on_resume_removes_the_stale_best_keras(copy_run, capsys):
    run_dir = copy_run()
    _, out = _resume(run_dir, capsys, save_best=False)
    assert f"--no-best: removed {os.path.join(run_dir, 'best.keras')}" in out, out
    assert not os.path.exists(os.path.join(run_dir, "best.keras"))


def test_d_a_damaged_data_json_is_rewritten(copy_run, capsys):
    run_dir = copy_run()
    path = os.path.join(run_dir, "data.json")
    with open(path, encoding="utf-8") as f:
        good = json.load(f)
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"dataset": "dig')
    _, out = _resume(run_dir, capsys)
    assert f"{path} was unreadable (JSONDecodeError); rewrote it" in out, out
    with open(path, encoding="utf-8") as f:
        assert json.load(f) == good


def _points(log_dir):
    """(split, tag, step) of every scalar in the TensorBoard logs."""
    points = []
    for path in glob.glob(os.path.join(log_dir, "*", "events.out.tfevents*")):
        split = os.path.basename(os.path.dirname(path))
        for event in tf.compat.v1.train.summary_iterator(path):
            points += [(split, value.tag, event.step) for value in event.summary.value]
    return points


def test_d_tensorboard_logs_have_one_point_per_epoch_after_a_fallback_and_a_rerun(
        copy_run, capsys):
    run_dir = copy_run()
    # The newest checkpoint damaged: the run falls back to epoch 1 and trains epoch 2 again.
    data = glob.glob(os.path.join(run_dir, "checkpoints", "ckpt-40.data-*"))[0]
    with open(data, "r+b") as f:
        f.truncate(100)
    with pytest.warns(RuntimeWarning, match="ckpt-40 cannot be read"):
        _, out = _resume(run_dir, capsys)
    assert "resuming from the checkpoint after epoch 1" in out
    _resume(run_dir, capsys)  # the complete run again: evaluates and logs the test split
    points = _points(os.path.join(run_dir, "logs"))
    assert len(points) == len(set(points)), sorted(p for p in points if points.count(p) > 1)
    assert sorted(step for split, tag, step in points if (split, tag) == ("train", "loss")) \
        == [1, 2, 3]
    assert [step for split, tag, step in points if (split, tag) == ("test", "loss")] == [3]


def test_d_a_full_disk_while_saving_a_keras_file_is_one_line(tmp_path, monkeypatch):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])

    def full(self, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"PK")  # a partial file, as a full disk leaves one
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", full)
    path = str(tmp_path / "model.keras")
    with pytest.raises(records.DiskFull) as caught:
        records.save_model_atomic(model, path)
    message = str(caught.value)
    assert "\n" not in message and f"No space left on the device to write {path!r}" in message
    assert os.listdir(tmp_path) == []  # no temporary file, no half file


def test_d_a_corrupt_config_json_is_named(copy_run, capsys):
    run_dir = copy_run()
    path = os.path.join(run_dir, "config.json")
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"model": "test_dropout_mlp", ')
    status, _, err = run_cli(["train", "--model", "test_dropout_mlp", "--epochs", "3",
                              "--batch-size", "64", "--out", run_dir], capsys)
    assert status == 2 and err.count("\n") == 1, err
    assert f"The run record {path} is damaged (JSONDecodeError" in err, err


# ------------------------------------------------------------------ E. evaluate, --restart
def test_e_evaluate_a_run_without_model_keras_uses_best_keras(copy_run, capsys):
    run_dir = copy_run()
    assert not os.path.exists(os.path.join(run_dir, "model.keras"))
    status, out, err = run_cli(["evaluate", run_dir], capsys)
    assert status == 0, err
    assert out.startswith("digits test: loss ")
    os.remove(os.path.join(run_dir, "best.keras"))
    status, _, err = run_cli(["evaluate", run_dir], capsys)
    assert status == 2 and err.count("\n") == 1, err
    assert "is a run directory without model.keras or best.keras" in err


def test_e_restart_removes_the_previous_exports(copy_run, capsys):
    run_dir = copy_run()
    os.makedirs(os.path.join(run_dir, "saved_model", "variables"))
    for name in ("model.onnx", "model.tflite"):
        with open(os.path.join(run_dir, name), "wb") as f:
            f.write(b"old")
    _, out = _resume(run_dir, capsys, epochs=1, restart=True)
    assert "--restart: removed history.csv, best.keras, logs/, saved_model/, model.onnx, " \
        "model.tflite from" in out, out
    for name in ("saved_model", "model.onnx", "model.tflite"):
        assert not os.path.exists(os.path.join(run_dir, name))
