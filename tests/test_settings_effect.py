"""Settings do what they say on every model: `--clip-norm 0` turns clipping off (also where a
recipe or the sequence default would clip), and the settings line shows what the engine does."""

import csv
import dataclasses
import re

import keras
import pytest

import zoo.training.run as run_module
from zoo import registry
from zoo.cli.parser import build_parser
from zoo.training.config import SEQUENCE_CLIP_NORM, TrainConfig, describe_recipe, resolve_recipe


class _Stop(Exception):
    pass


@pytest.mark.parametrize("name", ["char_lm", "lstm_classifier", "show_and_tell", "lenet5"])
def test_clip_norm_0_turns_clipping_off(name):
    info = registry.model_info(name)
    settings, sources = resolve_recipe(TrainConfig(clip_norm=0), info)
    assert settings["clip_norm"] is None and sources["clip_norm"] == "set"
    assert "clip_norm=None [set]" in describe_recipe(info, settings, sources)


def test_the_recipe_and_the_sequence_default_are_shown_as_what_the_engine_uses():
    info = registry.model_info("char_lm")
    settings, sources = resolve_recipe(TrainConfig(), info)
    assert (settings["clip_norm"], sources["clip_norm"]) == (5.0, "recipe")  # not 1.0
    unclipped = dataclasses.replace(info, recipe=dataclasses.replace(info.recipe, clip_norm=None))
    settings, sources = resolve_recipe(TrainConfig(), unclipped)
    assert (settings["clip_norm"], sources["clip_norm"]) == (SEQUENCE_CLIP_NORM,
                                                             "sequence default")
    assert "clip_norm=1.0 [sequence default]" in describe_recipe(info, settings, sources)
    settings, _ = resolve_recipe(TrainConfig(), registry.model_info("lenet5"))
    assert settings["clip_norm"] is None


def test_the_engine_gets_the_resolved_clipping(monkeypatch, tmp_path):
    seen = {}

    def fake_trainer(*args, **kwargs):
        seen.update(kwargs)
        raise _Stop

    monkeypatch.setattr(run_module, "DistributedTrainer", fake_trainer)
    with pytest.raises(_Stop):
        run_module.train(model="char_lm", clip_norm=0, epochs=1, out=str(tmp_path / "run"),
                         verbose=0, small=True)
    assert seen["clip_norm"] is None  # was 1.0: "0 turns it off" tightened 5.0 to 1.0


@pytest.mark.parametrize("config, message", [
    (TrainConfig(optimizer="adam", nesterov=True),
     "Argument `nesterov` applies to sgd, not adam. Received: nesterov=True"),
    (TrainConfig(schedule="constant", milestones=(0.3, 0.6)),
     "Argument `milestones` applies to the step schedule, not constant. "
     "Received: milestones=(0.3, 0.6)"),
    (TrainConfig(schedule="cosine", decay_factor=0.5),
     "Argument `decay_factor` applies to the step schedule, not cosine."),
])
def test_settings_that_would_be_ignored_are_refused(config, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        resolve_recipe(config, registry.model_info("lenet5"))


def test_the_same_settings_where_they_apply_are_taken():
    settings, _ = resolve_recipe(TrainConfig(optimizer="sgd", nesterov=True, schedule="step",
                                             milestones=(0.3, 0.6)),
                                 registry.model_info("lenet5"))
    assert settings["nesterov"] and settings["milestones"] == (0.3, 0.6)


@pytest.mark.parametrize("argv, message", [
    (["--lr", "inf"], "argument --lr: must be a finite number > 0, got inf"),
    (["--weight-decay", "inf"], "argument --weight-decay: must be a finite number >= 0, got inf"),
    (["--seed", "-1"], "argument --seed: must be >= 0, got -1"),
])
def test_bad_numbers_are_refused_by_the_parser(argv, message, capsys):
    # The parser answers before TensorFlow is imported (`zoo --help` does not load it).
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["train", *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_keras_csv_logger_passed_to_train_writes_one_epoch_column(tmp_path):
    path = tmp_path / "log.csv"
    result = run_module.train(model="lenet5", epochs=1, out=str(tmp_path / "run"), verbose=0,
                              callbacks=[keras.callbacks.CSVLogger(str(path))])
    with open(path, newline="") as f:
        header, *rows = list(csv.reader(f))
    assert header.count("epoch") == 1 and len(header) == len(set(header))
    assert len(rows) == 1 and rows[0][header.index("epoch")] == "0"  # Keras counts from 0
    logged = float(rows[0][header.index("val_loss")])
    assert logged == pytest.approx(result.history[0]["val_loss"], rel=1e-6)


def test_a_run_resolves_its_settings_once_and_the_engine_reads_that_record(monkeypatch,
                                                                          tmp_path):
    from zoo.training import config as config_module
    from zoo.training.tuning import common as tuning_common

    calls = {"resolve": 0, "precision": 0}
    resolve, normalize = config_module.resolve, config_module.normalize_precision

    def counting_resolve(*args, **kwargs):
        calls["resolve"] += 1
        return resolve(*args, **kwargs)

    def counting_precision(value):
        calls["precision"] += 1
        return normalize(value)

    seen = {}

    def fake_trainer(*args, **kwargs):
        seen.update(kwargs)
        raise _Stop

    monkeypatch.setattr(config_module, "normalize_precision", counting_precision)
    monkeypatch.setattr(run_module, "resolve", counting_resolve)
    monkeypatch.setattr(tuning_common, "resolve", counting_resolve)
    monkeypatch.setattr(run_module, "DistributedTrainer", fake_trainer)
    for start in (run_module.train, tuning_common.prepared_run):
        with pytest.raises(_Stop):
            start(model="lstm_classifier", dataset="copy_task", mixed_precision="bfloat16",
                  clip_norm=0.5, epochs=1, out=str(tmp_path / "run"), verbose=0, small=True)
    # Each entry point: one resolution, the precision normalised once within it.
    assert calls == {"resolve": 2, "precision": 2}
    assert seen["clip_norm"] == 0.5
    resolved = config_module.resolve(mixed_precision="mixed_bfloat16")  # the default run
    assert (resolved.info.name, resolved.entry.name, resolved.precision) == (
        "lenet5", "digits", "bfloat16")
    assert resolved.settings["lr"] == registry.model_info("lenet5").recipe.lr
    assert resolved.sources["lr"] == "recipe" and resolved.run_dir.endswith("lenet5-digits")
