"""The captioners train the same on 1 and 2 replicas: the token loss and the attention penalty
are both divided by the number of real tokens in the GLOBAL batch (all-reduced), however the
tokens fall between the replicas."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.captioning import masked_caption_loss
from zoo.captioning.show_and_tell import injection_captioner
from zoo.captioning.show_attend_tell import attention_captioner
from zoo.data.captions import shapes_examples
from zoo.training import DistributedTrainer, get_strategy

STEPS, GLOBAL_BATCH = 3, 8
SMALL = {"input_shape": (16, 16, 3), "conv_filters": (8, 16), "embedding_dim": 8, "units": 12,
         "max_length": 10}


def build(name, attention_regularization=5.0):
    if name == "show_attend_tell":
        return attention_captioner(**SMALL, attention_units=8,
                                   attention_regularization=attention_regularization)
    return injection_captioner(**SMALL, image_units=8)


def caption_batches():
    """Global batches whose first half (replica 0) holds long captions ("... to the left of
    ...", 9 words) and whose second half (replica 1) short ones ("... above ...", 6 words)."""
    images, references = shapes_examples(64, image_size=16, seed=5)
    long = [i for i, r in enumerate(references) if "left" in r[0]]
    short = [i for i, r in enumerate(references) if "above" in r[0]]
    half = GLOBAL_BATCH // 2
    order = []
    for step in range(STEPS):
        order += long[step * half : (step + 1) * half] + short[step * half : (step + 1) * half]
    tokenizer = build("show_and_tell").tokenizer
    caption_in, caption_out, mask = tokenizer.teacher_forcing([references[i][0] for i in order])
    assert float(tf.reduce_sum(mask[:half])) > 1.3 * float(tf.reduce_sum(mask[half:GLOBAL_BATCH]))
    data = ((images[order], caption_in), caption_out, mask)
    return tf.data.Dataset.from_tensor_slices(data).batch(GLOBAL_BATCH)


def train_steps(strategy, name):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = build(name)
        optimizer = keras.optimizers.SGD(0.5)
    trainer = DistributedTrainer(model, optimizer, strategy, "image-captioning")
    for batch in strategy.experimental_distribute_dataset(caption_batches()):
        trainer.step(batch, 0.5)
    return [np.asarray(w) for w in model.get_weights()]


@pytest.mark.slow  # ~30 s on 2 CPU cores: two traced trainers of the attention captioner
@pytest.mark.parametrize("name", ["show_attend_tell", "show_and_tell"])
def test_two_replicas_train_like_one_device(name):
    single = train_steps(get_strategy(devices=1), name)
    double = train_steps(get_strategy(devices=2), name)
    for a, b in zip(single, double):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_the_attention_penalty_weighs_in_the_replica_test():
    """Per token, the penalty of the test above is a sizeable part of the objective, so a
    wrong normalisation of it would show in the weights."""
    model = build("show_attend_tell")
    (images, caption_in), caption_out, mask = next(iter(caption_batches()))
    logits = model([images, caption_in], training=True)
    loss = masked_caption_loss(caption_out, logits, mask)
    penalty_per_token = float(model.losses[0]) / float(tf.reduce_sum(mask))
    assert penalty_per_token > 0.1 * float(loss)
