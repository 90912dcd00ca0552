"""Helpers of the training-engine tests: tiny registry models (a dropout MLP, a batch-norm CNN)
and what the subprocess tests (SIGKILL, two workers) need.

`register()` adds the models to the registry; in-process tests remove them again
(`unregister`), so that tests parametrised over `list_models()` never see them. Subprocesses
import this file with `tests/` on the path.
"""

import os
import signal
import sys
import time

import keras

from zoo import registry
from zoo.layers import StableSoftmax

PAPER = registry.Paper("Test", 2024, "A test model", "https://example.org")
NAMES = ("test_dropout_mlp", "test_batchnorm_cnn")


def test_dropout_mlp(input_shape=(8, 8, 1), classes=10, classifier_activation="softmax",
                     rate=0.3):
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(32, activation="relu")(x)
    x = keras.layers.Dropout(rate)(x)
    x = keras.layers.Dense(classes)(x)
    if classifier_activation == "softmax":
        x = StableSoftmax(dtype="float32")(x)
    return keras.Model(inputs, x)


def test_batchnorm_cnn(input_shape=(8, 8, 1), classes=10, classifier_activation="softmax"):
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(4, 3)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(classes)(x)
    if classifier_activation == "softmax":
        x = StableSoftmax(dtype="float32")(x)
    return keras.Model(inputs, x)


# Not collected by pytest as tests: they are model functions.
test_dropout_mlp.__test__ = False
test_batchnorm_cnn.__test__ = False


def register():
    for fn in (test_dropout_mlp, test_batchnorm_cnn):
        if fn.__name__ not in registry.list_models():
            registry.register_model(task="image-classification", paper=PAPER,
                                    summary="engine test model", default_dataset="digits")(fn)


def unregister():
    for name in NAMES:
        registry._REGISTRY.pop(name, None)


PYTHON = sys.executable
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")


def env(**extra):
    """A quiet environment for a subprocess, without an inherited TF_CONFIG."""
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1",
                       MPLBACKEND="Agg")
    environment.pop("TF_CONFIG", None)
    environment.update(extra)
    return environment


def newest_checkpoint(run_dir):
    """The newest checkpoint's global step, from the manager's state file (None if none)."""
    try:
        with open(os.path.join(run_dir, "checkpoints", "checkpoint"), encoding="utf-8") as f:
            first = f.readline()
    except OSError:
        return None
    return int(first.rsplit("-", 1)[1].strip().strip('"')) if "ckpt-" in first else None


def kill_when(processes, run_dir, ready, timeout=400, also=()):
    """SIGKILL `processes` as soon as the newest checkpoint in `run_dir` satisfies `ready`
    (with `also`, other run directories, e.g. a worker's own: the oldest of their newest, since
    a resumed run can only start from a checkpoint that every worker holds).

    Returns:
        The checkpoint number seen.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        numbers = [newest_checkpoint(d) for d in (run_dir, *also)]
        number = None if None in numbers else min(numbers)
        if number is not None and ready(number):
            for process in processes:
                process.send_signal(signal.SIGKILL)
            for process in processes:
                process.wait(timeout=60)
            return number
        finished = [p for p in processes if p.poll() is not None]
        if finished:
            raise AssertionError(f"finished before the kill: {finished[0].communicate()[0]}")
        time.sleep(0.005)
    raise AssertionError("no checkpoint came in time")
