"""Caption metrics: our BLEU against NLTK and COCO's, the reference scorers, the fallbacks,
`evaluate_captions` and the training callback."""

import math
import shutil
import warnings

import numpy as np
import pytest
import tensorflow as tf

from zoo.captioning import metrics
from zoo.captioning.show_and_tell import injection_captioner
from zoo.data.captions import shapes_examples
from zoo.training.caption_metrics import CaptionMetrics

HAS_COCO = metrics._has_pycocoevalcap()
HAS_JAVA = shutil.which("java") is not None
needs_coco = pytest.mark.skipif(not HAS_COCO, reason="pycocoevalcap is not installed")


def noisy_captions(seed=0, n=40):
    """Shapes references, and hypotheses made from them with words dropped and swapped."""
    rng = np.random.default_rng(seed)
    _, references = shapes_examples(n, image_size=16, seed=seed)
    vocabulary = sorted({w for refs in references for r in refs for w in r.split()})
    hypotheses = []
    for refs in references:
        words = refs[rng.integers(len(refs))].split()
        words = [w for w in words if rng.random() > 0.15]
        words = [vocabulary[rng.integers(len(vocabulary))] if rng.random() < 0.15 else w
                 for w in words]
        hypotheses.append(" ".join(words).capitalize() + ".")
    return hypotheses, references


def test_our_bleu_matches_nltk():
    from nltk.translate.bleu_score import corpus_bleu as nltk_corpus_bleu

    for seed in range(3):
        hypotheses, references = noisy_captions(seed)
        # NLTK counts max(1, n-grams) guesses for a hypothesis shorter than n words (COCO
        # and we count 0): compare where the two definitions agree.
        kept = [i for i, h in enumerate(hypotheses) if len(h.split()) >= 4]
        hypotheses = [hypotheses[i] for i in kept]
        references = [references[i] for i in kept]
        ours = metrics.corpus_bleu(hypotheses, references)
        tokens = [metrics.standardize(h).split() for h in hypotheses]
        refs = [[metrics.standardize(r).split() for r in rs] for rs in references]
        for n in range(1, 5):
            expected = nltk_corpus_bleu(refs, tokens, weights=tuple([1.0 / n] * n))
            assert ours[f"bleu_{n}"] == pytest.approx(expected, rel=1e-9)


@needs_coco
def test_our_bleu_matches_the_coco_reference():
    from pycocoevalcap.bleu.bleu import Bleu

    hypotheses, references = noisy_captions(1)
    ours = metrics.corpus_bleu(hypotheses, references)
    keys = range(len(hypotheses))
    coco, _ = Bleu(4).compute_score(
        {i: [metrics.standardize(r) for r in references[i]] for i in keys},
        {i: [metrics.standardize(hypotheses[i])] for i in keys},
        verbose=0,
    )
    for n in range(1, 5):
        assert ours[f"bleu_{n}"] == pytest.approx(coco[n - 1], rel=1e-6)
    assert metrics.caption_scores(hypotheses, references, ["bleu"]) == pytest.approx(ours)


def test_bleu_closed_forms():
    refs = [["a red circle above a blue square", "a blue square below a red circle"]]
    assert metrics.corpus_bleu(["A red circle above a blue square."], refs)["bleu_4"] == 1.0
    # all unigrams match, hypothesis of 3 words vs closest reference of 7: BP = exp(1 - 7/3)
    got = metrics.corpus_bleu(["a red circle"], refs, max_order=1)["bleu_1"]
    assert got == pytest.approx(math.exp(1 - 7 / 3))
    assert metrics.corpus_bleu(["green"], refs)["bleu_1"] == 0.0
    with pytest.raises(ValueError, match="one entry per image"):
        metrics.corpus_bleu(["a", "b"], refs)
    with pytest.raises(ValueError, match="hypotheses"):
        metrics.corpus_bleu([], [])
    with pytest.raises(TypeError, match="list of lists"):
        metrics.corpus_bleu(["a"], ["a"])
    with pytest.raises(ValueError, match="max_order"):
        metrics.corpus_bleu(["a"], [["a"]], max_order=5)


def lcs(a, b):
    table = np.zeros((len(a) + 1, len(b) + 1), int)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1, j + 1] = table[i, j] + 1 if x == y else max(table[i, j + 1], table[i + 1, j])
    return table[-1, -1]


@needs_coco
def test_rouge_l_and_cider_d_from_the_reference():
    hypotheses, references = noisy_captions(2, n=12)
    scores = metrics.caption_scores(hypotheses, references, ["rouge_l", "cider"])
    # ROUGE-L (Lin 2004) as COCO computes it: per image, F with beta = 1.2 from the best
    # LCS precision and recall over the references; the corpus score is the mean.
    beta = 1.2
    per_image = []
    for hypothesis, refs in zip(hypotheses, references):
        h = metrics.standardize(hypothesis).split()
        lengths = [lcs(metrics.standardize(r).split(), h) for r in refs]
        precision = max(n / len(h) for n in lengths)
        recall = max(n / len(metrics.standardize(r).split()) for n, r in zip(lengths, refs))
        per_image.append(
            (1 + beta**2) * precision * recall / (recall + beta**2 * precision)
            if precision and recall else 0.0
        )
    assert scores["rouge_l"] == pytest.approx(np.mean(per_image), rel=1e-9)
    # CIDEr-D: a perfect caption set scores far above the noisy one (x10 scale).
    perfect = metrics.caption_scores([r[0] for r in references], references, ["cider"])
    assert perfect["cider"] > scores["cider"] > 0


@needs_coco
@pytest.mark.slow  # the METEOR jar loads its paraphrase table: ~15 s on a small machine
@pytest.mark.skipif(not HAS_JAVA, reason="METEOR needs a Java runtime")
def test_meteor_runs_through_java():
    hypotheses, references = noisy_captions(3, n=6)
    # Half the images get a perfect caption: the corpus score sits between the halves'.
    hypotheses[:3] = [refs[0] for refs in references[:3]]
    score = metrics.caption_scores(hypotheses, references, ["meteor"])["meteor"]
    assert 0.3 < score < 1.0


def test_without_the_reference_implementation_bleu_falls_back(monkeypatch):
    hypotheses, references = noisy_captions(0, n=10)
    monkeypatch.setattr(metrics, "_has_pycocoevalcap", lambda: False)
    with pytest.warns(RuntimeWarning, match=r"zoo\[captions\]"):
        scores = metrics.caption_scores(hypotheses, references)
    assert set(scores) == {"bleu_1", "bleu_2", "bleu_3", "bleu_4"}
    assert scores == pytest.approx(metrics.corpus_bleu(hypotheses, references))
    assert set(metrics.unavailable_metrics()) == {"meteor", "rouge_l", "cider"}


@needs_coco
def test_without_java_meteor_and_spice_are_left_out_with_a_reason(monkeypatch):
    hypotheses, references = noisy_captions(0, n=5)
    monkeypatch.setattr(metrics.shutil, "which", lambda name: None)
    with pytest.warns(RuntimeWarning, match="meteor needs a Java runtime"):
        scores = metrics.caption_scores(hypotheses, references, ["bleu", "meteor", "spice"])
    assert set(scores) == {"bleu_1", "bleu_2", "bleu_3", "bleu_4"}
    with pytest.raises(ValueError, match="Did you mean 'cider'"):
        metrics.caption_scores(hypotheses, references, ["cidr"])


@needs_coco
@pytest.mark.skipif(not HAS_JAVA, reason="SPICE needs a Java runtime")
def test_spice_without_its_models_says_where_they_come_from():
    if metrics._spice_models_present():
        pytest.skip("the Stanford CoreNLP models are installed here")
    assert "CoreNLP" in metrics.unavailable_metrics(["spice"])["spice"]


@pytest.fixture
def small_captioner():
    return injection_captioner(input_shape=(16, 16, 3), conv_filters=(8,), image_units=8,
                               embedding_dim=8, units=8, max_length=10)


def test_evaluate_captions_on_images_with_their_references(small_captioner):
    model = small_captioner
    images, references = shapes_examples(6, image_size=16, seed=4)
    dataset = tf.data.Dataset.from_generator(
        lambda: iter(zip(images, references)),
        output_signature=(tf.TensorSpec((16, 16, 3), tf.float32),
                          tf.TensorSpec((None,), tf.string)),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = metrics.evaluate_captions(model, dataset, metrics=["bleu", "cider"],
                                           beam_width=2, max_examples=5)
        expected = metrics.caption_scores(model.caption(images[:5], beam_width=2),
                                          references[:5], ["bleu", "cider"])
    assert result["captions"] == model.caption(images[:5], beam_width=2)
    assert {k: v for k, v in result.items() if k != "captions"} == pytest.approx(expected)
    with pytest.raises(ValueError, match="references"):
        metrics.evaluate_captions(model, tf.data.Dataset.from_tensor_slices(images))


def test_caption_metrics_callback_adds_validation_scores(small_captioner):
    from zoo.data import load_dataset

    splits = load_dataset("shapes_captions", num_train=20, num_test=8, image_size=16)
    callback = CaptionMetrics(splits.test, references=splits.extras["test_references"],
                              max_examples=6, every=2)
    callback.set_model(small_captioner)
    logs = {"val_loss": 1.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        callback.on_epoch_end(0, logs)
        assert set(logs) == {"val_loss"}  # every=2: not after the first epoch
        callback.on_epoch_end(1, logs)
        captions = small_captioner.greedy(callback._images_and_references()[0])
        expected = metrics.caption_scores(captions, splits.extras["test_references"][:6],
                                          ["bleu", "cider"])
    assert len(callback._images_and_references()[0]) == 6
    assert logs["val_bleu4"] == pytest.approx(expected["bleu_4"])
    if HAS_COCO:
        assert logs["val_cider"] == pytest.approx(expected["cider"])
    # The loader's own format: one reference per element, decoded from caption_out.
    images, references = metrics.images_and_references(splits.test, small_captioner.tokenizer,
                                                       max_examples=3)
    assert [r[0] for r in references] == [r[0] for r in splits.extras["test_references"][:3]]
    assert images.shape == (3, 16, 16, 3)
