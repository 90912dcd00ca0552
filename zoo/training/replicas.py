"""What N replicas need so that they train like one device: their own dropout masks, batch
statistics over the global batch, and gradients reduced once.

* `ReplicaSeeds`: under `MirroredStrategy` a layer's `keras.random.SeedGenerator` state is a
  mirrored variable, so every replica draws the same dropout mask: example i of replica 0 and
  example i of replica 1 get correlated noise that one device would not give them. For the
  steps of one call, the seed of every mirrored generator is moved by `replica id x
  SEED_STRIDE` on each replica (`tf.distribute.StrategyExtended.update` with per-replica
  values) and moved back afterwards, so each replica draws its own masks while the state a
  checkpoint saves stays the plain, replica-independent one (exact resume). Replica 0 keeps
  the plain seed: one device draws exactly what it drew before.
* `synchronize_batch_norm`: Keras' `BatchNormalization(synchronized=True)` computes the batch
  mean and variance with `ReplicaContext.all_reduce` (sums of x, x^2 and counts over every
  replica), which the zoo's own `strategy.run` loop provides; its backward pass all-reduces
  too, so N replicas take the steps of one device with the global batch.
* `reduce_gradients_ourselves`: the trainer all-reduces, normalises and clips the gradients
  itself (clipping must see the global gradient); Keras' TensorFlow optimizer would sum them
  across replicas a second time. See the function for why its private hook is used and how
  a change of Keras is caught.
"""

import keras
import tensorflow as tf

from zoo.training import keras_internals

# Added to the seed of a generator per replica id: odd and large, so that no replica's seed
# lands on another's for any realistic seed (seeds are int64 on the TensorFlow backend).
SEED_STRIDE = 0x9E3779B1


def _distributed_states(generators):
    """The seed-state variables that are mirrored across replicas (others are left alone)."""
    states = []
    for generator in generators:
        variable = getattr(generator.state, "value", generator.state)
        if isinstance(variable, tf.distribute.DistributedValues):
            states.append(variable)
    return states


class ReplicaSeeds:
    """Gives each replica its own random stream for the duration of a call (in-graph).

    Args:
        strategy: The run's strategy.
        generators: The model's `keras.random.SeedGenerator`s (see
            `zoo.training.checkpoint.seed_generators`).
    """

    def __init__(self, strategy, generators):
        self.strategy = strategy
        self.states = (_distributed_states(generators)
                       if strategy.num_replicas_in_sync > 1 else [])

    def _shift(self, sign):
        if not self.states:
            return
        dtype = self.states[0].dtype
        # Global replica ids (across workers too), one per local replica.
        offsets = self.strategy.experimental_distribute_values_from_function(
            lambda context: tf.stack([
                tf.cast(context.replica_id_in_sync_group, dtype) * SEED_STRIDE * sign,
                tf.constant(0, dtype)])
        )
        for state in self.states:
            self.strategy.extended.update(
                state, lambda variable, offset: variable.assign_add(offset), args=(offsets,),
                group=False,
            )

    def fold(self):
        """Move each replica's seeds apart (call in cross-replica context, before the steps)."""
        self._shift(1)

    def unfold(self):
        """Move them back: every replica holds the plain state again (after the steps)."""
        self._shift(-1)


def synchronize_batch_norm(model):
    """Switch every `keras.layers.BatchNormalization` of `model` to global batch statistics.

    Sets the layers' `synchronized` attribute (their constructor argument, read when the
    layer is called, and written by `get_config`): no model function needs a new argument, and
    the weights, seed generators and layer names stay those of the model as built. Call it
    before the first training step traces the layers.

    Returns:
        The number of layers switched.
    """
    count = 0
    # Layers nested in sub-models and custom layers too (Keras has no public recursive walk).
    for layer in keras_internals.flatten_layers(model, include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True
            count += 1
    return count


def _no_reduction(grads_and_vars):
    return list(grads_and_vars)


def reduce_gradients_ourselves(optimizer):
    """Stop Keras' TensorFlow optimizer from summing gradients across replicas.

    No public Keras or `tf.distribute` call applies already-reduced gradients: the optimizer's
    `apply` sums them over the replicas in replica context (`_all_reduce_sum_gradients`), and
    refuses cross-replica context (a `merge_call` into it fails in Keras' own
    `maybe_merge_call`). Reducing through Keras instead would clip each replica's gradient
    before the sum, not the global gradient. So the one hook is replaced, guarded twice: here,
    a Keras without the hook is an error instead of silent double counting, and
    `tests/test_replicas.py` checks that Keras still sums through it (a rename or a second
    reduction elsewhere fails that test).

    Args:
        optimizer: A Keras optimizer, or a `keras.optimizers.LossScaleOptimizer` (its inner
            optimizer applies the gradients).

    Raises:
        RuntimeError: if the installed Keras has no such hook.
    """
    keras_internals.check_gradient_reduction_hook(optimizer)
    target = getattr(optimizer, "inner_optimizer", optimizer)
    target._all_reduce_sum_gradients = _no_reduction
