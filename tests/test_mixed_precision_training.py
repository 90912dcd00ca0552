"""float16 training with a dynamic loss scale: the loss falls, a step with overflowing gradients
is skipped (weights unchanged) and counted, the scale is checkpointed and restored (exact
resume), and the caller's dtype policy is restored afterwards."""

import engine_helpers
import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.training import DistributedTrainer, TrainConfig, get_strategy, train
from zoo.training.checkpoint import RunCheckpoint
from zoo.training.precision import normalize_precision

FLOAT16 = dict(model="test_batchnorm_cnn", epochs=2, batch_size=64, mixed_precision="float16",
               verbose=0)


@pytest.fixture
def test_models():
    engine_helpers.register()
    yield
    engine_helpers.unregister()


class _Crash(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt


def test_float16_training_falls_resumes_exactly_and_restores_the_policy(tmp_path, test_models):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")  # the caller's own policy
    reference = train(out=str(tmp_path / "reference"), **FLOAT16)
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert reference.model.layers[1].compute_dtype == "float16"
    losses = [row["loss"] for row in reference.history]
    assert losses[1] < 0.85 * losses[0], reference.history
    assert reference.history[1]["val_loss"] < reference.history[0]["val_loss"]
    assert reference.history[-1]["test_accuracy"] > 0.2  # twice chance after 40 steps
    # The initial scale, 2^15, overflows float16 gradients at first: those steps are skipped
    # and the scale halved (a power of two) until the gradients fit.
    first = reference.history[0]
    assert first["skipped_steps"] >= 1
    assert first["loss_scale"] == 2.0**15 / 2 ** first["skipped_steps"]

    with pytest.raises(KeyboardInterrupt):
        train(out=str(tmp_path / "crashed"), callbacks=[_Crash()], **FLOAT16)
    keras.mixed_precision.set_global_policy("float32")
    resumed = train(out=str(tmp_path / "crashed"), **FLOAT16)
    assert keras.mixed_precision.global_policy().name == "float32"
    for a, b in zip(reference.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in reference.history]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in resumed.history]


def test_the_loss_scale_is_in_the_checkpoint(tmp_path):
    with get_strategy(devices=1).scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1))
    optimizer.build(model.trainable_variables)
    optimizer.dynamic_scale.assign(64.0)
    optimizer.step_counter.assign(7)
    saved = RunCheckpoint(str(tmp_path), model, optimizer)
    saved.save(1, {"step": 0})
    optimizer.dynamic_scale.assign(2.0**15)
    optimizer.step_counter.assign(0)
    saved.restore(1)
    assert float(optimizer.dynamic_scale.numpy()) == 64.0
    assert int(optimizer.step_counter.numpy()) == 7


def test_a_step_with_overflowing_gradients_is_skipped_and_counted(rng):
    keras.mixed_precision.set_global_policy("mixed_float16")
    strategy = get_strategy(devices=2)
    with strategy.scope():
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                                  keras.layers.Dense(3, dtype="float32")])
        optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1))
    trainer = DistributedTrainer(model, optimizer, strategy, "image-classification",
                                 outputs="logits")
    x = rng.normal(size=(8, 6)).astype("float32")
    y = rng.integers(0, 3, size=8).astype("int32")
    data = tf.data.Dataset.from_tensors((x, y)).repeat(3)
    run = trainer.bind_steps(iter(strategy.experimental_distribute_dataset(data)))
    # A scale so large that the scaled float16 gradients overflow.
    optimizer.dynamic_scale.assign(2.0**100)
    before = model.get_weights()
    result = run([0.1])
    assert result.totals["skipped_steps"] == 1 and not result.diverged
    assert np.isfinite(result.totals["loss"])  # the loss itself is fine; only the update
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert float(optimizer.dynamic_scale.numpy()) == 2.0**99
    # With a scale that fits, the next steps move the weights and count nothing more.
    optimizer.dynamic_scale.assign(2.0**10)
    result = run([0.1, 0.1], result.totals)
    assert result.totals["skipped_steps"] == 1 and result.steps == 2
    assert not np.array_equal(before[0], model.get_weights()[0])


def test_mixed_precision_values():
    assert normalize_precision(True) == "bfloat16"  # the option's old boolean form
    assert normalize_precision(False) is None and normalize_precision(None) is None
    assert normalize_precision("mixed_float16") == "float16"
    with pytest.raises(ValueError, match="mixed_precision.*float16"):
        normalize_precision("float8")
    with pytest.raises(ValueError, match="mixed_precision"):
        train(TrainConfig(mixed_precision="half"))
