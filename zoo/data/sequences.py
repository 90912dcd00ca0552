"""Sequence datasets: long-dependency tasks generated from a seed, IMDB reviews, and text.

* "adding_problem" (Hochreiter & Schmidhuber 1997, in the form of Le et al. 2015 and Arjovsky
  et al. 2016): sequences of (value, marker) pairs; the target is the sum of the two marked
  values. Predicting the mean, 1, gives MSE = Var(U1 + U2) = 1/6 ~ 0.167.
* "copy_task" (the copying memory problem of Hochreiter & Schmidhuber 1997 / Arjovsky, Shah &
  Bengio 2016): remember a string of symbols over a long blank stretch and reproduce it after
  a delimiter.
* "imdb_reviews": the IMDB sentiment reviews (Maas et al. 2011) through tfds, tokenized with
  `keras.layers.TextVectorization` (id 0 = padding, 1 = out of vocabulary).
* "tiny_corpus": the character corpus shipped in `zoo/data/corpus/` (about 10 KB of William
  Shakespeare: sonnets and speeches, public domain), or any text file, for
  `zoo.char_lm`.

All loaders return unbatched `(inputs, target)` elements of fixed length, so batching is
plain `dataset.batch(n)`.
"""

import os

import numpy as np
import tensorflow as tf

from zoo.data.base import DatasetSplits, register_dataset, tfds_num_examples
from zoo.data.downloads import load_tfds

CORPUS_DIR = os.path.join(os.path.dirname(__file__), "corpus")
TINY_CORPUS_PATH = os.path.join(CORPUS_DIR, "tiny_corpus.txt")

# Character ids, shared with zoo.rnn.char_lm: 0 = padding, 1 = unknown, 2 + i = vocabulary[i].
CHAR_PAD_ID = 0
CHAR_UNKNOWN_ID = 1
CHAR_FIRST_ID = 2


def _check_positive_int(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(
            f"Argument `{name}` must be an integer >= {minimum}. Received: {name}={value!r}"
        )


# ------------------------------------------------------------------ the adding problem
def adding_problem_arrays(num_examples, sequence_length, seed=0):
    """Generate the adding problem as NumPy arrays.

    Each step is (value, marker): values are U[0, 1]; exactly two markers are 1, one in the
    first half of the sequence and one in the second half; the target is the sum of the two
    marked values.

    Args:
        num_examples: Number of sequences.
        sequence_length: T, the number of steps (>= 2).
        seed: Random seed; the same seed gives the same data.

    Returns:
        `(inputs, targets)`: float32 arrays of shapes (num_examples, T, 2) and
        (num_examples, 1).
    """
    _check_positive_int("num_examples", num_examples)
    _check_positive_int("sequence_length", sequence_length, minimum=2)
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, size=(num_examples, sequence_length))
    half = sequence_length // 2
    first = rng.integers(0, half, size=num_examples)
    second = rng.integers(half, sequence_length, size=num_examples)
    markers = np.zeros_like(values)
    rows = np.arange(num_examples)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    inputs = np.stack([values, markers], axis=-1).astype("float32")
    targets = (values[rows, first] + values[rows, second]).astype("float32")[:, None]
    return inputs, targets


@register_dataset(
    "adding_problem",
    task="sequence-regression",
    summary="Adding problem (Hochreiter & Schmidhuber 1997): sum of two marked values in a "
    "length-T sequence; trivial MSE 0.167",
    offline=True,
)
def adding_problem(sequence_length=100, num_train=10000, num_test=1000, seed=0):
    """The adding problem, generated from a seed (no download).

    Args:
        sequence_length: T, the number of steps.
        num_train: Number of training sequences.
        num_test: Number of test sequences (generated from a different seed stream).
        seed: Random seed.

    Returns:
        `DatasetSplits` with elements `(features (T, 2) float32, target (1,) float32)` and
        `model_kwargs={"input_dim": 2, "classes": None}` (a regressor).
    """
    _check_positive_int("num_test", num_test)
    train_x, train_y = adding_problem_arrays(num_train, sequence_length, seed=seed)
    test_x, test_y = adding_problem_arrays(num_test, sequence_length, seed=seed + 1_000_003)
    return DatasetSplits(
        name="adding_problem",
        train=tf.data.Dataset.from_tensor_slices((train_x, train_y)),
        test=tf.data.Dataset.from_tensor_slices((test_x, test_y)),
        task="sequence-regression",
        model_kwargs={"input_dim": 2, "classes": None},
        num_train=num_train,
        num_test=num_test,
        extras={"sequence_length": sequence_length, "baseline_mse": 1.0 / 6.0},
    )


# ------------------------------------------------------------------ the copy task
def copy_task_arrays(num_examples, delay=100, copy_length=10, num_symbols=8, seed=0):
    """Generate the copying memory problem (Arjovsky, Shah & Bengio 2016) as NumPy arrays.

    Input: `copy_length` random symbols (ids 1..num_symbols), then `delay - 1` blanks, a
    delimiter, and `copy_length` more blanks. Target: blanks everywhere, except the last
    `copy_length` steps, which must reproduce the symbols. Blank is id num_symbols + 1 and the
    delimiter num_symbols + 2; id 0 stays free for padding.

    Args:
        num_examples: Number of sequences.
        delay: Steps between the end of the symbols and the start of the recall (>= 1).
        copy_length: Number of symbols to remember.
        num_symbols: Alphabet size.
        seed: Random seed.

    Returns:
        `(inputs, targets)`: int32 arrays of shape (num_examples, copy_length * 2 + delay).
    """
    _check_positive_int("num_examples", num_examples)
    _check_positive_int("delay", delay)
    _check_positive_int("copy_length", copy_length)
    _check_positive_int("num_symbols", num_symbols)
    rng = np.random.default_rng(seed)
    blank, delimiter = num_symbols + 1, num_symbols + 2
    length = 2 * copy_length + delay
    symbols = rng.integers(1, num_symbols + 1, size=(num_examples, copy_length))
    inputs = np.full((num_examples, length), blank, dtype="int32")
    inputs[:, :copy_length] = symbols
    inputs[:, copy_length + delay - 1] = delimiter
    targets = np.full((num_examples, length), blank, dtype="int32")
    targets[:, -copy_length:] = symbols
    return inputs, targets


@register_dataset(
    "copy_task",
    task="sequence-classification",
    summary="Copying memory problem (Arjovsky et al. 2016): reproduce 10 symbols after a long "
    "delay; per-step classification",
    offline=True,
)
def copy_task(delay=100, copy_length=10, num_symbols=8, num_train=10000, num_test=1000, seed=0):
    """The copying memory problem, generated from a seed (no download).

    A model must predict at every step, so `model_kwargs` include `return_sequences=True`:
    `zoo.create_model("lstm_classifier", **splits.model_kwargs)` outputs (batch, time,
    classes). The memoryless baseline cross-entropy (blanks right, symbols guessed) is
    `copy_length * log(num_symbols) / (2 * copy_length + delay)`, in `extras`.

    Args:
        delay: Steps between the symbols and the recall.
        copy_length: Number of symbols to remember.
        num_symbols: Alphabet size.
        num_train: Number of training sequences.
        num_test: Number of test sequences.
        seed: Random seed.

    Returns:
        `DatasetSplits` with elements `(ids (time,) int32, targets (time,) int32)`.
    """
    train = copy_task_arrays(num_train, delay, copy_length, num_symbols, seed=seed)
    test = copy_task_arrays(num_test, delay, copy_length, num_symbols, seed=seed + 1_000_003)
    vocabulary_size = num_symbols + 3
    length = 2 * copy_length + delay
    return DatasetSplits(
        name="copy_task",
        train=tf.data.Dataset.from_tensor_slices(train),
        test=tf.data.Dataset.from_tensor_slices(test),
        task="sequence-classification",
        model_kwargs={
            "vocabulary_size": vocabulary_size,
            "classes": vocabulary_size,
            "return_sequences": True,
        },
        num_train=num_train,
        num_test=num_test,
        extras={
            "sequence_length": length,
            "blank_id": num_symbols + 1,
            "delimiter_id": num_symbols + 2,
            "baseline_cross_entropy": copy_length * float(np.log(num_symbols)) / length,
        },
    )


# ------------------------------------------------------------------ IMDB reviews
@register_dataset(
    "imdb_reviews",
    task="sequence-classification",
    summary="IMDB movie reviews (Maas et al. 2011) via tfds, TextVectorization ids, "
    "binary sentiment",
    offline=False,
)
def imdb_reviews(
    vocabulary_size=20000,
    sequence_length=200,
    data_dir=None,
    adapt_examples=25000,
    download=True,
):
    """IMDB sentiment reviews through `tensorflow_datasets`, tokenized to fixed-length ids.

    A `keras.layers.TextVectorization` (lower-case, punctuation stripped, at most
    `vocabulary_size` ids; 0 = padding, 1 = out of vocabulary) is adapted on the training texts;
    reviews are truncated or padded at the end to `sequence_length` ids. Padding is masked by
    the zoo's sequence models.

    Args:
        vocabulary_size: Maximum number of ids, padding and OOV included.
        sequence_length: Number of ids per review.
        data_dir: tfds data directory (default: tfds' own).
        adapt_examples: Number of training reviews the vocabulary is built from.
        download: Download the data into `data_dir` if it is not there (see
            `zoo.data.downloads`); False reads prepared data only.

    Returns:
        `DatasetSplits` with elements `(ids (sequence_length,) int32, label () int64)`,
        `model_kwargs={"vocabulary_size": <vocabulary size>, "classes": 2}` and the vocabulary
        in `extras["vocabulary"]`.
    """
    import keras

    _check_positive_int("vocabulary_size", vocabulary_size, minimum=3)
    _check_positive_int("sequence_length", sequence_length)
    _check_positive_int("adapt_examples", adapt_examples)
    (train, test), info = load_tfds(
        "imdb_reviews",
        split=["train", "test"],
        as_supervised=True,
        data_dir=data_dir,
        download=download,
    )
    vectorize = keras.layers.TextVectorization(
        max_tokens=vocabulary_size,
        output_mode="int",
        output_sequence_length=sequence_length,
    )
    vectorize.adapt(train.take(adapt_examples).map(lambda text, label: text).batch(256))
    vocabulary = vectorize.get_vocabulary()

    def encode(text, label):
        return tf.cast(vectorize(text), tf.int32), label

    def prepare(split):
        return split.batch(256).map(encode, num_parallel_calls=tf.data.AUTOTUNE).unbatch()

    return DatasetSplits(
        name="imdb_reviews",
        train=prepare(train),
        test=prepare(test),
        task="sequence-classification",
        model_kwargs={"vocabulary_size": len(vocabulary), "classes": 2},
        num_train=tfds_num_examples(info, "train", train),
        num_test=tfds_num_examples(info, "test", test),
        extras={"vocabulary": vocabulary, "sequence_length": sequence_length},
    )


# ------------------------------------------------------------------ character corpora
def read_text(path):
    """Read a UTF-8 text file for character language modelling.

    Raises:
        FileNotFoundError: if there is no such file.
        ValueError: if the file is empty (or whitespace only) or not UTF-8 text.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as error:
        raise ValueError(
            f"The corpus at {path!r} is not UTF-8 text (byte {error.object[error.start]:#04x} at "
            f"offset {error.start} cannot be decoded): a character language model reads a "
            "text file."
        ) from None
    if not text.strip():
        raise ValueError(
            f"The corpus at {path!r} is empty: a character language model needs text to learn "
            "from. Received: an empty file"
        )
    return text


def character_vocabulary(text):
    """The sorted distinct characters of `text` (id 2 + i is vocabulary[i])."""
    if not text:
        raise ValueError("Argument `text` is empty: no characters to build a vocabulary from.")
    return sorted(set(text))


def encode_characters(text, vocabulary):
    """int32 ids of `text`: 2 + index in `vocabulary`, 1 for characters not in it."""
    lookup = {c: CHAR_FIRST_ID + i for i, c in enumerate(vocabulary)}
    return np.array([lookup.get(c, CHAR_UNKNOWN_ID) for c in text], dtype="int32")


def _windows(ids, sequence_length, stride):
    starts = np.arange(0, len(ids) - sequence_length, stride)
    inputs = np.stack([ids[s : s + sequence_length] for s in starts])
    targets = np.stack([ids[s + 1 : s + sequence_length + 1] for s in starts])
    return inputs, targets


def char_corpus(path, sequence_length=100, stride=None, test_fraction=0.1, name=None):
    """Character windows of any text file, for next-character prediction.

    The text is split once: the first `1 - test_fraction` for training, the rest for testing
    (no window straddles both). Each element is `(ids[s : s+L], ids[s+1 : s+L+1])`.

    Args:
        path: A UTF-8 text file.
        sequence_length: L, characters per window.
        stride: Step between window starts (default: L, non-overlapping).
        test_fraction: Fraction of the text held out, in (0, 1).
        name: Name recorded in the result (default: the file's name).

    Returns:
        `DatasetSplits` with `model_kwargs={"vocabulary": [...]}` for `zoo.char_lm`.

    Raises:
        ValueError: for an empty corpus or one too short for a training and a test window.
    """
    _check_positive_int("sequence_length", sequence_length)
    stride = sequence_length if stride is None else stride
    _check_positive_int("stride", stride)
    if not 0 < test_fraction < 1:
        raise ValueError(
            f"Argument `test_fraction` must be in (0, 1). Received: test_fraction={test_fraction!r}"
        )
    text = read_text(path)
    vocabulary = character_vocabulary(text)
    ids = encode_characters(text, vocabulary)
    split = int(len(ids) * (1 - test_fraction))
    if split <= sequence_length or len(ids) - split <= sequence_length:
        raise ValueError(
            f"The corpus at {path!r} has {len(ids)} characters: too short for "
            f"sequence_length={sequence_length} with test_fraction={test_fraction}. Use a "
            "longer text or a shorter sequence_length."
        )
    train = _windows(ids[:split], sequence_length, stride)
    test = _windows(ids[split:], sequence_length, stride)
    return DatasetSplits(
        name=name or os.path.basename(path),
        train=tf.data.Dataset.from_tensor_slices(train),
        test=tf.data.Dataset.from_tensor_slices(test),
        task="language-modeling",
        model_kwargs={"vocabulary": vocabulary},
        num_train=len(train[0]),
        num_test=len(test[0]),
        extras={"text": text, "sequence_length": sequence_length},
    )


@register_dataset(
    "tiny_corpus",
    task="language-modeling",
    summary="Shipped public-domain English verse (Shakespeare) as character windows; or any "
    "text file via path=",
    offline=True,
)
def tiny_corpus(path=None, sequence_length=100, stride=None, test_fraction=0.1):
    """The small corpus shipped with the package (or `path`), for `zoo.char_lm`.

    Args:
        path: Any UTF-8 text file; default: `zoo/data/corpus/tiny_corpus.txt`.
        sequence_length: Characters per window.
        stride: Step between window starts (default: sequence_length).
        test_fraction: Fraction of the text held out.

    Returns:
        `DatasetSplits` (see `char_corpus`).
    """
    return char_corpus(
        path or TINY_CORPUS_PATH,
        sequence_length=sequence_length,
        stride=stride,
        test_fraction=test_fraction,
        name="tiny_corpus",
    )
