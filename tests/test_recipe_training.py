"""Every model's recipe, run by the training engine for a few steps on one fixed batch of real
data, lowers the loss by a stated fraction; a broken recipe (learning rate 0, or 100 times too
high) does not.

Parametrised over `zoo.list_models()`: every model, the deepest variants, `char_lm` and both
captioners included, is tested with its own recipe the day it is registered. The recipe is
resolved exactly as `zoo train --model NAME` resolves it (`resolve_recipe`), the optimizer and
learning rate come from the engine (`make_optimizer`, `LearningRatePlan` at the end of
warm-up, scaled by the recipe's rule to the batch: the recipe's own, except 16 digits for the
image classifiers, whose deep variants cost most), and the steps are the engine's
(`DistributedTrainer.step`), on the model's `small_config` (tiny inputs).

The rule (`passes`): at least `MIN_STEPS` steps, every loss finite, none above `MAX_RISE`
times the first (measured before any update), and the mean loss of the last two steps at most
`1 - MIN_DROP` times the first, reached within `STEPS[task]` steps (the run stops as soon as
the rule is met: the ResNets meet it at the minimum; the plain VGGs at 0.005 for a batch of 16,
VGG-19 at half that (about 35 steps), and the tiny recurrent classifiers with Adam at 1e-3
take longest). A learning rate of 0 fails the rule everywhere; a rate 100x too high
fails it where it destabilises training (the first steps' loss jumps 2-18x: LeNet-5, the
regressors, char_lm, the ResNets), but on the small Adam models with gradient clipping (the
recurrent classifiers, the captioners) it fits a fixed batch smoothly: only held-out data
would show it, which `python -m benchmarks zoo_quality` measures (every model on its test
split, 3 seeds).
"""

import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

import zoo
from zoo.data import load_dataset
from zoo.data.sequences import adding_problem_arrays
from zoo.training.build import make_optimizer
from zoo.training.config import TrainConfig, resolve_recipe
from zoo.training.strategy import LearningRatePlan
from zoo.training.trainer import DistributedTrainer

IMAGE_BATCH = 16  # image classifiers; the other tasks use their recipe's own batch size
STEPS = {"image-classification": 48, "image-captioning": 40, "sequence-classification": 100,
         "sequence-regression": 16, "language-modeling": 16}  # at most
MIN_STEPS = 8  # at least: a rate that is too high shows within the first few steps
MIN_DROP = 0.1  # the loss must fall by at least 10% of its first value within the steps
MAX_RISE = 1.5  # and never rise above 1.5 times it on the way


def digits_batch(shape):
    """16 scikit-learn digits (two of each of 8 classes), resized to `shape`, standardised."""
    digits = load_digits()
    rows = np.concatenate([np.flatnonzero(digits.target == c)[:2] for c in range(8)])
    images = digits.images[rows].astype("float32")[..., None] / 16.0
    height, width, channels = shape
    images = tf.image.resize(images, (height, width), method="nearest").numpy()
    images = np.repeat((images - images.mean()) / images.std(), channels, axis=-1)
    return images, digits.target[rows].astype("int32")


def batch_size(info):
    return IMAGE_BATCH if info.task == "image-classification" else info.recipe.batch_size


def model_and_batch(info):
    """The model at its `small_config` (plus what its data needs) and one fixed batch."""
    kwargs = dict(info.small_config)
    size = batch_size(info)

    def first_batch(dataset):
        return next(iter(dataset.batch(size).take(1)))

    if info.task == "language-modeling":
        splits = load_dataset("tiny_corpus", sequence_length=32)
        kwargs.update(splits.model_kwargs)
        return zoo.create_model(info.name, **kwargs), first_batch(splits.train)
    if info.task == "image-captioning":
        splits = load_dataset("shapes_captions", num_train=size, num_validation=2, num_test=2,
                              image_size=kwargs["input_shape"][0])
        kwargs.update(splits.model_kwargs)
        return zoo.create_model(info.name, **kwargs), first_batch(splits.train)
    model = zoo.create_model(info.name, **kwargs)
    if info.task == "image-classification":
        x, y = digits_batch(tuple(model.input_shape[1:]))
    elif info.task == "sequence-regression":
        x, y = adding_problem_arrays(size, 20, seed=0)
    else:  # sequence classification: the class is the first token's id mod `classes`
        classes = model.output_shape[-1]
        tokens = np.random.default_rng(0).integers(1, kwargs["vocabulary_size"], size=(size, 6))
        x, y = tokens.astype("int32"), (tokens[:, 0] % classes).astype("int32")
    return model, (tf.constant(x), tf.constant(y))


def recipe_losses(name, lr_multiplier=1.0):
    """Training losses of the task's `STEPS` engine steps of the recipe on one fixed batch."""
    info = zoo.model_info(name)
    settings, sources = resolve_recipe(TrainConfig(model=name), info)
    assert set(sources.values()) <= {"recipe", "sequence default"}  # nothing else overrides
    tf.keras.utils.set_random_seed(0)
    model, batch = model_and_batch(info)
    plan = LearningRatePlan(
        base_lr=settings["lr"], reference_batch=settings["reference_batch"],
        warmup_epochs=settings["warmup_epochs"], schedule=settings["schedule"],
        epochs=settings["epochs"], milestones=tuple(settings["milestones"]),
        decay_factor=settings["decay_factor"],
    )
    learning_rate = plan(settings["warmup_epochs"], batch_size(info)) * lr_multiplier  # peak
    optimizer = make_optimizer(settings, learning_rate)
    trainer = DistributedTrainer(
        model, optimizer, tf.distribute.get_strategy(), info.task,
        clip_norm=settings["clip_norm"], label_smoothing=settings["label_smoothing"],
    )
    losses = []
    for _ in range(STEPS[info.task]):
        stats = trainer.step(batch, learning_rate)
        losses.append(stats["loss"] / stats["count"])
        if passes(losses) or not stable(losses):
            break
    return np.array(losses)


def stable(losses):
    return bool(np.all(np.isfinite(losses)) and np.max(losses) <= MAX_RISE * losses[0])


def passes(losses):
    """The rule: MIN_STEPS steps or more, finite, never above MAX_RISE x the first loss, and
    the last two steps' mean at most (1 - MIN_DROP) x the first."""
    return bool(len(losses) >= MIN_STEPS and stable(losses)
                and np.mean(losses[-2:]) <= (1 - MIN_DROP) * losses[0])


# Over ~30 s each on 2 free cores (tracing the deepest graphs dominates): marked slow, still
# run by default.
SLOW = ("resnet101", "resnet152")


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.slow) if name.startswith(SLOW) else name
    for name in zoo.list_models()
])
def test_the_recipe_lowers_the_loss_on_a_fixed_batch(name):
    losses = recipe_losses(name)
    assert passes(losses), (
        f"{name}: loss {losses[0]:.4g} -> {np.mean(losses[-2:]):.4g} (max {np.max(losses):.4g})"
        f" in {len(losses)} steps; the rule asks for at most {1 - MIN_DROP:g}x at the end and "
        f"{MAX_RISE:g}x on the way. Losses: {np.round(losses, 4).tolist()}")


@pytest.mark.parametrize(
    "name, lr_multiplier",
    [("lenet5", 0.0), ("lstm_regressor", 0.0), ("char_lm", 0.0), ("show_and_tell", 0.0),
     ("lenet5", 100.0), ("lstm_regressor", 100.0), ("char_lm", 100.0)],
)
def test_a_broken_recipe_fails_the_rule(name, lr_multiplier):
    # The rule must be able to fail: no learning (lr 0) and a rate 100x too high are caught.
    assert not passes(recipe_losses(name, lr_multiplier))
