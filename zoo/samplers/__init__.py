"""Sequence generation shared by every generative model: greedy, beam and random sampling.

Each sampler is a small class over a model's `next(tokens, state) -> (logits, state)`
function, run in-graph and batched (see `zoo.samplers.sampler`). The captioners
(`Captioner.generate(images, sampler=...)`) and the character language model
(`CharLanguageModel.generate(prompt, sampler=...)`) both use them.

    >>> from zoo import samplers
    >>> samplers.get("greedy"), samplers.get("beam"), samplers.get(samplers.RandomSampler(top_k=5))
"""

from zoo.samplers.beam_sampler import BeamSampler
from zoo.samplers.greedy_sampler import GreedySampler
from zoo.samplers.random_sampler import RandomSampler
from zoo.samplers.sampler import Sampler, log_probabilities
from zoo.validation import check_choice

SAMPLERS = {"greedy": GreedySampler, "beam": BeamSampler, "random": RandomSampler}


def get(sampler):
    """A sampler from an instance (returned as is) or a name ("greedy", "beam", "random",
    built with its defaults).

    Raises:
        ValueError: on an unknown name (with the closest names). TypeError: on another type.
    """
    if isinstance(sampler, Sampler):
        return sampler
    if isinstance(sampler, str):
        return SAMPLERS[check_choice("sampler", sampler, tuple(SAMPLERS))]()
    raise TypeError(
        "Argument `sampler` must be a zoo.samplers.Sampler or one of "
        f"{tuple(SAMPLERS)}. Received: sampler={sampler!r} of type {type(sampler).__name__}"
    )


__all__ = [
    "BeamSampler",
    "GreedySampler",
    "RandomSampler",
    "Sampler",
    "get",
    "log_probabilities",
]
