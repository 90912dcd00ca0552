"""The train step and its inputs: equal results on 1 and 2 replicas, losses from logits, what a
model returns, label smoothing, the validation hold-out and the epoch pipeline."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo import registry
from zoo.layers import StableSoftmax
from zoo.training import DistributedTrainer, batch_statistics, get_strategy, pipeline
from zoo.training.pipeline import training_batches, training_stream
from zoo.training.task import declared_outputs, infer_outputs

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
    data = tf.data.Dataset.range(20)
    stream = np.concatenate(list(training_stream(data, 5, 3, 1, 4, 20).as_numpy_iterator()))
    epochs = [
        np.concatenate(list(training_batches(data, 5, 3, e, 20).as_numpy_iterator()))
        for e in (1, 2, 3)
    ]
    np.testing.assert_array_equal(stream, np.concatenate(epochs))


def test_training_stream_resumes_mid_epoch_with_the_remaining_batches():
    # A run resumed at epoch 1, step 2 must see exactly the batches the uninterrupted run saw
    # from there, augmentation included (its seeds use each example's index in the epoch).
    data = tf.data.Dataset.range(20).map(lambda x: tf.cast(x, tf.float32))
    data = data.map(lambda x: (x, tf.constant(0)))

    def augment(value, seed):
        return value + tf.random.stateless_uniform([], seed=seed)

    def run(first_epoch, skip):
        stream = training_stream(data, 4, 3, first_epoch, 3, 20, augment, skip_steps=skip)
        return np.concatenate([b[0] for b in stream.as_numpy_iterator()])

    whole = run(0, 0)
    np.testing.assert_array_equal(run(1, 2), whole[20 + 2 * 4:])


def test_shuffle_buffer_is_bounded_in_bytes():
    images = tf.data.Dataset.from_tensors(tf.zeros((224, 224, 3))).repeat(50)
    per_image = 224 * 224 * 3 * 4
    assert pipeline.shuffle_buffer(images, 50, limit=10 * per_image) == 10
    assert pipeline.shuffle_buffer(images, 5, limit=10 * per_image) == 5
    ragged = tf.data.Dataset.from_generator(
        lambda: (np.zeros(n, "float32") for n in (100, 3)), output_signature=tf.TensorSpec([None])
    )
    assert pipeline.shuffle_buffer(ragged, None, limit=4000) == 10  # the first element: 400 B


@pytest.mark.parametrize("num_examples", [1437, 1000, 7, 23])
def test_validation_hold_out_is_one_in_ten_deterministic_and_disjoint(num_examples):
    data = tf.data.Dataset.range(num_examples)
    train, validation, num_train, num_validation = pipeline.hold_out_validation(
        data, num_examples
    )
    train_ids = list(train.as_numpy_iterator())
    validation_ids = list(validation.as_numpy_iterator())
    assert (len(train_ids), len(validation_ids)) == (num_train, num_validation)
    assert sorted(train_ids + validation_ids) == list(range(num_examples))
    # Exactly one example of every full block of 10, at a position that varies between blocks.
    blocks = [v // 10 for v in validation_ids]
    assert blocks[: num_examples // 10] == list(range(num_examples // 10))
    if num_examples >= 1000:
        assert len({v % 10 for v in validation_ids}) == 10
    again = pipeline.hold_out_validation(data, num_examples)[1]
    assert list(again.as_numpy_iterator()) == validation_ids
    # Unknown size: the same split, counts unknown.
    _, unsized, count_train, count_validation = pipeline.hold_out_validation(data)
    assert (count_train, count_validation) == (None, None)
    assert list(unsized.as_numpy_iterator()) == validation_ids


def test_label_smoothing_matches_a_float64_reference(rng):
    logits = rng.normal(size=(6, 5)).astype("float32") * 3
    targets = rng.integers(0, 5, size=6).astype("int32")
    e = 0.1
    z = logits.astype("float64")
    log_p = z - z.max(-1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(-1, keepdims=True))
    smoothed = (1 - e) * np.eye(5)[targets] + e / 5
    reference = -(smoothed * log_p).sum()
    for kind, outputs in [("logits", logits), ("probabilities", StableSoftmax()(logits)),
                          ("log_probabilities", StableSoftmax(log=True)(logits))]:
        stats = batch_statistics("image-classification", targets, outputs, None, kind, e)
        np.testing.assert_allclose(float(stats["loss"]), reference, rtol=1e-5)
    # Binary head (one sigmoid unit): cross-entropy against labels moved towards 1/2.
    binary = logits[:, :1]
    labels = targets % 2
    p = 1 / (1 + np.exp(-binary[:, 0].astype("float64")))
    soft = labels * (1 - e) + e / 2
    expected = -(soft * np.log(p) + (1 - soft) * np.log(1 - p)).sum()
    stats = batch_statistics("image-classification", labels, binary, None, "logits", e)
    np.testing.assert_allclose(float(stats["loss"]), expected, rtol=1e-5)


def test_what_a_model_returns_is_declared_not_guessed():
    lenet = registry.model_info("lenet5")
    kwargs = {"input_shape": (28, 28, 1), "classes": 10}
    assert declared_outputs(lenet, kwargs) == "probabilities"
    logits_model = registry.create_model("lenet5", classifier_activation=None, **kwargs)
    assert declared_outputs(lenet, {**kwargs, "classifier_activation": None},
                            logits_model) == "logits"
    # The model's output layer contradicting the declaration is an error, not a guess.
    with pytest.raises(ValueError, match="declared to return probabilities"):
        declared_outputs(lenet, kwargs, logits_model)
    with pytest.raises(ValueError, match="classifier_activation"):
        declared_outputs(lenet, {**kwargs, "classifier_activation": "relu"})
    assert declared_outputs(registry.model_info("char_lm"), {}) == "probabilities"
    for name in registry.list_models(task="image-captioning"):
        assert declared_outputs(registry.model_info(name), {}) == "logits"
    # A bare model: only an unambiguous output layer is accepted.
    assert infer_outputs(_small_cnn(), "image-classification") == "probabilities"
    ambiguous = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                                  keras.layers.LayerNormalization()])
    with pytest.raises(ValueError, match="Cannot tell whether"):
        infer_outputs(ambiguous, "image-classification")


def test_probabilities_and_logits_heads_train_identically(rng):
    # The same network with a StableSoftmax head or returning logits: the loss is computed
    # from the same logits, so the steps agree.
    data = _image_batches(rng)

    def logits_cnn():
        return keras.Sequential(_small_cnn().layers[:-1])

    with_softmax, _ = _train_steps(_one_device(), _small_cnn, data, "image-classification")
    with_logits, _ = _train_steps(_one_device(), logits_cnn, data, "image-classification")
    for a, b in zip(with_softmax, with_logits):
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("feed", ["step", "from_iterator", "bound"])
def test_dropout_draws_a_new_mask_every_step(feed, rng):
    # Regression test: with a forward/backward tf.function nested in a step called from another
    # tf.function, TensorFlow 2.21 dropped the SeedGenerator's update and every step reused
    # one dropout mask.
    def dropout_model():
        return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                 keras.layers.Dropout(0.5), keras.layers.Dense(10)])

    strategy = _one_device()
    with strategy.scope():
        model = dropout_model()
        optimizer = keras.optimizers.SGD(0.01)
    trainer = DistributedTrainer(model, optimizer, strategy, "image-classification")
    generator = model.layers[1].seed_generator
    before = generator.state.numpy().copy()
    batches = strategy.experimental_distribute_dataset(
        _image_batches(rng).unbatch().batch(GLOBAL_BATCH, drop_remainder=True)
    )
    iterator = iter(batches)
    if feed == "step":
        for batch in batches:
            trainer.step(batch, 0.01)
    elif feed == "from_iterator":
        for _ in range(STEPS):
            trainer.step_from_iterator(iterator, 0.01)
    else:
        step = trainer.bind(iterator)
        for _ in range(STEPS):
            step(0.01)
    assert generator.state.numpy()[1] - before[1] == STEPS


class _SummedPenalty(keras.layers.Layer):
    """add_loss of a sum over the local batch (the captioners' convention)."""

    def call(self, x):
        self.add_loss(0.01 * keras.ops.sum(keras.ops.square(x)))
        return x


def test_summed_add_loss_is_divided_by_the_global_count(two_replicas, rng):
    def build():
        model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3),
                                  _SummedPenalty(), keras.layers.Flatten(),
                                  keras.layers.Dense(10)])
        model.add_loss_reduction = "sum"
        return model

    data = _image_batches(rng)
    single, _ = _train_steps(_one_device(), build, data, "image-classification")
    double, _ = _train_steps(two_replicas, build, data, "image-classification")
    for a, b in zip(single, double):
        np.testing.assert_allclose(a, b, atol=1e-5)
