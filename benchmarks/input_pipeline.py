"""Input pipeline: training throughput fed by zoo's tf.data pipeline vs the same batches in memory.

Ours: `zoo.training.loop.training_stream` (cached, shuffled per epoch, batched, prefetched;
one distributed iterator for all epochs, batches taken inside the compiled step), as `zoo train`
runs it. Peer: the very same
batches, materialised beforehand as tensors in memory, fed to the same compiled train step.
Both train LeNet-5 on the bundled digits (resized to 28x28) on one device; the ratio is
pipeline throughput / in-memory throughput (target >= 0.95: the pipeline is not the bottleneck).
"""

import statistics
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
    for batch in batches:
        trainer.step(batch, 1e-3)
    return time.perf_counter() - start, len(batches)


def run(quick=False):
    import tensorflow as tf

    from zoo.training.loop import training_batches, training_stream

    batch_size = 32
    strategy, trainer, train, num_train = _setup(batch_size)
    epochs = 3 if quick else 8
    warmup = 2
    steps = num_train // batch_size
    stream = iter(strategy.experimental_distribute_dataset(
        training_stream(train, batch_size, 0, 0, warmup + epochs, num_train)))
    pipeline_times, memory_times = [], []
    for epoch in range(warmup + epochs):
        in_memory = [tuple(tf.identity(t) for t in batch)
                     for batch in training_batches(train, batch_size, 0, epoch, num_train)]
        assert len(in_memory) == steps
        # Alternate the two, so that contention from other processes hits both alike.
        memory_seconds, _ = _epoch_seconds(trainer, in_memory)
        start = time.perf_counter()
        for _ in range(steps):
            trainer.step_from_iterator(stream, 1e-3)
        pipeline_seconds = time.perf_counter() - start
        if epoch >= warmup:  # the first epochs trace the steps and fill the cache
            memory_times.append(memory_seconds)
            pipeline_times.append(pipeline_seconds)
    examples = steps * batch_size
    # Medians of alternating epochs: robust to bursts of load from other processes.
    best_pipeline, best_memory = statistics.median(pipeline_times), statistics.median(memory_times)
    return [
        Result(
            benchmark="input_pipeline",
            case=f"lenet5 digits 28x28, batch {batch_size}, 1 device (median of {epochs} epochs)",
            ours=examples / best_pipeline,
            peer=examples / best_memory,
            unit="examples/s",
            peer_name="same batches in memory",
            target=0.95,
            higher_is_better=True,
        )
    ]
