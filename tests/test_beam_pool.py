"""Beam search at widths 2-4 where the finished pool fills and the early stop fires, against a
plain float64 NumPy beam search that sorts every candidate and always runs to `max_length`
(no batching, no top-k, no early stop): stopping early must not change the n-best list."""

import numpy as np
import pytest
from keras import ops
from test_samplers import END_ID, MASKED, TABLE_ROWS, hashed_next, log_softmax64, make_table

from zoo import samplers

MAX_LENGTH = 8


def reference_beam(table, code, start, width, alpha):
    """The module docstring's algorithm, written plainly: `(normalised score, ids)` best first."""
    allowed = [t for t in range(table.shape[1]) if t not in MASKED]

    def penalty(length):
        return ((5.0 + length) / 6.0) ** alpha

    live, pool = [(0.0, [], code, start)], []
    for step in range(MAX_LENGTH):
        candidates = []
        for score, prefix, state, token in live:
            state = (state * 31 + token + 1) % TABLE_ROWS
            log_probs = log_softmax64(table[state])
            candidates += [(score + log_probs[t], [*prefix, t], state, t) for t in allowed]
        candidates.sort(key=lambda c: -c[0])
        best = candidates[:2 * width]
        pool += [(c[0] / penalty(step + 1), c[1]) for c in best[:width] if c[3] == END_ID]
        pool = sorted(pool, key=lambda h: -h[0])[:width]
        live = [c for c in best if c[3] != END_ID][:width]
    cut = [(score / penalty(MAX_LENGTH), prefix) for score, prefix, _, _ in live]
    return sorted(pool + cut, key=lambda h: -h[0])[:width]


def _search(table, code, width, alpha):
    """Eager beam search of one sequence; also the number of steps the loop took."""
    steps = []
    step_fn = hashed_next(table)

    def counted(tokens, state):
        steps.append(1)
        return step_fn(tokens, state)

    sampler = samplers.BeamSampler(width, alpha, return_all_beams=True)
    ids, scores = sampler(counted, ops.full((1,), 2, dtype="int32"),
                          [ops.convert_to_tensor(np.array([code], "int32"))], MAX_LENGTH,
                          end_id=END_ID, masked_ids=MASKED)
    return ops.convert_to_numpy(ids)[0], ops.convert_to_numpy(scores)[0], len(steps)


@pytest.mark.parametrize("width", [2, 3, 4])
@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_beam_search_with_a_full_pool_matches_the_plain_search(width, alpha):
    table = make_table(seed=5)
    table[:, END_ID] += 1.5  # <end> likely enough that the pool fills within MAX_LENGTH
    stopped_early = 0
    for code in range(0, 400, 37):
        ids, scores, steps = _search(table, code, width, alpha)
        reference = reference_beam(table, code, 2, width, alpha)
        np.testing.assert_allclose(scores, [s for s, _ in reference], atol=1e-4)
        for row, (_, sequence) in zip(ids, reference):
            assert row.tolist() == sequence + [0] * (MAX_LENGTH - len(sequence))
        stopped_early += steps < MAX_LENGTH
    assert stopped_early >= 3  # the early-stop rule fired, so this tested it
