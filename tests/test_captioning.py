"""Captioning models: formulas, the loss and the attention penalty, generation, saving."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

import zoo
from zoo import samplers, text
from zoo.captioning import Captioner, masked_caption_loss
from zoo.captioning.show_and_tell import injection_captioner
from zoo.captioning.show_attend_tell import attention_captioner

SMALL = {
    "vocabulary": list(text.SHAPES_VOCABULARY),
    "input_shape": (16, 16, 3),
    "conv_filters": (8, 16),
    "embedding_dim": 12,
    "units": 16,
    "max_length": 6,
}
DECODERS = [("injection", "rnn"), ("injection", "lstm"), ("injection", "gru"), ("attention", None)]


def small_model(decoder="injection", cell="lstm", **overrides):
    if decoder == "attention":
        return attention_captioner(**{**SMALL, "attention_units": 8, **overrides})
    return injection_captioner(**{**SMALL, "image_units": 16, "cell": cell, **overrides})


def images(rng, n=3, shape=(16, 16, 3)):
    return rng.uniform(0, 1, size=(n, *shape)).astype("float32")


def numpy(x):
    return ops.convert_to_numpy(x).astype(np.float64)


def log_softmax64(x):
    x = np.asarray(x, np.float64)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


@pytest.mark.parametrize("decoder,cell", DECODERS)
def test_logits_shape(decoder, cell, rng):
    model = small_model(decoder, cell)
    caption_in = rng.integers(0, 10, size=(3, 7)).astype("int32")
    logits = model([images(rng), caption_in])
    assert tuple(logits.shape) == (3, 7, len(text.SHAPES_VOCABULARY) + 4)
    assert model.vocabulary[:4] == ["", "[UNK]", "<start>", "<end>"]


def test_rnn_injection_matches_the_formula(rng):
    """h_t = tanh(W_xh x_t + W_hh h_{t-1} + W_ih v + b), y_t = W_hy h_t + c, in float64."""
    model = small_model("injection", "rnn")
    x = images(rng, 2)
    caption_in = rng.integers(4, 10, size=(2, 5)).astype("int32")
    logits = numpy(model([x, caption_in]))
    v = numpy(model.encoder(x))
    decoder = model.decoder
    embedding = numpy(decoder.embedding.embeddings)
    kernel, recurrent, bias = (numpy(w) for w in decoder.cell.inner.weights)
    w_xh, w_ih = kernel[: SMALL["embedding_dim"]], kernel[SMALL["embedding_dim"] :]
    w_hy, c = (numpy(w) for w in decoder.output_layer.weights)
    h = np.zeros((2, SMALL["units"]))
    for t in range(5):
        h = np.tanh(embedding[caption_in[:, t]] @ w_xh + h @ recurrent + v @ w_ih + bias)
        np.testing.assert_allclose(logits[:, t], h @ w_hy + c, rtol=1e-4, atol=1e-5)


def test_first_step_injection_matches_vinyals_formula(rng, tmp_path):
    """Vinyals et al.: the image embedding is the input at t = -1, then only the words."""
    model = small_model("injection", "rnn", injection="first_step")
    x = images(rng, 2)
    caption_in = rng.integers(4, 10, size=(2, 4)).astype("int32")
    logits = numpy(model([x, caption_in]))
    decoder = model.decoder
    v = numpy(model.encoder(x))
    w_e, b_e = (numpy(w) for w in decoder.image_embedding.weights)
    embedding = numpy(decoder.embedding.embeddings)
    kernel, recurrent, bias = (numpy(w) for w in decoder.cell.inner.weights)
    w_hy, c = (numpy(w) for w in decoder.output_layer.weights)
    h = np.tanh((v @ w_e + b_e) @ kernel + bias)  # t = -1, from h = 0
    for t in range(4):
        h = np.tanh(embedding[caption_in[:, t]] @ kernel + h @ recurrent + bias)
        np.testing.assert_allclose(logits[:, t], h @ w_hy + c, rtol=1e-4, atol=1e-5)
    model.save(tmp_path / "first.keras")
    loaded = keras.models.load_model(tmp_path / "first.keras")
    assert loaded.caption(x, beam_width=2) == model.caption(x, beam_width=2)


def test_masked_loss_matches_numpy(rng):
    logits = rng.normal(size=(3, 5, 7)).astype("float32") * 3
    targets = rng.integers(0, 7, size=(3, 5))
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], "float32")
    nll = -np.take_along_axis(log_softmax64(logits), targets[..., None], axis=-1)[..., 0]
    expected = (nll * mask).sum() / mask.sum()
    got = float(masked_caption_loss(targets, logits, mask))
    assert got == pytest.approx(expected, rel=1e-5)
    keras_loss = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction="mean_with_sample_weight"
    )
    assert float(keras_loss(targets, logits, sample_weight=mask)) == pytest.approx(got, rel=1e-5)
    assert float(masked_caption_loss(targets, logits, np.zeros_like(mask))) == 0.0


@pytest.mark.parametrize("decoder", ["injection", "attention"])
def test_padding_does_not_change_the_loss(decoder, rng):
    """A caption's loss is the same alone or padded inside a batch of longer captions."""
    model = small_model(decoder)
    short, long = "a red circle", "a blue square to the left of a red circle"
    x = images(rng, 2)
    caption_in, caption_out, mask = (
        np.asarray(a) for a in model.tokenizer.teacher_forcing([short, long])
    )
    assert mask[0].sum() == 4 and mask[1].sum() == 7  # words + <end>, cut at max_length=6
    padded_logits = model([x, caption_in])
    padded = float(masked_caption_loss(caption_out[:1], padded_logits[:1], mask[:1]))
    n = int(mask[0].sum())
    alone_logits = model([x[:1], caption_in[:1, :n]])
    alone = float(masked_caption_loss(caption_out[:1, :n], alone_logits, mask[:1, :n]))
    assert padded == pytest.approx(alone, rel=1e-5)


def test_attention_penalty_counts_the_steps_the_loss_counts(rng):
    """lambda * sum_b sum_i (1 - sum_t alpha_bti)^2 over the steps with a real target: for a
    caption of n words, the n + 1 predictions (words and <end>), not the step reading <end>."""
    model = small_model("attention", attention_regularization=0.7)
    x = images(rng, 3)
    captions = ["a red circle", "a blue square above a red circle", "a green triangle"]
    caption_in, _, mask = (np.asarray(a) for a in model.tokenizer.teacher_forcing(captions))
    assert (caption_in == text.END_ID).sum() == 2  # two captions end inside the window
    model([x, caption_in], training=True)
    assert len(model.losses) == 1
    penalty = float(model.losses[0])
    alphas = numpy(model.decoder.attention_weights(model.encoder(x), caption_in))
    alpha_sum = (alphas * mask[:, :, None]).sum(axis=1)
    expected = 0.7 * ((1.0 - alpha_sum) ** 2).sum()  # a SUM over the batch
    assert penalty == pytest.approx(expected, rel=1e-5)
    assert model.add_loss_reduction == "sum"
    # Keras' fit divides it by the batch's real tokens (`Captioner.compute_loss`).
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction="mean_with_sample_weight"))
    caption_out = np.asarray(model.tokenizer.teacher_forcing(captions)[1])
    logits = model([x, caption_in], training=True)
    total = float(model.compute_loss(None, caption_out, logits, mask))
    penalty = float(model.losses[0])
    expected_total = float(masked_caption_loss(caption_out, logits, mask)) + penalty / mask.sum()
    assert total == pytest.approx(expected_total, rel=1e-5)
    model([x, caption_in], training=False)
    assert not model.losses  # only while training


def train_steps(model, data, steps, learning_rate=1e-2):
    optimizer = keras.optimizers.Adam(learning_rate)
    (x, caption_in), caption_out, mask = data

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            logits = model([x, caption_in], training=True)
            loss = masked_caption_loss(caption_out, logits, mask)
            tokens = tf.reduce_sum(tf.cast(mask, tf.float32))
            total = loss + sum(model.losses) / tokens
        grads = tape.gradient(total, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return [float(step()) for _ in range(steps)]


@pytest.mark.parametrize("decoder", ["injection", "attention"])
def test_short_training_lowers_the_loss(decoder):
    from zoo.data.captions import shapes_examples

    model = small_model(decoder, max_length=10)
    x, refs = shapes_examples(32, image_size=16, seed=0)
    caption_in, caption_out, mask = model.tokenizer.teacher_forcing([r[0] for r in refs])
    losses = train_steps(model, ((ops.convert_to_tensor(x), caption_in), caption_out, mask), 25)
    assert losses[-1] < 0.6 * losses[0]


@pytest.fixture(scope="module")
def trained_colour_captioner():
    """A tiny captioner trained 300 steps to name the red and blue objects of an image:
    captions of 0 to 2 words from a 2-word vocabulary, so every caption can be enumerated."""
    from zoo.data.captions import shapes_examples

    keras.utils.set_random_seed(0)
    x, refs = shapes_examples(96, image_size=16, seed=3)
    captions = [" ".join(w for w in r[0].split() if w in ("red", "blue")) for r in refs]
    model = injection_captioner(
        vocabulary=["red", "blue"], input_shape=(16, 16, 3), conv_filters=(8, 8),
        image_units=16, embedding_dim=8, units=16, cell="gru", max_length=2,
    )
    caption_in, caption_out, mask = model.tokenizer.teacher_forcing(captions)
    losses = train_steps(model, ((ops.convert_to_tensor(x), caption_in), caption_out, mask), 300)
    assert losses[-1] < 0.5 * losses[0]
    return model, x[:6]


@pytest.mark.parametrize("length_penalty", [0.0, 0.6, 1.0])
def test_beam_search_on_a_trained_model_is_exhaustive_search(
    trained_colour_captioner, length_penalty
):
    """Every caption of at most 3 tokens over {[UNK], <end>, red, blue}, scored with the
    teacher-forcing call (not the decoder's step) in float64: beam search with a width that
    prunes nothing finds the best, with the GNMT penalty applied during the search."""
    model, x = trained_colour_captioner
    max_length, allowed = 3, [text.UNKNOWN_ID, text.END_ID, 4, 5]
    width = len(allowed) * (len(allowed) - 1) ** (max_length - 1)
    ids, scores = model.generate_ids(x, samplers.BeamSampler(width, length_penalty), max_length)
    words = [t for t in allowed if t != text.END_ID]
    # Next-token log-probabilities of every prefix (no <end> inside), one call per length.
    next_log_probs = {}
    for length in range(max_length):
        prefixes = list(itertools.product(words, repeat=length))
        caption_in = np.array([[text.START_ID, *p] for p in prefixes], "int32")
        batch = np.repeat(x, len(prefixes), axis=0)
        logits = numpy(model([batch, np.tile(caption_in, (len(x), 1))]))[:, -1]
        logits[:, [text.PAD_ID, text.START_ID]] = -np.inf
        for i, log_probs in enumerate(log_softmax64(logits)):
            next_log_probs[i // len(prefixes), prefixes[i % len(prefixes)]] = log_probs
    for row in range(len(x)):
        hypotheses = []
        for length in range(1, max_length + 1):
            for caption in itertools.product(allowed, repeat=length):
                if text.END_ID in caption[:-1]:
                    continue
                if caption[-1] != text.END_ID and length < max_length:
                    continue
                total = sum(next_log_probs[row, caption[:t]][caption[t]] for t in range(length))
                hypotheses.append((total / ((5 + length) / 6) ** length_penalty, list(caption)))
        best, best_caption = max(hypotheses)
        assert ids[row].tolist() == best_caption + [0] * (max_length - len(best_caption))
        assert scores[row] == pytest.approx(best, abs=1e-4)


def test_width_one_is_greedy_and_captions_are_clean(trained_colour_captioner, rng):
    model, x = trained_colour_captioner
    x = np.concatenate([x, images(rng, 4)])
    greedy_ids, _ = model.generate_ids(x, "greedy")
    beam_ids, _ = model.generate_ids(x, samplers.BeamSampler(1))
    np.testing.assert_array_equal(greedy_ids, beam_ids)
    assert model.caption(x, beam_width=1) == model.greedy(x)
    for beam_width in (1, 3):
        ids, _ = model.generate_ids(x, samplers.BeamSampler(beam_width), max_length=4)
        captions = model.caption(x, beam_width=beam_width, max_length=4)
        for row, caption in zip(ids.tolist(), captions):
            end = row.index(text.END_ID) if text.END_ID in row else len(row)
            assert caption == " ".join(model.vocabulary[t] for t in row[:end])
            assert all(t == text.PAD_ID for t in row[end + 1 :])


@pytest.mark.parametrize("name", ["show_and_tell", "show_attend_tell"])
def test_keras_round_trip_gives_identical_captions(name, tmp_path, rng):
    config = {**zoo.model_info(name).small_config,
              "vocabulary": ["x", "y"] + list(text.SHAPES_VOCABULARY)}
    model = zoo.create_model(name, **config)
    x = images(rng, 4)
    caption_in = rng.integers(0, 10, size=(4, 6)).astype("int32")
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, Captioner)
    assert loaded.vocabulary == model.vocabulary and loaded.max_length == model.max_length
    np.testing.assert_array_equal(loaded([x, caption_in]), model([x, caption_in]))
    assert loaded.caption(x, beam_width=3) == model.caption(x, beam_width=3)
    assert loaded.greedy(x) == model.greedy(x)
    sampler = samplers.RandomSampler(temperature=2.0, seed=5)
    first = model.generate(x, sampler)
    sampler.reseed(5)
    assert loaded.generate(x, sampler) == first


def test_config_holds_every_constructor_argument():
    model = small_model("attention")
    config = model.get_config()
    assert {"encoder", "decoder", "vocabulary", "max_length", "name"} <= set(config)
    assert config["decoder"]["config"]["attention_units"] == 8
    rebuilt = Captioner.from_config(config)
    assert rebuilt.get_config()["decoder"] == config["decoder"]
    assert rebuilt.count_params() == model.count_params()


def conv(k, c_in, c_out):
    return k * k * c_in * c_out + c_out


def dense(n_in, n_out):
    return n_in * n_out + n_out


def cell_params(cell, n_in, units):
    """SimpleRNN, LSTM (4 gates) and Keras' GRU (3 gates, reset_after: two bias rows)."""
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    bias = 2 * 3 * units if cell == "gru" else gates * units
    return gates * (n_in * units + units * units) + bias


@pytest.mark.parametrize("cell,injection", [("rnn", "every_step"), ("lstm", "every_step"),
                                            ("gru", "every_step"), ("lstm", "first_step")])
def test_show_and_tell_parameter_count_closed_form(cell, injection):
    vocabulary_size, embedding, units, image_units = 19, 128, 256, 256
    cnn = conv(3, 3, 32) + conv(3, 32, 64) + conv(3, 64, 64)
    fc = dense(4 * 4 * 64, image_units)  # 32x32 after three 2x2 poolings, flattened
    every_step = injection == "every_step"
    rnn_in = embedding + (image_units if every_step else 0)
    decoder = (vocabulary_size * embedding + cell_params(cell, rnn_in, units)
               + dense(units, vocabulary_size) + (0 if every_step else dense(image_units, embedding)))
    model = zoo.show_and_tell(cell=cell, injection=injection)
    assert model.count_params() == cnn + fc + decoder
    if (cell, injection) == ("lstm", "every_step"):
        assert zoo.model_info("show_and_tell").params == cnn + fc + decoder


def test_show_attend_tell_parameter_count_closed_form():
    vocabulary_size, embedding, units, attention, features, locations = 19, 128, 256, 128, 64, 16
    cnn = conv(3, 3, 32) + conv(3, 32, 64) + conv(3, 64, 64)
    decoder = (
        vocabulary_size * embedding
        + 2 * dense(features, units)  # init_h, init_c
        + dense(features, attention) + dense(units, attention) + dense(attention, 1)  # attention
        + dense(units, 1)  # the beta gate
        + cell_params("lstm", embedding + features, units)
        + dense(units, embedding) + dense(features, embedding)  # deep output L_h, L_z
        + dense(embedding, vocabulary_size)  # L_o
    )
    model = zoo.show_attend_tell()
    assert model.decoder.num_locations == locations
    assert model.count_params() == cnn + decoder == zoo.model_info("show_attend_tell").params


def test_training_inside_two_replica_strategy(two_replica_strategy):
    from zoo.data import load_dataset

    splits = load_dataset("shapes_captions", num_train=32, num_test=4, image_size=16)
    with two_replica_strategy.scope():
        model = zoo.show_and_tell(**{**SMALL, **splits.model_kwargs, "cell": "gru",
                                     "image_units": 16})
        model.compile(
            optimizer=keras.optimizers.Adam(1e-2),
            loss=keras.losses.SparseCategoricalCrossentropy(
                from_logits=True, reduction="mean_with_sample_weight"
            ),
        )
    history = model.fit(splits.train.batch(32), epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    test_images = np.stack([e[0][0] for e in splits.test.as_numpy_iterator()])
    assert len(model.caption(test_images, beam_width=2)) == 4


def test_attention_weights_are_distributions(rng):
    model = small_model("attention")
    alphas = numpy(model.decoder.attention_weights(
        model.encoder(images(rng, 2)), rng.integers(4, 10, (2, 5)).astype("int32")
    ))
    assert alphas.shape == (2, 5, 16)  # a 4x4 grid of annotations
    np.testing.assert_allclose(alphas.sum(-1), 1.0, rtol=1e-5)
    assert (alphas >= 0).all()


def test_encoder_given_as_a_keras_model(rng, tmp_path):
    inputs = keras.Input((16, 16, 3))
    grid = keras.layers.Conv2D(4, 3, strides=4, padding="same")(inputs)
    encoder = keras.Model(inputs, grid)
    model = small_model("attention", encoder=encoder, train_encoder=False)
    assert model.decoder.num_locations == 16
    assert not encoder.trainable
    model.save(tmp_path / "frozen.keras")
    loaded = keras.models.load_model(tmp_path / "frozen.keras")
    assert loaded.count_params() == model.count_params()
    assert len(loaded.trainable_weights) == len(model.trainable_weights)
    vector_encoder = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(grid))
    injection = small_model("injection", encoder=vector_encoder)
    assert len(injection.caption(images(rng, 2), beam_width=2)) == 2
    with pytest.raises(ValueError, match="feature grid"):
        small_model("attention", encoder=vector_encoder)
    with pytest.raises(ValueError, match="encoder"):
        small_model("injection", encoder="resnet_five_hundred")


def test_bad_input_raises_clear_errors(rng):
    model = small_model("injection", "gru")
    with pytest.raises(ValueError, match=r"images.*\(batch, 16, 16, 3\).*\(2, 20, 20, 3\)"):
        model.caption(images(rng, 2, (20, 20, 3)))
    with pytest.raises(ValueError, match=r"images.*\(2, 16, 16, 1\)"):
        model.greedy(images(rng, 2, (16, 16, 1)))
    for beam_width in (0, -1, 2.5):
        with pytest.raises(ValueError, match=f"beam_width={beam_width}"):
            model.beam_search(images(rng, 1), beam_width=beam_width)
    with pytest.raises(ValueError, match="Did you mean 'rnn'"):
        small_model("injection", "vanilla")
    with pytest.raises(ValueError, match="injection=.every_time."):
        small_model("injection", injection="every_time")
    with pytest.raises(ValueError, match="Did you mean .lstm."):
        small_model("injection", "lstmm")
    with pytest.raises(ValueError, match="Did you mean 'greedy'"):
        model.generate(images(rng, 1), sampler="gready")
    with pytest.raises(ValueError, match="max_length=0"):
        model.greedy(images(rng, 1), max_length=0)
    with pytest.raises(ValueError, match="input_shape"):
        small_model(input_shape=(16, 16))
    with pytest.raises(ValueError, match="decoder predicts"):
        Captioner(model.encoder, model.decoder, vocabulary=["only", "three", "words"])
    with pytest.raises(TypeError, match="decoder"):
        Captioner(model.encoder, keras.layers.Dense(3))


def test_tokenizer_round_trip_and_special_tokens():
    tokenizer = text.CaptionTokenizer(["a", "red", "circle"], max_length=4)
    ids = np.asarray(tokenizer.encode(["A red, circle!", "a <start> zebra", ""]))
    assert ids.tolist() == [[2, 4, 5, 6, 3, 0], [2, 4, 1, 1, 3, 0], [2, 3, 0, 0, 0, 0]]
    caption_in, caption_out, mask = (np.asarray(a) for a in tokenizer.teacher_forcing(["a red"]))
    assert caption_in.tolist() == [[2, 4, 5, 3, 0]]
    assert caption_out.tolist() == [[4, 5, 3, 0, 0]]
    assert mask.tolist() == [[1, 1, 1, 0, 0]]
    assert tokenizer.decode([[2, 4, 0, 5, 3, 6, 6], [4, 4, 4]]) == ["a red", "a a a"]
    with pytest.raises(ValueError, match="captions"):
        text.build_vocabulary([])
    with pytest.raises(ValueError, match="special tokens"):
        text.CaptionTokenizer(["a", "<end>"])
    with pytest.raises(ValueError, match="max_length=0"):
        text.CaptionTokenizer(["a"], max_length=0)


def test_recipes_state_the_paper_and_the_adaptation():
    for name in ("show_and_tell", "show_attend_tell"):
        recipe = zoo.model_info(name).recipe
        assert recipe.paper_setting and recipe.adaptation
        assert recipe.schedule == "constant" and not recipe.augment
    assert "without momentum" in zoo.model_info("show_and_tell").recipe.paper_setting
