"""Two workers (TF_CONFIG, MultiWorkerMirroredStrategy on 127.0.0.1), killed mid-run and
restarted, end with identical weights, equal to an uninterrupted two-worker run: killed when both
hold the newest checkpoint, and when only the chief does (they resume from the newest that
both hold)."""

import json
import os
import signal
import socket
import subprocess
import time

import keras
import numpy as np
import pytest
from engine_helpers import PYTHON, ROOT, TESTS, env, kill_when, newest_checkpoint

# 1,293 training digits, 32 per replica x 2 workers = 64 a step: 20 steps per epoch.
SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import engine_helpers
engine_helpers.register()
from zoo.training import train
if len(sys.argv) > 2:  # worker 1 writes checkpoint SLOW late, so only the chief holds it
    import json, os, time
    from zoo.training import checkpoint
    if json.loads(os.environ["TF_CONFIG"])["task"]["index"] == 1:
        save = checkpoint.RunCheckpoint.save
        def late_save(self, number, progress):
            if number == int(sys.argv[2]):
                time.sleep(5)
            return save(self, number, progress)
        checkpoint.RunCheckpoint.save = late_save
train(model="test_dropout_mlp", epochs=3, batch_size=32, checkpoint_every=7, out=sys.argv[1],
      verbose=1)
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_workers(run_dir, slow=None):
    workers = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(subprocess.Popen(
            [PYTHON, "-c", SCRIPT.format(tests=TESTS), run_dir, *([str(slow)] if slow else [])],
            cwd=ROOT,
            env=env() | {"TF_CONFIG": json.dumps(config)}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True))
    return processes


def finish(processes, timeout=400):
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=timeout)[0])
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    assert [p.returncode for p in processes] == [0, 0], "\n".join(outputs)
    return outputs


def weights(path):
    return keras.models.load_model(path).get_weights()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The uninterrupted two-worker run (started once, waited for by the first test that needs
    it): `() -> (chief's weights, outputs)`."""
    run_dir = str(tmp_path_factory.mktemp("reference") / "run")
    processes, done = start_workers(run_dir), {}

    def result():
        if not done:
            done["outputs"] = finish(processes)
            done["weights"] = weights(os.path.join(run_dir, "model.keras"))
        return done["weights"], done["outputs"]

    yield result
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def _check_resumed(killed, uninterrupted, resumed_at):
    outputs = finish(start_workers(killed))
    assert f"resuming from the checkpoint at epoch 2, step {resumed_at}" in outputs[0], outputs[0]
    chief = weights(os.path.join(killed, "model.keras"))
    other = weights(os.path.join(killed, "worker-1", "model.keras"))
    for a, b, c in zip(chief, other, uninterrupted()[0]):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


@pytest.mark.slow
def test_two_workers_killed_mid_run_resume_to_the_uninterrupted_weights(tmp_path, uninterrupted):
    killed = str(tmp_path / "killed")
    # Killed (both workers) right after a checkpoint inside the second epoch that both hold.
    at = kill_when(start_workers(killed), killed, lambda n: n > 20 and 0 < n % 20 < 13,
                   also=[os.path.join(killed, "worker-1")])
    assert not os.path.exists(os.path.join(killed, "model.keras"))
    outputs = uninterrupted()[1]
    assert "MultiWorkerMirroredStrategy: 2 replica(s) on 2 worker(s)" in outputs[0]
    assert "32 per replica x 2 replica(s) = 64 global" in outputs[0]

    _check_resumed(killed, uninterrupted, at % 20)
    # Only the chief writes the shared files; worker 1 keeps its own checkpoints, record and
    # lock (each worker locks the directory it writes).
    assert sorted(os.listdir(os.path.join(killed, "worker-1"))) == [
        ".lock", "checkpoints", "config.json", "model.keras"]


@pytest.mark.slow
def test_two_workers_killed_when_only_the_chief_holds_the_newest_checkpoint(
        tmp_path, uninterrupted):
    killed, late = str(tmp_path / "killed"), 28  # checkpoints every 7 steps: 21, 28 in epoch 2
    processes = start_workers(killed, slow=late)
    try:
        deadline = time.monotonic() + 400
        while True:  # kill while the chief holds 28 and worker 1, writing it late, holds 21
            assert time.monotonic() < deadline and all(p.poll() is None for p in processes)
            chief, other = (newest_checkpoint(d) for d in (killed, os.path.join(killed,
                                                                                 "worker-1")))
            if chief == late and other == late - 7:
                break
            time.sleep(0.005)
    finally:
        for process in processes:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=60)
    assert os.path.exists(os.path.join(killed, "checkpoints", f"ckpt-{late}.index"))
    assert not os.path.exists(os.path.join(killed, "worker-1", "checkpoints",
                                           f"ckpt-{late}.index"))
    # Both resume from 21, the newest checkpoint both hold, not the chief's 28.
    _check_resumed(killed, uninterrupted, (late - 7) % 20)
