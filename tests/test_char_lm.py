"""The character language model: ids, sampling in log space, saving, learning."""

import keras
import numpy as np
import pytest

import zoo
from zoo import samplers
from zoo.data import load_dataset
from zoo.data.sequences import TINY_CORPUS_PATH, encode_characters
from zoo.validation import RENAMED_ARGUMENTS

SMALL = {"vocabulary": "abcdefgh", "units": 8, "num_layers": 2, "embedding_dim": 6}


def _numpy(x):
    return keras.ops.convert_to_numpy(x).astype("float64")


def test_output_shape_probabilities_and_parameter_count(rng):
    model = zoo.char_lm(**SMALL)
    ids = rng.integers(2, model.vocabulary_size, size=(3, 5)).astype("int32")
    probs = _numpy(model(ids))
    assert probs.shape == (3, 5, 10)  # 8 characters + padding + unknown
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-6)


def lstm_params(n_in, units):
    return 4 * (n_in * units + units * units + units)


def gru_params(n_in, units):  # Keras' GRU layer as recurrent_layer builds it (reset_after=False)
    return 3 * (n_in * units + units * units + units)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_parameter_count_closed_form(cell):
    # printable ASCII, newline, pad, unknown
    vocabulary_size, embedding, units = 95 + 1 + 2, 64, 256
    layer = lstm_params if cell == "lstm" else gru_params
    expected = (vocabulary_size * embedding + layer(embedding, units) + layer(units, units)
                + units * vocabulary_size + vocabulary_size)
    model = zoo.char_lm(cell=cell)
    if cell == "gru" and model.recurrent_layers[0].cell.reset_after:
        expected += 2 * 3 * units  # the cuDNN variant keeps a second bias row
    assert model.count_params() == expected
    if cell == "lstm":
        assert zoo.model_info("char_lm").params == expected


def test_ids_follow_the_data_module_convention():
    data = load_dataset("tiny_corpus", sequence_length=40)
    model = zoo.char_lm(**data.model_kwargs, units=4, num_layers=1, embedding_dim=4)
    text = data.extras["text"][:300]
    np.testing.assert_array_equal(model.encode(text), encode_characters(text, model.vocabulary))
    assert model.decode(model.encode(text)) == text
    assert model.encode("a\u2603")[1] == 1  # unknown character
    first_input, first_target = next(iter(data.train))
    assert model.decode(first_input.numpy()) == text[:40]
    assert model.decode(first_target.numpy()) == text[1:41]


def test_padding_is_masked(rng):
    model = zoo.char_lm(**SMALL)
    ids = rng.integers(2, model.vocabulary_size, size=(2, 6)).astype("int32")
    padded = np.concatenate([ids, np.zeros((2, 3), "int32")], axis=1)
    np.testing.assert_allclose(_numpy(model(padded))[:, :6], _numpy(model(ids)), atol=1e-6)


def test_log_probabilities_match_a_float64_reference(rng):
    model = zoo.char_lm(**SMALL)
    logits = rng.normal(scale=30.0, size=model.vocabulary_size)
    for temperature in (0.3, 1.0, 2.5):
        got = _numpy(model.next_char_log_probs(logits.astype("float32"), temperature))
        scaled = logits[2:] / temperature
        expected = scaled - (scaled.max() + np.log(np.exp(scaled - scaled.max()).sum()))
        np.testing.assert_allclose(got[2:], expected, atol=1e-4)
        assert np.all(np.isneginf(got[:2]))  # padding and unknown are never sampled


def test_greedy_generation_is_the_argmax_of_the_logits(rng):
    model = zoo.char_lm(**SMALL, classifier_activation=None)
    assert isinstance(model.layers[-1], keras.layers.Dense)  # logits: no softmax layer
    for weight in model.weights:
        weight.assign(rng.normal(scale=0.8, size=weight.shape).astype("float32"))
    prompt, text = "abc", ""
    for _ in range(4):  # independent reference: rerun the whole sequence each step
        logits = _numpy(model(model.encode(prompt + text)[None]))[0, -1]
        text += model.decode([int(np.argmax(logits[2:])) + 2])
    assert model.generate(prompt, length=4, temperature=0) == text


def test_sampling_follows_the_temperature():
    model = zoo.char_lm(**SMALL)
    logits = np.linspace(-2.0, 2.0, model.vocabulary_size)
    rng = np.random.default_rng(0)
    # Gumbel-max on log-probabilities: empirical frequencies match softmax(logits / T).
    for temperature in (0.5, 2.0):
        log_probs = _numpy(model.next_char_log_probs(logits.astype("float32"), temperature))
        draws = np.argmax(log_probs + rng.gumbel(size=(20000, model.vocabulary_size)), axis=-1)
        freq = np.bincount(draws, minlength=model.vocabulary_size) / len(draws)
        expected = np.exp(logits[2:] / temperature)
        expected /= expected.sum()
        np.testing.assert_allclose(freq[2:], expected, atol=0.015)


def test_generated_characters_follow_the_model_distribution():
    """`generate` draws through the random sampler: over many seeds, the first generated
    character follows softmax(logits / T) of the prompt's next-character logits."""
    model = zoo.char_lm(vocabulary="abcd", units=6, num_layers=1, embedding_dim=4,
                        classifier_activation=None)
    logits = _numpy(model(model.encode("b")[None]))[0, -1, 2:]
    temperature = 0.7
    expected = np.exp(logits / temperature - (logits / temperature).max())
    expected /= expected.sum()
    draws = 600
    first = [model.generate("b", length=1, temperature=temperature, seed=s) for s in range(draws)]
    frequencies = np.array([first.count(c) for c in "abcd"]) / draws
    np.testing.assert_allclose(frequencies, expected, atol=4.5 * np.sqrt(0.25 / draws))


def test_any_sampler_can_generate(rng):
    model = zoo.char_lm(**SMALL)
    greedy = model.generate("abc", length=6, temperature=0)
    assert model.generate("abc", length=6, sampler="greedy") == greedy
    assert model.generate("abc", length=6, sampler=samplers.RandomSampler(top_k=1)) == greedy
    beam = model.generate("abc", length=6, sampler=samplers.BeamSampler(3))
    assert len(beam) == 6 and set(beam) <= set("abcdefgh")
    assert model.generate("a", length=3, temperature=0) == model.generate("a", 3, 0)


def test_generation_with_seed_is_identical_after_keras_round_trip(tmp_path):
    model = zoo.char_lm(**SMALL, dropout=0.1, cell="gru")
    first = model.generate("abba", length=15, temperature=1.0, seed=7)
    assert len(first) == 15 and set(first) <= set("abcdefgh")
    assert model.generate("abba", length=15, temperature=1.0, seed=7) == first
    path = tmp_path / "char_lm.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, zoo.CharLanguageModel)
    assert loaded.vocabulary == list("abcdefgh") and loaded.cell == "gru"
    assert loaded.generate("abba", length=15, temperature=1.0, seed=7) == first
    assert loaded.generate("abba", length=8, temperature=0) == model.generate("abba", 8, 0)
    assert loaded.dropout == 0.1 and loaded.vocabulary_size == 10


def test_saved_config_uses_the_current_argument_names():
    """The config names its settings as the constructor does (`dropout`, never `dropout_rate`;
    the id count `vocabulary_size` is derived from `vocabulary`, not saved), so files saved by
    earlier versions, whose configs had the same keys, load unchanged."""
    model = zoo.char_lm(**SMALL, dropout=0.2)
    config = model.get_config()
    assert config["dropout"] == 0.2
    assert not set(config) & set(RENAMED_ARGUMENTS) and "vocabulary_size" not in config
    rebuilt = zoo.CharLanguageModel.from_config(config)
    assert rebuilt.dropout == 0.2 and rebuilt.vocabulary_size == model.vocabulary_size


def test_loss_falls_on_the_shipped_corpus():
    keras.utils.set_random_seed(0)
    data = load_dataset("tiny_corpus", sequence_length=32, stride=16)
    model = zoo.char_lm(**data.model_kwargs, units=48, num_layers=1, embedding_dim=16)
    model.compile(
        optimizer=zoo.default_optimizer(learning_rate=1e-2), loss="sparse_categorical_crossentropy"
    )
    batches = data.train.batch(32)
    before = float(model.evaluate(data.test.batch(64), verbose=0))
    model.fit(batches, epochs=2, verbose=0)
    after = float(model.evaluate(data.test.batch(64), verbose=0))
    # Uniform guessing costs log(vocabulary_size); unigram statistics alone go well below it.
    assert before > 0.9 * np.log(model.vocabulary_size)
    assert after < before - 1.0, (before, after)


def test_any_text_file_and_an_empty_corpus(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("the cat sat on the mat. " * 20, encoding="utf-8")
    data = load_dataset("tiny_corpus", path=str(path), sequence_length=10)
    assert data.model_kwargs["vocabulary"] == sorted(set("the cat sat on the mat. "))
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty"):
        load_dataset("tiny_corpus", path=str(empty))
    with pytest.raises(ValueError, match="vocabulary"):
        zoo.char_lm(vocabulary=[])
    with pytest.raises(ValueError, match="too short"):
        load_dataset("tiny_corpus", path=str(path), sequence_length=400)


def test_training_under_two_replica_mirrored_strategy(two_replica_strategy):
    data = load_dataset("tiny_corpus", sequence_length=16)
    with two_replica_strategy.scope():
        model = zoo.char_lm(**data.model_kwargs, units=8, num_layers=1, embedding_dim=4)
        model.compile(optimizer=zoo.default_optimizer(), loss="sparse_categorical_crossentropy")
    history = model.fit(data.train.take(32).batch(16), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    assert len(model.generate("To be", length=5, seed=0)) == 5


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"temperature": -0.5}, "temperature=-0.5"),
        ({"temperature": float("nan")}, "temperature"),
        ({"length": -1}, "length=-1"),
        ({"prompt": ""}, "prompt"),
    ],
)
def test_bad_generation_arguments(kwargs, match):
    model = zoo.char_lm(**SMALL)
    arguments = {"prompt": "ab", "length": 3, "temperature": 1.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        model.generate(**arguments)


def test_bad_model_arguments_and_wrong_rank():
    with pytest.raises(ValueError, match="units=0"):
        zoo.char_lm(units=0)
    with pytest.raises(ValueError, match="Did you mean 'gru'"):
        zoo.char_lm(cell="gur")
    with pytest.raises(ValueError, match="single characters"):
        zoo.char_lm(vocabulary=["ab", "c"])
    with pytest.raises(ValueError, match="duplicate"):
        zoo.char_lm(vocabulary="aab")
    with pytest.raises(ValueError, match=r"\(batch, time\)"):
        zoo.char_lm(**SMALL)(np.ones((2, 3, 1), "int32"))


def test_default_corpus_is_shipped():
    with open(TINY_CORPUS_PATH, encoding="utf-8") as f:
        assert len(f.read()) > 5000
