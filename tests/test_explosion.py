"""A loss that explodes without becoming NaN ends the run as diverged (exit 1), at the step a
float64 NumPy replay of the same SGD says it passes the threshold."""

import keras
import numpy as np
import tensorflow as tf
from cli_helpers import run_cli

from zoo.training.strategy import get_strategy
from zoo.training.trainer import EXPLOSION_FACTOR, DistributedTrainer

STEPS = 12
LR = 5.0  # on whitened inputs each step multiplies the error by about -19: the loss by ~361


def _replay(x, y, kernel, bias):
    """Every step's mean squared error of plain SGD on one fixed batch, in float64."""
    kernel, bias = kernel.astype(np.float64), bias.astype(np.float64)
    losses = []
    for _ in range(STEPS):
        error = x @ kernel + bias - y
        losses.append(float(np.mean(error**2)))
        kernel = kernel - LR * 2 * x.T @ error / len(x)
        bias = bias - LR * 2 * error.mean(axis=0)
    return losses


def test_an_exploding_but_finite_loss_stops_the_call():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 8))
    y = rng.standard_normal((64, 1))
    strategy = get_strategy(devices=1)
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
        optimizer = keras.optimizers.SGD(LR)
    kernel, bias = model.get_weights()
    expected = _replay(x, y, kernel, bias)
    limit = EXPLOSION_FACTOR * max(expected[0], 1.0)
    first_over = next(i for i, loss in enumerate(expected) if loss > limit)
    assert np.isfinite(expected[-1]) and expected[-1] < 1e37  # never NaN/inf in float32
    data = tf.data.Dataset.from_tensors(
        (x.astype("float32"), y.astype("float32"))).repeat()
    trainer = DistributedTrainer(model, optimizer, strategy, "sequence-regression")
    result = trainer.bind_steps(iter(strategy.experimental_distribute_dataset(data)))(
        [LR] * STEPS)
    assert result.diverged
    assert result.steps == first_over + 1
    np.testing.assert_allclose(result.value, expected[first_over], rtol=1e-3)
    # The totals hold only the steps before it.
    np.testing.assert_allclose(result.totals["loss"] / result.totals["count"],
                               np.mean(expected[:first_over]), rtol=1e-3)


def test_zoo_train_ends_an_exploding_run_with_exit_1(tmp_path, capsys):
    # LeNet-5's StableSoftmax keeps the cross-entropy finite however large the logits grow:
    # at lr 1e9 it reaches 1e10 by the second step without ever becoming NaN.
    status, _, err = run_cli(["train", "--epochs", "1", "--lr", "1e9", "--out",
                              str(tmp_path / "run")], capsys)
    assert status == 1
    assert "zoo: error: The loss exploded to" in err and "times the first step's loss" in err
