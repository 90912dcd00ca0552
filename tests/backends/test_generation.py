"""Generation on this backend: the samplers against NumPy searches over a fixed Markov chain, and
the captioners' and char_lm's captions and text equal TensorFlow's for the same weights."""

import itertools

import keras
import numpy as np
import pytest

from backends import cases
from zoo import samplers

VOCABULARY = 5
END = 4
# A fixed next-token table: logits depend on the last token only.
TABLE = np.random.default_rng(3).standard_normal((VOCABULARY, VOCABULARY)).astype("float32") * 2


def markov_next(tokens, state):
    return keras.ops.take(keras.ops.convert_to_tensor(TABLE), tokens, axis=0), state


def log_softmax64(row):
    row = np.asarray(row, np.float64)
    return row - row.max() - np.log(np.exp(row - row.max()).sum())


def numpy_greedy(start, length):
    ids, token = [], start
    for _ in range(length):
        token = int(np.argmax(TABLE[token]))
        ids.append(token)
        if token == END:
            break
    return ids + [0] * (length - len(ids))


def numpy_best_sequence(start, length):
    """Exhaustive search: the most probable sequence (ended by END or cut at `length`)."""
    best, best_score = None, -np.inf
    for n in range(1, length + 1):
        for tail in itertools.product(range(VOCABULARY), repeat=n):
            if END in tail[:-1] or (n < length and tail[-1] != END):
                continue
            score, token = 0.0, start
            for t in tail:
                score += log_softmax64(TABLE[token])[t]
                token = t
            if score > best_score:
                best, best_score = list(tail) + [0] * (length - n), score
    return best, best_score


def run(sampler, starts, length):
    state = keras.ops.zeros((len(starts), 1))
    ids, scores = sampler(markov_next, np.array(starts, "int32"), state, length, end_id=END)
    return keras.ops.convert_to_numpy(ids), keras.ops.convert_to_numpy(scores)


def test_greedy_sampler_matches_numpy():
    ids, _ = run(samplers.GreedySampler(), [0, 1, 2, 3], 6)
    assert ids.tolist() == [numpy_greedy(s, 6) for s in range(4)]


def test_beam_sampler_wide_enough_is_the_exhaustive_search():
    # 5 tokens, 3 steps: at most 5 * 4 * 4 = 80 candidates at the last step; width 80 prunes
    # nothing (see the BeamSampler docstring).
    ids, scores = run(samplers.BeamSampler(beam_width=80), [0, 1, 2], 3)
    for row, start in enumerate([0, 1, 2]):
        want, want_score = numpy_best_sequence(start, 3)
        assert ids[row].tolist() == want
        np.testing.assert_allclose(scores[row], want_score, rtol=1e-5, atol=1e-6)


def test_random_sampler_draws_from_the_distribution_and_respects_top_k():
    sampler = samplers.RandomSampler(seed=0)
    ids, _ = run(sampler, [1] * 4000, 1)
    frequencies = np.bincount(ids[:, 0], minlength=VOCABULARY) / 4000
    probabilities = np.exp(log_softmax64(TABLE[1]))
    # 5 standard deviations of a binomial proportion over 4000 draws.
    np.testing.assert_allclose(frequencies, probabilities, atol=5 * 0.5 / np.sqrt(4000))
    top_two = set(np.argsort(TABLE[1])[-2:])
    ids, _ = run(samplers.RandomSampler(top_k=2, seed=0), [1] * 500, 1)
    assert set(ids[:, 0].tolist()) <= top_two


def test_random_sampler_is_seeded_and_its_stream_advances():
    first, _ = run(samplers.RandomSampler(seed=5), [0] * 8, 6)
    again, _ = run(samplers.RandomSampler(seed=5), [0] * 8, 6)
    np.testing.assert_array_equal(first, again)
    sampler = samplers.RandomSampler(seed=5)
    one, _ = run(sampler, [0] * 8, 6)
    two, _ = run(sampler, [0] * 8, 6)
    assert not np.array_equal(one, two)


@pytest.mark.parametrize("name", ["show_and_tell", "show_attend_tell"])
def test_captions_equal_tensorflow(name, reference):
    model = cases.build(name)
    images = cases.caption_images(name)
    greedy, greedy_scores = model.generate_ids(images, "greedy")
    beam, beam_scores = model.generate_ids(images, samplers.BeamSampler(3))
    np.testing.assert_array_equal(greedy, reference[f"{name}/greedy"])
    np.testing.assert_array_equal(beam, reference[f"{name}/beam"])
    np.testing.assert_allclose(greedy_scores, reference[f"{name}/greedy_scores"], rtol=1e-5)
    np.testing.assert_allclose(beam_scores, reference[f"{name}/beam_scores"], rtol=1e-5)
    # Sampling runs here too, seeded: the same captions twice from the same seed.
    sampled = [model.generate(images, samplers.RandomSampler(seed=1)) for _ in range(2)]
    assert sampled[0] == sampled[1]


def test_generation_follows_changed_weights():
    # The compiled generation function must read the weights, not freeze them (JAX's jit).
    model = cases.build("show_and_tell")
    images = cases.caption_images("show_and_tell")
    before = model.generate_ids(images, "greedy")[1]
    for variable in model.decoder.output_layer.weights:
        variable.assign(variable * 3.0)
    after = model.generate_ids(images, "greedy")[1]
    fresh = cases.build("show_and_tell")
    for variable in fresh.decoder.output_layer.weights:
        variable.assign(variable * 3.0)
    np.testing.assert_allclose(after, fresh.generate_ids(images, "greedy")[1], rtol=1e-6)
    assert not np.allclose(before, after)


def test_char_lm_text_equals_tensorflow(reference):
    model = cases.build("char_lm")
    for kind, sampler in (("greedy", "greedy"), ("beam", samplers.BeamSampler(3))):
        text = model.generate(cases.CHAR_PROMPT, cases.GENERATION_LENGTH, sampler=sampler)
        assert text == str(reference[f"char_lm/{kind}"])
    sampled = [model.generate(cases.CHAR_PROMPT, 20, temperature=0.8, seed=4) for _ in range(2)]
    assert sampled[0] == sampled[1] and len(sampled[0]) == 20
