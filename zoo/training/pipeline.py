"""The input pipeline: validation hold-out, caching, shuffling, batching, resuming mid-epoch.

* Every epoch's order is a pure function of (seed, epoch): `shuffle` with a seed derived from
  both, and augmentation with a stateless seed (seed, epoch, example index). A resumed run
  recreates an epoch and skips the batches it already took (`skip_steps`), so it continues
  with exactly the batches the uninterrupted run would have seen; nothing about the data
  position needs saving beyond (epoch, step).
* The validation split, when a loader has none, is held out of the training examples: one
  example of every `VALIDATION_BLOCK` (10%), at a position in each block drawn from
  `VALIDATION_SEED` and the block's index. It depends on the dataset alone (not on the run's
  seed), so runs with different seeds validate on the same examples; it streams (works for
  datasets of unknown size) and its size is known exactly when the training set's is.
* The shuffle buffer and the in-memory cache are bounded in bytes (`SHUFFLE_BUFFER_BYTES`,
  `CACHE_LIMIT_BYTES`), not in examples: 10,000 decoded 224x224 images would be 6 GB.
"""

import numpy as np
import tensorflow as tf

# Datasets whose preprocessed training split is below this size are cached in memory.
CACHE_LIMIT_BYTES = 2 * 1024**3
# The shuffle buffer holds at most this many bytes of examples (all of CIFAR's 45,000
# training images; about 1,800 decoded 224x224 colour images).
SHUFFLE_BUFFER_BYTES = 1024**3
# Hold out one training example of every VALIDATION_BLOCK: a 10% validation split.
VALIDATION_BLOCK = 10
VALIDATION_FRACTION = 1 / VALIDATION_BLOCK
VALIDATION_SEED = 0


def distribute_options():
    """Deterministic order, sharded by data across workers."""
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return options


def element_bytes(dataset):
    """Bytes of one element from the dataset's spec, or None when a shape is not fixed."""
    total = 0
    for spec in tf.nest.flatten(dataset.element_spec):
        if not spec.shape.is_fully_defined():
            return None
        total += spec.shape.num_elements() * spec.dtype.size
    return total


def example_bytes(dataset):
    """Bytes of one element: from the spec, else measured on the first element (variable
    shapes), else 1 for an empty dataset."""
    size = element_bytes(dataset)
    if size is not None:
        return size
    for element in dataset.take(1):
        return max(1, sum(int(np.asarray(t).nbytes) for t in tf.nest.flatten(element)))
    return 1


def maybe_cache(dataset, num_examples, limit=CACHE_LIMIT_BYTES):
    """Cache the preprocessed examples in memory when they fit under `limit` bytes."""
    size = element_bytes(dataset)
    if num_examples is not None and size is not None and num_examples * size <= limit:
        return dataset.cache()
    return dataset


def shuffle_buffer(dataset, num_examples=None, limit=SHUFFLE_BUFFER_BYTES):
    """The shuffle buffer's size in examples: all of them if they fit in `limit` bytes."""
    fits = max(1, limit // example_bytes(dataset))
    return int(min(num_examples, fits)) if num_examples else int(fits)


def count_examples(dataset):
    """Number of elements: the cardinality when tf.data knows it, else one pass over the data."""
    cardinality = int(dataset.cardinality())
    if cardinality >= 0:
        return cardinality
    return int(dataset.reduce(np.int64(0), lambda count, _: count + 1))


def _validation_position(block_index):
    seed = tf.stack([tf.constant(VALIDATION_SEED, tf.int64), tf.cast(block_index, tf.int64)])
    return tf.random.stateless_uniform(
        [], seed=seed, minval=0, maxval=VALIDATION_BLOCK, dtype=tf.int64
    )


def _held_out(index):
    return tf.equal(index % VALIDATION_BLOCK, _validation_position(index // VALIDATION_BLOCK))


def hold_out_validation(dataset, num_examples=None):
    """Split a training set into (train, validation), 9 examples to 1 (see the module doc).

    Args:
        dataset: Unbatched training examples.
        num_examples: Their number, if known.

    Returns:
        `(train, validation, num_train, num_validation)`; the counts are None when
        `num_examples` is.
    """
    enumerated = dataset.enumerate()

    def drop_index(index, example):
        return example

    train = enumerated.filter(lambda i, example: tf.logical_not(_held_out(i))).map(drop_index)
    validation = enumerated.filter(lambda i, example: _held_out(i)).map(drop_index)
    if num_examples is None:
        return train, validation, None, None
    full_blocks, rest = divmod(int(num_examples), VALIDATION_BLOCK)
    num_validation = full_blocks + int(rest > 0 and int(_validation_position(full_blocks)) < rest)
    return train, validation, num_examples - num_validation, num_validation


def augmentation(setting, extras):
    """The training-time augmentation a run applies, or None.

    Args:
        setting: The recipe's `augment`: True (the dataset's augmentation, where it has one),
            False (none), or None (the dataset's only if it is on by default: CIFAR's crops
            and flips are, the digits' shifts are opt-in).
        extras: The dataset's `DatasetSplits.extras` ("augment": the function,
            "augment_by_default": False for an opt-in one).
    """
    function = extras.get("augment")
    if function is None or setting is False:
        return None
    if setting is None and not extras.get("augment_by_default", True):
        return None
    return function


def epoch_seed(seed, epoch):
    """The shuffle/augmentation seed of one epoch: a pure function of (seed, epoch)."""
    return int((seed * 1_000_003 + epoch * 7_919 + 17) % (2**31 - 1))


def _epoch_batches(dataset, global_batch, seed, epoch, buffer, augment, skip_steps=0):
    this_seed = epoch_seed(seed, epoch)
    dataset = dataset.shuffle(buffer, seed=this_seed, reshuffle_each_iteration=False)
    skip = skip_steps * global_batch
    if augment is not None:
        # Indices before skipping, so that a resumed epoch augments each example as the
        # uninterrupted one did; skipping before the augmentation spares its work.
        def apply(index, example):
            image_seed = tf.stack([tf.constant(this_seed, tf.int64), index])
            return (augment(example[0], image_seed), *example[1:])

        dataset = dataset.enumerate().skip(skip).map(apply, num_parallel_calls=tf.data.AUTOTUNE)
    elif skip:
        dataset = dataset.skip(skip)
    return dataset.batch(global_batch, drop_remainder=True)


def _buffer(dataset, num_examples, buffer):
    return buffer if buffer is not None else shuffle_buffer(dataset, num_examples)


def training_batches(dataset, global_batch, seed, epoch, num_examples=None, augment=None,
                     skip_steps=0, buffer=None):
    """One epoch of training batches: shuffled by (seed, epoch), augmented, batched, prefetched.

    Batches have exactly `global_batch` examples (the last partial batch is dropped), so every
    step of every replica has the same shape.

    Args:
        dataset: Unbatched training examples.
        global_batch: Examples per batch (all replicas together).
        seed: The run's seed.
        epoch: 0-based epoch.
        num_examples: Number of examples, if known (bounds the shuffle buffer).
        augment: Optional `(image, seed) -> image` applied to the first element of each example.
        skip_steps: Batches of this epoch already trained on (a resumed epoch starts after them).
        buffer: Shuffle buffer size; None: `shuffle_buffer(dataset, num_examples)`.
    """
    batches = _epoch_batches(dataset, global_batch, seed, epoch,
                             _buffer(dataset, num_examples, buffer), augment, skip_steps)
    return batches.prefetch(tf.data.AUTOTUNE).with_options(distribute_options())


def training_stream(dataset, global_batch, seed, first_epoch, epochs, num_examples=None,
                    augment=None, skip_steps=0, buffer=None):
    """Epochs `first_epoch .. epochs-1` of `training_batches`, one after the other, as one dataset.

    One iterator for the whole run: creating a distributed iterator costs 0.1-0.3 s (as much as
    a third of an epoch of LeNet-5 on the digits), and prefetching runs on across the epoch
    boundaries. Epoch e holds exactly the batches of `training_batches(..., epoch=e)`; the first
    one starts after `skip_steps` batches.
    """
    buffer = _buffer(dataset, num_examples, buffer)
    # Concatenated, not flat_map'ed over an epoch counter: `shuffle` takes Python seeds only.
    stream = _epoch_batches(dataset, global_batch, seed, first_epoch, buffer, augment, skip_steps)
    for epoch in range(first_epoch + 1, epochs):
        stream = stream.concatenate(
            _epoch_batches(dataset, global_batch, seed, epoch, buffer, augment)
        )
    return stream.prefetch(tf.data.AUTOTUNE).with_options(distribute_options())


def evaluation_batches(dataset, global_batch):
    """Evaluation batches, the last one partial (metrics are sums, so it counts exactly)."""
    return dataset.batch(global_batch).prefetch(tf.data.AUTOTUNE).with_options(
        distribute_options()
    )
