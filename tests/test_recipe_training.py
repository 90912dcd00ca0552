"""Each recipe of the CNNs and recurrent classifiers/regressors, run by the training engine for
a few steps on one fixed batch of real data, lowers the loss (each distinct recipe once, on
the smallest model that uses it).

The recipe is resolved exactly as `zoo train --model NAME` resolves it (`resolve_recipe`),
the optimizer and learning rate come from the engine (`make_optimizer`, `LearningRatePlan`
at the end of warm-up), and the steps are the engine's (`DistributedTrainer.step`). A recipe
whose optimizer, learning rate or initialisation cannot fit a single batch of 16 is broken.
The full measurement (every model to its target on the test split) is
`python -m benchmarks zoo_quality`.
"""

import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

import zoo
from zoo.data.sequences import adding_problem_arrays
from zoo.training.build import clip_norm, make_optimizer
from zoo.training.config import TrainConfig, resolve_recipe
from zoo.training.strategy import LearningRatePlan
from zoo.training.trainer import DistributedTrainer

BATCH = 16
STEPS = 8
OWN_MODELS = [
    name
    for name in zoo.list_models()
    if zoo.model_info(name).builder.__module__.startswith(("zoo.cnn.", "zoo.rnn.classifiers"))
]


def smallest_model_per_recipe(names):
    chosen = {}
    for name in sorted(names, key=lambda n: zoo.model_info(n).params):
        chosen.setdefault(zoo.model_info(name).recipe, name)
    return sorted(chosen.values())


RECIPE_MODELS = smallest_model_per_recipe(OWN_MODELS)


def digits_batch(shape):
    """16 scikit-learn digits (two of each of 8 classes), resized to `shape`, standardised."""
    digits = load_digits()
    rows = np.concatenate([np.flatnonzero(digits.target == c)[:2] for c in range(8)])
    images = digits.images[rows].astype("float32")[..., None] / 16.0
    height, width, channels = shape
    images = tf.image.resize(images, (height, width), method="nearest").numpy()
    images = np.repeat((images - images.mean()) / images.std(), channels, axis=-1)
    return images, digits.target[rows].astype("int32")


def batch_for(info, model):
    if info.task == "image-classification":
        return digits_batch(tuple(model.input_shape[1:]))
    rng = np.random.default_rng(0)
    if info.task == "sequence-regression":
        return adding_problem_arrays(BATCH, 20, seed=0)
    # Sequence classification: the class is the first token's id mod `classes`.
    classes = model.output_shape[-1]
    tokens = rng.integers(1, info.small_config["vocab_size"], size=(BATCH, 6)).astype("int32")
    return tokens, (tokens[:, 0] % classes).astype("int32")


@pytest.mark.slow
def test_every_model_is_represented_by_its_recipe():
    recipes = {zoo.model_info(name).recipe for name in RECIPE_MODELS}
    assert {zoo.model_info(name).recipe for name in OWN_MODELS} == recipes
    assert {"vgg11", "vgg11_bn", "resnet18", "lenet5", "googlenet"} <= set(RECIPE_MODELS)


@pytest.mark.parametrize("name", RECIPE_MODELS)
def test_a_few_steps_of_the_recipe_lower_the_loss(name):
    info = zoo.model_info(name)
    settings, sources = resolve_recipe(TrainConfig(model=name), info)
    assert set(sources.values()) == {"recipe"}
    tf.keras.utils.set_random_seed(0)
    model = zoo.create_model(name, **info.small_config)
    x, y = batch_for(info, model)
    plan = LearningRatePlan(
        base_lr=settings["lr"], reference_batch=settings["reference_batch"],
        warmup_epochs=settings["warmup_epochs"], schedule=settings["schedule"],
        epochs=settings["epochs"], milestones=tuple(settings["milestones"]),
        decay_factor=settings["decay_factor"],
    )
    learning_rate = plan(settings["warmup_epochs"], BATCH)  # the peak, after warm-up
    optimizer = make_optimizer(settings, learning_rate)
    trainer = DistributedTrainer(
        model, optimizer, tf.distribute.get_strategy(), info.task,
        clip_norm=clip_norm(settings, info.task), label_smoothing=settings["label_smoothing"],
    )
    batch = (tf.constant(x), tf.constant(y))
    losses = []
    for _ in range(STEPS):
        stats = trainer.step(batch, learning_rate)
        losses.append(stats["loss"] / stats["count"])
    assert np.all(np.isfinite(losses)), losses
    # Dropout makes single steps noisy: compare the first two with the last two.
    assert np.mean(losses[-2:]) < np.mean(losses[:2]), losses
