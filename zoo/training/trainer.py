"""The train and evaluation steps of one model under any `tf.distribute` strategy.

Why not `model.fit`: with Keras 3.15 / TensorFlow 2.21 it fails under
`MultiWorkerMirroredStrategy` ("Attempt to convert a value (PerReplica...)", keras-team/keras
issue 20585). A step over `strategy.run` / `strategy.reduce` works under all of them, and makes
the arithmetic explicit:

* Each replica computes the *sum* of its per-example (or per-token) losses and the gradient of
  that sum. Gradients, loss sums and counts are summed across replicas (all-reduce), and the
  gradient is divided by the global count: the loss is the mean over the global batch, exactly
  as on one device (no per-replica averaging). For language modelling and captioning the
  count is the number of real tokens (the sample-weight mask) in the global batch.
* `add_loss` terms: by default per-replica means (a weight penalty is the same on every
  replica; a data-dependent penalty a mean over the local batch), averaged over replicas. A
  model with `add_loss_reduction = "sum"` adds sums over its local batch instead; they are
  divided by the same global count as the main loss.
* Global-norm gradient clipping is applied to the all-reduced gradient, so it clips the same
  gradient a single device would. (Keras' optimizer clips per-replica gradients before
  reducing; we reduce first and switch its reduction off.)
"""

import tensorflow as tf

from zoo.training.task import batch_statistics, infer_outputs, metrics_from_sums


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


def _reduce_sum(strategy, stats):
    return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in stats.items()}


class DistributedTrainer:
    """The train and evaluation steps of one model under one strategy.

    Args:
        model: A Keras model created under `strategy.scope()`.
        optimizer: A Keras optimizer created under the same scope; None for evaluation only.
        strategy: Any `tf.distribute.Strategy`.
        task: Registry task (picks the loss and metrics).
        clip_norm: Global-norm clipping of the all-reduced gradient, or None.
        jit_compile: XLA-compile each replica's forward/backward computation.
        outputs: What the model returns ("probabilities", "log_probabilities", "logits" or
            "values"); None reads it from the model's output layer or the task's contract
            (`zoo.training.task.infer_outputs`).
        label_smoothing: Label smoothing of the training loss (evaluation never smooths).
    """

    def __init__(self, model, optimizer, strategy, task, clip_norm=None, jit_compile=False,
                 outputs=None, label_smoothing=0.0):
        self.model = model
        self.optimizer = optimizer
        self.strategy = strategy
        self.task = task
        self.clip_norm = clip_norm
        self.outputs = outputs or infer_outputs(model, task)
        summed_penalties = getattr(model, "add_loss_reduction", "mean") == "sum"
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
                stats = batch_statistics(
                    task, targets, outputs, sample_weight, self.outputs, label_smoothing
                )
                objective = stats["loss"] + stats.pop("auxiliary_loss", 0.0)
                penalty = tf.add_n([tf.cast(x, tf.float32) for x in model.losses]) if (
                    model.losses
                ) else None
                if penalty is not None and summed_penalties:
                    objective, penalty = objective + penalty, None
            grads = tape.gradient(objective, variables)
            penalty_grads = tape.gradient(penalty, variables) if penalty is not None else None
            return stats, grads, penalty_grads

        def forward(inputs, targets, sample_weight):
            outputs = model(inputs, training=False)
            return batch_statistics(task, targets, outputs, sample_weight, self.outputs)

        # Nested tf.functions only for XLA. Without jit_compile, a forward/backward tf.function
        # nested in a step that is itself called from another tf.function (bind,
        # step_from_iterator) lost its random-state updates with TensorFlow 2.21: a dropout
        # layer's SeedGenerator never advanced, so every step drew the same mask.
        self._forward_backward = (tf.function(forward_backward, jit_compile=True) if jit_compile
                                  else forward_backward)
        self._forward = tf.function(forward, jit_compile=True) if jit_compile else forward

        def train_replica(batch):
            inputs, targets, sample_weight = _unpack(batch)
            stats, grads, penalty_grads = self._forward_backward(inputs, targets, sample_weight)
            context = tf.distribute.get_replica_context()
            variables = model.trainable_variables
            if penalty_grads is None:
                penalty_grads = [None] * len(grads)
            # Embedding gradients arrive as IndexedSlices whose size differs between replicas;
            # the all-reduce needs dense tensors of one shape.
            grads = [_dense(g) for g in grads]
            penalty_grads = [_dense(g) for g in penalty_grads]
            present = [i for i, g in enumerate(grads) if g is not None]
            penalized = [i for i, g in enumerate(penalty_grads) if g is not None]
            reduced = context.all_reduce(
                tf.distribute.ReduceOp.SUM,
                [grads[i] for i in present]
                + [penalty_grads[i] for i in penalized]
                + [stats["count"]],
            )
            global_count = tf.maximum(reduced[-1], 1.0)
            final = [None] * len(grads)
            for slot, i in enumerate(present):
                final[i] = reduced[slot] / tf.cast(global_count, reduced[slot].dtype)
            # Per-replica mean penalties: their global value is the mean over replicas.
            replicas = float(context.num_replicas_in_sync)
            for slot, i in enumerate(penalized, start=len(present)):
                term = reduced[slot] / replicas
                final[i] = term if final[i] is None else final[i] + term
            kept = [(g, v) for g, v in zip(final, variables) if g is not None]
            grads_only = [g for g, _ in kept]
            if self.clip_norm:
                grads_only, _ = tf.clip_by_global_norm(grads_only, self.clip_norm)
            optimizer.apply(grads_only, [v for _, v in kept])
            return stats

        def train_step(distributed_batch, learning_rate):
            optimizer.learning_rate.assign(learning_rate)
            return _reduce_sum(strategy, strategy.run(train_replica, args=(distributed_batch,)))

        # reduce_retracing: the last, partial evaluation batch would trace a second step.
        @tf.function(reduce_retracing=True)
        def eval_step(distributed_batch):
            stats = strategy.run(lambda batch: self._forward(*_unpack(batch)),
                                 args=(distributed_batch,))
            return _reduce_sum(strategy, stats)

        @tf.function
        def train_step_from_iterator(iterator, learning_rate):
            # Taking the batch inside the graph avoids a Python round trip per step through the
            # distributed iterator (a few ms: as much as a small model's whole step).
            return train_step(next(iterator), learning_rate)

        @tf.function
        def all_finite():
            return tf.reduce_all([
                tf.reduce_all(tf.math.is_finite(v)) for v in model.weights
                if tf.as_dtype(v.dtype).is_floating
            ])

        self._train_step = train_step  # plain Python: each feed traces it into one function
        self.train_step = tf.function(train_step)
        self.eval_step = eval_step
        self._train_step_from_iterator = train_step_from_iterator
        self._all_finite = all_finite

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
            return self._train_step(next(iterator), learning_rate)

        return lambda learning_rate: _as_floats(bound_step(_lr_tensor(learning_rate)))

    def weights_finite(self):
        """True when no weight of the model is NaN or infinite."""
        return bool(self._all_finite())

    def evaluate(self, distributed_dataset):
        """Metrics over a whole distributed dataset: {"loss", "accuracy" | "mae", ...}."""
        totals = {}
        for batch in distributed_dataset:
            for key, value in self.eval_step(batch).items():
                totals[key] = totals.get(key, 0.0) + float(value)
        if not totals:
            raise ValueError("The evaluation dataset is empty.")
        return metrics_from_sums(self.task, totals)
