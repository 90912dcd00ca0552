"""Sampling from the model's distribution: temperature, top-k and top-p (nucleus), seeded."""

import keras
import numpy as np
from keras import ops, random

import zoo.layers as layers
from zoo.samplers.sampler import Sampler
from zoo.validation import check_int, check_number


class RandomSampler(Sampler):
    """Draws each token from the model's next-token distribution, reshaped.

    The distribution is softmax(logits / temperature) over the ids that are not masked,
    restricted to the `top_k` most probable tokens (Fan et al. 2018) and/or to the smallest set
    of most probable tokens whose probability reaches `top_p` (nucleus sampling, Holtzman et
    al. 2020), then renormalised. The draw is the Gumbel-max trick on log-probabilities:
    argmax(log p + g) with g ~ Gumbel(0, 1) is distributed as p, and nothing is exponentiated
    or renormalised in probability space.

    Randomness comes from a `keras.random.SeedGenerator`: a sampler built with `seed=s` (or
    `reseed(s)`) draws the same sequences on every backend run, also inside a compiled graph;
    successive calls continue its stream.

    Args:
        temperature: > 0. Below 1 sharpens the distribution, above 1 flattens it.
        top_k: Keep the k most probable tokens (int >= 1), or None for all.
        top_p: Keep the nucleus of probability `top_p` (in (0, 1]), or None for all.
        seed: Integer seed, or None for a random one.

    Raises:
        ValueError: on a temperature <= 0, top_k < 1 or top_p outside (0, 1].
    """

    def __init__(self, temperature=1.0, top_k=None, top_p=None, seed=None):
        self.temperature = check_number("temperature", temperature, low=0, low_inclusive=False)
        self.top_k = check_int("top_k", top_k, allow_none=True)
        self.top_p = check_number("top_p", top_p, low=0, high=1, low_inclusive=False,
                                  allow_none=True)
        self.seed = check_int("seed", seed, minimum=0, allow_none=True)
        initial = self.seed if self.seed is not None else int(np.random.default_rng().integers(2**31))
        self.seed_generator = random.SeedGenerator(initial)

    def reseed(self, seed=None):
        """Restart the random stream from `seed` (None: a random one)."""
        seed = check_int("seed", seed, minimum=0, allow_none=True)
        if seed is None:
            seed = int(np.random.default_rng().integers(2**31))
        state = self.seed_generator.state
        state.assign(ops.cast(ops.convert_to_tensor([seed, 0]), state.dtype))

    def filtered_log_probs(self, log_probs):
        """The log-probabilities the draw uses: temperature, then top-k, then top-p."""
        if self.temperature != 1.0:
            log_probs = layers.log_softmax(log_probs / self.temperature, axis=-1)
        vocabulary_size = log_probs.shape[-1]
        keep = None
        if self.top_k is not None and self.top_k < vocabulary_size:
            kth = ops.top_k(log_probs, k=self.top_k)[0][:, -1:]
            keep = log_probs >= kth
        if self.top_p is not None and self.top_p < 1.0:
            # Sorted descending: keep a token while the probability before it is below top_p
            # (so the token that crosses top_p is kept, and the most probable one always is).
            sorted_log_probs = ops.sort(log_probs, axis=-1)[:, ::-1]
            probabilities = ops.exp(sorted_log_probs)
            before = ops.cumsum(probabilities, axis=-1) - probabilities
            kept = ops.where(before < self.top_p, sorted_log_probs, float("inf"))
            threshold = ops.min(kept, axis=-1, keepdims=True)
            nucleus = log_probs >= threshold
            keep = nucleus if keep is None else ops.logical_and(keep, nucleus)
        if keep is None:
            return log_probs
        return layers.log_softmax(log_probs, axis=-1, mask=keep)

    @property
    def variables(self):
        return [self.seed_generator.state]

    def __call__(self, next, start_tokens, state, max_length, **kwargs):
        # JAX traces the loop body once, so a seed generator advanced inside it would hand the
        # same traced seed to every step and leak it out of the loop. There the call draws one
        # key from the generator (which advances it) and each step folds its index into that
        # key; TensorFlow and PyTorch advance the generator at every step.
        if keras.backend.backend() == "jax":
            self._call_key = self.seed_generator.next()
        try:
            return super().__call__(next, start_tokens, state, max_length, **kwargs)
        finally:
            self._call_key = None

    def _step_seed(self, step):
        if getattr(self, "_call_key", None) is None:
            return self.seed_generator
        import jax

        return jax.random.fold_in(self._call_key, step)

    def choose(self, log_probs, step):
        filtered = self.filtered_log_probs(log_probs)
        uniform = random.uniform(
            ops.shape(filtered), minval=1e-20, maxval=1.0, seed=self._step_seed(step)
        )
        gumbel = -ops.log(-ops.log(uniform))
        return ops.argmax(filtered + gumbel, axis=-1)

    def cache_key(self):
        # Each sampler owns its seed generator, which a compiled function captures.
        return (type(self).__name__, id(self))

    def get_config(self):
        return {
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "seed": self.seed,
        }
