"""Input pipeline: training throughput fed by zoo's tf.data pipeline vs the same batches in memory.

Ours: `zoo.training.pipeline.training_stream` (cached, shuffled per epoch, batched, prefetched), one
distributed iterator for the whole run, built into the step with `DistributedTrainer.bind`,
exactly as `zoo train` runs it. Peer: the very same batches, in the same order, materialised
beforehand as tensors in memory and fed to the same compiled train step with
`DistributedTrainer.step`. Both train LeNet-5 on the bundled digits (resized to 28x28) on one
device. The ratio is pipeline throughput / in-memory throughput; target >= 0.95, i.e. the
pipeline is not the bottleneck.

A LeNet-5 step takes 11-16 ms on a 2-core CPU, and the machine's own noise moves it by more than
the 5% being measured. So the two are timed in alternating blocks of ten steps, many rounds,
and compared by their median seconds per step: a burst of load from elsewhere hits both alike.
The in-memory feed runs a second time in each round, and its ratio to itself is printed as the
noise floor of the measurement.
"""

import math

from benchmarks.harness import Result, rotating_medians

BATCH_SIZE = 32
BLOCK = 10  # steps per timed block


def run(quick=False):
    import keras
    import tensorflow as tf

    import zoo
    from zoo.data import load_dataset
    from zoo.training import DistributedTrainer
    from zoo.training.pipeline import maybe_cache, training_stream

    rounds, warmup = (30, 3) if quick else (200, 5)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    splits = load_dataset("digits", min_image_size=(28, 28))
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = zoo.lenet5(input_shape=(28, 28, 1), classes=10)
        optimizer = keras.optimizers.Adam(1e-3)
    trainer = DistributedTrainer(model, optimizer, strategy, "image-classification")
    train = maybe_cache(splits.train, splits.num_train)

    total_steps = (warmup + rounds) * BLOCK
    epochs = math.ceil(total_steps / (splits.num_train // BATCH_SIZE))
    in_memory = [
        tuple(tf.identity(t) for t in batch)
        for batch in training_stream(train, BATCH_SIZE, 0, 0, epochs, splits.num_train)
    ]
    pipeline_step = trainer.bind(iter(strategy.experimental_distribute_dataset(
        training_stream(train, BATCH_SIZE, 0, 0, epochs, splits.num_train))))

    def memory_feed():
        batches = iter(in_memory)  # each feed walks the batches in the pipeline's order

        def block():
            for _ in range(BLOCK):
                trainer.step(next(batches), 1e-3)

        return block

    def pipeline_block():
        for _ in range(BLOCK):
            pipeline_step(1e-3)

    # The in-memory feed is timed twice: how far apart those two land is the noise floor.
    # The warm-up rounds trace the steps and fill the cache.
    seconds = rotating_medians(
        {"pipeline": pipeline_block, "memory": memory_feed(), "memory again": memory_feed()},
        rounds=rounds,
        warmup=warmup,
    )
    seconds = {name: value / BLOCK for name, value in seconds.items()}
    case = f"lenet5 digits 28x28, batch {BATCH_SIZE}, 1 device, median of {rounds}x{BLOCK} steps"
    return [
        Result(
            benchmark="input_pipeline",
            case=case,
            ours=BATCH_SIZE / seconds["pipeline"],
            peer=BATCH_SIZE / seconds["memory"],
            unit="examples/s",
            peer_name="same batches in memory",
            target=0.95,
            higher_is_better=True,
        ),
        Result(
            benchmark="input_pipeline",
            case="noise floor: the in-memory feed against itself",
            ours=BATCH_SIZE / seconds["memory again"],
            peer=BATCH_SIZE / seconds["memory"],
            unit="examples/s",
            peer_name="same batches in memory",
            higher_is_better=True,
        ),
    ]
