"""A character-level recurrent language model with sampling (Graves 2013; Karpathy 2015).

The character vocabulary is part of the model: it is a constructor argument, so it is saved in
the `.keras` file with the weights, and a loaded model encodes, predicts and generates exactly
as the saved one. Ids follow one convention, shared with `zoo.data`'s character corpora:

    0 = padding (masked), 1 = unknown character, 2 + i = vocabulary[i].

Generation goes through the shared samplers (`zoo.samplers`): the prompt runs through the
recurrent layers in one call, then `next_token_logits(tokens, states)` steps the cells one
character at a time inside the sampler's in-graph loop.
"""

import keras
import numpy as np
from keras import ops

import zoo.layers as layers
from zoo import samplers
from zoo.registry import Paper, Recipe, register_model
from zoo.rnn.classifiers import check_cell_type, recurrent_layer
from zoo.validation import check_choice, check_int, check_number, check_rate

PAD_ID = 0
UNKNOWN_ID = 1
FIRST_CHAR_ID = 2
# Never generated: padding and the unknown character.
MASKED_IDS = (PAD_ID, UNKNOWN_ID)

# Printable ASCII: the vocabulary when none is given (what the default config counts).
DEFAULT_VOCABULARY = tuple(chr(c) for c in range(32, 127)) + ("\n",)

_GRAVES = Paper(
    "Graves",
    2013,
    "Generating Sequences With Recurrent Neural Networks",
    "https://arxiv.org/abs/1308.0850",
)

RECIPE = Recipe(
    optimizer="rmsprop",
    lr=1e-2,
    reference_batch=50,
    batch_size=50,
    schedule="constant",
    augment=False,
    epochs=50,
    clip_norm=5.0,
    paper_setting="Graves 2013: SGD with momentum 0.9, lr 1e-4, weight noise, derivatives "
    "clipped; char-rnn (Karpathy 2015): RMSProp 2e-3 decayed by 0.97 per epoch after 10, "
    "batch 50, sequences of 50, gradient norm clipped at 5, 50 epochs",
    adaptation="char-rnn's RMSProp and 50 epochs at a constant 1e-2: the shipped 10 KB corpus "
    "gives 2 steps per epoch, and at 2e-3 the model is still at the unigram perplexity after "
    "50 epochs (test 24.9 against 22.9; 1e-2: 16.1 small, 19.8 full)",
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
    -> Dense logits over the ids -> `zoo.layers.StableSoftmax` (float32), or logits.

    Args:
        vocabulary: The characters the model knows, in id order (id 2 + i is vocabulary[i]).
        cell: "lstm" (Hochreiter & Schmidhuber 1997) or "gru" (Cho et al. 2014); "rnn" (the
            Elman cell) for comparisons.
        units: Hidden-state size of each recurrent layer.
        num_layers: Number of stacked recurrent layers.
        embedding_dim: Size of the character embedding.
        dropout: Dropout rate on the recurrent layers' inputs and before the output layer.
        recurrent_dropout: Dropout rate on the recurrent state.
        classifier_activation: "softmax" (probabilities, via `zoo.layers.StableSoftmax`) or None
            (logits).
        **kwargs: Base `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: Integer ids of shape (batch, time).
        training: Whether dropout is active.

    Returns (call):
        (batch, time, vocabulary_size) next-character probabilities (or logits).

    Raises:
        ValueError: for an empty vocabulary, unknown cell type, non-positive sizes or rates
            outside [0, 1).

    Example:
        >>> data = zoo.data.load_dataset("tiny_corpus")
        >>> model = zoo.char_lm(**data.model_kwargs, units=128, num_layers=1)
        >>> model.generate("To be", length=50, temperature=0.8, seed=0)
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
        check_int("units", units)
        check_int("num_layers", num_layers)
        check_int("embedding_dim", embedding_dim)
        check_rate("dropout", dropout)
        check_rate("recurrent_dropout", recurrent_dropout)
        check_choice("classifier_activation", classifier_activation, ("softmax", None))
        self.units = units
        self.num_layers = num_layers
        self.embedding_dim = embedding_dim
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.classifier_activation = classifier_activation
        self._char_to_id = {c: FIRST_CHAR_ID + i for i, c in enumerate(self.vocabulary)}

        self.embedding = keras.layers.Embedding(
            self.vocabulary_size, embedding_dim, mask_zero=True, name="embedding"
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
        self.logits_layer = keras.layers.Dense(self.vocabulary_size, name="logits")
        # Only a softmax head gets the layer, so `model.layers[-1]` tells what the output is.
        self.softmax = (
            layers.StableSoftmax(dtype="float32", name="predictions")
            if classifier_activation == "softmax"
            else None
        )
        self.build((None, None))

    @property
    def vocabulary_size(self):
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

    def initial_states(self, batch_size=1):
        """Zero states of every recurrent layer: a list (one entry per layer) of lists."""
        return [list(layer.cell.get_initial_state(batch_size)) for layer in self.recurrent_layers]

    def next_token_logits(self, tokens, states):
        """One character per sequence through the cells: `next(tokens, state)` of the samplers.

        Args:
            tokens: int32 ids `[B]`.
            states: Per layer, the list of its states (`initial_states` or a prompt's).

        Returns:
            `(logits [B, vocabulary_size], new states)`.
        """
        # A plain lookup: a generated character is never padding, so no mask is attached.
        x = ops.take(self.embedding.embeddings, ops.cast(tokens, "int32"), axis=0)
        new_states = []
        for layer, state in zip(self.recurrent_layers, states):
            dtypes = [s.dtype for s in state]
            x, state = layer.cell(x, list(state), training=False)
            state = list(state) if isinstance(state, (list, tuple)) else [state]
            # Under mixed precision the cell computes in float16/bfloat16; the sampler's loop
            # carries the states in the dtype they came in (float32), as Keras' RNN does.
            new_states.append([ops.cast(s, d) for s, d in zip(state, dtypes)])
        return self.logits_layer(x), new_states

    def export_input_signature(self):
        """What `zoo export` serves: int32 ids `(batch, time)` of any length (the model's
        output: the next character's distribution at every step)."""
        return [keras.InputSpec(shape=(None, None), dtype="int32")]

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
        sampled; the same function the samplers use (`zoo.samplers.log_probabilities`).
        """
        logits = ops.convert_to_tensor(logits)
        rows = logits if len(logits.shape) == 2 else logits[None]
        log_probs = samplers.log_probabilities(rows, MASKED_IDS, temperature)
        return log_probs if len(logits.shape) == 2 else log_probs[0]

    def sampler_for(self, temperature=1.0, seed=None):
        """The sampler `generate` uses: greedy at temperature 0, else a seeded `RandomSampler`.

        Random samplers are kept per temperature (and reseeded), so that repeated calls reuse
        one compiled generation function.
        """
        temperature = check_number("temperature", temperature, low=0)
        if temperature == 0:
            return samplers.GreedySampler()
        cache = self.__dict__.setdefault("_zoo_samplers", {})
        if temperature not in cache:
            cache[temperature] = samplers.RandomSampler(temperature=temperature)
        sampler = cache[temperature]
        sampler.reseed(seed)
        return sampler

    def generate(self, prompt, length=200, temperature=1.0, seed=None, sampler=None):
        """Continue `prompt` by `length` sampled characters.

        The prompt goes through the recurrent layers in one call; then a sampler from
        `zoo.samplers` steps the cells one character at a time in-graph. By default
        (`sampler=None`) that is a `RandomSampler`: temperature divides the logits,
        `zoo.layers.log_softmax` turns them into log-probabilities, and the Gumbel-max trick
        draws the character; temperature 0 is greedy decoding.

        Args:
            prompt: Non-empty starting text (characters outside the vocabulary are "unknown").
            length: Number of characters to generate (>= 0).
            temperature: >= 0. Below 1 sharpens the distribution, above 1 flattens it.
            seed: Integer seed; the same seed gives the same text, also after save/load.
            sampler: A `zoo.samplers.Sampler` (or name) to use instead (then `temperature`
                and `seed` are its business).

        Returns:
            The generated continuation (without the prompt).

        Raises:
            ValueError: for an empty prompt, negative length or temperature < 0.
        """
        if not isinstance(prompt, str) or not prompt:
            raise ValueError(
                f"Argument `prompt` must be a non-empty string. Received: prompt={prompt!r}"
            )
        length = check_int("length", length, minimum=0)
        if sampler is None:
            sampler = self.sampler_for(temperature, seed)
        else:
            sampler = samplers.get(sampler)
        if length == 0:
            return ""
        ids = self.encode(prompt)
        # States after all but the last prompt character; the sampler reads the last one.
        if len(ids) > 1:
            _, states = self._features(ids[None, :-1])
            states = [list(s) for s in states]
        else:
            states = self.initial_states(1)

        def generate(start_tokens, states):
            return sampler(self.next_token_logits, start_tokens, states, length,
                           masked_ids=MASKED_IDS)

        def signature():
            import tensorflow as tf

            return [
                tf.TensorSpec((None,), tf.int32),
                [[tf.TensorSpec((None, self.units), tf.float32) for _ in s] for s in states],
            ]

        key = (sampler.cache_key(), length)
        fn = samplers.sampler.compiled(self, key, generate, signature, sampler.variables)
        start = ops.convert_to_tensor(ids[-1:], "int32")
        states = [[ops.cast(x, "float32") for x in s] for s in states]
        generated, _ = fn(start, states)
        return self.decode(ops.convert_to_numpy(generated)[0])

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary": list(self.vocabulary),
            "cell": self.cell,
            "units": self.units,
            "num_layers": self.num_layers,
            "embedding_dim": self.embedding_dim,
            "dropout": self.dropout,
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
    small_config={"units": 64, "num_layers": 1, "embedding_dim": 16},
    default_dataset="tiny_corpus",
    recipe=RECIPE,
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
    """Character-level language model of Graves 2013; arguments: see `CharLanguageModel`."""
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
