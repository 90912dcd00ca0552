"""Two workers (TF_CONFIG, MultiWorkerMirroredStrategy on 127.0.0.1), killed mid-run and
restarted, end with identical weights, equal to an uninterrupted two-worker run."""

import json
import os
import socket
import subprocess

import keras
import numpy as np
import pytest
from engine_helpers import PYTHON, ROOT, TESTS, env, kill_when

# 1,293 training digits, 32 per replica x 2 workers = 64 a step: 20 steps per epoch.
SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import engine_helpers
engine_helpers.register()
from zoo.training import train
train(model="test_dropout_mlp", epochs=3, batch_size=32, checkpoint_every=7, out=sys.argv[1],
      verbose=1)
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_workers(run_dir):
    workers = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(subprocess.Popen(
            [PYTHON, "-c", SCRIPT.format(tests=TESTS), run_dir], cwd=ROOT,
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


@pytest.mark.slow
def test_two_workers_killed_mid_run_resume_to_the_uninterrupted_weights(tmp_path):
    reference, killed = str(tmp_path / "reference"), str(tmp_path / "killed")
    straight = start_workers(reference)
    # Killed (both workers) right after a checkpoint inside the second epoch that both hold.
    kill_when(start_workers(killed), killed, lambda n: n > 20 and 0 < n % 20 < 13,
              also=[os.path.join(killed, "worker-1")])
    assert not os.path.exists(os.path.join(killed, "model.keras"))
    outputs = finish(straight)
    assert "MultiWorkerMirroredStrategy: 2 replica(s) on 2 worker(s)" in outputs[0]
    assert "32 per replica x 2 replica(s) = 64 global" in outputs[0]

    outputs = finish(start_workers(killed))
    assert "resuming from the checkpoint at epoch 2, step" in outputs[0], outputs[0]
    chief = weights(os.path.join(killed, "model.keras"))
    other = weights(os.path.join(killed, "worker-1", "model.keras"))
    uninterrupted = weights(os.path.join(reference, "model.keras"))
    for a, b, c in zip(chief, other, uninterrupted):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    # Only the chief writes the shared files; worker 1 keeps its own checkpoints and record.
    assert sorted(os.listdir(os.path.join(killed, "worker-1"))) == [
        "checkpoints", "config.json", "model.keras"]
