"""Run records and fault tolerance pieces: checkpoint state, early stopping, NaN termination."""

import keras
import numpy as np
import pytest

from zoo.cli import main
from zoo.training.callbacks import (
    EarlyStopping,
    RunCheckpoint,
    read_history_csv,
    write_history_csv,
)


def _model():
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])


def test_checkpoint_restores_weights_optimizer_state_and_early_stopping(tmp_path):
    model, optimizer = _model(), keras.optimizers.Adam(0.1)
    optimizer.build(model.trainable_variables)
    optimizer.apply([np.ones_like(w) for w in model.get_weights()], model.trainable_variables)
    state = RunCheckpoint(str(tmp_path), model, optimizer)
    early = EarlyStopping(state, patience=2)
    assert early.update(1.0) == (True, False)
    assert early.update(0.9) == (True, False)
    assert early.update(0.95) == (False, False)
    state.save(3)

    keras.utils.set_random_seed(1)
    other_model, other_optimizer = _model(), keras.optimizers.Adam(0.1)
    other_optimizer.build(other_model.trainable_variables)
    restored = RunCheckpoint(str(tmp_path), other_model, other_optimizer)
    assert restored.restore() == 3
    for a, b in zip(model.get_weights(), other_model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert int(other_optimizer.iterations.numpy()) == 1
    for a, b in zip(optimizer.variables, other_optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # The patience count survived: one more epoch without improvement stops the run.
    assert EarlyStopping(restored, patience=2).update(0.91) == (False, True)


def test_history_csv_round_trip_keeps_completed_epochs(tmp_path):
    path = str(tmp_path / "history.csv")
    rows = [{"epoch": e, "loss": 1.0 / e, "val_loss": 2.0 / e} for e in (1, 2, 3)]
    write_history_csv(path, rows)
    assert read_history_csv(path) == rows
    assert read_history_csv(path, completed_epochs=2) == rows[:2]


def test_nan_loss_stops_the_run_with_a_clear_error(tmp_path, capsys):
    status = main(["train", "--epochs", "1", "--lr", "1e38", "--optimizer", "sgd", "--quiet",
                   "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 1
    assert "The loss became" in err and "smaller --lr" in err and "Traceback" not in err


def test_early_stopping_rejects_bad_patience(tmp_path):
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(RunCheckpoint(str(tmp_path), _model(), keras.optimizers.SGD()), patience=0)
