"""Caption quality: corpus BLEU-1..4 (Papineni et al. 2002) through NLTK's `corpus_bleu`.

BLEU-n here is NLTK's corpus-level BLEU with uniform weights over 1..n-grams (BLEU-4 uses
(0.25, 0.25, 0.25, 0.25)) and the corpus brevity penalty; captions and references are
standardised like the tokenizer's input (lower case, no punctuation) and split on whitespace.
"""

import numpy as np

from zoo.captioning import text


def _tokens(caption):
    return text.standardize(caption).split()


def corpus_bleu(hypotheses, references, max_order=4, smoothing=None):
    """Corpus BLEU-1..`max_order` of generated captions against their references.

    Args:
        hypotheses: One generated caption (string) per image.
        references: One list of reference captions (strings) per image.
        max_order: Highest n-gram order (1 to 4).
        smoothing: Optional `nltk.translate.bleu_score.SmoothingFunction` method (default:
            none, the usual choice for corpus BLEU).

    Returns:
        {"bleu_1": ..., ..., f"bleu_{max_order}": ...} as floats in [0, 1].

    Raises:
        ValueError: on empty or misaligned inputs, an image without references, or a bad
            `max_order`.
    """
    from nltk.translate.bleu_score import corpus_bleu as nltk_corpus_bleu

    hypotheses, references = list(hypotheses), list(references)
    if not hypotheses:
        raise ValueError("Argument `hypotheses` must hold at least one caption. Received: []")
    if len(hypotheses) != len(references):
        raise ValueError(
            "Arguments `hypotheses` and `references` must have one entry per image. Received: "
            f"{len(hypotheses)} hypotheses and {len(references)} reference lists"
        )
    if isinstance(references[0], str):
        raise TypeError(
            "Argument `references` must be a list of lists of captions (several references per "
            f"image). Received a list of strings, e.g. {references[0]!r}"
        )
    empty = [i for i, refs in enumerate(references) if len(refs) == 0]
    if empty:
        raise ValueError(f"Every image needs at least one reference caption; empty at {empty[:5]}")
    if max_order not in (1, 2, 3, 4):
        raise ValueError(f"Argument `max_order` must be 1, 2, 3 or 4. Received: {max_order!r}")
    tokenized_refs = [[_tokens(r) for r in refs] for refs in references]
    tokenized_hyps = [_tokens(h) for h in hypotheses]
    scores = {}
    for n in range(1, max_order + 1):
        weights = tuple([1.0 / n] * n)
        scores[f"bleu_{n}"] = float(
            nltk_corpus_bleu(
                tokenized_refs, tokenized_hyps, weights=weights, smoothing_function=smoothing
            )
        )
    return scores


def generate_for_dataset(
    model, dataset, beam_width=3, length_penalty=0.0, batch_size=64, limit=None
):
    """Captions for the images of an unbatched captioning dataset, in its order.

    Args:
        model: A `Captioner`.
        dataset: Unbatched elements `((image, caption_in), caption_out, mask)` (a loader's
            `test`), or unbatched images.
        beam_width: 1 for greedy search, more for beam search.
        length_penalty: See `decoding.beam_search`.
        batch_size: Images per decoding call.
        limit: Caption only the first `limit` images.

    Returns:
        A list of strings.
    """

    def image_of(element):
        while isinstance(element, (tuple, list)):
            element = element[0]
        return element

    if limit is not None:
        dataset = dataset.take(limit)
    captions = []
    for batch in dataset.map(lambda *e: image_of(e)).batch(batch_size).as_numpy_iterator():
        captions += model.caption(
            np.asarray(batch), beam_width=beam_width, length_penalty=length_penalty
        )
    return captions


def evaluate_bleu(
    model, dataset, references, beam_width=3, length_penalty=0.0, batch_size=64, limit=None
):
    """Corpus BLEU-1..4 of a captioner on a dataset with its references.

    Args:
        model: A `Captioner`.
        dataset: A loader's unbatched `test` set.
        references: One list of references per test image (`splits.extras["test_references"]`).
        beam_width, length_penalty, batch_size, limit: See `generate_for_dataset`.

    Returns:
        A dict with "bleu_1".."bleu_4" and "captions" (the generated strings).
    """
    captions = generate_for_dataset(model, dataset, beam_width, length_penalty, batch_size, limit)
    scores = corpus_bleu(captions, list(references)[: len(captions)])
    return {**scores, "captions": captions}
