"""Caption metrics where captioning users look for them: in the training history (validation
split, every epoch) and in `zoo evaluate` (test split, every reference of each image)."""

import numpy as np
import pytest

from zoo.captioning import metrics as caption_metrics
from zoo.data import load_dataset
from zoo.training import evaluate_saved_model, train

DATA = {"num_train": 48, "num_validation": 8, "num_test": 8, "image_size": 16}


@pytest.fixture(scope="module")
def captioner_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("captioner")
    with pytest.MonkeyPatch.context() as patch:  # no JVM start-up for METEOR in the tests
        patch.setattr(caption_metrics.shutil, "which", lambda name: None)
        result = train(model="show_and_tell", dataset="shapes_captions", small=True, epochs=2,
                       batch_size=16, dataset_kwargs=DATA, out=str(out), verbose=0)
    return result


def test_training_logs_bleu4_and_cider_on_the_validation_split(captioner_run):
    history = captioner_run.history
    assert len(history) == 2
    for row in history:
        assert 0.0 <= row["val_bleu4"] <= 1.0
        assert row["val_cider"] >= 0.0
    # What the callback reports is the greedy captions of the validation images scored
    # against all their references.
    splits = load_dataset("shapes_captions", **DATA)
    images = np.stack([x[0][0] for x in splits.validation.as_numpy_iterator()])
    captions = captioner_run.model.greedy(images)
    expected = caption_metrics.caption_scores(
        captions, splits.extras["validation_references"], ("bleu", "cider")
    )
    np.testing.assert_allclose(history[-1]["val_bleu4"], expected["bleu_4"], rtol=1e-6)
    np.testing.assert_allclose(history[-1]["val_cider"], expected["cider"], rtol=1e-6)


def test_evaluate_reports_the_coco_caption_metrics_of_the_test_split(captioner_run, monkeypatch):
    monkeypatch.setattr(caption_metrics.shutil, "which", lambda name: None)
    with pytest.warns(RuntimeWarning, match="meteor needs a Java runtime"):
        metrics, name = evaluate_saved_model(captioner_run.run_dir)
    assert name == "shapes_captions"
    assert {"loss", "accuracy", "perplexity", "bleu_4", "rouge_l", "cider"} <= set(metrics)
    splits = load_dataset("shapes_captions", **DATA)
    images = np.stack([x[0][0] for x in splits.test.as_numpy_iterator()])
    expected = caption_metrics.caption_scores(
        captioner_run.model.greedy(images), splits.extras["test_references"],
        ("bleu", "rouge_l", "cider"),
    )
    for key in ("bleu_4", "rouge_l", "cider"):
        np.testing.assert_allclose(metrics[key], expected[key], rtol=1e-6)
