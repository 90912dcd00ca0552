"""Image captioning: CNN encoder + RNN decoder (image-injected RNN; Show, Attend and Tell).

Importing the package registers `show_and_tell` and `show_attend_tell`.
"""

from zoo.captioning.decoding import (  # noqa: F401
    beam_search,
    caption_files,
    caption_images,
    greedy_search,
)
from zoo.captioning.metrics import corpus_bleu, evaluate_bleu  # noqa: F401
from zoo.captioning.model import (
    Captioner,
    masked_caption_loss,  # noqa: F401
    show_and_tell,
    show_attend_tell,
)
from zoo.captioning.text import CaptionTokenizer, build_vocabulary  # noqa: F401

# Exported at the top level of `zoo` too; the generic names (beam_search, greedy_search,
# corpus_bleu, ...) stay under `zoo.captioning` to avoid clashes with other families.
__all__ = [
    "CaptionTokenizer",
    "Captioner",
    "caption_files",
    "show_and_tell",
    "show_attend_tell",
]
