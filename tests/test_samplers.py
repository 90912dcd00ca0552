"""The shared samplers against independent references: exhaustive search, NumPy distributions.

`next` here is a deterministic hand-built model: the state is a code of the whole prefix and
the logits are a row of a fixed random table picked by that code, so every prefix has its own
next-token distribution (a trained captioner is checked in tests/test_captioning.py).
"""

import itertools

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from zoo import samplers

TABLE_ROWS = 997  # prime, so prefixes rarely share a row
END_ID = 3
MASKED = (0, 2)  # padding and <start>


def make_table(vocabulary_size=6, scale=1.0, seed=2):
    rng = np.random.default_rng(seed)
    return rng.normal(scale=scale, size=(TABLE_ROWS, vocabulary_size)).astype("float32")


def hashed_next(table):
    """`next(tokens, state)`: the state is a code of the prefix, the logits its table row."""

    def next(tokens, state):
        code = (state[0] * 31 + ops.cast(tokens, "int32") + 1) % TABLE_ROWS
        return ops.take(ops.convert_to_tensor(table), code, axis=0), [code]

    return next


def log_softmax64(logits, masked=MASKED):
    x = np.asarray(logits, np.float64).copy()
    x[list(masked)] = -np.inf
    return x - (x.max() + np.log(np.exp(x - x.max()).sum()))


def exhaustive(table, code, start, max_length, alpha, end_id=END_ID):
    """Every hypothesis (ended by `end_id`, or cut at `max_length`), best normalised first."""
    vocabulary_size = table.shape[1]
    allowed = [t for t in range(vocabulary_size) if t not in MASKED]
    hypotheses = []

    def penalty(length):
        return ((5.0 + length) / 6.0) ** alpha

    def grow(prefix, code, token, log_prob):
        code = (code * 31 + token + 1) % TABLE_ROWS
        log_probs = log_softmax64(table[code])
        for t in allowed:
            sequence, total = [*prefix, t], log_prob + log_probs[t]
            if t == end_id or len(sequence) == max_length:
                hypotheses.append((total / penalty(len(sequence)), sequence))
            else:
                grow(sequence, code, t, total)

    grow([], code, start, 0.0)
    return sorted(hypotheses, key=lambda h: -h[0])


def run(sampler, table, codes, max_length, start=2):
    codes = np.asarray(codes, "int32")
    start_tokens = ops.full((len(codes),), start, dtype="int32")
    ids, scores = sampler(
        hashed_next(table),
        start_tokens,
        [ops.convert_to_tensor(codes)],
        max_length,
        end_id=END_ID,
        masked_ids=MASKED,
    )
    return ops.convert_to_numpy(ids), ops.convert_to_numpy(scores)


def padded(sequence, max_length):
    return sequence + [0] * (max_length - len(sequence))


@pytest.mark.parametrize("length_penalty", [0.0, 0.6, 1.0])
def test_beam_search_is_exhaustive_search_when_the_beam_holds_every_prefix(length_penalty):
    table, max_length = make_table(), 3
    allowed = table.shape[1] - len(MASKED)
    width = allowed * (allowed - 1) ** (max_length - 1)  # every candidate of the last step
    codes = np.arange(8) * 17
    sampler = samplers.BeamSampler(width, length_penalty, return_all_beams=True)
    ids, scores = run(sampler, table, codes, max_length)
    best_ids, best_scores = run(samplers.BeamSampler(width, length_penalty), table, codes,
                                max_length)
    for row, code in enumerate(codes):
        reference = exhaustive(table, int(code), 2, max_length, length_penalty)
        assert best_ids[row].tolist() == padded(reference[0][1], max_length)
        assert best_scores[row] == pytest.approx(reference[0][0], abs=1e-4)
        # The n-best list is the exhaustive ranking's head, in order.
        np.testing.assert_allclose(scores[row], [s for s, _ in reference[:width]], atol=1e-4)
        assert ids[row, 0].tolist() == padded(reference[0][1], max_length)


def test_the_length_penalty_changes_the_winner_in_the_exhaustive_test():
    """The test above is sensitive to the penalty: longer hypotheses win some rows."""
    table = make_table()
    for alpha in (0.6, 1.0):
        changed = 0
        for code in np.arange(8) * 17:
            plain = exhaustive(table, int(code), 2, 3, 0.0)[0]
            penalised = exhaustive(table, int(code), 2, 3, alpha)[0]
            changed += plain[1] != penalised[1]
            assert len(penalised[1]) >= len(plain[1])
        assert changed >= 1


def test_a_finished_hypothesis_does_not_take_the_live_beam():
    """Width 1, where `<end>` is the best first token but "4 <end>" wins once normalised: the
    finished "<end>" waits in the pool while the live beam goes on to find "4 <end>" (a search
    that let it keep the only slot would stop at "<end>")."""
    vocabulary_size = 6
    first = np.full(vocabulary_size, -20.0, "float32")
    first[[END_ID, 4, 5]] = [0.0, -0.1, -3.0]
    second = np.full(vocabulary_size, -20.0, "float32")
    second[END_ID] = 10.0  # after one word, <end> almost surely
    table = np.stack([first, second, second])

    def next(tokens, state):
        step = state[0]
        return ops.take(ops.convert_to_tensor(table), step, axis=0), [ops.minimum(step + 1, 2)]

    def beam(alpha):
        ids, scores = samplers.BeamSampler(1, alpha)(
            next, ops.full((1,), 2, "int32"), [ops.zeros((1,), "int32")], 4, end_id=END_ID,
            masked_ids=MASKED,
        )
        return ops.convert_to_numpy(ids)[0].tolist(), float(ops.convert_to_numpy(scores)[0])

    first_log_p, second_log_p = log_softmax64(first), log_softmax64(second)
    assert beam(0.0) == ([END_ID, 0, 0, 0], pytest.approx(first_log_p[END_ID], abs=1e-5))
    longer = (first_log_p[4] + second_log_p[END_ID]) / (7 / 6)
    assert longer > first_log_p[END_ID] / 1.0 > first_log_p[4] + second_log_p[END_ID]
    assert beam(1.0) == ([4, END_ID, 0, 0], pytest.approx(longer, abs=1e-5))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_width_one_and_top_k_one_are_greedy_search(seed):
    table, max_length = make_table(9, seed=seed), 6
    codes = np.arange(16) * 5
    greedy_ids, greedy_scores = run(samplers.GreedySampler(), table, codes, max_length)
    beam_ids, _ = run(samplers.BeamSampler(1), table, codes, max_length)
    top_one, top_one_scores = run(samplers.RandomSampler(top_k=1, seed=seed), table, codes,
                                  max_length)
    np.testing.assert_array_equal(greedy_ids, beam_ids)
    np.testing.assert_array_equal(greedy_ids, top_one)
    np.testing.assert_allclose(greedy_scores, top_one_scores, rtol=1e-6)
    # The reference: argmax at every step, in NumPy, until <end>.
    for row, code in enumerate(codes):
        token, code, expected, total = 2, int(code), [], 0.0
        while len(expected) < max_length and END_ID not in expected:
            code = (code * 31 + token + 1) % TABLE_ROWS
            log_probs = log_softmax64(table[code])
            token = int(np.argmax(log_probs))
            expected.append(token)
            total += log_probs[token]
        assert greedy_ids[row].tolist() == padded(expected, max_length)
        assert greedy_scores[row] == pytest.approx(total, abs=1e-4)


def test_masked_tokens_are_never_generated():
    table = make_table(6)
    table[:, list(MASKED)] += 50.0  # padding and <start> would win everywhere
    codes = np.arange(32)
    for sampler in (samplers.GreedySampler(), samplers.BeamSampler(3),
                    samplers.RandomSampler(temperature=3.0, seed=0)):
        ids, _ = run(sampler, table, codes, 5)
        for row in ids.tolist():
            words = row[: row.index(END_ID)] if END_ID in row else row
            assert not set(words) & set(MASKED), (sampler, row)


def test_a_fixed_seed_reproduces_and_another_seed_differs():
    table, codes = make_table(12, scale=0.5, seed=0), np.arange(16)
    first, _ = run(samplers.RandomSampler(seed=7), table, codes, 8)
    again, _ = run(samplers.RandomSampler(seed=7), table, codes, 8)
    other, _ = run(samplers.RandomSampler(seed=8), table, codes, 8)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    sampler = samplers.RandomSampler(seed=7)
    run(sampler, table, codes, 8)
    sampler.reseed(7)
    np.testing.assert_array_equal(run(sampler, table, codes, 8)[0], first)


def test_samplers_run_inside_a_compiled_graph_batched():
    table, codes = make_table(), np.arange(10) * 3
    for sampler in (samplers.GreedySampler(), samplers.BeamSampler(4, 0.6)):
        eager_ids, eager_scores = run(sampler, table, codes, 5)

        @tf.function(input_signature=[tf.TensorSpec((None,), tf.int32)])
        def compiled(codes, sampler=sampler):
            return sampler(hashed_next(table), tf.fill(tf.shape(codes), 2), [codes], 5,
                           end_id=END_ID, masked_ids=MASKED)

        ids, scores = compiled(tf.constant(codes, tf.int32))
        np.testing.assert_array_equal(ids.numpy(), eager_ids)
        np.testing.assert_allclose(scores.numpy(), eager_scores, rtol=1e-6)
        # Batched: each row as it would be alone.
        alone = [run(sampler, table, [c], 5)[0][0] for c in codes[:3]]
        np.testing.assert_array_equal(np.stack(alone), eager_ids[:3])


def reference_distribution(logits, temperature=1.0, top_k=None, top_p=None):
    """The distribution a RandomSampler draws from, in float64 NumPy."""
    x = np.asarray(logits, np.float64) / temperature
    p = np.exp(x - x.max())
    p /= p.sum()
    keep = np.ones_like(p, bool)
    if top_k is not None:
        keep &= p >= np.sort(p)[::-1][top_k - 1]
    if top_p is not None:
        order = np.argsort(-p)
        before = np.cumsum(p[order]) - p[order]
        nucleus = np.zeros_like(keep)
        nucleus[order[before < top_p]] = True
        keep &= nucleus
    p = np.where(keep, p, 0.0)
    return p / p.sum()


@pytest.mark.parametrize(
    "options",
    [
        {"temperature": 1.0},
        {"temperature": 0.5},
        {"temperature": 2.0, "top_k": 3},
        {"top_p": 0.7},
        {"temperature": 1.5, "top_k": 4, "top_p": 0.8},
    ],
)
def test_sampled_frequencies_match_the_numpy_distribution(options):
    logits = np.array([1.2, -0.3, 0.8, 2.0, 0.1, -1.0, 1.5], "float32")
    draws = 20000
    sampler = samplers.RandomSampler(seed=3, **options)
    ids, _ = sampler(
        lambda tokens, state: (ops.tile(ops.convert_to_tensor(logits)[None], (draws, 1)), state),
        ops.zeros((draws,), "int32"),
        [ops.zeros((draws,), "int32")],
        1,
    )
    frequencies = np.bincount(ops.convert_to_numpy(ids)[:, 0], minlength=len(logits)) / draws
    expected = reference_distribution(logits, **options)
    # 4.5 standard deviations of a frequency estimated from 20000 draws.
    tolerance = 4.5 * np.sqrt(expected * (1 - expected) / draws) + 1e-9
    assert np.all(np.abs(frequencies - expected) <= tolerance), (frequencies, expected)
    assert np.all(frequencies[expected == 0] == 0)


def test_bad_sampler_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="beam_width=0"):
        samplers.BeamSampler(0)
    with pytest.raises(ValueError, match="length_penalty=-0.5"):
        samplers.BeamSampler(2, length_penalty=-0.5)
    with pytest.raises(ValueError, match="temperature=0"):
        samplers.RandomSampler(temperature=0)
    with pytest.raises(ValueError, match="top_p=1.5"):
        samplers.RandomSampler(top_p=1.5)
    with pytest.raises(ValueError, match="top_k=0"):
        samplers.RandomSampler(top_k=0)
    with pytest.raises(ValueError, match="Did you mean 'beam'"):
        samplers.get("beams")
    with pytest.raises(TypeError, match="sampler"):
        samplers.get(3)
    with pytest.raises(ValueError, match="max_length=0"):
        run(samplers.GreedySampler(), make_table(), [0], 0)
    assert isinstance(samplers.get("random"), samplers.RandomSampler)
    assert repr(samplers.BeamSampler(2)) == (
        "BeamSampler(beam_width=2, length_penalty=0.0, return_all_beams=False)"
    )


def test_every_hypothesis_is_counted_once_by_the_exhaustive_reference():
    """The reference enumerates (A-1)^(T-1) * A + ... hypotheses: a check on the check."""
    table = make_table()
    allowed = table.shape[1] - len(MASKED)
    hypotheses = exhaustive(table, 0, 2, 3, 0.0)
    ended = sum((allowed - 1) ** t for t in range(3))  # <end> after 0, 1 or 2 words
    cut = (allowed - 1) ** 3
    assert len(hypotheses) == ended + cut
    total = sum(np.exp(s) for s, _ in hypotheses)  # alpha = 0: log-probabilities
    assert total == pytest.approx(1.0, abs=1e-9)
    assert len({tuple(h) for _, h in hypotheses}) == len(hypotheses)
    assert all(
        h[-1] == END_ID or len(h) == 3 for _, h in hypotheses
    ) and list(itertools.chain.from_iterable(h[:-1] for _, h in hypotheses)).count(END_ID) == 0
