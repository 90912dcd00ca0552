"""The train and evaluation steps of one model under any `tf.distribute` strategy.

Why not `model.fit`: with Keras 3.15 / TensorFlow 2.21 it fails under
`MultiWorkerMirroredStrategy` ("Attempt to convert a value (PerReplica...)", keras-team/keras
issue 20585). A step over `strategy.run` works under all of them, and makes the arithmetic
explicit:

* Each replica computes the *sum* of its per-example (or per-token) losses and, in one
  backward pass, the gradient of that sum plus its `add_loss` penalties. Gradients, loss sums,
  counts and metric sums are summed across replicas in one all-reduce, and the gradient is
  divided by the global count: the loss is the mean over the global batch, exactly as on one
  device. For language modelling and captioning the count is the number of real tokens (the
  sample-weight mask) in the global batch.
* `add_loss` terms: by default per-replica means (a weight penalty is the same on every
  replica; a data-dependent penalty a mean over the local batch). Each replica weighs its
  penalty by its own count before the sum, so after the division by the global count it
  carries the replica's share: the plain mean over replicas when batches split evenly (every
  image and sequence batch), and the weight one device would give it for token batches. A
  model with `add_loss_reduction = "sum"` adds sums over its local batch instead; they are
  divided by the same global count as the main loss.
* Global-norm gradient clipping is applied to the all-reduced gradient, so it clips the same
  gradient a single device would (see `zoo.training.replicas.reduce_gradients_ourselves`).
* float16: the objective is multiplied by the optimizer's loss scale (`scale_loss`), the clip
  threshold too (clipping the scaled gradient at `clip_norm x scale` is clipping the true one
  at `clip_norm`, exactly, since the scale is a power of two), and
  `keras.optimizers.LossScaleOptimizer` unscales, skips steps with overflowing gradients and
  adapts the scale. Skipped steps are counted (`skipped_steps`).

Several steps per call (`bind_steps`): one `tf.function` call runs up to N steps in a
`tf.while_loop`, with the learning rate of each step passed in as a tensor (the plan stays
exact per step), the running sums accumulated on the device in float64 in the same order as
one step at a time (so the sums do not depend on N), and one read of one small vector at the
end. A step whose loss is NaN or infinite (or explodes, `EXPLOSION_FACTOR`) ends the call at
once and is reported. That one read (`_result`) waits for the call to finish, so the host
does not queue the next call while the device works: one round trip per call of N steps,
which is what keeps the divergence stop exact (no step runs after a non-finite one).
"""

import dataclasses

import keras
import tensorflow as tf

from zoo.training.checkpoint import seed_generators
from zoo.training.replicas import ReplicaSeeds, reduce_gradients_ourselves
from zoo.training.task import batch_statistics, infer_outputs, metrics_from_sums, statistic_names

SKIPPED = "skipped_steps"
# A step whose mean loss exceeds this many times the first step's (or 1, when that is
# smaller) has diverged as surely as a NaN one: a cross-entropy of 1e6 means logits a million
# apart. It ends the call like a NaN loss, so a loss of 1e30 no longer ends "done".
EXPLOSION_FACTOR = 1e6


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


@dataclasses.dataclass
class CallResult:
    """What one call of several steps reports (read from the device once).

    Attributes:
        totals: The running sums passed in plus those of this call's finite steps
            ({"loss", "count", metric sums, "skipped_steps"}).
        steps: Steps taken, the non-finite one included.
        diverged: A step's loss was NaN, infinite or exploded (over `EXPLOSION_FACTOR` times
            the first step's); the call stopped after it.
        value: That loss (mean over its batch), or None.
    """

    totals: dict
    steps: int
    diverged: bool
    value: float | None


class DistributedTrainer:
    """The train and evaluation steps of one model under one strategy.

    Args:
        model: A Keras model created under `strategy.scope()`.
        optimizer: A Keras optimizer (or `LossScaleOptimizer`) created under the same scope;
            None for evaluation only.
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
        self.label_smoothing = label_smoothing
        self.outputs = outputs or infer_outputs(model, task)
        self.names = statistic_names(task)
        self.total_names = (*self.names, SKIPPED)
        self._summed_penalties = getattr(model, "add_loss_reduction", "mean") == "sum"
        self._seeds = ReplicaSeeds(strategy, seed_generators(model))
        self._loss_scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        # The explosion threshold, set in the graph by the first step this trainer takes.
        self.loss_limit = float("inf")
        if optimizer is not None:
            with strategy.scope():
                optimizer.build(model.trainable_variables)
            reduce_gradients_ourselves(optimizer)
        # Nested tf.functions only for XLA. Without jit_compile, a forward/backward tf.function
        # nested in a step that is itself called from another tf.function lost its
        # random-state updates with TensorFlow 2.21: a dropout layer's SeedGenerator never
        # advanced, so every step drew the same mask.
        self._forward_backward = (tf.function(self._forward_backward_fn, jit_compile=True)
                                  if jit_compile else self._forward_backward_fn)
        self._forward = (tf.function(self._forward_fn, jit_compile=True) if jit_compile
                         else self._forward_fn)
        self.train_step = tf.function(self._single_step)
        self._train_step_from_iterator = tf.function(
            lambda iterator, learning_rate: self._single_step(next(iterator), learning_rate))
        self._evaluate_dataset = tf.function(self._evaluate_fn)
        self._all_finite = tf.function(lambda: tf.reduce_all([
            tf.reduce_all(tf.math.is_finite(v)) for v in model.weights
            if tf.as_dtype(v.dtype).is_floating
        ]))

    # ------------------------------------------------------------------ one replica
    def _forward_backward_fn(self, inputs, targets, sample_weight, scale):
        model = self.model
        with tf.GradientTape() as tape:
            outputs = model(inputs, training=True)
            stats = batch_statistics(self.task, targets, outputs, sample_weight, self.outputs,
                                     self.label_smoothing)
            objective = stats["loss"] + stats.pop("auxiliary_loss", 0.0)
            if model.losses:  # known only after the forward pass
                penalty = tf.add_n([tf.cast(x, tf.float32) for x in model.losses])
                objective += penalty if self._summed_penalties else penalty * stats["count"]
            objective = objective * scale
        return stats, tape.gradient(objective, model.trainable_variables)

    def _forward_fn(self, inputs, targets, sample_weight):
        outputs = self.model(inputs, training=False)
        return batch_statistics(self.task, targets, outputs, sample_weight, self.outputs)

    def _replica_step(self, batch):
        """One replica's step: returns the global sums (float32) and 1.0 if it was skipped."""
        optimizer = self.optimizer
        inputs, targets, sample_weight = _unpack(batch)
        # The loss scale (1 without loss scaling): a power of two under LossScaleOptimizer.
        scale = tf.cast(optimizer.scale_loss(tf.constant(1.0)), tf.float32)
        stats, grads = self._forward_backward(inputs, targets, sample_weight, scale)
        # Embedding gradients arrive as IndexedSlices whose size differs between replicas;
        # the all-reduce needs dense tensors of one shape.
        grads = [_dense(g) for g in grads]
        present = [i for i, g in enumerate(grads) if g is not None]
        reduced = tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM,
            [grads[i] for i in present] + [stats[name] for name in self.names],
        )
        stats = dict(zip(self.names, reduced[len(present):]))
        global_count = tf.maximum(stats["count"], 1.0)
        final = [g / tf.cast(global_count, g.dtype) for g in reduced[:len(present)]]
        if self.clip_norm:
            final, _ = tf.clip_by_global_norm(final, self.clip_norm * scale)
        if self._loss_scaled:
            finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in final])
            skipped = 1.0 - tf.cast(finite, tf.float32)
        else:
            skipped = tf.constant(0.0)
        variables = self.model.trainable_variables
        optimizer.apply(final, [variables[i] for i in present])
        return stats, skipped

    def _distributed_step(self, distributed_batch):
        stats, skipped = self.strategy.run(self._replica_step, args=(distributed_batch,))
        # Every replica holds the same all-reduced sums: take this worker's first.
        first = self.strategy.experimental_local_results
        return {k: first(v)[0] for k, v in stats.items()}, first(skipped)[0]

    # ------------------------------------------------------------------ calls
    def _single_step(self, distributed_batch, learning_rate):
        self._seeds.fold()
        self.optimizer.learning_rate.assign(learning_rate)
        stats, _ = self._distributed_step(distributed_batch)
        self._seeds.unfold()
        return stats

    def _steps(self, next_batch, learning_rates, totals, limit):
        """Up to len(learning_rates) steps; stops after a non-finite or exploded loss. Returns
        one float64 vector: the totals, then steps taken, diverged (0/1), the bad loss and
        the explosion threshold (`limit`, or set from this call's first step when inf)."""
        self._seeds.fold()
        count = tf.shape(learning_rates)[0]

        def keep_going(step, totals, diverged, bad_loss, limit):
            return tf.logical_and(step < count, tf.logical_not(diverged))

        def one_step(step, totals, diverged, bad_loss, limit):
            self.optimizer.learning_rate.assign(learning_rates[step])
            stats, skipped = self._distributed_step(next_batch())
            values = tf.cast(tf.stack([stats[n] for n in self.names] + [skipped]), tf.float64)
            # The same float64 arithmetic as summing one step at a time on the host.
            loss = values[0] / tf.maximum(values[1], 1e-12)
            finite = tf.logical_and(tf.math.is_finite(loss), loss <= limit)
            limit = tf.where(tf.logical_and(finite, tf.math.is_inf(limit)),
                             EXPLOSION_FACTOR * tf.maximum(loss, 1.0), limit)
            return (step + 1, tf.where(finite, totals + values, totals),
                    tf.logical_not(finite), tf.where(finite, bad_loss, loss), limit)

        step, totals, diverged, bad_loss, limit = tf.while_loop(
            keep_going, one_step,
            (tf.constant(0), totals, tf.constant(False), tf.constant(0.0, tf.float64), limit),
        )
        self._seeds.unfold()
        return tf.concat([totals, tf.cast(tf.stack([step]), tf.float64),
                          tf.cast(tf.stack([diverged]), tf.float64), [bad_loss, limit]], axis=0)

    def _result(self, packed):
        values = packed.numpy().tolist()  # the call's one device-to-host read
        k = len(self.total_names)
        diverged = bool(values[k + 1])
        self.loss_limit = values[k + 3]
        return CallResult(dict(zip(self.total_names, values[:k])), int(values[k]), diverged,
                          values[k + 2] if diverged else None)

    def _totals_vector(self, totals):
        totals = totals or {}
        return tf.constant([float(totals.get(n, 0.0)) for n in self.total_names], tf.float64)

    def bind_steps(self, iterator):
        """Several training steps per call with `iterator` built into the graph.

        `run = trainer.bind_steps(it)`, then `run(learning_rates, totals)` takes
        `len(learning_rates)` steps (one per rate) and returns a `CallResult` whose `totals`
        are `totals` (a dict of running sums, or None) plus the call's. The iterator must have
        that many batches. Each bound iterator traces the steps once; any number of rates
        uses the same trace.
        """
        spec = (tf.TensorSpec([None], tf.float32),
                tf.TensorSpec([len(self.total_names)], tf.float64),
                tf.TensorSpec([], tf.float64))

        @tf.function(input_signature=spec)
        def bound_steps(learning_rates, totals, limit):
            return self._steps(lambda: next(iterator), learning_rates, totals, limit)

        def run(learning_rates, totals=None):
            return self._result(bound_steps(tf.constant(learning_rates, tf.float32),
                                            self._totals_vector(totals),
                                            tf.constant(self.loss_limit, tf.float64)))

        return run

    def step(self, distributed_batch, learning_rate):
        """One training step at `learning_rate`; returns the step's summed statistics as floats
        (a host read per step: for tests and tools, not the training loop)."""
        return _as_floats(self.train_step(distributed_batch, _lr_tensor(learning_rate)))

    def step_from_iterator(self, iterator, learning_rate):
        """Like `step`, with the batch taken from a distributed iterator inside the graph."""
        return _as_floats(self._train_step_from_iterator(iterator, _lr_tensor(learning_rate)))

    def bind(self, iterator):
        """One step per call with `iterator` built into its graph: `step = trainer.bind(it)`,
        then `step(learning_rate)` -> the step's summed statistics as floats (tools and
        benchmarks; the training loop uses `bind_steps`)."""
        bound_step = tf.function(
            lambda learning_rate: self._single_step(next(iterator), learning_rate))
        return lambda learning_rate: _as_floats(bound_step(_lr_tensor(learning_rate)))

    # ------------------------------------------------------------------ evaluation
    def _evaluate_fn(self, iterator):
        totals = tf.zeros([len(self.names)], tf.float64)
        batch = iterator.get_next_as_optional()
        while batch.has_value():
            stats = self.strategy.run(lambda b: self._forward(*_unpack(b)),
                                      args=(batch.get_value(),))
            values = [self.strategy.reduce(tf.distribute.ReduceOp.SUM, stats[n], axis=None)
                      for n in self.names]
            totals += tf.cast(tf.stack(values), tf.float64)
            batch = iterator.get_next_as_optional()
        return totals

    def weights_finite(self):
        """True when no weight of the model is NaN or infinite."""
        return bool(self._all_finite())

    def evaluate(self, distributed_dataset):
        """Metrics over a whole distributed dataset: {"loss", "accuracy" | "mae", ...}, in one
        call (the loop over batches runs in the graph)."""
        totals = dict(zip(self.names,
                          self._evaluate_dataset(iter(distributed_dataset)).numpy().tolist()))
        if not totals["count"]:
            raise ValueError("The evaluation dataset is empty.")
        return metrics_from_sums(self.task, totals)
