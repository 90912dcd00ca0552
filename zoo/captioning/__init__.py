"""Image captioning: a CNN encoder and an RNN decoder trained with teacher forcing.

Importing the package registers `show_and_tell` and `show_attend_tell`.

    encoder.py           the CNN and what the decoder reads (image vector or annotations)
    cells.py             the image-injected cell, the soft-attention LSTM cell
    decoders.py          InjectedRNNDecoder, SoftAttentionDecoder (teacher forcing and `step`)
    captioner.py         Captioner: encoder + decoder + tokenizer; generation via zoo.samplers
    losses.py            masked_caption_loss
    metrics.py           BLEU, METEOR, ROUGE-L, CIDEr-D, SPICE; evaluate_captions
    show_and_tell.py     the registered Show and Tell model and its recipe
    show_attend_tell.py  the registered Show, Attend and Tell model and its recipe

The tokenizer is `zoo.text.CaptionTokenizer` (shared with `zoo.data`).
"""

from zoo.captioning.captioner import Captioner
from zoo.captioning.decoders import InjectedRNNDecoder, SoftAttentionDecoder  # noqa: F401
from zoo.captioning.losses import masked_caption_loss  # noqa: F401
from zoo.captioning.metrics import (  # noqa: F401
    caption_scores,
    corpus_bleu,
    evaluate_bleu,
    evaluate_captions,
)
from zoo.captioning.show_and_tell import show_and_tell
from zoo.captioning.show_attend_tell import show_attend_tell
from zoo.text import CaptionTokenizer

# Exported at the top level of `zoo` too; the generic names (corpus_bleu, caption_scores, ...)
# stay under `zoo.captioning` to avoid clashes with other families.
__all__ = [
    "CaptionTokenizer",
    "Captioner",
    "show_and_tell",
    "show_attend_tell",
]

