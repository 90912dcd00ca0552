"""Several steps per call: N steps in one call take exactly the steps of N calls of one step
(weights, running sums, dropout streams), with the learning rate of every step; a non-finite
loss stops the call at its step; calls end at checkpoints."""

import engine_helpers
import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.layers import StableSoftmax
from zoo.training import DistributedTrainer, get_strategy, train
from zoo.training.epochs import call_length
from zoo.training.strategy import LearningRatePlan

STEPS = 6
GLOBAL_BATCH = 8


def _dropout_cnn():
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.3),
        keras.layers.Dense(10),
        StableSoftmax(),
    ])


def _batches(rng, nan_at=None):
    x = rng.normal(size=(GLOBAL_BATCH * STEPS, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 10, size=GLOBAL_BATCH * STEPS).astype("int32")
    weights = np.ones(GLOBAL_BATCH * STEPS, "float32")
    if nan_at is not None:
        # (A NaN image would not do: the fused convolution and ReLU turn NaN into 0.)
        weights[nan_at * GLOBAL_BATCH] = np.nan
    return tf.data.Dataset.from_tensor_slices((x, y, weights)).batch(GLOBAL_BATCH)


def _rates():
    # Warm-up then cosine over the STEPS steps: a different rate at every step.
    plan = LearningRatePlan(0.05, GLOBAL_BATCH, warmup_epochs=0.5, schedule="cosine", epochs=1)
    rates = [plan(step / STEPS, GLOBAL_BATCH) for step in range(STEPS)]
    assert len(set(rates)) == STEPS
    return rates


def _trained(strategy, data, calls):
    """Train over `data`, `calls` giving the steps of each call; weights and results."""
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = _dropout_cnn()
        optimizer = keras.optimizers.SGD(0.05, momentum=0.9)
    trainer = DistributedTrainer(model, optimizer, strategy, "image-classification")
    run = trainer.bind_steps(iter(strategy.experimental_distribute_dataset(data)))
    rates, totals, results, done = _rates(), None, [], 0
    for count in calls:
        result = run(rates[done:done + count], totals)
        results.append(result)
        totals, done = result.totals, done + result.steps
        if result.diverged:
            break
    return model.get_weights(), results


@pytest.mark.parametrize("replicas", [1, 2])
def test_n_steps_in_one_call_equal_n_calls_of_one_step(replicas, rng):
    strategy = get_strategy(devices=replicas)
    data = _batches(rng)
    one_call, [whole] = _trained(strategy, data, [STEPS])
    many_calls, singles = _trained(strategy, data, [1] * STEPS)
    mixed, _ = _trained(strategy, data, [4, 2])
    for a, b, c in zip(one_call, many_calls, mixed):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    # The running sums too: accumulated on the device in float64 in the same order.
    assert whole.totals == singles[-1].totals and whole.steps == STEPS
    assert whole.totals["count"] == STEPS * GLOBAL_BATCH
    assert not whole.diverged and whole.totals["skipped_steps"] == 0
    # And the rates mattered: one constant rate gives other weights.
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = _dropout_cnn()
        optimizer = keras.optimizers.SGD(0.05, momentum=0.9)
    trainer = DistributedTrainer(model, optimizer, strategy, "image-classification")
    trainer.bind_steps(iter(strategy.experimental_distribute_dataset(data)))([0.05] * STEPS)
    assert not np.allclose(model.get_weights()[0], one_call[0])


def test_a_call_stops_at_the_first_non_finite_loss(rng):
    strategy = get_strategy(devices=2)
    weights, [result] = _trained(strategy, _batches(rng, nan_at=3), [STEPS])
    assert result.diverged and result.steps == 4  # the 4th step, then nothing more
    assert not np.isfinite(result.value)
    # The sums hold the three finite steps only: those of a clean run's first three.
    _, [clean] = _trained(strategy, _batches(np.random.default_rng(0)), [3])
    assert result.totals == clean.totals


def test_calls_end_at_checkpoints_and_at_the_end_of_the_epoch():
    assert call_length(0, 20, 0, 16) == 16
    assert call_length(16, 20, 16, 16) == 4
    assert call_length(0, 20, 40, 16, checkpoint_every=7) == 2  # 42 is a checkpoint
    assert call_length(2, 20, 42, 16, checkpoint_every=7) == 7
    steps, global_step, ends = 20, 40, []
    step = 0
    while step < steps:
        step += call_length(step, steps, global_step + step, 5, checkpoint_every=7)
        ends.append(global_step + step)
    assert ends == [42, 47, 49, 54, 56, 60]


def test_the_run_does_not_depend_on_steps_per_execution(tmp_path):
    engine_helpers.register()
    try:
        settings = dict(model="test_dropout_mlp", epochs=2, batch_size=64, verbose=0,
                        warmup_epochs=0.5, checkpoint_every=7)
        one = train(out=str(tmp_path / "one"), steps_per_execution=1, **settings)
        many = train(out=str(tmp_path / "many"), steps_per_execution=9, **settings)
    finally:
        engine_helpers.unregister()
    for a, b in zip(one.model.get_weights(), many.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in one.history]
    assert strip == [{k: v for k, v in row.items() if k != "seconds"} for row in many.history]


def test_steps_per_execution_is_checked():
    with pytest.raises(ValueError, match="steps_per_execution"):
        train(steps_per_execution=0, verbose=0)
