"""Caption text shared by data and models: standardisation, vocabulary, and a word tokenizer.

`zoo.data` (the caption loaders) and `zoo.captioning` (the models) both import this module, so
neither imports the other. The tokenizer is built on `keras.layers.TextVectorization` with
pad, start and end tokens.

Token ids are fixed by construction:

    0 ""         padding (TextVectorization's mask token)
    1 "[UNK]"    out-of-vocabulary words
    2 "<start>"  first input token of every caption
    3 "<end>"    last target token of every caption
    4...         the words, in the order given

The start and end tokens contain "<" and ">", which the standardisation (lower case, strip
punctuation) removes from any text, so no caption can ever produce them by accident.

`TextVectorization` runs on TensorFlow whatever the Keras backend is, so encoding uses
TensorFlow ops (ragged tensors) and needs the TensorFlow backend; the vectorizer is made on the
first `encode`, so the tokenizer (and a captioner holding it) builds on any backend. Decoding ids
back to words is plain Python over the vocabulary list.
"""

import collections
import re

import keras

from zoo.validation import check_int

PAD_TOKEN = ""
UNKNOWN_TOKEN = "[UNK]"
START_TOKEN = "<start>"
END_TOKEN = "<end>"
PAD_ID, UNKNOWN_ID, START_ID, END_ID = 0, 1, 2, 3
SPECIAL_TOKENS = (PAD_TOKEN, UNKNOWN_TOKEN, START_TOKEN, END_TOKEN)

# The words of the synthetic coloured-shapes captions (dataset "shapes_captions" in zoo.data):
# the default vocabulary of the captioning models, so that a model built with defaults fits the
# default dataset.
SHAPES_COLOURS = ("red", "green", "blue", "yellow")
SHAPES_KINDS = ("circle", "square", "triangle")
SHAPES_VOCABULARY = (
    "a",
    *SHAPES_COLOURS,
    *SHAPES_KINDS,
    "above",
    "below",
    "left",
    "right",
    "of",
    "to",
    "the",
)

_PUNCTUATION = re.compile(r"[!\"#$%&()*+,\-./:;<=>?@\[\\\]^_`{|}~']")


def standardize(text):
    """Lower case, punctuation removed, whitespace collapsed (the tokenizer's standardisation).

    Matches `TextVectorization(standardize="lower_and_strip_punctuation")`.
    """
    return " ".join(_PUNCTUATION.sub("", str(text).lower()).split())


def build_vocabulary(captions, max_words=None, min_count=1):
    """Words of `captions`, most frequent first (ties alphabetical), without special tokens.

    Args:
        captions: Iterable of caption strings.
        max_words: Keep at most this many words (the rest become "[UNK]"). None keeps all.
        min_count: Drop words seen fewer times.

    Returns:
        A list of words, ready for `CaptionTokenizer(vocabulary=...)`.

    Raises:
        ValueError: if `captions` is empty or holds no word.
    """
    counts = collections.Counter()
    n = 0
    for caption in captions:
        n += 1
        counts.update(standardize(caption).split())
    if n == 0 or not counts:
        raise ValueError(
            "Argument `captions` must hold at least one caption with at least one word. "
            f"Received: {n} caption(s) and no words."
        )
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return words[:max_words] if max_words is not None else words


def _check_vocabulary(vocabulary):
    if isinstance(vocabulary, str) or not hasattr(vocabulary, "__iter__"):
        raise TypeError(
            "Argument `vocabulary` must be a list of words. "
            f"Received: vocabulary={vocabulary!r} of type {type(vocabulary).__name__}"
        )
    words = [str(w) for w in vocabulary]
    if not words:
        raise ValueError("Argument `vocabulary` must hold at least one word. Received: []")
    bad = [w for w in words if w in SPECIAL_TOKENS or standardize(w) != w or " " in w]
    if bad:
        raise ValueError(
            "Argument `vocabulary` must hold standardised single words (lower case, no "
            f"punctuation) and no special tokens {SPECIAL_TOKENS}. Received: {bad[:5]}"
        )
    if len(set(words)) != len(words):
        duplicates = sorted(w for w, c in collections.Counter(words).items() if c > 1)
        raise ValueError(f"Argument `vocabulary` holds duplicate words: {duplicates[:5]}")
    return words


@keras.saving.register_keras_serializable(package="zoo")
class CaptionTokenizer(keras.layers.Layer):
    """Captions <-> token ids, with `<start>`, `<end>` and padding.

    Built on `keras.layers.TextVectorization`, so it is saved inside a `.keras` file with the
    model that holds it.

    Args:
        vocabulary: The words (no special tokens); see `build_vocabulary`.
        max_length: Most words kept per caption; encoded captions have `max_length + 2`
            tokens (start and end included).
        **kwargs: Passed to `keras.layers.Layer`.

    Example:
        >>> tokenizer = CaptionTokenizer(["a", "red", "circle"], max_length=5)
        >>> caption_in, caption_out, mask = tokenizer.teacher_forcing(["A red circle."])
        >>> tokenizer.decode([[4, 5, 6, 3, 0]])
        ['a red circle']
    """

    def __init__(self, vocabulary, max_length=16, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.words = _check_vocabulary(vocabulary)
        self.max_length = check_int("max_length", max_length)
        self.tokens = list(SPECIAL_TOKENS) + self.words
        self._vectorizer = None
        if keras.backend.backend() == "tensorflow":
            # Made now, eagerly: encode also runs inside tf.data's graphs, which cannot make it.
            self._vectorizer = self.vectorizer

    @property
    def vectorizer(self):
        """The `TextVectorization` that encodes, made on first use: it needs TensorFlow (ragged
        tensors), so a model holding this tokenizer builds, runs and decodes on any backend."""
        if self._vectorizer is None:
            if keras.backend.backend() != "tensorflow":
                raise RuntimeError(
                    "CaptionTokenizer.encode needs the TensorFlow backend (it feeds zoo.data's "
                    f"tf.data pipelines); KERAS_BACKEND is {keras.backend.backend()!r}. "
                    "Decoding ids (`decode`) and the captioners' generation work on any backend."
                )
            self._vectorizer = keras.layers.TextVectorization(
                standardize="lower_and_strip_punctuation",
                split="whitespace",
                output_mode="int",
                ragged=True,
                vocabulary=[START_TOKEN, END_TOKEN, *self.words],
                name="vectorizer",
            )
        return self._vectorizer

    @property
    def vocabulary_size(self):
        """Number of token ids, special tokens included."""
        return len(self.tokens)

    def encode(self, texts):
        """Token ids `[B, max_length + 2]`: start, words, end, then padding (int32).

        Captions longer than `max_length` words are cut to `max_length` words before the end
        token is added, so every encoded caption ends with `<end>`.
        """
        import tensorflow as tf

        texts = tf.convert_to_tensor(texts, dtype=tf.string)
        if texts.shape.rank == 0:
            texts = texts[None]
        words = tf.cast(self.vectorizer(texts), tf.int32)[:, : self.max_length]
        batch = words.nrows()
        start = tf.fill([batch, 1], START_ID)
        end = tf.fill([batch, 1], END_ID)
        ids = tf.concat([start, words, end], axis=1)
        return ids.to_tensor(default_value=PAD_ID, shape=[None, self.max_length + 2])

    def teacher_forcing(self, texts):
        """`(caption_in, caption_out, mask)` for training with teacher forcing.

        `caption_in` is the encoded caption without its last token, `caption_out` the same
        shifted left by one (the next token to predict), `mask` is 1.0 where `caption_out` is
        a real token (words and `<end>`) and 0.0 on padding. Each has `max_length + 1` steps.
        """
        import tensorflow as tf

        ids = self.encode(texts)
        caption_in, caption_out = ids[:, :-1], ids[:, 1:]
        mask = tf.cast(tf.not_equal(caption_out, PAD_ID), tf.float32)
        return caption_in, caption_out, mask

    def decode(self, ids):
        """Strings from token ids: stop at `<end>`, drop padding and `<start>`.

        Args:
            ids: Integer array-like `[B, T]` (a NumPy array or tensor).

        Returns:
            A list of `B` strings.
        """
        import numpy as np

        if not isinstance(ids, (list, tuple)):
            ids = np.asarray(keras.ops.convert_to_numpy(ids))
            ids = (ids[None] if ids.ndim == 1 else ids).tolist()
        elif ids and not isinstance(ids[0], (list, tuple, np.ndarray)):
            ids = [ids]
        texts = []
        for row in ids:
            words = []
            for token in (int(t) for t in row):
                if token == END_ID:
                    break
                if token in (PAD_ID, START_ID) or not 0 <= token < len(self.tokens):
                    continue
                words.append(self.tokens[token])
            texts.append(" ".join(words))
        return texts

    def call(self, texts):
        return self.encode(texts)

    def get_config(self):
        config = super().get_config()
        config.update({"vocabulary": list(self.words), "max_length": self.max_length})
        config.pop("trainable", None)
        return config
