"""The tuning tools: range test, diagnostics, overfit check (zoo.training.tuning); random search
and recipe files are in test_tuning_search.py."""

import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from cli_helpers import run_cli

from zoo import registry
from zoo.training import train
from zoo.training.tuning import LayerProbe, find_learning_rate, overfit_batch, warnings_for
from zoo.training.tuning.common import prepared_run
from zoo.training.tuning.lr_finder import _ramp, centred_average, steepest_descent

QUIET = {"verbose": 0, "restart": True}


def test_steepest_descent_of_a_closed_form_curve():
    # loss = -tanh(log10(lr) + 3): steepest at lr = 1e-3 (the tanh's inflection), lowest at the end.
    rates = list(np.logspace(-6, 0, 61))
    losses = [-math.tanh(math.log10(r) + 3) for r in rates]
    index, slope = steepest_descent(rates, losses)
    assert rates[index] == pytest.approx(1e-3, rel=1e-9)
    assert slope == pytest.approx(-1.0, abs=0.01)  # d(-tanh)/dx at 0, central differences
    assert centred_average([1, 2, 3, 10], 3) == [1.5, 2.0, 5.0, 6.5]


def test_range_test_restores_the_state(tmp_path):
    run, _ = prepared_run(out=str(tmp_path), verbose=0)
    before = [v.numpy().copy() for v in [*run.model.variables, *run.optimizer.variables]]
    losses, rates, _ = _ramp(run, 1e-5, 1.0, 20, 0.98, 4.0)
    assert len(losses) == len(rates) > 3 and rates[1] / rates[0] == pytest.approx(
        (1.0 / 1e-5) ** (1 / 19))
    after = [v.numpy() for v in [*run.model.variables, *run.optimizer.variables]]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))


def test_range_test_suggestion_trains_faster_than_a_hundredth_of_it(tmp_path, capsys):
    # Without the recipe's shifts: one epoch on shifted digits is too short to compare losses.
    result = find_learning_rate(out=str(tmp_path / "find"), verbose=1, augment=False)
    printed = capsys.readouterr().out
    assert f"--lr {result.suggestion:.3g}" in printed and "falls fastest" in printed
    assert os.path.exists(tmp_path / "find" / "lr_find.png")
    assert result.rates[0] <= result.applied < result.lowest  # before the lowest loss
    final = {}
    for name, lr in (("suggested", result.suggestion), ("hundredth", result.suggestion / 100)):
        keras.utils.set_random_seed(0)
        run = train(lr=lr, epochs=1, schedule="constant", augment=False,
                    out=str(tmp_path / name), **QUIET)
        final[name] = run.history[-1]
    assert final["suggested"]["loss"] < 0.6 * final["hundredth"]["loss"]
    assert final["suggested"]["val_accuracy"] > final["hundredth"]["val_accuracy"] + 0.2


def test_range_test_on_two_replicas(tmp_path, two_replica_strategy):
    result = find_learning_rate(strategy=two_replica_strategy, out=str(tmp_path), steps=40,
                                start_lr=1e-5, batch_size=32, verbose=0)
    # Global batch 64 = 2 x 32, linear scaling from the reference 32: --lr is half the rate.
    assert result.suggestion == pytest.approx(result.applied / 2)
    assert all(math.isfinite(loss) for loss in result.losses)


def test_layer_probe_against_numpy():
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(4, activation="relu", name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(hidden))
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    y = np.arange(8) % 2
    probe = LayerProbe(model, "image-classification", "logits", (x, y))
    kernel, bias = (w.numpy().astype(np.float64) for w in model.get_layer("hidden").weights)
    probe.snapshot()
    delta = np.full_like(kernel, 0.01)
    model.get_layer("hidden").kernel.assign(kernel + delta)
    row = probe.measure(steps=2)
    expected = np.linalg.norm(delta) / 2 / math.sqrt(np.sum(kernel ** 2) + np.sum(bias ** 2))
    assert row["update_ratio/hidden"] == pytest.approx(expected, rel=1e-6)
    assert row["update_ratio/head"] == 0.0
    # Dead units: a unit is dead when relu(x W + b) is 0 for every example (float64 NumPy).
    model.get_layer("hidden").bias.assign([-100.0, 0.0, 0.0, -100.0])
    weights = model.get_layer("hidden").kernel.numpy().astype(np.float64)
    active = (x.astype(np.float64) @ weights + [-100.0, 0, 0, -100.0] > 0).any(axis=0)
    assert probe.measure()["dead_fraction/hidden"] == pytest.approx(1 - active.mean())
    assert probe.measure()["dead_fraction/hidden"] >= 0.5
    # The gradient norm of the mean cross-entropy, against tf.GradientTape on the same loss.
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
            y, model(x), from_logits=True))
    head = tape.gradient(loss, model.get_layer("head").trainable_weights)
    assert probe.measure()["grad_norm/head"] == pytest.approx(
        math.sqrt(sum(float(tf.reduce_sum(g ** 2)) for g in head)), rel=1e-4)
    lines = warnings_for(probe.measure())
    assert any(line.startswith("hidden:") and "never active" in line for line in lines)


def test_diagnostics_warn_at_a_thousandth_of_the_recipe_rate_only(tmp_path, capsys):
    recipe_lr = registry.model_info("lenet5").recipe.lr
    printed = {}
    for name, lr in (("recipe", recipe_lr), ("thousandth", recipe_lr / 1000)):
        result = train(lr=lr, epochs=1, schedule="constant", diagnostics=True,
                       out=str(tmp_path / name), verbose=1, restart=True)
        printed[name] = capsys.readouterr().out
        assert {"update_ratio/conv1", "grad_norm/conv1"} <= set(result.history[-1])
    assert "diagnostics:" not in printed["recipe"]
    warned = [line for line in printed["thousandth"].splitlines() if "diagnostics:" in line]
    assert warned and all("the learning rate may be too low for this layer" in line
                          for line in warned)
    assert any(line.strip().startswith("diagnostics: conv1: update/weight") for line in warned)
    assert os.path.exists(tmp_path / "recipe" / "diagnostics.png")


def test_overfit_check_passes_on_lenet5(tmp_path):
    result = overfit_batch(examples=32, max_steps=300, out=str(tmp_path), verbose=0)
    assert result.passed and result.metrics["accuracy"] == 1.0
    assert 0 < result.steps < 300 and result.metrics["loss"] < 0.5 * result.initial_loss
    assert f"after {result.steps} steps" in result.message


def test_overfit_check_fails_with_a_diagnosis_at_learning_rate_zero(tmp_path):
    result = overfit_batch(examples=32, max_steps=30, lr=0.0, out=str(tmp_path), verbose=0)
    assert not result.passed and result.steps == 30
    assert result.metrics["loss"] == pytest.approx(result.initial_loss, rel=1e-6)
    assert result.diagnosis and all("update/weight 0, the weights do not move" in line
                                    for line in result.diagnosis)
    assert "overfit check failed" in result.message and "conv1: update/weight 0" in result.message


def test_overfit_check_from_the_command_line(tmp_path, capsys):
    status, out, _ = run_cli(["train", "--overfit-batch", "16", "--overfit-steps", "200",
                              "--out", str(tmp_path), "--quiet"], capsys)
    assert status == 0 and "overfit check passed: accuracy 100% on the 16 examples" in out
    status, _, err = run_cli(["train", "--overfit-batch", "0"], capsys)
    assert status == 2 and "--overfit-batch" in err and "must be >= 1" in err


def test_lr_find_from_the_command_line(tmp_path, capsys):
    status, out, _ = run_cli(["lr-find", "--steps", "30", "--start-lr", "1e-5", "--out",
                              str(tmp_path)], capsys)
    assert status == 0 and "suggested learning rate: --lr " in out and "why: " in out
    assert os.path.exists(tmp_path / "lr_find.png")
    status, _, err = run_cli(["lr-find", "--steps", "5"], capsys)
    assert status == 2 and "--steps" in err
