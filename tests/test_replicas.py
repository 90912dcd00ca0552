"""What replicas need to train like one device: their own dropout masks (with the plain seed
state left for the checkpoint), and gradients summed across replicas once, not twice."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.training import DistributedTrainer, get_strategy
from zoo.training import replicas as replicas_module
from zoo.training.checkpoint import seed_generators
from zoo.training.replicas import ReplicaSeeds, reduce_gradients_ourselves

UNITS = 12


def _mask_encoder():
    """Ones -> dropout -> a fixed sum with weights 2^i: the output encodes the mask in binary,
    so two outputs are equal exactly when the two masks are."""
    model = keras.Sequential([
        keras.Input((UNITS,)),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(1, use_bias=False,
                           kernel_initializer=keras.initializers.Constant(0.0)),
    ])
    model.layers[-1].kernel.assign(2.0 ** np.arange(UNITS, dtype="float32")[:, None])
    return model


def _per_step_outputs(strategy, steps=3):
    """Each replica gets the same example (ones); returns per step (|o_0| + |o_1|, o_0^2 + o_1^2)
    from the regression sums: equal masks give sum^2 == 2 x squares."""
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = _mask_encoder()
        optimizer = keras.optimizers.SGD(0.0)
    trainer = DistributedTrainer(model, optimizer, strategy, "sequence-regression")
    x = np.ones((2, UNITS), "float32")
    y = np.zeros((2,), "float32")
    batches = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors((x, y)).repeat(steps))
    generator = model.layers[0].seed_generator
    sums = [trainer.step(batch, 0.0) for batch in batches]
    components = [np.asarray(v) for v in strategy.experimental_local_results(
        generator.state.value)]
    return [(s["absolute_error"], s["loss"]) for s in sums], components


def test_two_replicas_draw_different_dropout_masks_for_identical_inputs(two_replicas):
    outputs, states = _per_step_outputs(two_replicas)
    assert all(2 * squares != pytest.approx(total**2) for total, squares in outputs), outputs
    # Afterwards every replica holds the same, plain state: what the checkpoint saves, and what
    # one device holds after as many steps.
    _, single = _per_step_outputs(get_strategy(devices=1))
    for component in states:
        np.testing.assert_array_equal(component, single[0])


def test_without_the_fold_the_replicas_share_their_masks(two_replicas, monkeypatch):
    # What the engine corrects: Keras mirrors the seed state, so both replicas draw one mask.
    monkeypatch.setattr(ReplicaSeeds, "fold", lambda self: None)
    monkeypatch.setattr(ReplicaSeeds, "unfold", lambda self: None)
    outputs, _ = _per_step_outputs(two_replicas)
    assert all(2 * squares == pytest.approx(total**2) for total, squares in outputs), outputs


@pytest.fixture
def two_replicas():
    return get_strategy(devices=2)


def _apply_in_replicas(strategy, optimizer, variable, gradient):
    @tf.function
    def apply():
        strategy.run(lambda: optimizer.apply([tf.constant(gradient)], [variable]))

    apply()
    return np.asarray(strategy.experimental_local_results(variable.value)[0])


def test_keras_sums_gradients_across_replicas_and_the_engine_stops_it(two_replicas):
    # The guard on the private hook zoo replaces (zoo.training.replicas): Keras' optimizer,
    # applied in replica context, sums the replicas' gradients (here 2 x the same one). If a
    # Keras release moves that sum elsewhere, the second half fails: the engine's already
    # reduced gradients would be counted twice.
    gradient = np.array([1.0, -2.0], "float32")
    with two_replicas.scope():
        summed = keras.Variable(np.zeros(2, "float32"))
        once = keras.Variable(np.zeros(2, "float32"))
        keras_optimizer = keras.optimizers.SGD(0.5)
        zoo_optimizer = keras.optimizers.SGD(0.5)
    keras_optimizer.build([summed])
    zoo_optimizer.build([once])
    reduce_gradients_ourselves(zoo_optimizer)
    np.testing.assert_array_equal(
        _apply_in_replicas(two_replicas, keras_optimizer, summed, gradient), -0.5 * 2 * gradient)
    np.testing.assert_array_equal(
        _apply_in_replicas(two_replicas, zoo_optimizer, once, gradient), -0.5 * gradient)


def test_a_keras_without_the_hook_is_an_error_not_double_counting():
    class Renamed:
        pass

    with pytest.raises(RuntimeError, match="_all_reduce_sum_gradients"):
        reduce_gradients_ourselves(Renamed())
    # The loss-scale wrapper: the inner optimizer is the one that applies the gradients.
    wrapped = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1))
    reduce_gradients_ourselves(wrapped)
    assert wrapped.inner_optimizer._all_reduce_sum_gradients is replicas_module._no_reduction


def test_one_device_keeps_its_seeds():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dropout(0.5)])
    assert ReplicaSeeds(get_strategy(devices=1), seed_generators(model)).states == []
