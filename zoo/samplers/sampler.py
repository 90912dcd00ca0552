"""The base of every sampler: one in-graph loop over a model's `next(tokens, state)` function.

A model exposes generation as a function

    next(tokens [B] int32, state) -> (logits [B, V], new state)

that reads the last token of each sequence and its recurrent state (any nest of tensors whose
leading dimension is the batch) and returns the next token's logits. A sampler turns it into
sequences: `sampler(next, start_tokens, state, max_length, end_id=...)`. The loop is one
`keras.ops.while_loop` (a graph loop under `tf.function`), batched over sequences, and stops
when every sequence has emitted `end_id` or after `max_length` tokens. Token ids listed in
`masked_ids` (padding, `<start>`, ...) get probability zero, so they are never generated.

The design follows keras-hub's `samplers/` (a small class per search strategy, one loop each,
shared by every generative model); the `next` contract is ours: recurrent models carry a state,
not a key/value cache.
"""

import keras
from keras import ops

import zoo.layers as layers
from zoo.validation import check_int


def log_probabilities(logits, masked_ids=(), temperature=1.0):
    """float32 log-probabilities of `logits / temperature` over the ids not in `masked_ids`.

    Masked ids get -inf; the rest are renormalised among themselves (`zoo.layers.log_softmax`, so
    logits of any magnitude are safe).
    """
    logits = ops.cast(logits, "float32")
    if temperature != 1.0:
        logits = logits / temperature
    if not masked_ids:
        return layers.log_softmax(logits, axis=-1)
    vocabulary_size = logits.shape[-1]
    allowed = [i not in set(masked_ids) for i in range(vocabulary_size)]
    return layers.log_softmax(logits, axis=-1, mask=ops.convert_to_tensor(allowed)[None])


def at_step(step, max_length):
    """Boolean `[max_length]`, True at position `step` (for writing one column in the loop)."""
    return ops.equal(ops.arange(max_length), step)


class Sampler:
    """Generates sequences from `next(tokens, state) -> (logits, state)`; see the module doc.

    Subclasses choose the next token (`choose`); `BeamSampler` replaces the whole loop.
    """

    def __call__(
        self, next, start_tokens, state, max_length, end_id=None, pad_id=0, masked_ids=()
    ):
        """Generate up to `max_length` tokens after `start_tokens`.

        Args:
            next: `next(tokens [B], state) -> (logits [B, V], state)`.
            start_tokens: int32 `[B]`: the token each sequence continues from (e.g. `<start>`,
                or the last character of a prompt).
            state: The state before `start_tokens` (a nest of tensors with leading dim B).
            max_length: Most tokens generated, `end_id` included (a Python int >= 1).
            end_id: The token that finishes a sequence, or None (always `max_length` tokens).
            pad_id: Written after a sequence's `end_id`.
            masked_ids: Ids never generated (padding, `<start>`, unknown characters...).

        Returns:
            `(ids [B, max_length] int32, scores [B] float32)`: the tokens (up to and including
            `end_id`, then `pad_id`) and each sequence's log-probability under the model
            (masked ids removed, temperature 1), summed up to and including `end_id`.
        """
        max_length = check_int("max_length", max_length)
        masked_ids = tuple(int(i) for i in masked_ids)
        start_tokens = ops.cast(start_tokens, "int32")
        batch = ops.shape(start_tokens)[0]
        output = ops.full((batch, max_length), pad_id, dtype="int32")
        scores = ops.zeros((batch,), dtype="float32")
        finished = ops.zeros((batch,), dtype="bool")

        def cond(step, tokens, state, output, scores, finished):
            return ops.logical_and(step < max_length, ops.logical_not(ops.all(finished)))

        def body(step, tokens, state, output, scores, finished):
            logits, state = next(tokens, state)
            log_probs = log_probabilities(logits, masked_ids)
            chosen = ops.cast(self.choose(log_probs, step), "int32")
            chosen = ops.where(finished, pad_id, chosen)
            picked = ops.take_along_axis(log_probs, chosen[:, None], axis=-1)[:, 0]
            scores = scores + ops.where(finished, 0.0, picked)
            output = ops.where(at_step(step, max_length)[None], chosen[:, None], output)
            if end_id is not None:
                finished = ops.logical_or(finished, ops.equal(chosen, end_id))
            return step + 1, chosen, state, output, scores, finished

        loop = (ops.convert_to_tensor(0, "int32"), start_tokens, state, output, scores, finished)
        _, _, _, output, scores, _ = ops.while_loop(cond, body, loop)
        return output, scores

    def choose(self, log_probs, step):
        """The next token `[B]` from the model's log-probabilities `[B, V]` (masked ids are
        -inf); subclasses implement it."""
        raise NotImplementedError

    @property
    def variables(self):
        """Keras variables the sampler reads or advances in the loop (none here; a seed)."""
        return []

    def cache_key(self):
        """What a compiled generation function depends on (its cache key)."""
        return (type(self).__name__, tuple(sorted(self.get_config().items())))

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


def compiled(owner, key, fn, input_signature, variables=()):
    """`fn` compiled for the backend, cached on `owner`.

    TensorFlow: a `tf.function` with `input_signature`. JAX: `jax.jit` with the model's weights
    (and `variables`, e.g. a sampler's seed) passed in as arguments, not baked in as constants,
    so the cached function follows weights changed after it was traced (`_jax_jit`). PyTorch:
    `fn` itself (the loop runs eagerly). The cache lives in `owner.__dict__`, past Keras'
    attribute tracking: it is neither state nor saved.

    Args:
        owner: The model the function belongs to.
        key: Hashable: what the traced function depends on (sampler, length...).
        fn: The generation function.
        input_signature: A callable returning the `tf.TensorSpec`s (called only for
            TensorFlow, so that no other module needs TensorFlow).
        variables: Keras variables outside `owner` that `fn` reads or updates (a sampler's
            `variables`).
    """
    cache = owner.__dict__.get("_zoo_generation_functions")
    if cache is None:
        cache = {}
        object.__setattr__(owner, "_zoo_generation_functions", cache)
    if key not in cache:
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            cache[key] = tf.function(fn, input_signature=input_signature(), autograph=False)
        elif backend == "jax":
            cache[key] = _jax_jit(fn, list(owner.variables), list(variables))
        else:
            cache[key] = fn
    return cache[key]


def _jax_jit(fn, model_variables, extra_variables):
    """`fn` under `jax.jit`, reading every variable through a `keras.StatelessScope`.

    The variables' current values are arguments of the compiled function (as in Keras' own JAX
    trainer), and the new values of `extra_variables` (a sampler's seed state, which a draw
    advances) come back out and are assigned after the call.
    """
    import jax

    variables = model_variables + extra_variables

    @jax.jit
    def run(values, *args):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))) as scope:
            outputs = fn(*args)
            updated = []
            for variable, value in zip(extra_variables, values[len(model_variables):]):
                new = scope.get_current_value(variable)
                updated.append(value if new is None else new)
        return outputs, updated

    def call(*args):
        outputs, updated = run([variable.value for variable in variables], *args)
        for variable, value in zip(extra_variables, updated):
            variable.assign(value)
        return outputs

    return call
