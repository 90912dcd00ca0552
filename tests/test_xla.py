"""The XLA path of the engine (`jit_compile=True`): the same updates as the plain path on two
replicas, batch norm and the multi-step loop included; and the one combination it cannot
compile, synchronised batch norm across replicas, refused in one line before the run starts."""

import keras
import numpy as np
import tensorflow as tf
from cli_helpers import run_cli

from zoo.training import DistributedTrainer, get_strategy

STEPS = 4


def _cnn():
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(4, 3),
        keras.layers.BatchNormalization(),
        keras.layers.ReLU(),
        keras.layers.Flatten(),
        keras.layers.Dense(5),
    ])


def _train(jit_compile, data):
    strategy = get_strategy(devices=2)
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = _cnn()
        optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    trainer = DistributedTrainer(model, optimizer, strategy, "image-classification",
                                 clip_norm=1.0, jit_compile=jit_compile, outputs="logits")
    run = trainer.bind_steps(iter(strategy.experimental_distribute_dataset(data)))
    result = run([0.1] * STEPS)
    assert result.steps == STEPS and not result.diverged
    return model.get_weights(), result.totals, trainer.evaluate(
        strategy.experimental_distribute_dataset(data.take(2)))


def test_xla_steps_equal_the_plain_steps_on_two_replicas(rng):
    x = rng.normal(size=(8 * STEPS, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 5, size=8 * STEPS).astype("int32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    plain_weights, plain_totals, plain_metrics = _train(False, data)
    xla_weights, xla_totals, xla_metrics = _train(True, data)
    assert any(np.abs(w).max() > 0 for w in plain_weights)
    for plain, xla in zip(plain_weights, xla_weights):
        np.testing.assert_allclose(xla, plain, rtol=1e-4, atol=1e-5)
    for name, value in plain_totals.items():
        np.testing.assert_allclose(xla_totals[name], value, rtol=1e-5)
    np.testing.assert_allclose(xla_metrics["loss"], plain_metrics["loss"], rtol=1e-5)


def test_jit_compile_with_sync_batchnorm_on_two_replicas_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    status, _, err = run_cli(["train", "--jit-compile", "--sync-batchnorm", "--devices", "2",
                              "--out", str(out)], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "`jit_compile` and `sync_batchnorm`" in err and "on 2 replicas" in err
    assert not out.exists()  # refused before the run started
