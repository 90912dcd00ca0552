"""Input pipeline: training throughput fed by zoo's tf.data pipeline vs the same batches in memory.

Ours: `zoo.training.loop.training_batches` (cached, shuffled per epoch, batched, prefetched)
through `strategy.experimental_distribute_dataset`, as `zoo train` runs it. Peer: the very same
batches, materialised beforehand as tensors in memory, fed to the same compiled train step.
Both train LeNet-5 on the bundled digits (resized to 28x28) on one device; the ratio is
pipeline throughput / in-memory throughput (target >= 0.95: the pipeline is not the bottleneck).
"""

import time

from benchmarks.harness import Result


def _setup(batch_size):
    import keras
    import tensorflow as tf

    import zoo
    from zoo.data import load_dataset
    from zoo.training.loop import DistributedTrainer, maybe_cache

    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    splits = load_dataset("digits", min_image_size=(28, 28))
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = zoo.lenet5(input_shape=(28, 28, 1), classes=10)
        optimizer = keras.optimizers.Adam(1e-3)
    trainer = DistributedTrainer(model, optimizer, strategy, "image-classification")
    return strategy, trainer, maybe_cache(splits.train, splits.num_train), splits.num_train


def _epoch_seconds(trainer, batches):
    start = time.perf_counter()
    steps = 0
    for batch in batches:
        trainer.step(batch, 1e-3)
        steps += 1
    return time.perf_counter() - start, steps


def run(quick=False):
    import tensorflow as tf

    from zoo.training.loop import training_batches

    batch_size = 32
    strategy, trainer, train, num_train = _setup(batch_size)
    epochs = 3 if quick else 8
    pipeline_times, memory_times = [], []
    # Warm-up: trace the step and fill the cache.
    for epoch in range(2):
        _epoch_seconds(trainer, strategy.experimental_distribute_dataset(
            training_batches(train, batch_size, 0, epoch, num_train)))
    for epoch in range(epochs):
        dataset = training_batches(train, batch_size, 0, epoch, num_train)
        in_memory = [tuple(tf.identity(t) for t in batch) for batch in dataset]
        # Alternate the two, so that contention from other processes hits both alike.
        seconds, steps = _epoch_seconds(trainer, in_memory)
        memory_times.append(seconds)
        seconds, steps_pipeline = _epoch_seconds(
            trainer, strategy.experimental_distribute_dataset(dataset))
        pipeline_times.append(seconds)
        assert steps == steps_pipeline
    examples = steps * batch_size
    best_pipeline, best_memory = min(pipeline_times), min(memory_times)
    return [
        Result(
            benchmark="input_pipeline",
            case=f"lenet5 digits 28x28, batch {batch_size}, 1 device (best of {epochs} epochs)",
            ours=examples / best_pipeline,
            peer=examples / best_memory,
            unit="examples/s",
            peer_name="same batches in memory",
            target=0.95,
            higher_is_better=True,
        )
    ]
