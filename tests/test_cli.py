"""The `zoo` command end to end: the default run, evaluate, resume, kill-and-resume, two workers,
and clear errors for bad input."""

import csv
import json
import os
import signal
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

from zoo.cli import main
from zoo.training.loop import train
from zoo.training.strategy import LearningRatePlan

PYTHON = sys.executable
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(argv, capsys):
    """main(argv) in-process: (exit status, stdout, stderr)."""
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse errors
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


def _history(run_dir):
    with open(os.path.join(run_dir, "history.csv"), encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _weights(path):
    return keras.models.load_model(path).get_weights()


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def test_default_train_writes_the_run_directory_evaluates_and_resumes(tmp_path, capsys):
    out = str(tmp_path / "run")
    # The README's `zoo train` with a shorter budget (the full default is measured in the report).
    status, stdout, _ = _run(["train", "--epochs", "3", "--out", out], capsys)
    assert status == 0
    for expected in ("strategy: OneDeviceStrategy", "32 per replica x 1 replica(s) = 32 global",
                     "linear scaling", "epoch 3/3", "done in"):
        assert expected in stdout
    for name in ("model.keras", "best.keras", "history.csv", "history.png", "config.json"):
        assert os.path.getsize(os.path.join(out, name)) > 0
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(out, "logs", "train")))
    rows = _history(out)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[-1]["val_accuracy"]) >= 0.9

    status, stdout, _ = _run(["evaluate", out], capsys)
    assert status == 0
    reported = float(stdout.split("accuracy ")[1].split(",")[0])
    assert reported == pytest.approx(float(rows[-1]["val_accuracy"]), abs=1e-4)

    # The same command again: the run is complete, nothing is retrained.
    status, stdout, _ = _run(["train", "--epochs", "3", "--out", out], capsys)
    assert status == 0 and "resuming from the checkpoint after epoch 3" in stdout
    assert "epoch 1/3" not in stdout and len(_history(out)) == 3

    # A different run into the same directory is refused, not mixed in.
    status, _, err = _run(["train", "--epochs", "3", "--seed", "5", "--out", out], capsys)
    assert status == 2 and "--restart" in err and "Traceback" not in err


def test_batch_size_ramp_doubles_the_batch_and_scales_the_learning_rate(tmp_path, capsys):
    out = str(tmp_path / "ramp")
    status, stdout, _ = _run(
        ["train", "--epochs", "2", "--batch-size", "32", "--batch-size-ramp", "16",
         "--crop-border", "1", "--quiet", "--out", out], capsys)
    assert status == 0
    rows = _history(out)
    assert [int(r["global_batch"]) for r in rows] == [16, 32]
    plan = LearningRatePlan(1e-3, 32, "linear", 0.0, "cosine", 2)
    steps = 1437 // 16
    # The last step of epoch 1 runs at the linearly scaled rate for a batch of 16.
    assert float(rows[0]["lr"]) == pytest.approx(plan((steps - 1) / steps, 16), rel=1e-6)
    assert float(rows[0]["lr"]) < plan(0.99, 32)


def test_kill_and_resume_equals_an_uninterrupted_run(tmp_path):
    command = [PYTHON, "-m", "zoo", "train", "--epochs", "2", "--batch-size", "64", "--quiet",
               "--out", str(tmp_path / "killed")]
    process = subprocess.Popen(command, cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in process.stdout:
        seen.append(line)
        if "epoch 2/2" in line:  # printed after epoch 1's checkpoint is written
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "".join(seen)
    assert not os.path.exists(tmp_path / "killed" / "model.keras")  # it really stopped mid-way

    resumed = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming from the checkpoint after epoch 1" in resumed.stdout
    assert [int(r["epoch"]) for r in _history(tmp_path / "killed")] == [1, 2]

    reference = train(epochs=2, batch_size=64, out=str(tmp_path / "straight"), verbose=0)
    for a, b in zip(_weights(tmp_path / "killed" / "model.keras"), reference.model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-4)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_workers_with_tf_config_train_together(tmp_path):
    workers = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
    out = tmp_path / "multi"
    command = [PYTHON, "-m", "zoo", "train", "--epochs", "1", "--batch-size", "32", "--quiet",
               "--out", str(out)]
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(subprocess.Popen(
            command, cwd=ROOT, env=_env(TF_CONFIG=json.dumps(config)), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True))
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=300)[0])
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    assert [p.returncode for p in processes] == [0, 0], "\n".join(outputs)
    assert "MultiWorkerMirroredStrategy: 2 replica(s) on 2 worker(s)" in outputs[0]
    assert "32 per replica x 2 replica(s) = 64 global" in outputs[0]
    chief = _weights(out / "model.keras")
    other = _weights(out / "worker-1" / "model.keras")
    for a, b in zip(chief, other):
        np.testing.assert_array_equal(a, b)
    # Together they took the steps one device takes with the global batch of 64.
    # (Same learning rate too: 1e-3 linearly scaled by 2 replicas.)
    reference = train(epochs=1, batch_size=64, lr=2e-3, out=str(tmp_path / "one"), verbose=0)
    for a, b in zip(chief, reference.model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_list_and_info(capsys):
    status, stdout, _ = _run(["list"], capsys)
    assert status == 0 and "lenet5" in stdout and "digits" in stdout
    status, stdout, _ = _run(["info", "lenet5"], capsys)
    assert status == 0 and "LeCun" in stdout and "minimum input: (28, 28, 1)" in stdout
    status, stdout, _ = _run(["info", "digits"], capsys)
    assert status == 0 and "offline: True" in stdout


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--model", "lenet"], "Did you mean 'lenet5'"),
        (["train", "--dataset", "digitz"], "Did you mean 'digits'"),
        (["train", "--batch-size", "0"], "--batch-size: must be >= 1"),
        (["train", "--devices", "3"], "has 2 CPU device(s)"),
        (["train", "--model", "lenet5", "--dataset", "adding_problem"],
         "Use one of the image-classification datasets (cifar10, cifar100, digits"),
        (["train", "--crop-border", "4"], "crop_border` is too large"),
        (["evaluate", "/nonexistent/run"], "No saved model"),
        (["caption", "/nonexistent/image.png"], "Argument `model` is required"),
    ],
)
def test_bad_input_gets_a_clear_message_and_a_non_zero_exit(argv, message, tmp_path, capsys):
    status, _, err = _run([*argv, "--out", str(tmp_path)] if argv[0] == "train" else argv, capsys)
    assert status != 0
    assert message in err
    assert "Traceback" not in err


def test_unwritable_out_directory(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    status, _, err = _run(["train", "--out", str(blocker / "run")], capsys)
    assert status == 2 and "Cannot write to the run directory" in err and "--out" in err
