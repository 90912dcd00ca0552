"""The distributed training loop: equal results on 1 and 2 replicas, losses from logits."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import StableSoftmax
from zoo.training.loop import DistributedTrainer, batch_statistics, training_batches
from zoo.training.strategy import get_strategy

STEPS = 3
GLOBAL_BATCH = 8


def _one_device():
    return get_strategy(devices=1)


@pytest.fixture
def two_replicas():
    # get_strategy's CPU MirroredStrategy (reduction on one device): several of them can run in
    # one process, unlike MirroredStrategy's default collectives (see zoo.training.strategy).
    return get_strategy(devices=2)


def _train_steps(strategy, build, data, task, clip_norm=None, lr=0.05, feed="step"):
    """Build under `strategy`, run STEPS steps over `data` (global batches), return weights.

    `feed` picks how batches reach the step: "step" (a distributed batch per call),
    "from_iterator" (the iterator as an argument) or "bound" (the iterator built into the graph).
    """
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = build()
        optimizer = keras.optimizers.SGD(lr, momentum=0.9)
    trainer = DistributedTrainer(model, optimizer, strategy, task, clip_norm=clip_norm)
    batches = strategy.experimental_distribute_dataset(data)
    if feed == "step":
        losses = [trainer.step(batch, lr) for batch in batches]
    elif feed == "from_iterator":
        iterator = iter(batches)
        losses = [trainer.step_from_iterator(iterator, lr) for _ in range(STEPS)]
    else:
        step = trainer.bind(iter(batches))
        losses = [step(lr) for _ in range(STEPS)]
    assert len(losses) == STEPS
    return [np.asarray(w) for w in model.get_weights()], losses


def _image_batches(rng):
    """STEPS global batches of random 8x8 images and labels for `_small_cnn`."""
    x = rng.normal(size=(GLOBAL_BATCH * STEPS, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 10, size=GLOBAL_BATCH * STEPS).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)


def _small_cnn():
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
            StableSoftmax(),
        ]
    )


def test_two_replicas_match_one_device_for_classification(two_replicas, rng):
    data = _image_batches(rng)
    single, single_stats = _train_steps(_one_device(), _small_cnn, data, "image-classification")
    double, double_stats = _train_steps(two_replicas, _small_cnn, data, "image-classification")
    assert two_replicas.num_replicas_in_sync == 2
    for a, b in zip(single, double):
        np.testing.assert_allclose(a, b, atol=1e-4)
    # The reported loss is the mean over the global batch, not over one replica.
    for a, b in zip(single_stats, double_stats):
        assert a["count"] == b["count"] == GLOBAL_BATCH
        np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-5)
    # And the weights moved: the comparison is not between two untouched initialisations.
    keras.utils.set_random_seed(0)
    assert not np.allclose(_small_cnn().get_weights()[0], single[0])


@pytest.mark.parametrize("feed", ["from_iterator", "bound"])
def test_iterator_feeds_match_batch_by_batch_steps(two_replicas, rng, feed):
    data = _image_batches(rng)
    expected, expected_stats = _train_steps(two_replicas, _small_cnn, data, "image-classification")
    weights, stats = _train_steps(
        two_replicas, _small_cnn, data, "image-classification", feed=feed
    )
    for a, b in zip(expected, weights):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert [s["loss"] for s in stats] == pytest.approx([s["loss"] for s in expected_stats])


def _regularized_cnn():
    # A weight penalty (same on every replica) and an activity penalty (a mean over each
    # replica's own examples, like the captioner's attention penalty): both come from add_loss
    # and are only known after the forward pass.
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(
                4, 3, activation="relu", kernel_regularizer=keras.regularizers.L2(0.1)
            ),
            keras.layers.ActivityRegularization(l2=0.05),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
            StableSoftmax(),
        ]
    )


def test_add_loss_penalties_are_averaged_over_replicas(two_replicas, rng):
    data = _image_batches(rng)
    single, _ = _train_steps(_one_device(), _regularized_cnn, data, "image-classification")
    double, _ = _train_steps(two_replicas, _regularized_cnn, data, "image-classification")
    for a, b in zip(single, double):
        np.testing.assert_allclose(a, b, atol=1e-4)
    # The penalties changed the result: compare with the same steps without them.
    unregularized, _ = _train_steps(_one_device(), _small_cnn, data, "image-classification")
    assert not np.allclose(unregularized[0], single[0], atol=1e-4)


def _token_model():
    return keras.Sequential(
        [keras.Input((6,), dtype="int32"), keras.layers.Embedding(12, 8), keras.layers.Dense(12)]
    )


def test_token_loss_is_normalised_by_global_tokens_and_clipped_after_reduction(two_replicas, rng):
    # Replica 0 gets batches full of real tokens, replica 1 almost only padding: averaging per
    # replica and then across replicas would weight replica 1's few tokens far too much.
    global_batch = 4
    x = rng.integers(0, 12, size=(global_batch * STEPS, 6)).astype("int32")
    y = rng.integers(0, 12, size=(global_batch * STEPS, 6)).astype("int32")
    mask = np.ones((global_batch * STEPS, 6), "float32")
    for step in range(STEPS):
        mask[step * global_batch + 2 : (step + 1) * global_batch, 1:] = 0.0
    data = tf.data.Dataset.from_tensor_slices((x, y, mask)).batch(global_batch)
    # clip_norm small enough to be active: clipping before the all-reduce would differ.
    single, single_stats = _train_steps(
        _one_device(), _token_model, data, "language-modeling", clip_norm=0.05
    )
    double, _ = _train_steps(two_replicas, _token_model, data, "language-modeling", clip_norm=0.05)
    for a, b in zip(single, double):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert single_stats[0]["count"] == mask[:global_batch].sum() == 14

    # Reference for the first step's loss: float64 NumPy cross-entropy over the real tokens.
    keras.utils.set_random_seed(0)
    logits = _token_model()(x[:global_batch]).numpy().astype("float64")
    log_probs = (
        logits
        - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True))
        - logits.max(-1, keepdims=True)
    )
    picked = np.take_along_axis(log_probs, y[:global_batch, :, None], axis=-1)[..., 0]
    expected = -(picked * mask[:global_batch]).sum() / mask[:global_batch].sum()
    np.testing.assert_allclose(
        single_stats[0]["loss"] / single_stats[0]["count"], expected, rtol=1e-5
    )


def test_stable_softmax_head_loss_is_computed_from_logits():
    # Logits so confident that the probability of the right class underflows to 0: a loss from
    # clipped probabilities would be -log(1e-7) = 16.1; the true loss is 2000.
    logits = np.array([[1000.0, -1000.0, 0.0], [3.0, 1.0, 0.2]], "float32")
    targets = np.array([1, 0], "int32")
    shifted = logits.astype("float64") - logits.max(-1, keepdims=True)
    reference = -(shifted - np.log(np.exp(shifted).sum(-1, keepdims=True)))[[0, 1], targets]

    probabilities = StableSoftmax()(logits)
    stats = batch_statistics("image-classification", targets, probabilities, None, "probabilities")
    np.testing.assert_allclose(float(stats["loss"]), reference.sum(), rtol=1e-5)

    @tf.function
    def traced(x):
        return batch_statistics(
            "image-classification", targets, StableSoftmax()(x), None, "probabilities"
        )["loss"]

    np.testing.assert_allclose(float(traced(logits)), reference.sum(), rtol=1e-5)
    from_logits = batch_statistics("image-classification", targets, logits, None, "logits")
    np.testing.assert_allclose(float(from_logits["loss"]), reference.sum(), rtol=1e-5)
    assert float(stats["accuracy"]) == 0.0 + 1.0  # row 2 right, row 1 wrong


def test_regression_loss_is_mean_squared_error(rng):
    outputs = rng.normal(size=(5, 1)).astype("float32")
    targets = rng.normal(size=(5,)).astype("float32")
    stats = batch_statistics("sequence-regression", targets, outputs, None, "logits")
    np.testing.assert_allclose(
        float(stats["loss"]) / float(stats["count"]),
        np.mean((outputs[:, 0].astype("float64") - targets) ** 2),
        rtol=1e-5,
    )


def test_epoch_order_is_a_function_of_seed_and_epoch():
    data = tf.data.Dataset.range(20)

    def order(seed, epoch):
        return np.concatenate(list(training_batches(data, 5, seed, epoch, 20).as_numpy_iterator()))

    np.testing.assert_array_equal(order(3, 1), order(3, 1))
    assert not np.array_equal(order(3, 1), order(3, 2))
    assert not np.array_equal(order(3, 1), order(4, 1))
    assert sorted(order(3, 1)) == list(range(20))


@pytest.mark.parametrize("batch", [3, 7])
def test_training_batches_drop_the_partial_batch(batch):
    data = tf.data.Dataset.range(20)
    sizes = [len(b) for b in training_batches(data, batch, 0, 0, 20).as_numpy_iterator()]
    assert sizes == [batch] * (20 // batch)


def test_per_time_step_classifier_counts_every_position(rng):
    # E.g. the copy task: [batch, time, classes] outputs, loss averaged over all positions.
    logits = rng.normal(size=(3, 5, 4)).astype("float32")
    targets = rng.integers(0, 4, size=(3, 5)).astype("int32")
    stats = batch_statistics("sequence-classification", targets, logits, None, "logits")
    z = logits.astype("float64")
    log_probs = z - np.log(np.exp(z).sum(-1, keepdims=True))
    expected = -np.take_along_axis(log_probs, targets[..., None], -1).mean()
    assert float(stats["count"]) == 15
    np.testing.assert_allclose(float(stats["loss"]) / 15, expected, rtol=1e-5)
    np.testing.assert_allclose(
        float(stats["accuracy"]), (logits.argmax(-1) == targets).sum(), rtol=0
    )


def test_training_stream_is_the_epochs_back_to_back():
    from zoo.training.loop import training_stream

    data = tf.data.Dataset.range(20)
    stream = np.concatenate(list(training_stream(data, 5, 3, 1, 4, 20).as_numpy_iterator()))
    epochs = [
        np.concatenate(list(training_batches(data, 5, 3, e, 20).as_numpy_iterator()))
        for e in (1, 2, 3)
    ]
    np.testing.assert_array_equal(stream, np.concatenate(epochs))
