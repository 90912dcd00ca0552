"""Exact resume: a run killed at any moment and run again ends with the uninterrupted run's
weights, bit for bit on CPU, for a model with dropout (SIGKILL at an epoch boundary and in the
middle of an epoch), one with batch normalisation, and the captioner."""

import csv
import os
import signal
import subprocess

import engine_helpers
import keras
import numpy as np
import pytest
from engine_helpers import PYTHON, ROOT, TESTS, env, kill_when

from zoo.training import train

# A dropout MLP on the digits: 1,293 training examples, 20 steps of 64 per epoch.
SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import engine_helpers
engine_helpers.register()
from zoo.training import train
every = int(sys.argv[2]) or None
train(model="test_dropout_mlp", epochs=3, batch_size=64, checkpoint_every=every, out=sys.argv[1],
      verbose=1)
"""
STEPS_PER_EPOCH = 1293 // 64


def start(run_dir, every=0):
    return subprocess.Popen([PYTHON, "-c", SCRIPT.format(tests=TESTS), run_dir, str(every)],
                            cwd=ROOT, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def weights(path):
    return keras.models.load_model(path).get_weights()


@pytest.mark.slow
def test_dropout_model_killed_twice_ends_bit_identical(tmp_path):
    killed, reference = str(tmp_path / "killed"), str(tmp_path / "reference")
    straight = start(reference)
    # 1. Killed right after the first epoch's checkpoint: resumes at an epoch boundary.
    first = start(killed)
    at = kill_when([first], killed, lambda n: n >= STEPS_PER_EPOCH)
    assert first.returncode == -signal.SIGKILL and at % STEPS_PER_EPOCH == 0
    # 2. The same command with checkpoints every 7 steps, killed after one inside an epoch.
    second = start(killed, every=7)
    # (A checkpoint whose next one is inside the epoch too: a late kill still lands mid-epoch.)
    epoch_boundary = at
    at = kill_when([second], killed, lambda n: n > at and 0 < n % STEPS_PER_EPOCH < 13)
    output = second.stdout.read()
    assert f"resuming from the checkpoint after epoch {epoch_boundary // STEPS_PER_EPOCH}" in (
        output), output
    assert not os.path.exists(os.path.join(killed, "model.keras"))
    # 3. Again, to the end.
    third = start(killed, every=7)
    output = third.communicate(timeout=300)[0]
    assert third.returncode == 0, output
    assert "resuming from the checkpoint at epoch" in output and ", step" in output, output
    assert straight.wait(timeout=300) == 0, straight.stdout.read()

    for a, b in zip(weights(os.path.join(killed, "model.keras")),
                    weights(os.path.join(reference, "model.keras"))):
        np.testing.assert_array_equal(a, b)
    # The history agrees too (all but the `seconds` column).
    histories = []
    for run_dir in (killed, reference):
        with open(os.path.join(run_dir, "history.csv"), encoding="utf-8") as f:
            histories.append([{k: v for k, v in row.items() if k != "seconds"}
                              for row in csv.DictReader(f)])
    assert histories[0] == histories[1] and len(histories[0]) == 3


class _Crash(keras.callbacks.Callback):
    """Raises at the start of an epoch: the run stops right after the previous checkpoint."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def _crash_and_resume(tmp_path, **settings):
    reference = train(out=str(tmp_path / "reference"), verbose=0, **settings)
    with pytest.raises(KeyboardInterrupt):
        train(out=str(tmp_path / "crashed"), verbose=0, callbacks=[_Crash(1)], **settings)
    resumed = train(out=str(tmp_path / "crashed"), verbose=0, **settings)
    for a, b in zip(reference.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in reference.history]
    return reference


def test_batch_norm_model_resumes_bit_identical(tmp_path):
    engine_helpers.register()
    try:
        reference = _crash_and_resume(tmp_path, model="test_batchnorm_cnn", epochs=2,
                                      batch_size=64)
    finally:
        engine_helpers.unregister()
    assert len(reference.history) == 2


def test_captioner_resumes_bit_identical(tmp_path):
    reference = _crash_and_resume(
        tmp_path, model="show_and_tell", small=True, dataset="shapes_captions", epochs=2,
        batch_size=16, dataset_kwargs={"num_train": 48, "num_test": 8},
    )
    assert "val_perplexity" in reference.history[-1]
