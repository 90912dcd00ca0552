"""Every private Keras internal the training engine reads, each behind a guard.

Keras 3 has no public API for these, and the engine's exactness depends on them:

* `Layer._flatten_layers`: every layer, nested models and custom layers included (the seed
  generators of all of them go into the checkpoint; batch norm layers are synchronized).
* `Layer._seed_generators`: a layer's `keras.random.SeedGenerator`s (dropout masks). Without
  them in the checkpoint a resumed run replays the first epochs' masks.
* `keras.src.random.seed_generator.global_seed_generator`: the generator of random ops called
  without a seed, checkpointed too.
* `_keras_logits`: the logits Keras' softmax and sigmoid (and `layers.StableSoftmax`) attach to
  their output tensor; losses are computed from them, never from clipped probabilities.
* `Optimizer._all_reduce_sum_gradients`: the hook `zoo.training.replicas` replaces (guarded
  there, and checked here).

A Keras that renamed one fails here, loudly, naming the internal and the Keras version, instead
of silently dropping random state from checkpoints or computing losses another way.
`tests/test_keras_internals.py` checks that the installed Keras still provides each one, and
pyproject.toml bounds Keras (and TensorFlow) below the next minor version for the same reason.
"""

import keras


class MissingKerasInternal(RuntimeError):
    """The installed Keras lacks a private internal the engine depends on."""


def _missing(name, why):
    raise MissingKerasInternal(
        f"This Keras ({keras.__version__}) has no {name}, which zoo's training engine reads "
        f"to {why}. Install the Keras version pyproject.toml allows, or update "
        "zoo.training.keras_internals for this one."
    )


def flatten_layers(model, include_self=True):
    """Every layer of `model`, recursively (`Layer._flatten_layers`)."""
    method = getattr(type(model), "_flatten_layers", None)
    if not callable(method):
        _missing("Layer._flatten_layers", "find every layer of a model (nested ones included)")
    return list(model._flatten_layers(include_self=include_self, recursive=True))


def layer_seed_generators(layer):
    """The `SeedGenerator`s a layer tracks (`Layer._seed_generators`; every Keras layer has
    the list, empty when it draws no random numbers)."""
    try:
        generators = layer._seed_generators
    except AttributeError:
        _missing("Layer._seed_generators", "checkpoint the random state of dropout layers")
    return list(generators)


def global_seed_generator():
    """Keras' global `SeedGenerator` (`keras.src.random.seed_generator`)."""
    try:
        from keras.src.random.seed_generator import global_seed_generator as get
    except ImportError:
        _missing("keras.src.random.seed_generator.global_seed_generator",
                 "checkpoint the state of random ops called without a seed")
    return get()


def attached_logits(outputs):
    """The logits Keras' softmax/sigmoid attached to `outputs` (`_keras_logits`), or None."""
    return getattr(outputs, "_keras_logits", None)


def check_softmax_attaches_logits():
    """Raise if Keras' softmax no longer attaches `_keras_logits` to its output: then no
    probability output would carry its logits, and losses could only use probabilities."""
    import tensorflow as tf

    if attached_logits(keras.activations.softmax(tf.zeros([1, 2]))) is None:
        _missing("_keras_logits on softmax outputs",
                 "compute losses from logits instead of from clipped probabilities")


def check_gradient_reduction_hook(optimizer):
    """Raise if `optimizer` (or its inner optimizer) has no `_all_reduce_sum_gradients`."""
    target = getattr(optimizer, "inner_optimizer", optimizer)
    if not callable(getattr(type(target), "_all_reduce_sum_gradients", None)):
        _missing(f"{type(target).__name__}._all_reduce_sum_gradients",
                 "stop the optimizer from summing already all-reduced gradients again")
