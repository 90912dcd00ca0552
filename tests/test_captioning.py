"""Captioning models, decoding, tokenizer and BLEU."""

import itertools
import math

import keras
import numpy as np
import pytest

import zoo
from zoo.captioning import decoding, metrics, text
from zoo.captioning.model import Captioner, masked_caption_loss

SMALL = {
    "vocabulary": list(text.SHAPES_VOCABULARY),
    "input_shape": (16, 16, 3),
    "conv_filters": (8, 16),
    "image_units": 16,
    "embedding_dim": 12,
    "units": 16,
    "attention_units": 8,
    "max_length": 6,
}
DECODERS = [
    ("injection", "vanilla"),
    ("injection", "lstm"),
    ("injection", "gru"),
    ("attention", "lstm"),
]


def small_model(decoder="injection", cell="lstm", **overrides):
    return Captioner(**{**SMALL, "decoder": decoder, "cell": cell, **overrides})


def images(rng, n=3, shape=(16, 16, 3)):
    return rng.uniform(0, 1, size=(n, *shape)).astype("float32")


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


def test_vanilla_injection_matches_seed_formula(rng):
    """h_t = tanh(W_xh x_t + W_hh h_{t-1} + W_ih v + b), y_t = W_hy h_t + c, in float64."""
    model = small_model("injection", "vanilla")
    x = images(rng, 2)
    caption_in = rng.integers(2, 10, size=(2, 5)).astype("int32")
    logits = keras.ops.convert_to_numpy(model([x, caption_in]))

    v = keras.ops.convert_to_numpy(model.image_model(x)).astype(np.float64)
    decoder = model.caption_decoder
    embedding = keras.ops.convert_to_numpy(decoder.embedding.embeddings).astype(np.float64)
    kernel, recurrent, bias = (
        keras.ops.convert_to_numpy(w).astype(np.float64) for w in decoder.cell.inner.weights
    )
    w_xh, w_ih = kernel[: SMALL["embedding_dim"]], kernel[SMALL["embedding_dim"] :]
    w_hy, c = (
        keras.ops.convert_to_numpy(w).astype(np.float64) for w in decoder.output_layer.weights
    )
    h = np.zeros((2, SMALL["units"]))
    for t in range(5):
        h = np.tanh(embedding[caption_in[:, t]] @ w_xh + h @ recurrent + v @ w_ih + bias)
        np.testing.assert_allclose(logits[:, t], h @ w_hy + c, rtol=1e-4, atol=1e-5)


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
    tokenizer = model.tokenizer
    short, long = "a red circle", "a blue square to the left of a red circle"
    x = images(rng, 2)
    caption_in, caption_out, mask = (
        np.asarray(a) for a in tokenizer.teacher_forcing([short, long])
    )
    assert mask[0].sum() == 4 and mask[1].sum() == 7  # words + <end>, cut at max_length=6
    padded_logits = model([x, caption_in])
    padded = float(masked_caption_loss(caption_out[:1], padded_logits[:1], mask[:1]))
    n = int(mask[0].sum())
    alone_logits = model([x[:1], caption_in[:1, :n]])
    alone = float(masked_caption_loss(caption_out[:1, :n], alone_logits, mask[:1, :n]))
    assert padded == pytest.approx(alone, rel=1e-5)
    # garbage after the mask changes nothing
    noisy_out = np.where(mask > 0, caption_out, 5)
    assert float(masked_caption_loss(noisy_out, padded_logits, mask)) == pytest.approx(
        float(masked_caption_loss(caption_out, padded_logits, mask)), rel=1e-6
    )


def test_tokenizer_round_trip_and_special_tokens():
    tokenizer = text.CaptionTokenizer(["a", "red", "circle"], max_length=4)
    ids = np.asarray(tokenizer.encode(["A red, circle!", "a <start> zebra", ""]))
    assert ids.tolist() == [[2, 4, 5, 6, 3, 0], [2, 4, 1, 1, 3, 0], [2, 3, 0, 0, 0, 0]]
    caption_in, caption_out, mask = (np.asarray(a) for a in tokenizer.teacher_forcing(["a red"]))
    assert caption_in.tolist() == [[2, 4, 5, 3, 0]]
    assert caption_out.tolist() == [[4, 5, 3, 0, 0]]
    assert mask.tolist() == [[1, 1, 1, 0, 0]]
    assert tokenizer.decode([[2, 4, 0, 5, 3, 6, 6], [4, 4, 4]]) == ["a red", "a a a"]
    long_ids = np.asarray(tokenizer.encode(["a red circle a red circle"]))
    assert long_ids[0, -1] == text.END_ID  # cut to max_length words, then <end>


@pytest.mark.parametrize("decoder,cell", [("injection", "gru"), ("attention", "lstm")])
def test_beam_width_one_equals_greedy(decoder, cell, rng):
    for seed in range(2):
        keras.utils.set_random_seed(seed)
        model = small_model(decoder, cell)
        x = images(rng, 5)
        greedy = decoding.greedy_search(model, x)
        beam, _ = decoding.beam_search(model, x, beam_width=1)
        np.testing.assert_array_equal(greedy, beam)
        assert model.caption(x, beam_width=1) == model.greedy(x)


def test_in_graph_beam_search_matches_eager_loop(rng):
    model = small_model("attention")
    x = images(rng, 4)
    ids, scores = decoding.beam_search(model, x, beam_width=4, length_penalty=0.6)
    eager_ids, eager_scores = decoding.eager_beam_search(model, x, 4, length_penalty=0.6)
    np.testing.assert_array_equal(ids, eager_ids)
    np.testing.assert_allclose(scores, eager_scores, rtol=1e-5)


def test_full_width_beam_search_is_exhaustive_search(rng):
    """With beam width = vocabulary size and two steps, beam search is exact."""
    model = small_model("injection", "gru")
    vocab = model.caption_decoder.vocabulary_size
    x = images(rng, 2)
    ids, scores = decoding.beam_search(model, x, beam_width=vocab, max_length=2)
    decoder = model.caption_decoder
    features = model.image_model(x)
    for b in range(2):
        states = decoder.initial_state(features[b : b + 1])
        logits, _ = decoder.step(keras.ops.convert_to_tensor([text.START_ID]), states)
        first = log_softmax64(keras.ops.convert_to_numpy(logits))[0]
        best, best_seq = -math.inf, None
        for w1 in range(vocab):
            if w1 == text.END_ID:
                candidates = [((w1, 0), first[w1])]
            else:
                state = decoder.initial_state(features[b : b + 1])
                _, state = decoder.step(keras.ops.convert_to_tensor([text.START_ID]), state)
                logits2, _ = decoder.step(keras.ops.convert_to_tensor([w1]), state)
                second = log_softmax64(keras.ops.convert_to_numpy(logits2))[0]
                candidates = [((w1, w2), first[w1] + second[w2]) for w2 in range(vocab)]
            for seq, score in candidates:
                if score > best:
                    best, best_seq = score, seq
        assert tuple(ids[b]) == best_seq
        assert scores[b] == pytest.approx(best, abs=1e-4)


def test_decoded_strings_are_clean(rng):
    model = small_model("injection", "vanilla")
    x = images(rng, 6)
    for beam_width in (1, 3):
        ids = decoding.beam_search(model, x, beam_width=beam_width, max_length=7)[0]
        captions = model.caption(x, beam_width=beam_width, max_length=7)
        for row, caption in zip(ids, captions):
            words = list(itertools.takewhile(lambda t: t != text.END_ID, row.tolist()))
            expected = [model.vocabulary[t] for t in words if t not in (0, 2)]
            assert caption == " ".join(expected)
            assert "<start>" not in caption and "<end>" not in caption and "  " not in caption
            after_end = row.tolist()[len(words) + 1 :]
            assert all(t == text.PAD_ID for t in after_end)


@pytest.mark.parametrize("name", ["show_and_tell", "show_attend_tell"])
def test_keras_round_trip_gives_identical_captions(name, tmp_path, rng):
    model = zoo.create_model(
        name,
        **{
            **zoo.model_info(name).small_config,
            "vocabulary": ["x", "y"] + list(text.SHAPES_VOCABULARY),
        },
    )
    x = images(rng, 4)
    caption_in = rng.integers(0, 10, size=(4, 6)).astype("int32")
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, Captioner)
    assert loaded.vocabulary == model.vocabulary
    np.testing.assert_allclose(loaded([x, caption_in]), model([x, caption_in]), rtol=1e-6)
    assert loaded.caption(x, beam_width=3) == model.caption(x, beam_width=3)
    if name != "show_and_tell":
        return
    assert loaded.greedy(x) == model.greedy(x)
    image_file = tmp_path / "image.png"
    keras.utils.save_img(image_file, (x[0] * 255).astype("uint8"))
    from_file = decoding.load_images([image_file], (16, 16, 3))
    assert decoding.caption_files(path, [image_file], beam_width=2) == model.caption(
        from_file, beam_width=2
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    model.save(run_dir / "model.keras")
    assert zoo.captioning.caption_images([image_file], model=str(run_dir), beam_size=1) == (
        model.greedy(from_file)
    )
    with pytest.raises(ValueError, match="model"):
        zoo.captioning.caption_images([image_file], model=None)


def _train_steps(model, data, steps, learning_rate=1e-2):
    import tensorflow as tf

    optimizer = keras.optimizers.Adam(learning_rate)
    (x, caption_in), caption_out, mask = data

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            logits = model([x, caption_in], training=True)
            loss = masked_caption_loss(caption_out, logits, mask)
            total = loss + sum(model.losses)
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
    data = ((keras.ops.convert_to_tensor(x), caption_in), caption_out, mask)
    losses = _train_steps(model, data, 25)
    assert losses[-1] < 0.6 * losses[0]
    if decoder == "attention":
        assert len(model.losses) == 1  # the doubly stochastic penalty, while training


def test_training_inside_two_replica_strategy(two_replica_strategy):
    from zoo.data import load_dataset

    assert two_replica_strategy.num_replicas_in_sync == 2
    splits = load_dataset("shapes_captions", num_train=32, num_test=4, image_size=16)
    with two_replica_strategy.scope():
        model = zoo.show_and_tell(**{**SMALL, **splits.model_kwargs, "cell": "gru"})
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
    alphas = keras.ops.convert_to_numpy(
        model.caption_decoder.attention_weights(
            model.image_model(images(rng, 2)), rng.integers(2, 10, (2, 5)).astype("int32")
        )
    )
    assert alphas.shape == (2, 5, 16)  # a 4x4 grid of annotations
    np.testing.assert_allclose(alphas.sum(-1), 1.0, rtol=1e-5)
    assert (alphas >= 0).all()


def test_encoder_given_as_a_keras_model(rng):
    inputs = keras.Input((16, 16, 3))
    grid = keras.layers.Conv2D(4, 3, strides=4, padding="same")(inputs)
    encoder = keras.Model(inputs, grid)
    model = small_model("attention", encoder=encoder, train_encoder=False)
    assert model.caption_decoder.num_locations == 16
    assert not encoder.trainable
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
    with pytest.raises(ValueError, match="vocabulary size"):
        model.beam_search(images(rng, 1), beam_width=1000)
    with pytest.raises(ValueError, match="decoder='transformer'"):
        small_model("transformer")
    with pytest.raises(ValueError, match="injection=.every_time."):
        small_model("injection", injection="every_time")
    with pytest.raises(ValueError, match="Did you mean .lstm."):
        small_model("injection", "lstmm")
    with pytest.raises(ValueError, match="captions"):
        text.build_vocabulary([])
    with pytest.raises(ValueError, match="vocabulary"):
        text.CaptionTokenizer([])
    with pytest.raises(ValueError, match="special tokens"):
        text.CaptionTokenizer(["a", "<end>"])
    with pytest.raises(ValueError, match="image_paths"):
        decoding.caption_files(model, [])
    with pytest.raises(ValueError, match="max_length"):
        model.greedy(images(rng, 1), max_length=0)
    with pytest.raises(ValueError, match="input_shape"):
        small_model(input_shape=(16, 16))


def test_corpus_bleu_closed_forms():
    refs = [["a red circle above a blue square", "a blue square below a red circle"]]
    assert metrics.corpus_bleu(["A red circle above a blue square."], refs)["bleu_4"] == 1.0
    # all unigrams match, hypothesis of 3 words vs closest reference of 7: BP = exp(1 - 7/3)
    got = metrics.corpus_bleu(["a red circle"], refs, max_order=1)["bleu_1"]
    assert got == pytest.approx(math.exp(1 - 7 / 3))
    with pytest.raises(ValueError, match="one entry per image"):
        metrics.corpus_bleu(["a", "b"], refs)
    with pytest.raises(ValueError, match="hypotheses"):
        metrics.corpus_bleu([], [])


def test_first_step_injection_matches_vinyals_formula(rng, tmp_path):
    """Vinyals et al.: the image embedding is the input at t = -1, then only the words."""
    model = small_model("injection", "vanilla", injection="first_step")
    x = images(rng, 2)
    caption_in = rng.integers(2, 10, size=(2, 4)).astype("int32")
    logits = keras.ops.convert_to_numpy(model([x, caption_in]))

    def numpy(w):
        return keras.ops.convert_to_numpy(w).astype(np.float64)

    decoder = model.caption_decoder
    v = numpy(model.image_model(x))
    w_e, b_e = (numpy(w) for w in decoder.image_embedding.weights)
    embedding = numpy(decoder.embedding.embeddings)
    kernel, recurrent, bias = (numpy(w) for w in decoder.cell.inner.weights)
    w_hy, c = (numpy(w) for w in decoder.output_layer.weights)
    h = np.tanh((v @ w_e + b_e) @ kernel + bias)  # t = -1, from h = 0
    for t in range(4):
        h = np.tanh(embedding[caption_in[:, t]] @ kernel + h @ recurrent + bias)
        np.testing.assert_allclose(logits[:, t], h @ w_hy + c, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(
        decoding.greedy_search(model, x), decoding.beam_search(model, x, beam_width=1)[0]
    )
    model.save(tmp_path / "first.keras")
    loaded = keras.models.load_model(tmp_path / "first.keras")
    assert loaded.caption(x, beam_width=2) == model.caption(x, beam_width=2)
