"""Random search (zoo tune) and recipe files (zoo train --recipe)."""

import dataclasses
import json
import os

import keras
import pytest
import tensorflow as tf
from cli_helpers import run_cli

pytest.importorskip("keras_tuner")

from zoo import registry  # noqa: E402
from zoo.data import base as data_base  # noqa: E402
from zoo.data import load_dataset  # noqa: E402
from zoo.training import run as run_module  # noqa: E402
from zoo.training.tuning import load_recipe_file, random_search, write_recipe_file  # noqa: E402
from zoo.training.tuning.search import search_space  # noqa: E402

POISONED = "test_poisoned_digits"


def _refuse():
    raise AssertionError("the test split was read")
    yield  # a generator that raises when iterated


@pytest.fixture
def poisoned_digits():
    """The digits with a test split that raises when anything reads it."""

    def loader(crop_border=0, min_image_size=None):
        splits = load_dataset("digits", crop_border=crop_border, min_image_size=min_image_size)
        test = tf.data.Dataset.from_generator(_refuse, output_signature=splits.test.element_spec)
        return dataclasses.replace(splits, name=POISONED, test=test)

    data_base.register_dataset(POISONED, task="image-classification", summary="test",
                               offline=True)(loader)
    yield POISONED
    data_base._DATASETS.pop(POISONED, None)


def test_the_poisoned_split_does_raise(poisoned_digits, tmp_path):
    with pytest.raises(Exception, match="the test split was read"):
        run_module.train(dataset=poisoned_digits, epochs=1, verbose=0, out=str(tmp_path))


def test_search_space_per_family_and_overrides():
    space = search_space(registry.model_info("lenet5"), epochs=2)
    recipe_lr = registry.model_info("lenet5").recipe.lr
    assert space["lr"] == ("log", pytest.approx(recipe_lr / 10), pytest.approx(recipe_lr * 10))
    assert space["warmup_epochs"] == ("uniform", 0.0, 1.0)  # at most half of 2 epochs
    space = search_space(registry.model_info("lenet5"), {"lr": (1e-4, 1e-1),
                                                         "batch_size": [8, 16]})
    assert space["lr"] == ("log", 1e-4, 1e-1) and space["batch_size"] == ("choice", [8, 16])
    with pytest.raises(ValueError, match="Cannot search over 'label_smothing'. Did you mean "
                       "'label_smoothing'"):
        search_space(registry.model_info("lenet5"), {"label_smothing": (0, 0.1)})
    with pytest.raises(ValueError, match="low > 0 on a log scale"):
        search_space(registry.model_info("lenet5"), {"lr": (0.0, 1.0)})


@pytest.mark.slow  # 8 short runs: about 40 s on 2 cores
def test_seeded_search_repeats_its_trials_never_reads_test_and_resumes(
        tmp_path, poisoned_digits, monkeypatch, capsys):
    options = dict(dataset=poisoned_digits, trials=2, epochs=2, seed=3, verbose=0)
    first = random_search(out=str(tmp_path / "a"), **options)

    # The same search again, killed in its second trial after that trial's first epoch.
    real_train, calls = run_module.train, []

    class Kill(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    def killed_in_trial_1(config, strategy=None, callbacks=None):
        calls.append(config.out)
        return real_train(config, strategy, [Kill()] if len(calls) == 2 else callbacks)

    monkeypatch.setattr(run_module, "train", killed_in_trial_1)
    with pytest.raises(KeyboardInterrupt):
        random_search(out=str(tmp_path / "b"), **options)
    assert len(calls) == 2
    calls.clear()
    monkeypatch.setattr(run_module, "train", lambda config, strategy=None, callbacks=None: (
        calls.append(config.out), real_train(config, strategy, callbacks))[1])
    capsys.readouterr()
    second = random_search(out=str(tmp_path / "b"), **{**options, "verbose": 1})
    printed = capsys.readouterr().out
    # The finished trial is kept; the killed one resumes from its checkpoint.
    assert [os.path.basename(c) for c in calls] == ["trial_1"]
    assert printed.count("resuming from the checkpoint after epoch 1") == 1
    # Same seed, same trials in the same order; the interrupted trial resumed exactly.
    assert [t["settings"] for t in first.trials] == [t["settings"] for t in second.trials]
    assert [t["val_loss"] for t in first.trials] == [t["val_loss"] for t in second.trials]
    assert len({json.dumps(t["settings"]) for t in first.trials}) == 2
    for trial in first.trials:
        history = open(os.path.join(trial["run_dir"], "history.csv")).read()
        assert "test_" not in history
    recipe = load_recipe_file(first.recipe_file)
    assert recipe == {"model": "lenet5", "dataset": poisoned_digits, "epochs": 2,
                      **first.best["settings"]}
    # Another seed: other trials.
    third = random_search(out=str(tmp_path / "c"), **{**options, "seed": 4, "trials": 1})
    assert third.trials[0]["settings"] != first.trials[0]["settings"]


def test_a_changed_search_in_the_same_directory_is_refused(tmp_path, poisoned_digits):
    random_search(out=str(tmp_path), dataset=poisoned_digits, trials=1, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="holds another search.*trials: saved 1, now 2"):
        random_search(out=str(tmp_path), dataset=poisoned_digits, trials=2, epochs=1, verbose=0)


def test_recipe_file_round_trip_through_zoo_train(tmp_path, capsys):
    path = write_recipe_file(str(tmp_path / "recipe.json"),
                             {"lr": 0.002, "weight_decay": 1e-4, "batch_size": 16,
                              "warmup_epochs": 0.5, "label_smoothing": 0.05, "epochs": 1},
                             model="lenet5", dataset="digits")
    status, _, err = run_cli(["train", "--recipe", path, "--batch-size", "8", "--out",
                              str(tmp_path / "run"), "--quiet"], capsys)
    assert status == 0, err
    with open(tmp_path / "run" / "config.json", encoding="utf-8") as f:
        record = json.load(f)
    assert (record["model"], record["dataset"]) == ("lenet5", "digits")
    assert (record["lr"], record["weight_decay"], record["warmup_epochs"],
            record["label_smoothing"], record["epochs"]) == (0.002, 1e-4, 0.5, 0.05, 1)
    assert record["batch_size"] == 8  # the flag wins over the file

    with open(tmp_path / "bad.json", "w", encoding="utf-8") as f:
        json.dump({"recipe": {"learning_rate": 0.1}}, f)
    status, _, err = run_cli(["train", "--recipe", str(tmp_path / "bad.json")], capsys)
    assert status == 2 and "Unknown recipe field 'learning_rate'" in err
    assert len(err.strip().splitlines()) == 1
    status, _, err = run_cli(["train", "--recipe", str(tmp_path / "missing.json")], capsys)
    assert status == 2 and "Cannot read the recipe file" in err


def test_tune_from_the_command_line(tmp_path, capsys, poisoned_digits):
    status, out, err = run_cli(["tune", "--dataset", poisoned_digits, "--trials", "1",
                                "--epochs", "1", "--space", "batch_size=16", "--out",
                                str(tmp_path), "--quiet"], capsys)
    assert status == 0, err
    assert "best: trial 0" in out and f"zoo train --recipe {tmp_path}" in out
    assert load_recipe_file(str(tmp_path / "best_recipe.json"))["batch_size"] == 16
    status, _, err = run_cli(["tune", "--space", "momentum=0:1"], capsys)
    assert status == 2 and "--space" in err
