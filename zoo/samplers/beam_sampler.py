"""Beam search with the GNMT length penalty applied while searching (Wu et al. 2016).

A hypothesis y of |y| tokens (its `end_id` included) is ranked by

    log P(y) / lp(y),   lp(y) = ((5 + |y|) / 6) ** length_penalty

(length_penalty = 0: plain log-probability; larger values favour longer sequences). Per
sequence, the search keeps `beam_width` live prefixes and, separately, a pool of the
`beam_width` best finished hypotheses:

1. Each live prefix is extended by every token that is not masked; of these candidates the
   2 * beam_width best by log-probability are kept, so that `beam_width` live prefixes remain
   even when up to `beam_width` of them end here.
2. Candidates ending with `end_id` that rank among the best `beam_width` candidates of this
   step enter the finished pool, compared on normalised scores with the hypotheses already
   there; the best `beam_width` stay. A finished hypothesis never takes a live beam's slot.
   (All candidates of a step have one length, so ranking them by log-probability is ranking
   them by normalised score; an `<end>` ranked below `beam_width` is one the search would not
   have chosen, as in Hugging Face's beam search, which makes width 1 greedy search.)
3. The best `beam_width` other candidates are the new live prefixes.
4. The search stops after `max_length` tokens, or as soon as the pool is full and no live
   prefix can still beat its worst member: a prefix's log-probability only falls as it grows
   and lp grows with length, so log P(prefix) / lp(max_length) bounds every hypothesis it can
   become (length_penalty >= 0).

At `max_length`, the live prefixes (sequences cut at `max_length` tokens without `end_id`)
compete with the pool, normalised with lp(max_length). With `beam_width` at least the number
of candidates of the last step (`A * (A - 1) ** (max_length - 1)` for A tokens that are not
masked), nothing is pruned and the result is the exhaustive search's; with `beam_width=1` and
`length_penalty=0` it is greedy search.
"""

import keras
from keras import ops

from zoo.samplers.sampler import Sampler, at_step, log_probabilities
from zoo.validation import check_int, check_number

_NEG_INF = float("-inf")


def _gather(x, indices):
    """x `[B, N, ...]` reordered along N by `indices` `[B, M]` -> `[B, M, ...]`."""
    indices = ops.cast(indices, "int32")
    for _ in range(len(x.shape) - 2):
        indices = indices[..., None]
    return ops.take_along_axis(x, indices, axis=1)


def _length_penalty(length, alpha):
    return ops.power((5.0 + ops.cast(length, "float32")) / 6.0, alpha)


class BeamSampler(Sampler):
    """Batched in-graph beam search; see the module docstring for the algorithm.

    Args:
        beam_width: Live prefixes (and finished hypotheses) kept per sequence, >= 1.
        length_penalty: alpha >= 0 of the GNMT length penalty ((5 + |y|) / 6) ** alpha.
        return_all_beams: If True, return the `beam_width` best hypotheses per sequence,
            best first (`ids [B, K, T]`, `scores [B, K]`), instead of the best one.

    Raises:
        ValueError: on a `beam_width` < 1 or a negative `length_penalty`.
    """

    def __init__(self, beam_width=3, length_penalty=0.0, return_all_beams=False):
        self.beam_width = check_int("beam_width", beam_width)
        self.length_penalty = check_number("length_penalty", length_penalty, low=0)
        self.return_all_beams = bool(return_all_beams)

    def __call__(
        self, next, start_tokens, state, max_length, end_id=None, pad_id=0, masked_ids=()
    ):
        """Beam search from `start_tokens`; arguments as `Sampler.__call__`.

        Returns:
            `(ids [B, max_length] int32, scores [B] float32)`: the best hypothesis (tokens up
            to and including `end_id`, then `pad_id`) and its normalised score
            log P / lp (with `return_all_beams`: `[B, K, max_length]` and `[B, K]`).
        """
        max_length = check_int("max_length", max_length)
        masked_ids = tuple(int(i) for i in masked_ids)
        k, alpha = self.beam_width, self.length_penalty
        start_tokens = ops.cast(start_tokens, "int32")
        batch = ops.shape(start_tokens)[0]
        # Row b * k + j holds beam j of sequence b.
        state = keras.tree.map_structure(lambda s: ops.repeat(s, k, axis=0), state)
        tokens = ops.repeat(start_tokens, k, axis=0)
        first = ops.concatenate([ops.zeros((1,)), ops.full((k - 1,), _NEG_INF)])
        live_scores = ops.tile(first[None], (batch, 1))  # one live beam at the start
        live_ids = ops.full((batch, k, max_length), pad_id, dtype="int32")
        pool_scores = ops.full((batch, k), _NEG_INF, dtype="float32")
        pool_ids = ops.full((batch, k, max_length), pad_id, dtype="int32")
        final_penalty = _length_penalty(max_length, alpha)

        def cond(step, tokens, state, live_scores, live_ids, pool_scores, pool_ids):
            pool_full = ops.all(pool_scores > _NEG_INF, axis=1)
            best_possible = ops.max(live_scores, axis=1) / final_penalty
            done = ops.logical_or(
                ops.logical_and(pool_full, best_possible < ops.min(pool_scores, axis=1)),
                ops.equal(ops.max(live_scores, axis=1), _NEG_INF),
            )
            return ops.logical_and(step < max_length, ops.logical_not(ops.all(done)))

        def body(step, tokens, state, live_scores, live_ids, pool_scores, pool_ids):
            logits, state = next(tokens, state)
            log_probs = log_probabilities(logits, masked_ids)
            vocabulary_size = log_probs.shape[-1]
            log_probs = ops.reshape(log_probs, (batch, k, vocabulary_size))
            candidates = ops.reshape(
                live_scores[:, :, None] + log_probs, (batch, k * vocabulary_size)
            )
            width = min(2 * k, k * vocabulary_size)
            top_scores, top_indices = ops.top_k(candidates, k=width)
            top_indices = ops.cast(top_indices, "int32")
            origins = top_indices // vocabulary_size
            new_tokens = top_indices % vocabulary_size
            column = at_step(step, max_length)[None, None]
            extended = ops.where(column, new_tokens[:, :, None], _gather(live_ids, origins))
            if end_id is None:
                ends = ops.zeros_like(new_tokens, dtype="bool")
            else:
                ends = ops.equal(new_tokens, end_id)

            # 2. finished candidates among this step's best k join the pool, normalised.
            admitted = ops.logical_and(ends, (ops.arange(width) < k)[None])
            finished = ops.where(
                admitted, top_scores / _length_penalty(step + 1, alpha), _NEG_INF
            )
            merged_scores = ops.concatenate([pool_scores, finished], axis=1)
            merged_ids = ops.concatenate([pool_ids, extended], axis=1)
            pool_scores, kept = ops.top_k(merged_scores, k=k)
            pool_ids = _gather(merged_ids, kept)

            # 3. the best other candidates are the new live prefixes.
            live_scores, kept = ops.top_k(ops.where(ends, _NEG_INF, top_scores), k=k)
            live_ids = _gather(extended, kept)
            origins = _gather(origins, kept)
            tokens = ops.reshape(_gather(new_tokens, kept), (-1,))
            rows = ops.reshape(origins + ops.arange(batch)[:, None] * k, (-1,))
            state = keras.tree.map_structure(lambda s: ops.take(s, rows, axis=0), state)
            return step + 1, tokens, state, live_scores, live_ids, pool_scores, pool_ids

        loop = (
            ops.convert_to_tensor(0, "int32"),
            tokens,
            state,
            live_scores,
            live_ids,
            pool_scores,
            pool_ids,
        )
        steps, _, _, live_scores, live_ids, pool_scores, pool_ids = ops.while_loop(
            cond, body, loop
        )
        # Live prefixes that reached max_length are hypotheses cut there; after an early stop
        # they cannot win (their bound is below the pool), so one rule serves both cases.
        cut = live_scores / _length_penalty(steps, alpha)
        all_scores = ops.concatenate([pool_scores, cut], axis=1)
        all_ids = ops.concatenate([pool_ids, live_ids], axis=1)
        scores, best = ops.top_k(all_scores, k=k if self.return_all_beams else 1)
        ids = _gather(all_ids, best)
        if self.return_all_beams:
            return ids, scores
        return ids[:, 0], scores[:, 0]

    def choose(self, log_probs, step):  # pragma: no cover - the loop above replaces it
        raise NotImplementedError("BeamSampler runs its own loop.")

    def get_config(self):
        return {
            "beam_width": self.beam_width,
            "length_penalty": self.length_penalty,
            "return_all_beams": self.return_all_beams,
        }
