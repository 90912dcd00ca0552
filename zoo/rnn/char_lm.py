"""A character-level recurrent language model with sampling (Graves 2013; Karpathy 2015).

The character vocabulary is part of the model: it is a constructor argument, so it is saved in
the `.keras` file with the weights, and a loaded model encodes, predicts and generates exactly
as the saved one. Ids follow one convention, shared with `zoo.data`'s character corpora:

    0 = padding (masked), 1 = unknown character, 2 + i = vocabulary[i].
"""

import keras
import numpy as np
from keras import ops

import layers
from zoo.registry import Paper, register_model
from zoo.rnn.classifiers import _positive_int, _rate, check_cell_type, recurrent_layer

PAD_ID = 0
UNKNOWN_ID = 1
FIRST_CHAR_ID = 2

# Printable ASCII: the vocabulary when none is given (what the default config counts).
DEFAULT_VOCABULARY = tuple(chr(c) for c in range(32, 127)) + ("\n",)

_GRAVES = Paper(
    "Graves",
    2013,
    "Generating Sequences With Recurrent Neural Networks",
    "https://arxiv.org/abs/1308.0850",
)


def _check_vocabulary(vocabulary):
    if isinstance(vocabulary, str):
        vocabulary = list(vocabulary)
    try:
        vocabulary = list(vocabulary)
    except TypeError:
        raise TypeError(
            "Argument `vocabulary` must be a list of single characters. "
            f"Received: vocabulary={vocabulary!r}"
        ) from None
    if not vocabulary:
        raise ValueError(
            "Argument `vocabulary` must hold at least one character (is the corpus empty?). "
            "Received: vocabulary=[]"
        )
    bad = [c for c in vocabulary if not isinstance(c, str) or len(c) != 1]
    if bad:
        raise ValueError(
            "Argument `vocabulary` must contain single characters only. "
            f"Received entries: {bad[:5]!r}"
        )
    if len(set(vocabulary)) != len(vocabulary):
        raise ValueError("Argument `vocabulary` must not contain duplicate characters.")
    return vocabulary


@keras.saving.register_keras_serializable(package="zoo")
class CharLanguageModel(keras.Model):
    """Character-level LSTM/GRU language model (Graves 2013).

    Embedding (id 0 masked) -> `num_layers` recurrent layers returning sequences -> Dropout
    -> Dense logits over the ids -> `layers.StableSoftmax` (float32), or logits.

    Args:
        vocabulary: The characters the model knows, in id order (id 2 + i is vocabulary[i]).
        cell: "lstm" or "gru" (also "rnn", the Elman cell, for comparisons).
        units: Hidden-state size of each recurrent layer.
        num_layers: Number of stacked recurrent layers.
        embedding_dim: Size of the character embedding.
        dropout: Dropout rate on the recurrent layers' inputs and before the output layer.
        recurrent_dropout: Dropout rate on the recurrent state.
        classifier_activation: "softmax" (probabilities, via `layers.StableSoftmax`) or None
            (logits).
        **kwargs: Base `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: Integer ids of shape (batch, time).
        training: Whether dropout is active.

    Returns (call):
        (batch, time, vocab_size) next-character probabilities (or logits).
    """

    def __init__(
        self,
        vocabulary=DEFAULT_VOCABULARY,
        cell="lstm",
        units=256,
        num_layers=2,
        embedding_dim=64,
        dropout=0.0,
        recurrent_dropout=0.0,
        classifier_activation="softmax",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary = _check_vocabulary(vocabulary)
        self.cell = check_cell_type(cell)
        _positive_int("units", units)
        _positive_int("num_layers", num_layers)
        _positive_int("embedding_dim", embedding_dim)
        _rate("dropout", dropout)
        _rate("recurrent_dropout", recurrent_dropout)
        if classifier_activation not in ("softmax", None):
            raise ValueError(
                "Argument `classifier_activation` must be 'softmax' or None (logits). "
                f"Received: classifier_activation={classifier_activation!r}"
            )
        self.units = units
        self.num_layers = num_layers
        self.embedding_dim = embedding_dim
        self.dropout_rate = dropout
        self.recurrent_dropout = recurrent_dropout
        self.classifier_activation = classifier_activation
        self._char_to_id = {c: FIRST_CHAR_ID + i for i, c in enumerate(self.vocabulary)}

        self.embedding = keras.layers.Embedding(
            self.vocab_size, embedding_dim, mask_zero=True, name="embedding"
        )
        self.recurrent_layers = [
            recurrent_layer(
                cell,
                units,
                return_sequences=True,
                return_state=True,
                dropout=dropout,
                recurrent_dropout=recurrent_dropout,
                name=f"{cell}_{i + 1}",
            )
            for i in range(num_layers)
        ]
        self.head_dropout = keras.layers.Dropout(dropout, name="head_dropout")
        self.logits_layer = keras.layers.Dense(self.vocab_size, name="logits")
        # Only a softmax head gets the layer, so `model.layers[-1]` tells what the output is.
        self.softmax = (
            layers.StableSoftmax(dtype="float32", name="predictions")
            if classifier_activation == "softmax"
            else None
        )
        self.build((None, None))

    @property
    def vocab_size(self):
        """Number of ids: the characters plus padding and unknown."""
        return len(self.vocabulary) + FIRST_CHAR_ID

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        self.embedding.build(input_shape)
        shape = (*input_shape, self.embedding_dim)
        for layer in self.recurrent_layers:
            layer.build(shape)
            shape = (*input_shape, self.units)
        self.logits_layer.build(shape)
        self.built = True

    def _check_ids(self, inputs):
        if len(inputs.shape) != 2:
            raise ValueError(
                "CharLanguageModel expects integer ids of shape (batch, time). "
                f"Received: inputs.shape={tuple(inputs.shape)}"
            )

    def _features(self, inputs, training=None, initial_states=None):
        x = self.embedding(inputs)
        states = []
        for index, layer in enumerate(self.recurrent_layers):
            initial = None if initial_states is None else initial_states[index]
            x, *state = layer(x, initial_state=initial, training=training)
            states.append(state)
        x = self.head_dropout(x, training=training)
        return self.logits_layer(x), states

    def _step(self, token_id, states):
        """One character through the cells: (logits (vocab_size,), new states)."""
        # A plain lookup: a generated character is never padding, so no mask is attached.
        x = ops.take(self.embedding.embeddings, np.array([token_id], dtype="int32"), axis=0)
        new_states = []
        for layer, state in zip(self.recurrent_layers, states):
            x, state = layer.cell(x, list(state), training=False)
            new_states.append(state if isinstance(state, (list, tuple)) else [state])
        return ops.convert_to_numpy(self.logits_layer(x)[0]), new_states

    def call(self, inputs, training=None):
        self._check_ids(inputs)
        logits, _ = self._features(inputs, training=training)
        if self.softmax is not None:
            return self.softmax(logits)
        return logits

    # ---------------------------------------------------------------- text <-> ids
    def encode(self, text):
        """Ids of a string (unknown characters map to id 1), as an int32 NumPy array."""
        if not isinstance(text, str):
            raise TypeError(f"Argument `text` must be a string. Received: text={text!r}")
        return np.array([self._char_to_id.get(c, UNKNOWN_ID) for c in text], dtype="int32")

    def decode(self, ids):
        """The string of a sequence of ids; padding is dropped, unknown ids become '?'."""
        chars = []
        for i in np.asarray(ids).reshape(-1):
            i = int(i)
            if i == PAD_ID:
                continue
            chars.append(self.vocabulary[i - FIRST_CHAR_ID] if i >= FIRST_CHAR_ID else "?")
        return "".join(chars)

    # ---------------------------------------------------------------- sampling
    def next_char_log_probs(self, logits, temperature=1.0):
        """Log-probabilities of the next character from logits, at a temperature.

        Padding and unknown ids are masked out (log-probability -inf), so they are never
        sampled. Computed with `layers.log_softmax` (stable for any temperature > 0).
        """
        logits = ops.cast(logits, "float32") / temperature
        mask = np.arange(self.vocab_size) >= FIRST_CHAR_ID
        return layers.log_softmax(logits, axis=-1, mask=mask)

    def generate(self, prompt, length=200, temperature=1.0, seed=None):
        """Continue `prompt` by `length` sampled characters.

        Sampling is in log space: temperature divides the logits, `layers.log_softmax` turns
        them into log-probabilities, and the Gumbel-max trick (argmax of log p + Gumbel noise)
        draws the character, so no probability is ever exponentiated or renormalised.
        Temperature 0 is greedy decoding (argmax of the logits).

        Args:
            prompt: Non-empty starting text (characters outside the vocabulary are "unknown").
            length: Number of characters to generate (>= 0).
            temperature: >= 0. Below 1 sharpens the distribution, above 1 flattens it.
            seed: Integer seed; the same seed gives the same text, also after save/load.

        Returns:
            The generated continuation (without the prompt).

        Raises:
            ValueError: for an empty prompt, negative length or temperature < 0.
        """
        if not isinstance(prompt, str) or not prompt:
            raise ValueError(
                f"Argument `prompt` must be a non-empty string. Received: prompt={prompt!r}"
            )
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError(
                f"Argument `length` must be an integer >= 0. Received: length={length!r}"
            )
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, (int, float))
            or not np.isfinite(temperature)
            or temperature < 0
        ):
            raise ValueError(
                "Argument `temperature` must be a finite number >= 0 (0 = greedy). "
                f"Received: temperature={temperature!r}"
            )
        rng = np.random.default_rng(seed)
        if length == 0:
            return ""
        # The prompt goes through the recurrent layers in one call; then one cell step per
        # character, carrying the states (much cheaper than re-running a layer per step).
        logits, states = self._features(self.encode(prompt)[None, :])
        last = ops.convert_to_numpy(logits[0, -1, :])
        mask = np.arange(self.vocab_size) >= FIRST_CHAR_ID
        generated = []
        while True:
            if temperature == 0:
                next_id = int(np.argmax(np.where(mask, last, -np.inf)))
            else:
                log_probs = ops.convert_to_numpy(self.next_char_log_probs(last, temperature))
                next_id = int(np.argmax(log_probs + rng.gumbel(size=log_probs.shape)))
            generated.append(next_id)
            if len(generated) == length:
                break
            last, states = self._step(next_id, states)
        return self.decode(generated)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary": list(self.vocabulary),
            "cell": self.cell,
            "units": self.units,
            "num_layers": self.num_layers,
            "embedding_dim": self.embedding_dim,
            "dropout": self.dropout_rate,
            "recurrent_dropout": self.recurrent_dropout,
            "classifier_activation": self.classifier_activation,
        }


@register_model(
    task="language-modeling",
    paper=_GRAVES,
    summary="Character-level LSTM/GRU language model; vocabulary saved with the model; "
    "`generate(prompt, length, temperature, seed)`",
    default_input_shape=(None,),
    min_input_shape=(1,),
    params=885474,
    small_config={"vocabulary": "abcdefgh", "units": 8, "num_layers": 1, "embedding_dim": 8},
    default_dataset="tiny_corpus",
)
def char_lm(
    vocabulary=DEFAULT_VOCABULARY,
    cell="lstm",
    units=256,
    num_layers=2,
    embedding_dim=64,
    dropout=0.0,
    recurrent_dropout=0.0,
    classifier_activation="softmax",
    name="char_lm",
):
    """Character-level language model (Graves 2013, "Generating Sequences With Recurrent Neural
    Networks"; the char-rnn set-up of Karpathy 2015).

    Args:
        vocabulary: Characters the model knows (a string or list of single characters), e.g.
            `load_dataset("tiny_corpus").model_kwargs["vocabulary"]`. Default: printable ASCII
            and newline.
        cell: "lstm" (Hochreiter & Schmidhuber 1997) or "gru" (Cho et al. 2014); "rnn" is
            accepted for comparisons.
        units: Hidden-state size of each recurrent layer.
        num_layers: Number of stacked recurrent layers.
        embedding_dim: Size of the character embedding.
        dropout: Dropout rate on recurrent inputs and before the output layer.
        recurrent_dropout: Dropout rate on the recurrent state.
        classifier_activation: "softmax" (probabilities) or None (logits).
        name: Model name.

    Returns:
        A `CharLanguageModel` with `encode`, `decode` and `generate`.

    Raises:
        ValueError: for an empty vocabulary, unknown cell type, non-positive sizes or rates
            outside [0, 1).

    Example:
        >>> data = zoo.data.load_dataset("tiny_corpus")
        >>> model = zoo.char_lm(**data.model_kwargs, units=128, num_layers=1)
        >>> model.generate("To be", length=50, temperature=0.8, seed=0)
    """
    return CharLanguageModel(
        vocabulary=vocabulary,
        cell=cell,
        units=units,
        num_layers=num_layers,
        embedding_dim=embedding_dim,
        dropout=dropout,
        recurrent_dropout=recurrent_dropout,
        classifier_activation=classifier_activation,
        name=name,
    )
