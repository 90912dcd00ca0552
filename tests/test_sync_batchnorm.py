"""Synchronised batch normalisation: with `synchronize_batch_norm`, ResNet-18 on 2 replicas
takes the steps of one device with the global batch (weights and moving statistics agree to
float32 round-off); without it each replica normalises its own half and they measurably do not.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from zoo.training import DistributedTrainer, get_strategy
from zoo.training.replicas import synchronize_batch_norm

STEPS = 2
GLOBAL_BATCH = 8
# Observed on a CPU: 7e-7 (moving variances; 6e-8 for trainable weights): sums of x and x^2
# over the replicas in another order. Without synchronisation: 0.075 (moving means) and 7e-3
# (trainable weights).
TOLERANCE = 1e-5


def _weights_after_steps(devices, synchronized, data):
    strategy = get_strategy(devices=devices)
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = zoo.resnet18(input_shape=(32, 32, 3), classes=10)  # its small config
        optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    switched = synchronize_batch_norm(model) if synchronized else 0
    trainer = DistributedTrainer(model, optimizer, strategy, "image-classification")
    for batch in strategy.experimental_distribute_dataset(data):
        trainer.step(batch, 0.01)
    return {w.path: np.asarray(w) for w in model.weights}, switched


@pytest.mark.slow
def test_resnet18_on_two_replicas_equals_one_device_with_synchronised_batch_norm(rng):
    x = rng.normal(size=(GLOBAL_BATCH * STEPS, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=GLOBAL_BATCH * STEPS).astype("int32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
    one_device, switched = _weights_after_steps(1, True, data)
    assert switched == 20  # 17 convolutions' + 3 shortcuts' batch norms
    synchronised, _ = _weights_after_steps(2, True, data)
    separate, _ = _weights_after_steps(2, False, data)

    def worst(weights, trainable_only=False):
        return max(np.abs(weights[k] - one_device[k]).max() for k in one_device
                   if not (trainable_only and "moving_" in k))

    assert worst(synchronised) < TOLERANCE, worst(synchronised)
    assert worst(separate) > 1000 * TOLERANCE, worst(separate)
    assert worst(separate, trainable_only=True) > 100 * TOLERANCE
    assert sum("moving_variance" in k for k in one_device) == switched  # compared too
    # Every weight moved: the comparison is not between untouched initial values.
    keras.utils.set_random_seed(0)
    initial = zoo.resnet18(input_shape=(32, 32, 3), classes=10)
    kernels = [w.path for w in initial.weights if w.path.endswith("kernel")]
    assert all(not np.array_equal(np.asarray(w), one_device[w.path])
               for w in initial.weights if w.path in kernels)


def test_the_switch_reaches_nested_layers_and_the_config():
    inner = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization()])
    outer = keras.Sequential([keras.Input((4,)), inner, keras.layers.BatchNormalization()])
    assert synchronize_batch_norm(outer) == 2
    assert outer.layers[-1].get_config()["synchronized"] is True
    assert inner.layers[0].synchronized is True
