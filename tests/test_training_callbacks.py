"""The run's pieces for surviving a crash: the run checkpoint (weights, optimizer, random states,
progress), early stopping, atomic records, staged best.keras, damaged checkpoints."""

import glob
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from zoo.training import records
from zoo.training.checkpoint import (
    DIFFERENT_RUN,
    NONE_USABLE,
    READY,
    EarlyStopping,
    RunCheckpoint,
    choose,
    initial_progress,
)


def _model():
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                             keras.layers.Dropout(0.5), keras.layers.Dense(2)])


def _trained(seed):
    keras.utils.set_random_seed(seed)
    model, optimizer = _model(), keras.optimizers.Adam(0.1)
    optimizer.build(model.trainable_variables)
    optimizer.apply([np.ones_like(w) for w in model.get_weights()], model.trainable_variables)
    model(np.ones((2, 3), "float32"), training=True)  # advances the dropout seed
    return model, optimizer


def test_checkpoint_restores_weights_optimizer_random_state_and_progress(tmp_path):
    model, optimizer = _trained(0)
    state = RunCheckpoint(str(tmp_path), model, optimizer)
    early = EarlyStopping(patience=2)
    assert early.update(1.0) == (True, False)
    assert early.update(0.9) == (True, False)
    assert early.update(0.95) == (False, False)
    progress = {**initial_progress(), "epoch": 3, "step": 5, "global_step": 17,
                "totals": {"loss": 1.25, "count": 32.0}, "early_stopping": early.state(),
                "history": [{"epoch": 1, "loss": 0.5}]}
    state.save(17, progress)

    other_model, other_optimizer = _trained(1)
    restored = RunCheckpoint(str(tmp_path), other_model, other_optimizer)
    assert restored.numbers() == [17]
    assert restored.restore(17) == progress
    for a, b in zip(model.get_weights(), other_model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert int(other_optimizer.iterations.numpy()) == 1
    for a, b in zip(optimizer.variables, other_optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # The dropout layer's random state came back too: the next masks are the same.
    np.testing.assert_array_equal(
        model.layers[1].seed_generator.state.numpy(),
        other_model.layers[1].seed_generator.state.numpy(),
    )
    x = np.ones((4, 3), "float32")
    np.testing.assert_array_equal(model(x, training=True), other_model(x, training=True))
    # The patience count survived: one more epoch without improvement stops the run.
    resumed = EarlyStopping(patience=2)
    resumed.load(progress["early_stopping"])
    assert resumed.update(0.91) == (False, True)


def test_a_damaged_checkpoint_is_reported_and_skipped(tmp_path):
    model, optimizer = _trained(0)
    state = RunCheckpoint(str(tmp_path), model, optimizer)
    state.save(1, initial_progress())
    state.save(2, {**initial_progress(), "epoch": 1})
    (data,) = glob.glob(str(tmp_path / "ckpt-2.data-*"))
    with open(data, "r+b") as f:
        f.truncate(os.path.getsize(data) // 2)
    with pytest.warns(RuntimeWarning, match="ckpt-2 cannot be read"):
        assert not state.usable(2)
    assert state.usable(1)


def test_early_stopping_rejects_bad_patience():
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=0)
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="lowest")


def test_history_csv_round_trip_keeps_completed_epochs(tmp_path):
    path = str(tmp_path / "history.csv")
    rows = [{"epoch": e, "loss": 1.0 / e, "val_loss": 2.0 / e} for e in (1, 2, 3)]
    rows[-1]["test_loss"] = 0.5
    records.write_history_csv(path, rows)
    assert records.read_history_csv(path) == rows
    assert records.read_history_csv(path, completed_epochs=2) == rows[:2]
    assert os.listdir(tmp_path) == ["history.csv"]  # no temporary file left
    # What a kill during a write leaves behind is removed by the next run: the writer's pid
    # is one of a process that has exited (a fixed number could belong to a live process).
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f".history.csv.{dead.pid}.tmp").write_text("half a fi")
    (tmp_path / f".model.keras.{dead.pid}.tmp.keras").write_text("")
    records.remove_temporaries(str(tmp_path))
    assert os.listdir(tmp_path) == ["history.csv"]


def test_staged_best_model_follows_the_checkpoint(tmp_path):
    run_dir = str(tmp_path)
    model = _model()
    records.stage_best(model, run_dir, 10)
    records.stage_best(model, run_dir, 20)
    assert not os.path.exists(tmp_path / "best.keras")
    # A kill after checkpoint 10 and before 20: the next run keeps the staged file of 10.
    records.settle_staged_best(run_dir, 10)
    assert os.path.exists(tmp_path / "best.keras")
    assert sorted(os.listdir(tmp_path)) == ["best.keras"]
    keras.models.load_model(tmp_path / "best.keras")


def test_workers_agree_on_the_newest_checkpoint_they_all_hold():
    # Killed between the chief's save of step 60 and worker 1's: both resume from 40.
    assert choose([[READY, 20, 40, 60], [READY, 0, 20, 40]]) == (40, READY)
    assert choose([[READY, 40, -1, -1]]) == (40, READY)
    # Nothing in common (a worker lost its directory): every worker starts afresh.
    assert choose([[READY, 60, -1, -1], [READY, -1, -1, -1]]) == (None, READY)
    # One worker's record differs, or none of its checkpoints reads back: all of them stop.
    assert choose([[READY, 20, -1, -1], [DIFFERENT_RUN, -1, -1, -1]])[1] == DIFFERENT_RUN
    assert choose([[NONE_USABLE, -1, -1, -1], [READY, 20, -1, -1]])[1] == NONE_USABLE
