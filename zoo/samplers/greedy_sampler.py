"""Greedy search: the most probable token at every step."""

from keras import ops

from zoo.samplers.sampler import Sampler


class GreedySampler(Sampler):
    """The argmax of the next-token distribution at every step (masked ids excluded).

    Example:
        >>> ids, log_probs = GreedySampler()(next, start_tokens, state, max_length=20, end_id=3)
    """

    def choose(self, log_probs, step):
        return ops.argmax(log_probs, axis=-1)
