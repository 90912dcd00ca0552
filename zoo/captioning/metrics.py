"""Caption quality: the COCO caption evaluation (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, SPICE).

`caption_scores(hypotheses, references)` computes the metrics with the reference
implementations of the COCO caption evaluation (`pycocoevalcap`, the optional extra
`pip install "zoo[captions]"`) on standardised captions (lower case, punctuation removed, as
the tokenizer sees them):

* BLEU-1..4 (Papineni et al. 2002), corpus level, closest reference length;
* METEOR 1.5 (Denkowski & Lavie 2014): needs a Java runtime (`java` on the PATH);
* ROUGE-L (Lin 2004), beta = 1.2;
* CIDEr-D (Vedantam et al. 2015): TF-IDF n-grams with clipping and a length penalty, x 10;
  its document frequencies come from the references of the captions scored;
* SPICE (Anderson et al. 2016), on request: needs Java and the Stanford CoreNLP 3.6.0 models,
  which `pycocoevalcap` downloads at first use (so not on a machine without network).

A metric that cannot be computed is left out of the result with a warning that says why
(`unavailable_metrics()` lists them). Without `pycocoevalcap`, BLEU comes from this module's
own implementation (`corpus_bleu`, the same formula; the tests check it against NLTK and the
reference). Figures match published ones only with COCO's tokenisation (the Stanford PTB
tokenizer) and Karpathy's test split: these scores use the zoo's standardisation.
"""

import collections
import math
import os
import shutil
import warnings

import numpy as np

from zoo.text import standardize

METRICS = ("bleu", "meteor", "rouge_l", "cider", "spice")
DEFAULT_METRICS = ("bleu", "meteor", "rouge_l", "cider")


def _check_pairs(hypotheses, references):
    hypotheses, references = [str(h) for h in hypotheses], list(references)
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
    references = [[str(r) for r in refs] for refs in references]
    empty = [i for i, refs in enumerate(references) if not refs]
    if empty:
        raise ValueError(f"Every image needs at least one reference caption; empty at {empty[:5]}")
    return hypotheses, references


def _ngrams(words, n):
    return collections.Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def corpus_bleu(hypotheses, references, max_order=4):
    """Corpus BLEU-1..`max_order` (Papineni et al. 2002), the zoo's own implementation.

    BLEU-n = BP * exp(mean_{k<=n} log p_k), with p_k the corpus's clipped k-gram precision
    and BP = min(1, exp(1 - r / c)) for c hypothesis words and r the summed reference lengths
    closest to each hypothesis (ties: the shorter). A zero precision gives 0 (no smoothing).
    Captions are standardised and split on whitespace.

    Args:
        hypotheses: One generated caption (string) per image.
        references: One list of reference captions (strings) per image.
        max_order: Highest n-gram order (1 to 4).

    Returns:
        {"bleu_1": ..., ..., f"bleu_{max_order}": ...} as floats in [0, 1].

    Raises:
        ValueError: on empty or misaligned inputs, an image without references, or a bad
            `max_order`. TypeError: if `references` is a flat list of strings.
    """
    if max_order not in (1, 2, 3, 4):
        raise ValueError(f"Argument `max_order` must be 1, 2, 3 or 4. Received: {max_order!r}")
    hypotheses, references = _check_pairs(hypotheses, references)
    matches, totals = np.zeros(max_order), np.zeros(max_order)
    hypothesis_length = reference_length = 0
    for hypothesis, refs in zip(hypotheses, references):
        words = standardize(hypothesis).split()
        ref_words = [standardize(r).split() for r in refs]
        hypothesis_length += len(words)
        reference_length += min((abs(len(r) - len(words)), len(r)) for r in ref_words)[1]
        for n in range(1, max_order + 1):
            counts = _ngrams(words, n)
            most = collections.Counter()
            for r in ref_words:
                most |= _ngrams(r, n)
            matches[n - 1] += sum(min(c, most[g]) for g, c in counts.items())
            totals[n - 1] += max(len(words) - n + 1, 0)
    if hypothesis_length == 0:
        brevity = 0.0
    elif hypothesis_length > reference_length:
        brevity = 1.0
    else:
        brevity = math.exp(1.0 - reference_length / hypothesis_length)
    scores = {}
    for n in range(1, max_order + 1):
        if np.any(matches[:n] == 0):
            scores[f"bleu_{n}"] = 0.0
            continue
        log_precision = np.mean(np.log(matches[:n] / totals[:n]))
        scores[f"bleu_{n}"] = float(brevity * math.exp(log_precision))
    return scores


# ------------------------------------------------------------------ the reference implementations


def _has_pycocoevalcap():
    try:
        import pycocoevalcap.bleu.bleu  # noqa: F401
    except ImportError:
        return False
    return True


def _spice_models_present():
    import pycocoevalcap.spice.get_stanford_models as models

    return os.path.exists(os.path.join(models.SPICEDIR, models.SPICELIB, f"{models.JAR}.jar"))


def unavailable_metrics(metrics=DEFAULT_METRICS):
    """{metric: why it cannot be computed here} for the requested `metrics` (empty: all can)."""
    missing = {}
    if not _has_pycocoevalcap():
        for metric in metrics:
            if metric != "bleu":
                missing[metric] = (
                    "needs the COCO caption evaluation: pip install 'zoo[captions]' "
                    "(pycocoevalcap); BLEU comes from the zoo's own implementation"
                )
        return missing
    java = shutil.which("java") is not None
    if "meteor" in metrics and not java:
        missing["meteor"] = "needs a Java runtime (`java` on the PATH)"
    if "spice" in metrics:
        if not java:
            missing["spice"] = "needs a Java runtime (`java` on the PATH)"
        elif not _spice_models_present():
            missing["spice"] = (
                "needs the Stanford CoreNLP 3.6.0 models, which pycocoevalcap downloads at first "
                "use (run `python -m pycocoevalcap.spice.get_stanford_models` once with network)"
            )
    return missing


def _reference_scores(metric, hypotheses, references):
    keys = range(len(hypotheses))
    results = {i: [hypotheses[i]] for i in keys}
    ground_truth = {i: references[i] for i in keys}
    if metric == "bleu":
        from pycocoevalcap.bleu.bleu import Bleu

        scores, _ = Bleu(4).compute_score(ground_truth, results, verbose=0)
        return {f"bleu_{n}": float(s) for n, s in enumerate(scores, start=1)}
    if metric == "meteor":
        from pycocoevalcap.meteor.meteor import Meteor

        return {"meteor": float(Meteor().compute_score(ground_truth, results)[0])}
    if metric == "rouge_l":
        from pycocoevalcap.rouge.rouge import Rouge

        return {"rouge_l": float(Rouge().compute_score(ground_truth, results)[0])}
    if metric == "cider":
        from pycocoevalcap.cider.cider import Cider

        return {"cider": float(Cider().compute_score(ground_truth, results)[0])}
    from pycocoevalcap.spice.spice import Spice

    return {"spice": float(Spice().compute_score(ground_truth, results)[0])}


def caption_scores(hypotheses, references, metrics=DEFAULT_METRICS):
    """The COCO caption metrics of generated captions against their references.

    Args:
        hypotheses: One generated caption (string) per image.
        references: One list of reference captions (strings) per image.
        metrics: Any of "bleu" (BLEU-1..4), "meteor", "rouge_l", "cider" (CIDEr-D) and
            "spice"; default all but SPICE.

    Returns:
        A dict of floats: "bleu_1".."bleu_4", "meteor", "rouge_l", "cider", "spice" (those
        requested and computable here; a warning names the others and why).

    Raises:
        ValueError: on empty or misaligned inputs or an unknown metric.
    """
    metrics = tuple(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        from zoo.validation import did_you_mean

        raise ValueError(
            f"Argument `metrics` must hold names from {METRICS}.{did_you_mean(unknown[0], METRICS)}"
            f" Received: metrics={metrics!r}"
        )
    hypotheses, references = _check_pairs(hypotheses, references)
    # The reference scorers split on single spaces and choke on empty strings.
    hypotheses = [standardize(h) or "." for h in hypotheses]
    references = [[standardize(r) or "." for r in refs] for refs in references]
    missing = unavailable_metrics(metrics)
    if missing:
        warnings.warn(
            "Caption metrics left out: "
            + "; ".join(f"{m} {why}" for m, why in missing.items())
            + ".",
            RuntimeWarning,
            stacklevel=2,
        )
    scores = {}
    for metric in metrics:
        if metric in missing:
            continue
        if metric == "bleu" and not _has_pycocoevalcap():
            scores.update(corpus_bleu(hypotheses, references))
        else:
            scores.update(_reference_scores(metric, hypotheses, references))
    return scores


# ------------------------------------------------------------------ a model on a dataset


def images_and_references(dataset, tokenizer=None, references=None, max_examples=None):
    """Images `[N, H, W, C]` and their references from an unbatched dataset.

    Elements may be `(image, references)` (a string or a vector of strings), a loader's
    `((image, caption_in), caption_out, mask)` (the reference is `caption_out` decoded with
    `tokenizer`, unless `references` is given) or bare images (then `references` is needed).

    Args:
        dataset: An unbatched `tf.data.Dataset` (or any iterable of such elements).
        tokenizer: Decodes `caption_out` for the loader's format.
        references: One list of references per element, in order (e.g. a loader's
            `extras["test_references"]`); overrides references found in the elements.
        max_examples: Use only the first `max_examples` elements.

    Returns:
        `(images, references)`: a float array and a list of lists of strings.

    Raises:
        ValueError: if the elements carry no references and none are given.
    """
    if max_examples is not None:
        dataset = dataset.take(max_examples) if hasattr(dataset, "take") else (
            e for i, e in zip(range(max_examples), dataset)
        )
    elements = dataset.as_numpy_iterator() if hasattr(dataset, "as_numpy_iterator") else dataset
    images, found = [], []
    for element in elements:
        if isinstance(element, tuple) and len(element) == 3 and isinstance(element[0], tuple):
            (image, _), caption_out, _ = element
            found.append(tokenizer.decode([caption_out]) if tokenizer is not None else None)
        elif isinstance(element, tuple) and len(element) == 2:
            image, refs = element
            refs = np.atleast_1d(refs).tolist()
            found.append([r.decode("utf-8") if isinstance(r, bytes) else str(r) for r in refs])
        else:
            image = element
            found.append(None)
        images.append(np.asarray(image))
    if references is not None:
        found = [list(r) for r in references][: len(images)]
    if len(found) != len(images) or any(r is None for r in found):
        raise ValueError(
            "The dataset's elements carry no references: pass `references` (one list of "
            "captions per element), or elements (image, references)."
        )
    return np.stack(images), found


def generate_captions(model, images, beam_width=1, length_penalty=0.0, batch_size=64):
    """Captions (strings) for an image array, `batch_size` images per in-graph call."""
    captions = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        captions += model.caption(batch, beam_width=beam_width, length_penalty=length_penalty)
    return captions


def evaluate_captions(model, dataset, references=None, beam_width=1, length_penalty=0.0,
                      metrics=DEFAULT_METRICS, batch_size=64, max_examples=None):
    """Generate captions for a dataset's images and score them (`caption_scores`).

    Args:
        model: A `Captioner`.
        dataset: An unbatched dataset of images and references (see
            `images_and_references`), e.g. a loader's `test` with
            `references=splits.extras["test_references"]`.
        references: One list of references per element, if the elements carry none (or
            only one).
        beam_width: 1 for greedy search, more for beam search.
        length_penalty: The beam's length penalty (see `zoo.samplers.BeamSampler`).
        metrics: Which metrics (see `caption_scores`).
        batch_size: Images per generation call.
        max_examples: Evaluate only the first `max_examples` elements.

    Returns:
        The scores of `caption_scores`, and "captions": the generated strings.
    """
    images, refs = images_and_references(dataset, model.tokenizer, references, max_examples)
    captions = generate_captions(model, images, beam_width, length_penalty, batch_size)
    return {**caption_scores(captions, refs, metrics), "captions": captions}


def evaluate_bleu(model, dataset, references, beam_width=3, length_penalty=0.0, batch_size=64,
                  limit=None):
    """Corpus BLEU-1..4 (this module's `corpus_bleu`) of a captioner on a dataset.

    Returns:
        A dict with "bleu_1".."bleu_4" and "captions" (the generated strings).
    """
    images, refs = images_and_references(dataset, model.tokenizer, references, limit)
    captions = generate_captions(model, images, beam_width, length_penalty, batch_size)
    return {**corpus_bleu(captions, refs), "captions": captions}
