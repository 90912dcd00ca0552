"""The private Keras internals the engine reads (zoo.training.keras_internals): each is still
provided by the installed Keras, and each guard fails loudly, naming the internal and the Keras
version, when a Keras lacks it."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.layers import StableSoftmax
from zoo.training import batch_statistics, keras_internals
from zoo.training.checkpoint import seed_generators
from zoo.training.keras_internals import MissingKerasInternal


def _dropout_model():
    inputs = keras.Input((4,))
    inner = keras.Sequential([keras.layers.Dense(3), keras.layers.Dropout(0.5, seed=1)])
    return keras.Model(inputs, keras.layers.Dense(2)(inner(inputs)))


def _fails_loudly(name):
    return pytest.raises(MissingKerasInternal, match=rf"Keras \({keras.__version__}\) has no "
                                                     rf"{name}")


# ------------------------------------------------------------------ Layer._flatten_layers
def test_flatten_layers_reaches_nested_layers():
    model = _dropout_model()
    found = keras_internals.flatten_layers(model)
    assert model in found
    assert sum(isinstance(layer, keras.layers.Dropout) for layer in found) == 1
    assert model not in keras_internals.flatten_layers(model, include_self=False)


def test_flatten_layers_guard(monkeypatch):
    monkeypatch.delattr(keras.Layer, "_flatten_layers")
    with _fails_loudly("Layer._flatten_layers"):
        keras_internals.flatten_layers(_dropout_model())


# ------------------------------------------------------------------ Layer._seed_generators
def test_every_layer_tracks_its_seed_generators():
    dropout = keras.layers.Dropout(0.5, seed=1)
    generators = keras_internals.layer_seed_generators(dropout)
    assert len(generators) == 1 and isinstance(generators[0], keras.random.SeedGenerator)
    assert keras_internals.layer_seed_generators(keras.layers.Dense(2)) == []
    # The engine's checkpoint takes the dropout's generator and Keras' global one.
    model = _dropout_model()
    assert len(seed_generators(model)) == 2


def test_seed_generators_guard(monkeypatch):
    layer = keras.layers.Dropout(0.5)
    # A Keras that renamed the attribute: the layer has no `_seed_generators`.
    monkeypatch.delattr(layer, "_seed_generators")
    with _fails_loudly("Layer._seed_generators"):
        keras_internals.layer_seed_generators(layer)


# ------------------------------------------------------------------ the global seed generator
def test_global_seed_generator_is_the_one_unseeded_ops_advance():
    generator = keras_internals.global_seed_generator()
    before = np.array(generator.state.numpy())
    keras.random.uniform((2,))  # no seed: draws from the global generator
    assert isinstance(generator, keras.random.SeedGenerator)
    assert not np.array_equal(before, generator.state.numpy())


def test_global_seed_generator_guard(monkeypatch):
    import keras.src.random.seed_generator as module

    monkeypatch.delattr(module, "global_seed_generator")
    with _fails_loudly("keras.src.random.seed_generator.global_seed_generator"):
        keras_internals.global_seed_generator()


# ------------------------------------------------------------------ _keras_logits
def test_softmax_and_sigmoid_attach_their_logits():
    logits = tf.constant([[1.0, -2.0, 3.0]])
    for probabilities in (keras.activations.softmax(logits), StableSoftmax()(logits)):
        np.testing.assert_allclose(keras_internals.attached_logits(probabilities), logits)
    np.testing.assert_allclose(
        keras_internals.attached_logits(keras.activations.sigmoid(logits)), logits)
    keras_internals.check_softmax_attaches_logits()


def test_logits_guard(monkeypatch):
    # A Keras whose softmax no longer attaches `_keras_logits`.
    monkeypatch.setattr(keras.activations, "softmax", lambda x, axis=-1: tf.nn.softmax(x, axis))
    with _fails_loudly("_keras_logits"):
        keras_internals.check_softmax_attaches_logits()


def test_probabilities_without_logits_are_an_error_not_clipped():
    targets = tf.constant([0, 1])
    probabilities = tf.constant([[1.0, 0.0], [0.5, 0.5]])  # no logits attached
    with pytest.raises(ValueError, match="without the logits .* clipped probabilities"):
        batch_statistics("image-classification", targets, probabilities, None, "probabilities")
    with pytest.raises(ValueError, match="without the logits"):
        batch_statistics("image-classification", targets, probabilities[:, :1], None,
                         "probabilities")


# ------------------------------------------------------------------ _all_reduce_sum_gradients
def test_optimizers_have_the_gradient_reduction_hook():
    keras_internals.check_gradient_reduction_hook(keras.optimizers.SGD())
    keras_internals.check_gradient_reduction_hook(
        keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam()))


def test_gradient_reduction_hook_guard(monkeypatch):
    optimizer = keras.optimizers.SGD()
    for cls in type(optimizer).__mro__:
        if "_all_reduce_sum_gradients" in vars(cls):
            monkeypatch.delattr(cls, "_all_reduce_sum_gradients")
    with _fails_loudly("SGD._all_reduce_sum_gradients"):
        keras_internals.check_gradient_reduction_hook(optimizer)


# ------------------------------------------------------------------ the version bounds
def test_installed_versions_are_within_the_tested_bounds():
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    from packaging.requirements import Requirement

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    required = {Requirement(r).name: Requirement(r) for r in project["project"]["dependencies"]}
    for name, version in (("keras", keras.__version__), ("tensorflow", tf.__version__)):
        assert any(s.operator == "<" for s in required[name].specifier), required[name]
        assert required[name].specifier.contains(version), (name, version)
