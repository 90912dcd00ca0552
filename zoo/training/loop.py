"""One custom training loop for every strategy: one device, MirroredStrategy, multi-worker.

Why not `model.fit`: with Keras 3.15 / TensorFlow 2.21 it fails under
`MultiWorkerMirroredStrategy` ("Attempt to convert a value (PerReplica...)", keras-team/keras
issue 20585). A loop over `strategy.run` / `strategy.reduce` works under all of them, and makes
the arithmetic explicit:

* Each replica computes the *sum* of its per-example (or per-token) losses and the gradient of
  that sum. Gradients, loss sums and counts are summed across replicas (all-reduce), and the
  gradient is divided by the global count: the loss is the mean over the global batch, exactly
  as on one device (no per-replica averaging). For language modelling and captioning the
  count is the number of real tokens (the sample-weight mask) in the global batch.
* Global-norm gradient clipping (default for sequence tasks) is applied to the all-reduced
  gradient, so it clips the same gradient a single device would. (Keras' optimizer clips
  per-replica gradients before reducing; we reduce first and switch its reduction off.)
* Each epoch's data order is a function of the seed and the epoch, so a run restored from its
  checkpoint continues exactly where it stopped (see `zoo.training.callbacks`).
"""

import dataclasses
import functools
import inspect
import json
import math
import os
import shutil
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from zoo import registry
from zoo.data import base as data_base
from zoo.training import callbacks as cb
from zoo.training.strategy import (
    LearningRatePlan,
    batch_size_for_epoch,
    describe_strategy,
    get_strategy,
)

OPTIMIZERS = {
    "adam": (keras.optimizers.Adam, 1e-3),
    "adamw": (keras.optimizers.AdamW, 1e-3),
    "sgd": (lambda learning_rate: keras.optimizers.SGD(learning_rate, momentum=0.9), 0.01),
    "rmsprop": (keras.optimizers.RMSprop, 1e-3),
}
SEQUENCE_TASKS = ("language-modeling", "image-captioning")
TOKEN_TASKS = SEQUENCE_TASKS
DEFAULT_MODEL = "lenet5"
# Datasets whose preprocessed training split is below this size are cached in memory.
CACHE_LIMIT_BYTES = 2 * 1024**3


@dataclasses.dataclass
class TrainConfig:
    """Everything `zoo train` can be told. Defaults are the README's first command.

    Attributes:
        model: Registry name; None means LeNet-5 (or the dataset's task's first model).
        dataset: Dataset name; None means the model's `default_dataset`.
        epochs: Number of epochs.
        batch_size: Per-replica batch size; the global batch is this times the replicas.
        lr: Base learning rate for a global batch of `batch_size`; None: the optimizer's
            default (Adam 1e-3, SGD 0.01).
        lr_scaling: "linear", "sqrt" or "none" (see `LearningRatePlan`).
        warmup_epochs: Gradual warm-up length in epochs.
        schedule: "constant", "step" or "cosine".
        optimizer: One of `OPTIMIZERS`.
        mixed_precision: Compute in bfloat16 ("mixed_bfloat16" policy; bfloat16 has float32's
            exponent range, so no loss scaling is needed).
        jit_compile: XLA-compile each replica's forward and backward pass.
        devices: "auto", an int or a list of device names (see `get_strategy`).
        cpu_replicas: Split the CPU into this many logical devices (CPU-only machines).
        crop_border: Pixels dropped from each side of the images.
        batch_size_ramp: None for no ramp; otherwise the first epoch's per-replica batch size
            (0: `batch_size // 8`), doubled each epoch up to `batch_size`.
        seed: Seeds weights, data order and augmentation.
        out: Run directory; None means `runs/MODEL-DATASET`.
        clip_norm: Global-norm gradient clipping; None means 1.0 for sequence tasks, off
            otherwise; 0 turns it off.
        early_stopping: Patience in epochs (on the test loss); None disables it.
        save_best: Also keep `best.keras`, the model with the lowest test loss so far.
        terminate_on_nan: Stop (with a non-zero exit from the CLI) when the loss is NaN/inf.
        small: Build the model with its registry `small_config` (quick demos).
        model_kwargs: Extra keyword arguments for the model function.
        restart: Ignore (and replace) an existing checkpoint instead of resuming.
        verbose: 0 silent, 1 set-up and per-epoch lines, 2 also a progress bar per epoch.
    """

    model: str | None = None
    dataset: str | None = None
    epochs: int = 15
    batch_size: int = 32
    lr: float | None = None
    lr_scaling: str = "linear"
    warmup_epochs: float = 0.0
    schedule: str = "cosine"
    optimizer: str = "adam"
    mixed_precision: bool = False
    jit_compile: bool = False
    devices: object = "auto"
    cpu_replicas: int | None = None
    crop_border: int = 0
    batch_size_ramp: int | None = None
    seed: int = 0
    out: str | None = None
    clip_norm: float | None = None
    early_stopping: int | None = None
    save_best: bool = True
    terminate_on_nan: bool = True
    small: bool = False
    model_kwargs: dict = dataclasses.field(default_factory=dict)
    restart: bool = False
    verbose: int = 2


@dataclasses.dataclass
class TrainResult:
    """What `train` returns."""

    model: object
    history: list
    run_dir: str
    test_metrics: dict
    seconds: float
    stopped_early: bool = False
    diverged: bool = False


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite (raised only when `terminate_on_nan` is set)."""


def _check_positive_int(name, value, minimum=1):
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"Argument `{name}` must be an int >= {minimum}. Received: {name}={value!r}")


# --------------------------------------------------------------------------------------------
# Losses and metrics


def _final_activation(model):
    """'probabilities', 'log_probabilities' or 'logits': what the model's output is."""
    from layers import StableSoftmax

    last = model.layers[-1] if model.layers else None
    if isinstance(last, StableSoftmax):
        return "log_probabilities" if last.log else "probabilities"
    if isinstance(last, keras.layers.Softmax):
        return "probabilities"
    activation = getattr(last, "activation", None)
    name = getattr(activation, "__name__", str(activation))
    if name in ("softmax", "sigmoid"):
        return "probabilities"
    return "logits"


def batch_statistics(task, targets, outputs, sample_weight, head):
    """Sums over a (per-replica) batch: loss, denominator and metric numerators.

    Args:
        task: Registry task.
        targets: Labels (sparse class ids / token ids) or regression targets.
        outputs: Model outputs (probabilities, log-probabilities or logits, see `head`).
        sample_weight: Optional weights; for token tasks the mask of real tokens.
        head: What `outputs` are (`_final_activation`).

    Returns:
        dict of float32 scalars: "loss" (sum), "count" (the denominator: examples, or real tokens
        for token tasks and per-time-step classifiers) and metric sums ("accuracy" or
        "absolute_error").
    """
    outputs = tf.cast(outputs, tf.float32)
    if task == "sequence-regression":
        targets = tf.cast(tf.reshape(targets, tf.shape(outputs)), tf.float32)
        axes = list(range(1, len(outputs.shape)))
        squared = tf.reduce_mean(tf.square(outputs - targets), axis=axes) if axes else tf.square(
            outputs - targets
        )
        absolute = tf.reduce_mean(tf.abs(outputs - targets), axis=axes) if axes else tf.abs(
            outputs - targets
        )
        weight = tf.ones_like(squared) if sample_weight is None else tf.cast(sample_weight, tf.float32)
        count = tf.cast(tf.shape(squared)[0], tf.float32)
        return {
            "loss": tf.reduce_sum(squared * weight),
            "count": count,
            "absolute_error": tf.reduce_sum(absolute),
        }

    targets = tf.cast(targets, tf.int32)
    if outputs.shape[-1] == 1:  # binary classifier with one output unit
        labels = tf.cast(tf.reshape(targets, tf.shape(outputs)[:-1]), tf.float32)
        logits = outputs[..., 0]
        if head == "probabilities":
            logits = getattr(outputs, "_keras_logits", None)
            logits = logits[..., 0] if logits is not None else tf.math.log(
                tf.clip_by_value(outputs[..., 0], 1e-7, 1 - 1e-7)
            ) - tf.math.log(tf.clip_by_value(1 - outputs[..., 0], 1e-7, 1 - 1e-7))
        per_example = tf.nn.sigmoid_cross_entropy_with_logits(labels, logits)
        correct = tf.cast(tf.equal(tf.cast(logits > 0, tf.float32), labels), tf.float32)
    else:
        if head == "probabilities":
            # Keras' crossentropy uses the log-probabilities a StableSoftmax (or a softmax op)
            # attaches to its output, so this is computed from logits, not clipped probabilities.
            per_example = keras.losses.sparse_categorical_crossentropy(
                targets, outputs, from_logits=False
            )
        else:
            per_example = keras.losses.sparse_categorical_crossentropy(
                targets, outputs, from_logits=True
            )
        predictions = tf.argmax(outputs, axis=-1, output_type=tf.int32)
        correct = tf.cast(tf.equal(predictions, tf.reshape(targets, tf.shape(predictions))), tf.float32)

    per_example = tf.cast(per_example, tf.float32)
    if task in TOKEN_TASKS or len(per_example.shape) > 1:
        # Token-level (or per-time-step) predictions: every real position counts once.
        mask = tf.ones_like(per_example) if sample_weight is None else tf.cast(
            tf.reshape(sample_weight, tf.shape(per_example)), tf.float32
        )
        return {
            "loss": tf.reduce_sum(per_example * mask),
            "count": tf.reduce_sum(mask),
            "accuracy": tf.reduce_sum(correct * mask),
        }
    weight = tf.ones_like(per_example) if sample_weight is None else tf.cast(
        tf.reshape(sample_weight, tf.shape(per_example)), tf.float32
    )
    return {
        "loss": tf.reduce_sum(per_example * weight),
        "count": tf.cast(tf.shape(per_example)[0], tf.float32),
        "accuracy": tf.reduce_sum(correct),
    }


def _metrics_from_sums(task, sums):
    count = max(float(sums["count"]), 1e-12)
    metrics = {"loss": float(sums["loss"]) / count}
    if "accuracy" in sums:
        metrics["accuracy"] = float(sums["accuracy"]) / count
    if "absolute_error" in sums:
        metrics["mae"] = float(sums["absolute_error"]) / count
    if task in TOKEN_TASKS:
        metrics["perplexity"] = math.exp(min(metrics["loss"], 50.0))
    return metrics


def _dense(gradient):
    return tf.convert_to_tensor(gradient) if isinstance(gradient, tf.IndexedSlices) else gradient


def _lr_tensor(learning_rate):
    # A tensor, not a Python float: a new float would retrace the step.
    return tf.constant(learning_rate, tf.float32)


def _as_floats(stats):
    return {key: float(value) for key, value in stats.items()}


def _unpack(batch):
    if len(batch) == 3:
        return batch
    inputs, targets = batch
    return inputs, targets, None


# --------------------------------------------------------------------------------------------
# The distributed steps


class DistributedTrainer:
    """The train and evaluation steps of one model under one strategy.

    Args:
        model: A Keras model created under `strategy.scope()`.
        optimizer: A Keras optimizer created under the same scope; None for evaluation only.
        strategy: Any `tf.distribute.Strategy`.
        task: Registry task (picks the loss and metrics).
        clip_norm: Global-norm clipping of the all-reduced gradient, or None.
        jit_compile: XLA-compile each replica's forward/backward computation.
    """

    def __init__(self, model, optimizer, strategy, task, clip_norm=None, jit_compile=False):
        self.model = model
        self.optimizer = optimizer
        self.strategy = strategy
        self.task = task
        self.clip_norm = clip_norm
        self.head = _final_activation(model)
        if optimizer is not None:
            with strategy.scope():
                optimizer.build(model.trainable_variables)
            # We all-reduce (and clip) the gradients ourselves; stop Keras' TF optimizer from
            # summing them across replicas a second time (keras/src/backend/tensorflow/optimizer.py).
            optimizer._all_reduce_sum_gradients = lambda grads_and_vars: list(grads_and_vars)

        def forward_backward(inputs, targets, sample_weight):
            variables = model.trainable_variables
            # Persistent: whether there are losses from add_loss (e.g. attention penalties) is
            # only known after the forward pass below.
            with tf.GradientTape(persistent=True) as tape:
                outputs = model(inputs, training=True)
                stats = batch_statistics(task, targets, outputs, sample_weight, self.head)
                regularization = tf.add_n([tf.cast(x, tf.float32) for x in model.losses]) if (
                    model.losses
                ) else None
            grads = tape.gradient(stats["loss"], variables)
            regularization_grads = (
                tape.gradient(regularization, variables) if regularization is not None else None
            )
            return stats, grads, regularization_grads

        def forward(inputs, targets, sample_weight):
            outputs = model(inputs, training=False)
            return batch_statistics(task, targets, outputs, sample_weight, self.head)

        self._forward_backward = tf.function(forward_backward, jit_compile=jit_compile)
        self._forward = tf.function(forward, jit_compile=jit_compile)

        def train_replica(batch):
            inputs, targets, sample_weight = _unpack(batch)
            stats, grads, regularization_grads = self._forward_backward(
                inputs, targets, sample_weight
            )
            context = tf.distribute.get_replica_context()
            variables = model.trainable_variables
            if regularization_grads is None:
                regularization_grads = [None] * len(grads)
            # Embedding gradients arrive as IndexedSlices whose size differs between replicas;
            # the all-reduce needs dense tensors of one shape.
            grads = [_dense(g) for g in grads]
            regularization_grads = [_dense(g) for g in regularization_grads]
            present = [i for i, g in enumerate(grads) if g is not None]
            regularized = [i for i, g in enumerate(regularization_grads) if g is not None]
            reduced = context.all_reduce(
                tf.distribute.ReduceOp.SUM,
                [grads[i] for i in present]
                + [regularization_grads[i] for i in regularized]
                + [stats["count"]],
            )
            global_count = tf.maximum(reduced[-1], 1.0)
            final = [None] * len(grads)
            for slot, i in enumerate(present):
                final[i] = reduced[slot] / tf.cast(global_count, reduced[slot].dtype)
            # add_loss terms are per-replica means (a weight penalty is the same on every replica,
            # a data-dependent penalty is a mean over the local batch): their global value is the
            # mean over replicas.
            replicas = float(context.num_replicas_in_sync)
            for slot, i in enumerate(regularized, start=len(present)):
                term = reduced[slot] / replicas
                final[i] = term if final[i] is None else final[i] + term
            kept = [(g, v) for g, v in zip(final, variables) if g is not None]
            grads_only = [g for g, _ in kept]
            if self.clip_norm:
                grads_only, _ = tf.clip_by_global_norm(grads_only, self.clip_norm)
            optimizer.apply(grads_only, [v for _, v in kept])
            return stats

        @tf.function
        def train_step(distributed_batch, learning_rate):
            optimizer.learning_rate.assign(learning_rate)
            stats = strategy.run(train_replica, args=(distributed_batch,))
            return {
                k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                for k, v in stats.items()
            }

        @tf.function
        def eval_step(distributed_batch):
            stats = strategy.run(lambda batch: forward(*_unpack(batch)), args=(distributed_batch,))
            return {
                k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                for k, v in stats.items()
            }

        @tf.function
        def train_step_from_iterator(iterator, learning_rate):
            # Taking the batch inside the graph avoids a Python round trip per step through the
            # distributed iterator (a few ms: as much as a small model's whole step).
            return train_step(next(iterator), learning_rate)

        self.train_step = train_step
        self.eval_step = eval_step
        self._train_step_from_iterator = train_step_from_iterator

    def step(self, distributed_batch, learning_rate):
        """One training step at `learning_rate`; returns the summed statistics as floats."""
        return _as_floats(self.train_step(distributed_batch, _lr_tensor(learning_rate)))

    def step_from_iterator(self, iterator, learning_rate):
        """Like `step`, with the batch taken from a distributed iterator inside the graph.

        The caller must know that the iterator has a next batch (here: a known number of full
        batches per epoch).
        """
        return _as_floats(self._train_step_from_iterator(iterator, _lr_tensor(learning_rate)))

    def bind(self, iterator):
        """A training step with `iterator` built into its graph: `step = trainer.bind(it)`, then
        `step(learning_rate)` -> the summed statistics as floats.

        Use it for an iterator that serves the whole run. Passing the iterator as an argument, as
        `step_from_iterator` does, makes every call rebuild the distributed iterator's type spec
        in Python: 0.3-0.4 ms a step on a 2-core CPU, 3% of a LeNet-5 step. Each bound iterator
        traces the step once more.
        """

        @tf.function
        def bound_step(learning_rate):
            return self.train_step(next(iterator), learning_rate)

        return lambda learning_rate: _as_floats(bound_step(_lr_tensor(learning_rate)))

    def evaluate(self, distributed_dataset):
        """Metrics over a whole distributed dataset: {"loss", "accuracy" | "mae", ...}."""
        totals = {}
        for batch in distributed_dataset:
            for key, value in self.eval_step(batch).items():
                totals[key] = totals.get(key, 0.0) + float(value)
        if not totals:
            raise ValueError("The evaluation dataset is empty.")
        return _metrics_from_sums(self.task, totals)


# --------------------------------------------------------------------------------------------
# Input pipelines


def _distribute_options():
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return options


def _element_bytes(dataset):
    total = 0
    for spec in tf.nest.flatten(dataset.element_spec):
        if not spec.shape.is_fully_defined():
            return None
        total += spec.shape.num_elements() * spec.dtype.size
    return total


def maybe_cache(dataset, num_examples, limit=CACHE_LIMIT_BYTES):
    """Cache the preprocessed examples in memory when they fit under `limit` bytes."""
    size = _element_bytes(dataset)
    if num_examples is not None and size is not None and num_examples * size <= limit:
        return dataset.cache()
    return dataset


def epoch_seed(seed, epoch):
    """The shuffle/augmentation seed of one epoch: a pure function of (seed, epoch)."""
    return int((seed * 1_000_003 + epoch * 7_919 + 17) % (2**31 - 1))


def _epoch_batches(dataset, global_batch, seed, epoch, num_examples, augment):
    this_seed = epoch_seed(seed, epoch)
    buffer = num_examples if num_examples else 10_000
    dataset = dataset.shuffle(buffer, seed=this_seed, reshuffle_each_iteration=False)
    if augment is not None:

        def apply(index, example):
            image_seed = tf.stack([tf.constant(this_seed, tf.int64), index])
            return (augment(example[0], image_seed), *example[1:])

        dataset = dataset.enumerate().map(apply, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(global_batch, drop_remainder=True)


def training_batches(dataset, global_batch, seed, epoch, num_examples=None, augment=None):
    """One epoch of training batches: shuffled by (seed, epoch), augmented, batched, prefetched.

    Batches have exactly `global_batch` examples (the last partial batch is dropped), so every
    step of every replica has the same shape.
    """
    batches = _epoch_batches(dataset, global_batch, seed, epoch, num_examples, augment)
    return batches.prefetch(tf.data.AUTOTUNE).with_options(_distribute_options())


def training_stream(dataset, global_batch, seed, first_epoch, epochs, num_examples=None,
                    augment=None):
    """Epochs `first_epoch .. epochs-1` of `training_batches`, one after the other, as one dataset.

    One iterator for the whole run: creating a distributed iterator costs 0.1-0.3 s (as much as
    a third of an epoch of LeNet-5 on the digits), and prefetching runs on across the epoch
    boundaries. Epoch e holds exactly the batches of `training_batches(..., epoch=e)`.
    """
    # Concatenated, not flat_map'ed over an epoch counter: `shuffle` takes Python seeds only.
    stream = _epoch_batches(dataset, global_batch, seed, first_epoch, num_examples, augment)
    for epoch in range(first_epoch + 1, epochs):
        stream = stream.concatenate(
            _epoch_batches(dataset, global_batch, seed, epoch, num_examples, augment)
        )
    return stream.prefetch(tf.data.AUTOTUNE).with_options(_distribute_options())


def evaluation_batches(dataset, global_batch):
    """Test batches, the last one partial (metrics are sums, so it counts exactly)."""
    return (
        dataset.batch(global_batch).prefetch(tf.data.AUTOTUNE).with_options(_distribute_options())
    )


# --------------------------------------------------------------------------------------------
# Model and data set-up


def resolve_names(model_name, dataset_name):
    """The (model, dataset) a run uses, with helpful errors for unknown or mismatched names."""
    if model_name is None and dataset_name is not None:
        task = data_base.dataset_entry(dataset_name).task
        candidates = [
            m for m in registry.list_models(task=task)
            if registry.model_info(m).default_dataset == dataset_name
        ] or registry.list_models(task=task)
        if DEFAULT_MODEL in candidates:
            model_name = DEFAULT_MODEL
        elif candidates:
            model_name = candidates[0]
        else:
            raise ValueError(
                f"No registered model serves the task {task!r} of dataset {dataset_name!r}. "
                "Pass --model."
            )
    model_name = model_name or DEFAULT_MODEL
    info = registry.model_info(model_name)
    dataset_name = dataset_name or info.default_dataset
    if dataset_name is None:
        options = data_base.list_datasets(task=info.task)
        raise ValueError(
            f"Model {model_name!r} has no default dataset; pass --dataset (one of {options})."
        )
    entry = data_base.dataset_entry(dataset_name)
    if entry.task != info.task:
        options = data_base.list_datasets(task=info.task)
        raise ValueError(
            f"Model {model_name!r} is for {info.task} but dataset {dataset_name!r} is for "
            f"{entry.task}. Use one of the {info.task} datasets ({', '.join(options) or 'none'})"
            f" or one of the {entry.task} models "
            f"({', '.join(registry.list_models(task=entry.task)) or 'none'})."
        )
    return info, entry


def load_splits(info, entry, config):
    """Load the dataset with the options its loader accepts (image size, border, seed)."""
    parameters = inspect.signature(entry.loader).parameters
    kwargs = {}
    if "min_image_size" in parameters and info.min_input_shape:
        kwargs["min_image_size"] = tuple(info.min_input_shape[:2])
    if config.crop_border:
        if "crop_border" not in parameters:
            raise ValueError(
                f"Option --crop-border applies to image datasets only; {entry.name!r} is a "
                f"{entry.task} dataset. Received: crop_border={config.crop_border}"
            )
        kwargs["crop_border"] = config.crop_border
    if "seed" in parameters:
        kwargs["seed"] = config.seed
    try:
        return entry.loader(**kwargs)
    except ValueError:
        raise
    except Exception as error:  # e.g. a tfds download without network: say so, no traceback
        raise ValueError(
            f"Could not load dataset {entry.name!r} ({type(error).__name__}: {error}). "
            + ("It needs a download; the offline datasets are: "
               + ", ".join(n for n in data_base.list_datasets()
                           if data_base.dataset_entry(n).offline) + "."
               if not entry.offline else "")
        ) from error


def build_model(info, splits, config):
    """Create the model for the data; explain what to change when they do not fit."""
    kwargs = dict(info.small_config) if config.small else {}
    kwargs.update(splits.model_kwargs)
    kwargs.update(config.model_kwargs)
    try:
        model = registry.create_model(info.name, **kwargs)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"Model {info.name!r} cannot be built for dataset {splits.name!r} with "
            f"{kwargs}: {error} Choose a dataset whose inputs the model accepts (its minimum "
            f"input is {info.min_input_shape}), or change the options that shape the input "
            "(e.g. a smaller --crop-border)."
        ) from error
    spec = tf.nest.flatten(splits.train.element_spec)[0]
    expected = model.inputs[0].shape[1:] if getattr(model, "inputs", None) else None
    if expected is not None and len(tf.nest.flatten(splits.train.element_spec[0])) == 1:
        got = tuple(spec.shape)
        if len(got) != len(expected) or any(
            e is not None and g is not None and e != g for e, g in zip(expected, got)
        ):
            raise ValueError(
                f"Model {info.name!r} expects inputs of shape {tuple(expected)} but dataset "
                f"{splits.name!r} gives {got}. Build the model for the data's shape (the "
                "dataset's model_kwargs) or pick a matching dataset."
            )
    return model


def _make_optimizer(config):
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(
            f"Argument `optimizer` must be one of {sorted(OPTIMIZERS)}. "
            f"Received: optimizer={config.optimizer!r}"
        )
    factory, default_lr = OPTIMIZERS[config.optimizer]
    return factory, config.lr if config.lr is not None else default_lr


def _check_out_dir(path):
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".write-test")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as error:
        raise ValueError(
            f"Cannot write to the run directory {path!r} ({error.strerror or error}). "
            "Pass a writable --out DIR."
        ) from error


def _comparable_config(config):
    keys = ("model", "dataset", "batch_size", "seed", "optimizer", "crop_border", "small")
    return {k: getattr(config, k) for k in keys}


# --------------------------------------------------------------------------------------------
# The run


def _say(config, chief, *parts):
    if config.verbose and chief:
        print(*parts, flush=True)


def train(config=None, strategy=None, **overrides):
    """Train a registry model on a registered dataset; resume if the run directory has a
    checkpoint.

    Args:
        config: A `TrainConfig` (defaults: LeNet-5 on the bundled digits).
        strategy: A `tf.distribute.Strategy`; None builds one from `config.devices` and
            `config.cpu_replicas` with `get_strategy`.
        **overrides: Fields of `TrainConfig` to replace, e.g. `train(epochs=2)`.

    Returns:
        `TrainResult` with the trained model, the history (one dict per epoch), the run
        directory and the final test metrics.

    Raises:
        ValueError: for bad options, unknown names, a model that does not fit the data or an
            unwritable run directory.
        TrainingDiverged: if the loss becomes NaN/inf and `terminate_on_nan` is set.
    """
    config = dataclasses.replace(config or TrainConfig(), **overrides)
    started = time.perf_counter()
    _check_positive_int("epochs", config.epochs)
    _check_positive_int("batch_size", config.batch_size)
    _check_positive_int("crop_border", config.crop_border, minimum=0)
    if config.batch_size_ramp is not None:
        _check_positive_int("batch_size_ramp", config.batch_size_ramp, minimum=0)
    optimizer_factory, base_lr = _make_optimizer(config)
    info, entry = resolve_names(config.model, config.dataset)
    config.model, config.dataset = info.name, entry.name
    plan = LearningRatePlan(
        base_lr=base_lr,
        reference_batch=config.batch_size,
        scaling=config.lr_scaling,
        warmup_epochs=config.warmup_epochs,
        schedule=config.schedule,
        epochs=config.epochs,
    )
    run_dir = os.path.abspath(config.out or os.path.join("runs", f"{info.name}-{entry.name}"))
    _check_out_dir(run_dir)

    if strategy is None:
        strategy = get_strategy(config.devices, config.cpu_replicas)
    chief = cb.is_chief(strategy)
    own_dir = cb.worker_dir(run_dir, strategy)
    os.makedirs(own_dir, exist_ok=True)
    replicas = strategy.num_replicas_in_sync

    keras.utils.set_random_seed(config.seed)
    if config.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        return _run(config, strategy, info, entry, plan, optimizer_factory, run_dir, own_dir,
                    chief, replicas, started)
    finally:
        if config.mixed_precision:
            keras.mixed_precision.set_global_policy("float32")


def _run(config, strategy, info, entry, plan, optimizer_factory, run_dir, own_dir, chief,
         replicas, started):
    say = lambda *parts: _say(config, chief, *parts)  # noqa: E731
    devices = [d.name for d in tf.config.list_logical_devices() if d.device_type in ("CPU", "GPU")]
    say(f"devices: {devices}")
    say(f"strategy: {describe_strategy(strategy)}")

    splits = load_splits(info, entry, config)
    global_batch = config.batch_size * replicas
    if splits.num_train is not None and splits.num_train < global_batch:
        raise ValueError(
            f"The global batch ({config.batch_size} per replica x {replicas} replicas = "
            f"{global_batch}) is larger than {entry.name!r}'s {splits.num_train} training "
            "examples. Use a smaller --batch-size."
        )
    with strategy.scope():
        model = build_model(info, splits, config)
        optimizer = optimizer_factory(learning_rate=plan.scaled_lr(global_batch))
    clip_norm = config.clip_norm
    if clip_norm is None:
        clip_norm = 1.0 if info.task in ("language-modeling", "image-captioning",
                                         "sequence-classification", "sequence-regression") else None
    trainer = DistributedTrainer(
        model, optimizer, strategy, info.task, clip_norm=clip_norm or None,
        jit_compile=config.jit_compile,
    )
    say(
        f"model: {info.name} ({model.count_params():,} parameters), dataset: {entry.name} "
        f"({splits.num_train} train / {splits.num_test} test), input {splits.model_kwargs}"
    )
    say(
        f"batch: {config.batch_size} per replica x {replicas} replica(s) = {global_batch} global"
        + (f"; ramp from {batch_size_for_epoch(0, config.batch_size, config.batch_size_ramp)}"
           if config.batch_size_ramp is not None else "")
    )
    say(plan.describe(global_batch) + f"; optimizer {config.optimizer}"
        + (f"; gradients clipped to global norm {clip_norm}" if clip_norm else ""))
    if config.mixed_precision:
        say("mixed precision: mixed_bfloat16")

    checkpoint_dir = os.path.join(own_dir, "checkpoints")
    config_path = os.path.join(run_dir, "config.json")
    if config.restart and os.path.isdir(checkpoint_dir):
        shutil.rmtree(checkpoint_dir)
    run_checkpoint = cb.RunCheckpoint(checkpoint_dir, model, optimizer)
    if run_checkpoint.manager.latest_checkpoint and os.path.exists(config_path):
        with open(config_path, encoding="utf-8") as f:
            saved = json.load(f)
        mismatched = {
            k: (saved.get(k), v) for k, v in _comparable_config(config).items() if saved.get(k) != v
        }
        if mismatched:
            raise ValueError(
                f"The run directory {run_dir!r} holds a checkpoint of a different run "
                f"({', '.join(f'{k}: saved {a!r}, now {b!r}' for k, (a, b) in mismatched.items())}). "
                "Pass --restart to overwrite it, or a new --out DIR."
            )
    first_epoch = run_checkpoint.restore()
    if chief:
        with open(config_path, "w", encoding="utf-8") as f:
            json.dump(_comparable_config(config) | {"epochs": config.epochs}, f, indent=1)
    history_path = os.path.join(run_dir, cb.HISTORY_FILE)
    history = cb.read_history_csv(history_path, first_epoch) if first_epoch else []
    if first_epoch:
        say(f"resuming from the checkpoint after epoch {first_epoch} in {own_dir}/checkpoints"
            + (" (all epochs are done; pass --restart to train again)"
               if first_epoch >= config.epochs else ""))
    early = cb.EarlyStopping(run_checkpoint, patience=config.early_stopping)
    tensorboard = cb.TensorBoardWriter(os.path.join(run_dir, "logs")) if chief else None

    train_data = maybe_cache(splits.train, splits.num_train)
    test_data = maybe_cache(splits.test, splits.num_test)
    augment = splits.extras.get("augment")
    test_batches = strategy.experimental_distribute_dataset(
        evaluation_batches(test_data, global_batch)
    )
    stopped_early = diverged = False
    # Without a ramp (fixed batch) and with a known size, one iterator serves every epoch, built
    # into the step's graph.
    stream_step = None
    if config.batch_size_ramp is None and splits.num_train and first_epoch < config.epochs:
        stream_step = trainer.bind(iter(strategy.experimental_distribute_dataset(training_stream(
            train_data, global_batch, config.seed, first_epoch, config.epochs, splits.num_train,
            augment))))
    for epoch in range(first_epoch, config.epochs):
        epoch_started = time.perf_counter()
        per_replica = batch_size_for_epoch(epoch, config.batch_size, config.batch_size_ramp)
        batch = per_replica * replicas
        steps = splits.num_train // batch if splits.num_train else None
        say(f"epoch {epoch + 1}/{config.epochs}" + (
            f" (batch {per_replica} x {replicas} = {batch})" if config.batch_size_ramp is not None
            else ""))
        # A live bar on a terminal or in a notebook; in a log file (CI, a batch job) it would
        # repeat itself once per update, and the per-epoch summary line says the same.
        live = sys.stdout.isatty() or "ipykernel" in sys.modules
        progbar = keras.utils.Progbar(
            steps,
            verbose=1 if (config.verbose > 1 and chief and live) else 0,
            stateful_metrics=["loss", "lr"],
        )
        totals = {}
        if stream_step is not None:
            feed = ((step, stream_step) for step in range(steps))
        else:
            dataset = strategy.experimental_distribute_dataset(
                training_batches(train_data, batch, config.seed, epoch, splits.num_train, augment)
            )
            if steps:
                iterator = iter(dataset)
                step_fn = functools.partial(trainer.step_from_iterator, iterator)
                feed = ((step, step_fn) for step in range(steps))
            else:  # unknown size: iterate in Python until the data ends
                feed = ((step, functools.partial(trainer.step, distributed_batch))
                        for step, distributed_batch in enumerate(dataset))
        for step, step_fn in feed:
            lr = plan(epoch + step / steps if steps else epoch, batch)
            stats = step_fn(lr)
            for key, value in stats.items():
                totals[key] = totals.get(key, 0.0) + value
            batch_loss = stats["loss"] / max(stats["count"], 1e-12)
            if not math.isfinite(batch_loss):
                diverged = True
                break
            running_loss = totals["loss"] / max(totals["count"], 1e-12)
            progbar.update(step + 1, [("loss", running_loss), ("lr", lr)])
        if diverged:
            say(f"\nloss is {batch_loss} at epoch {epoch + 1}, step {step + 1}: stopping")
            if config.terminate_on_nan:
                raise TrainingDiverged(
                    f"The loss became {batch_loss} at epoch {epoch + 1}, step {step + 1}. Try a "
                    "smaller --lr, a longer --warmup-epochs or gradient clipping."
                )
            break
        row = {"epoch": epoch + 1}
        row.update(_metrics_from_sums(info.task, totals))
        row.update({f"val_{k}": v for k, v in trainer.evaluate(test_batches).items()})
        row.update({"lr": lr, "global_batch": batch,
                    "seconds": round(time.perf_counter() - epoch_started, 3)})
        history.append(row)
        improved, stop = early.update(row["val_loss"])
        run_checkpoint.save(epoch + 1)
        if chief:
            cb.write_history_csv(history_path, history)
            tensorboard.write(row)
            if config.save_best and improved:
                model.save(os.path.join(run_dir, "best.keras"))
        say("  " + "  ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "epoch"))
        if stop:
            say(f"early stopping: no improvement of the test loss for {config.early_stopping} "
                "epoch(s)")
            stopped_early = True
            break

    if not history:
        raise ValueError("No epoch was completed.")
    final = {k[4:]: v for k, v in history[-1].items() if k.startswith("val_")}
    model_path = os.path.join(own_dir, "model.keras")
    model.save(model_path)
    if chief:
        cb.plot_history(os.path.join(run_dir, "history.png"), history)
    seconds = time.perf_counter() - started
    say(
        f"done in {seconds:.1f} s: {len(history)} epoch(s); test "
        + ", ".join(f"{k} {v:.4f}" for k, v in final.items())
        + f"\nrun directory: {run_dir} (model.keras, best.keras, history.csv, history.png, logs/, "
        "checkpoints/)"
    )
    return TrainResult(model, history, run_dir, final, seconds, stopped_early, diverged)


def evaluate_saved_model(path, dataset, batch_size=128, crop_border=0, strategy=None):
    """Evaluate a saved `.keras` model (or a run directory) on a dataset's test split.

    Args:
        path: A `.keras` file, or a run directory (its `model.keras` and `config.json` give the
            model, and the dataset and `crop_border` when not passed).
        dataset: Dataset name; None means the run directory's dataset.
        batch_size: Per-replica evaluation batch size.
        crop_border: Pixels dropped from each image side (as in training).
        strategy: Optional `tf.distribute.Strategy` (default: the default strategy).

    Returns:
        (metrics dict, dataset name).

    Raises:
        ValueError: for a missing file, an unknown dataset or a model that does not fit it.
    """
    _check_positive_int("batch_size", batch_size)
    if os.path.isdir(path):
        config_path = os.path.join(path, "config.json")
        saved = {}
        if os.path.exists(config_path):
            with open(config_path, encoding="utf-8") as f:
                saved = json.load(f)
        dataset = dataset or saved.get("dataset")
        crop_border = crop_border or saved.get("crop_border", 0)
        path = os.path.join(path, "model.keras")
    if not os.path.isfile(path):
        raise ValueError(f"No saved model at {path!r}: pass a .keras file or a run directory.")
    if dataset is None:
        raise ValueError("Pass --dataset: the model file alone does not say which data it fits.")
    entry = data_base.dataset_entry(dataset)
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = keras.models.load_model(path)
    parameters = inspect.signature(entry.loader).parameters
    kwargs = {}
    input_shape = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else None
    if "min_image_size" in parameters and input_shape and len(input_shape) == 3:
        kwargs["min_image_size"] = input_shape[:2]
    if crop_border:
        kwargs["crop_border"] = crop_border
    splits = entry.loader(**kwargs)
    got = tuple(tf.nest.flatten(splits.test.element_spec)[0].shape)
    if input_shape and len(got) == len(input_shape) and any(
        e is not None and e != g for e, g in zip(input_shape, got)
    ):
        raise ValueError(
            f"The model at {path!r} expects inputs of shape {input_shape} but {dataset!r} gives "
            f"{got}. Evaluate on the dataset it was trained on, with the same --crop-border."
        )
    trainer = DistributedTrainer(model, None, strategy, entry.task)
    global_batch = batch_size * strategy.num_replicas_in_sync
    batches = strategy.experimental_distribute_dataset(evaluation_batches(splits.test, global_batch))
    return trainer.evaluate(batches), entry.name


def model_weights(model):
    """The model's weights as NumPy arrays (for comparing runs)."""
    return [np.asarray(w) for w in model.get_weights()]
