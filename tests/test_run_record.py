"""A run from the outside: the recipe it resolves, the record it keeps and compares, the splits
its history reports, callbacks, divergence, and a run directory that survives damage."""

import csv
import dataclasses
import glob
import json
import math
import os

import engine_helpers
import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo import registry
from zoo.training import (
    TrainConfig,
    TrainingDiverged,
    evaluate_saved_model,
    pipeline,
    records,
    train,
)
from zoo.training.config import resolve_recipe

QUICK = dict(model="test_dropout_mlp", epochs=2, batch_size=64, verbose=0)


@pytest.fixture(autouse=True)
def tiny_models():
    engine_helpers.register()
    yield
    engine_helpers.unregister()


def _history(run_dir):
    with open(os.path.join(run_dir, "history.csv"), encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _info_with(recipe):
    return registry.ModelInfo(
        name="m", task="image-classification", family="user", paper=engine_helpers.PAPER,
        summary="", default_input_shape=None, min_input_shape=None, params=None,
        small_config={}, default_dataset="digits", builder=lambda: None, recipe=recipe)


def test_recipe_fields_come_from_the_model_unless_set():
    recipe = registry.Recipe(optimizer="sgd", lr=0.1, reference_batch=256, momentum=0.9,
                             nesterov=True, weight_decay=5e-4, schedule="step", epochs=90)
    info = _info_with(recipe)
    settings, sources = resolve_recipe(TrainConfig(epochs=3, lr=0.05), info)
    assert (settings["optimizer"], settings["momentum"], settings["nesterov"]) == ("sgd", 0.9, True)
    assert (settings["lr"], settings["epochs"], settings["reference_batch"]) == (0.05, 3, 256)
    assert sources["lr"] == sources["epochs"] == "set" and sources["momentum"] == "recipe"
    # Another optimizer: the recipe's SGD settings do not carry over to it.
    settings, sources = resolve_recipe(TrainConfig(optimizer="adam"), info)
    assert (settings["lr"], settings["momentum"], settings["nesterov"]) == (1e-3, 0.0, False)
    assert sources["lr"] == "adam default"
    with pytest.raises(ValueError, match="momentum"):
        resolve_recipe(TrainConfig(optimizer="adam", momentum=0.9), info)
    with pytest.raises(ValueError, match="Argument `epochs` must be an int >= 1"):
        resolve_recipe(TrainConfig(epochs=0), info)


def test_record_history_columns_and_evaluate(tmp_path):
    out = str(tmp_path / "run")
    result = train(out=out, schedule="constant", batch_size=64, lr=1e-3, reference_batch=32,
                   **{k: v for k, v in QUICK.items() if k != "batch_size"})
    with open(os.path.join(out, "config.json"), encoding="utf-8") as f:
        record = json.load(f)
    for key, value in [("model", "test_dropout_mlp"), ("dataset", "digits"), ("lr", 1e-3),
                       ("reference_batch", 32), ("global_batch", 64), ("epochs", 2),
                       ("optimizer", "adam"), ("outputs", "probabilities"), ("seed", 0),
                       ("num_train", 1293), ("num_validation", 144), ("lr_scaling", "linear")]:
        assert record[key] == value, key
    rows = _history(out)
    # lr is stated for the reference batch of 32 and scaled linearly to the global batch of 64.
    assert [float(r["lr"]) for r in rows] == pytest.approx([2e-3, 2e-3])
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(rows[0])
    assert rows[0]["test_loss"] == "" and rows[-1]["test_loss"] != ""  # test: once, at the end
    metrics, dataset = evaluate_saved_model(out)
    assert dataset == "digits"
    assert metrics["accuracy"] == pytest.approx(float(rows[-1]["test_accuracy"]), abs=1e-9)
    assert metrics == pytest.approx(result.test_metrics)
    # Validation and test are different examples: their losses differ.
    assert float(rows[-1]["val_loss"]) != pytest.approx(float(rows[-1]["test_loss"]), rel=1e-6)


def test_resuming_a_different_run_is_refused_with_every_difference(tmp_path):
    out = str(tmp_path / "run")
    train(out=out, **QUICK)
    with pytest.raises(ValueError) as error:
        train(out=out, **{**QUICK, "epochs": 3}, lr=0.01, model_kwargs={"rate": 0.5})
    message = str(error.value)
    for expected in ("epochs: saved 2, now 3", "lr: saved 0.001, now 0.01",
                     "model_kwargs: saved", "--restart", "--out"):
        assert expected in message
    assert train(out=out, restart=True, **{**QUICK, "epochs": 1}).history[-1]["epoch"] == 1


def test_callbacks_see_each_epoch_and_their_entries_land_in_the_history(tmp_path):
    class AddsMetric(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.calls = []

        def on_train_begin(self, logs=None):
            self.calls.append("begin")

        def on_epoch_end(self, epoch, logs=None):
            self.calls.append(epoch)
            logs["val_twice_loss"] = 2 * logs["val_loss"]

        def on_train_end(self, logs=None):
            self.calls.append("end")

    class Stops(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = True

    out, log = str(tmp_path / "run"), str(tmp_path / "log.csv")
    adds = AddsMetric()
    result = train(out=out, callbacks=[adds, keras.callbacks.CSVLogger(log)],
                   **{**QUICK, "epochs": 3})
    assert adds.calls == ["begin", 0, 1, 2, "end"]
    rows = _history(out)
    assert [float(r["val_twice_loss"]) for r in rows] == pytest.approx(
        [2 * float(r["val_loss"]) for r in rows])
    with open(log, encoding="utf-8") as f:
        logged = list(csv.DictReader(f))
    assert [float(r["val_loss"]) for r in logged] == pytest.approx(
        [float(r["val_loss"]) for r in rows])
    assert not result.stopped_early
    stopped = train(out=str(tmp_path / "stopped"), callbacks=[Stops()], **{**QUICK, "epochs": 3})
    assert len(stopped.history) == 1 and stopped.stopped_early


def test_divergence_never_saves_nan_weights(tmp_path):
    out = str(tmp_path / "nan")
    settings = dict(model="test_dropout_mlp", epochs=2, optimizer="sgd", lr=1e38,
                    schedule="constant", verbose=0)
    with pytest.raises(TrainingDiverged, match=r"at epoch 1, step \d+.*smaller --lr"):
        train(out=out, **settings)
    assert not os.path.exists(os.path.join(out, "model.keras"))
    result = train(out=out, terminate_on_nan=False, **settings)
    assert result.diverged and result.diverged_at[0] == 1
    saved = keras.models.load_model(os.path.join(out, "model.keras")).get_weights()
    assert all(np.isfinite(w).all() for w in saved)
    assert all(math.isfinite(v) for v in result.test_metrics.values())


def test_a_damaged_newest_checkpoint_falls_back_and_none_is_an_error(tmp_path):
    out = str(tmp_path / "run")
    reference = train(out=out, **QUICK)
    checkpoints = os.path.join(out, "checkpoints")
    newest = max(glob.glob(os.path.join(checkpoints, "ckpt-*.data-*")), key=os.path.getmtime)
    with open(newest, "r+b") as f:
        f.truncate(100)
    with pytest.warns(RuntimeWarning, match="cannot be read"):
        resumed = train(out=out, **QUICK)  # back to epoch 1, the last epoch trained again
    for a, b in zip(reference.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    for data in glob.glob(os.path.join(checkpoints, "ckpt-*.data-*")):
        with open(data, "r+b") as f:
            f.truncate(10)
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError) as error:
        train(out=out, **QUICK)
    assert out in str(error.value) and "--restart" in str(error.value)


def test_files_agree_with_the_checkpoint_after_a_kill_between_checkpoint_and_renames(
        tmp_path, monkeypatch):
    out = str(tmp_path / "run")
    reference = train(out=str(tmp_path / "reference"), **QUICK)
    calls = []
    original = records.settle_staged_best

    def killed_after_the_second_checkpoint(run_dir, newest):
        calls.extend([newest] if newest > 0 else [])
        if len(calls) == 2:  # epoch 2's checkpoint is written; its renames are not done
            raise KeyboardInterrupt
        return original(run_dir, newest)

    monkeypatch.setattr(records, "settle_staged_best", killed_after_the_second_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        train(out=out, **QUICK)
    assert len(_history(out)) == 1  # the files lag the checkpoint ...
    monkeypatch.setattr(records, "settle_staged_best", original)
    resumed = train(out=out, **QUICK)  # ... until the same command runs again
    assert [r["epoch"] for r in _history(out)] == ["1", "2"]
    assert [r["val_loss"] for r in resumed.history] == [r["val_loss"] for r in reference.history]
    for a, b in zip(keras.models.load_model(os.path.join(out, "best.keras")).get_weights(),
                    keras.models.load_model(
                        os.path.join(tmp_path / "reference", "best.keras")).get_weights()):
        np.testing.assert_array_equal(a, b)
    # No staged or temporary file left (the lock file stays: see zoo.training.lock).
    assert [os.path.basename(p) for p in glob.glob(os.path.join(out, ".*"))] == [".lock"]


def test_a_dataset_of_unknown_size_is_counted_once_and_the_rate_moves_every_step(tmp_path):
    from zoo.data import base as data_base
    from zoo.training.strategy import LearningRatePlan

    def unsized_digits(seed=0):
        splits = data_base.load_dataset("digits")
        # A filter hides the size from tf.data, as a tfds set without metadata would.
        return dataclasses.replace(splits, train=splits.train.filter(lambda x, y: True),
                                   num_train=None)

    data_base.register_dataset("test_unsized_digits", task="image-classification",
                               summary="digits of unknown size", offline=True)(unsized_digits)
    try:
        out = str(tmp_path / "run")
        train(out=out, dataset="test_unsized_digits", warmup_epochs=1, **QUICK)
        with open(os.path.join(out, "config.json"), encoding="utf-8") as f:
            record = json.load(f)
        assert record["num_train"] == 1293  # counted after the validation hold-out
        plan = LearningRatePlan(1e-3, 32, "linear", 1.0, "cosine", 2)
        steps = 1293 // 64
        rows = _history(out)
        # The last step of the warm-up epoch, not the epoch's first value.
        assert float(rows[0]["lr"]) == pytest.approx(plan((steps - 1) / steps, 64), rel=1e-9)
        # A resume reads the count from the record instead of counting again.
        calls = []
        original = pipeline.count_examples
        pipeline.count_examples = lambda dataset: calls.append(1) or original(dataset)
        try:
            train(out=out, dataset="test_unsized_digits", warmup_epochs=1, **QUICK)
        finally:
            pipeline.count_examples = original
        assert calls == []
    finally:
        data_base._DATASETS.pop("test_unsized_digits", None)


def test_sgd_momentum_nesterov_and_decoupled_weight_decay_follow_their_formulas():
    from zoo.training.build import make_optimizer

    settings = {"optimizer": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}
    optimizer = make_optimizer(settings, 0.5)
    variable = keras.Variable(np.array([1.0, -2.0], "float32"))
    gradients = [np.array([0.3, 0.1], "float32"), np.array([-0.2, 0.4], "float32")]
    for g in gradients:
        optimizer.apply([g], [variable])
    # Keras: decoupled decay first (w -= lr * wd * w), then Nesterov momentum
    # (m = mu * m - lr * g; w += mu * m - lr * g).
    w, m, lr, mu, wd = np.array([1.0, -2.0]), np.zeros(2), 0.5, 0.9, 0.1
    for g in gradients:
        w = w - lr * wd * w
        m = mu * m - lr * g
        w = w + mu * m - lr * g
    np.testing.assert_allclose(variable.numpy(), w, rtol=1e-6)


def test_augment_false_skips_the_datasets_augmentation(tmp_path):
    from zoo.data import base as data_base

    def blanked_digits():
        splits = data_base.load_dataset("digits")
        # An "augmentation" that erases the image: training on it cannot learn.
        splits.extras["augment"] = lambda image, seed: tf.zeros_like(image)
        return splits

    data_base.register_dataset("test_blanked_digits", task="image-classification",
                               summary="digits with an erasing augmentation",
                               offline=True)(blanked_digits)
    try:
        settings = {**QUICK, "dataset": "test_blanked_digits", "epochs": 3}
        erased = train(out=str(tmp_path / "on"), augment=True, **settings)
        kept = train(out=str(tmp_path / "off"), augment=False, **settings)
    finally:
        data_base._DATASETS.pop("test_blanked_digits", None)
    assert erased.history[-1]["accuracy"] < 0.2 < 0.4 < kept.history[-1]["accuracy"]


def test_a_run_written_with_the_old_argument_names_still_resumes(tmp_path):
    """`vocab_size` is now `vocabulary_size` (and `dropout_rate` `dropout`): a run directory
    whose record has the old names (the dataset's model_kwargs of the old code) resumes, and
    `zoo evaluate` reads it, instead of being refused as a different run."""
    out = str(tmp_path / "run")
    settings = dict(model="gru_classifier", dataset="copy_task", small=True, epochs=1,
                    batch_size=8, verbose=0,
                    dataset_kwargs={"delay": 3, "copy_length": 2, "num_train": 40,
                                    "num_test": 8})
    first = train(out=out, **settings)
    path = os.path.join(out, records.RECORD_FILE)
    with open(path, encoding="utf-8") as f:
        record = json.load(f)
    assert record["model_kwargs"]["vocabulary_size"] == 11  # 8 symbols + blank, delimiter, pad
    # What the old code wrote: the same record under the old names.
    record["model_kwargs"] = {("vocab_size" if k == "vocabulary_size" else k): v
                              for k, v in record["model_kwargs"].items()}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
    resumed = train(out=out, **settings)  # the finished run, from its checkpoint
    assert [row["epoch"] for row in resumed.history] == [1]
    assert resumed.history[0]["loss"] == first.history[0]["loss"]
    metrics, dataset = evaluate_saved_model(out)  # with the record's dataset_kwargs
    assert dataset == "copy_task"
    assert metrics == pytest.approx(first.test_metrics)


def test_records_are_read_with_the_new_argument_names(tmp_path):
    from zoo.training.config import load_record
    from zoo.training.saved_runs import read_run_record

    old = {"record_version": 1, "model": "vgg11",
           "model_kwargs": {"dropout_rate": 0.3, "classes": 10},
           "dataset_kwargs": {"vocab_size": 50, "sequence_length": 16}}
    (tmp_path / "config.json").write_text(json.dumps(old), encoding="utf-8")
    new = {"model_kwargs": {"dropout": 0.3, "classes": 10},
           "dataset_kwargs": {"vocabulary_size": 50, "sequence_length": 16}}
    for record in (load_record(str(tmp_path / "config.json")), read_run_record(str(tmp_path))):
        assert {k: record[k] for k in new} == new and record["model"] == "vgg11"
    # A `zoo tune` search record keeps the TrainConfig under "config".
    search = {"config": {"model_kwargs": {"vocab_size": 9}, "dataset_kwargs": {}}, "trials": 2}
    (tmp_path / "search.json").write_text(json.dumps(search), encoding="utf-8")
    loaded = load_record(str(tmp_path / "search.json"))
    assert loaded["config"]["model_kwargs"] == {"vocabulary_size": 9} and loaded["trials"] == 2
    # A record with both names (never written, but unambiguous): the new name wins.
    assert records.upgrade_record(
        {"model_kwargs": {"dropout_rate": 0.1, "dropout": 0.2}})["model_kwargs"] == {"dropout": 0.2}
