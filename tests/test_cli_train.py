"""`zoo train`'s flags: the recipe's fields come from the model unless a flag is given, every
recipe and engine field has a flag, and a diverged run exits with 1 even with
--keep-going-on-nan."""

import dataclasses
import functools

import pytest
from cli_helpers import run_cli

import zoo.training
from zoo import registry
from zoo.training.config import RECIPE_FIELDS, resolve_recipe


@dataclasses.dataclass
class _Result:
    diverged: bool = False


@pytest.fixture
def captured(monkeypatch):
    """Replaces `zoo.training.train`: records the TrainConfig the command builds."""
    configs = []

    def fake_train(config):
        configs.append(config)
        return _Result(diverged=getattr(fake_train, "diverges", False))

    monkeypatch.setattr(zoo.training, "train", fake_train)
    return configs, fake_train


def test_unset_flags_leave_the_recipe_alone(captured, capsys):
    configs, _ = captured
    assert run_cli(["train", "--model", "vgg11", "--lr", "0.02"], capsys)[0] == 0
    config = configs[-1]
    assert config.lr == 0.02
    assert all(getattr(config, name) is None for name in RECIPE_FIELDS if name != "lr")
    settings, sources = resolve_recipe(config, registry.model_info("vgg11"))
    recipe = registry.model_info("vgg11").recipe
    assert sources == {name: "set" if name == "lr" else "recipe" for name in RECIPE_FIELDS}
    # The recipe's values, not the old flag defaults (15 epochs, batch 32, adam, cosine).
    assert (settings["optimizer"], settings["schedule"], settings["epochs"]) == (
        recipe.optimizer, recipe.schedule, recipe.epochs)
    assert settings["momentum"] == recipe.momentum == 0.9


def test_every_recipe_and_engine_field_has_a_flag(captured, capsys):
    configs, _ = captured
    argv = ["train", "--epochs", "3", "--batch-size", "16", "--lr", "0.1", "--reference-batch",
            "256", "--optimizer", "sgd", "--momentum", "0.8", "--nesterov", "--weight-decay",
            "5e-4", "--schedule", "step", "--milestones", "0.3,0.6", "--decay-factor", "0.2",
            "--warmup-epochs", "0.5", "--label-smoothing", "0.1", "--no-augment",
            "--clip-norm", "2", "--checkpoint-every", "50", "--steps-per-execution", "8",
            "--sync-batchnorm", "--mixed-precision", "float16", "--early-stopping", "3"]
    assert run_cli(argv, capsys)[0] == 0
    config = configs[-1]
    assert (config.epochs, config.batch_size, config.lr, config.reference_batch) == (
        3, 16, 0.1, 256)
    assert (config.optimizer, config.momentum, config.nesterov, config.weight_decay) == (
        "sgd", 0.8, True, 5e-4)
    assert (config.schedule, config.milestones, config.decay_factor) == ("step", (0.3, 0.6), 0.2)
    assert (config.warmup_epochs, config.label_smoothing, config.augment, config.clip_norm) == (
        0.5, 0.1, False, 2.0)
    assert (config.checkpoint_every, config.steps_per_execution, config.sync_batchnorm) == (
        50, 8, True)
    assert (config.mixed_precision, config.early_stopping) == ("float16", 3)
    # The old boolean form: --mixed-precision alone is bfloat16.
    run_cli(["train", "--mixed-precision"], capsys)
    assert configs[-1].mixed_precision == "bfloat16"
    run_cli(["train", "--no-nesterov"], capsys)
    assert configs[-1].nesterov is False and configs[-1].augment is None


@pytest.mark.parametrize("argv, message", [
    (["--momentum", "1.5"], "--momentum: must be in [0, 1)"),
    (["--milestones", "0.5,2"], "--milestones: must be in (0, 1)"),
    (["--decay-factor", "0"], "--decay-factor: must be in (0, 1]"),
    (["--mixed-precision", "float8"], "invalid choice: 'float8'"),
    (["--steps-per-execution", "0"], "--steps-per-execution: must be >= 1"),
])
def test_bad_flag_values_are_one_line(captured, capsys, argv, message):
    status, _, err = run_cli(["train", *argv], capsys)
    assert status == 2 and message in err


def test_keep_going_on_nan_still_exits_with_1(captured, capsys):
    configs, fake_train = captured
    fake_train.diverges = True
    assert run_cli(["train", "--keep-going-on-nan"], capsys)[0] == 1
    assert configs[-1].terminate_on_nan is False
    fake_train.diverges = False
    assert run_cli(["train", "--keep-going-on-nan"], capsys)[0] == 0


def test_the_settings_line_marks_what_was_given(tmp_path, capsys):
    status, out, err = run_cli(["train", "--epochs", "1", "--lr", "0.002", "--quiet",
                             "--steps-per-execution", "4", "--out", str(tmp_path)], capsys)
    assert status == 0, err
    line = next(x for x in out.splitlines() if x.startswith("settings"))
    assert "lr=0.002 [set]" in line and "epochs=1 [set]" in line
    recipe = registry.model_info("lenet5").recipe
    assert f"optimizer={recipe.optimizer} " in line and f"batch_size={recipe.batch_size} " in line
    assert "4 step(s) per call" in out


def test_no_test_never_reads_the_test_split(tmp_path, monkeypatch, capsys):
    import tensorflow as tf

    from zoo.data import base

    def poisoned(image, label):  # reading one test example fails the run
        with tf.control_dependencies([tf.debugging.Assert(False, ["the test split was read"])]):
            return tf.identity(image), tf.identity(label)

    entry = base.dataset_entry("digits")

    @functools.wraps(entry.loader)  # the same signature: the engine inspects its arguments
    def loader(**kwargs):
        splits = entry.loader(**kwargs)
        return dataclasses.replace(splits, name="digits_poisoned",
                                   test=splits.test.map(poisoned))

    monkeypatch.setitem(base._DATASETS, "digits_poisoned", dataclasses.replace(
        entry, name="digits_poisoned", loader=loader))
    with pytest.raises(tf.errors.InvalidArgumentError, match="the test split was read"):
        next(iter(loader().test))  # the poison works
    status, out, err = run_cli(["train", "--dataset", "digits_poisoned", "--epochs", "1",
                                "--quiet", "--no-test", "--out", str(tmp_path)], capsys)
    assert status == 0, err
    assert "test not evaluated" in out
    with open(tmp_path / "history.csv") as f:
        assert "test_" not in f.read()
