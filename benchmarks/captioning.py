"""Captioning quality: `show_and_tell` and `show_attend_tell` trained with their defaults.

Each model is trained by the zoo's engine (`zoo.training.train`, what `zoo train --model NAME`
runs) with its registry recipe on its default dataset, the offline synthetic
"shapes_captions" (3000 training images with two references each, 10% held out for
validation; 300 test images), then captions the test images with greedy search and with beam
search (width 3). Printed: the COCO caption metrics of both (BLEU-1..4, ROUGE-L and CIDEr-D
from `pycocoevalcap` when installed; METEOR with `--meteor`, it needs Java), and as results:
BLEU-4 of beam 3 against the required 0.5, beam 3 against greedy (target >= 1: the beam is
at least as good), and the training time.

The scores use the zoo's caption standardisation, not COCO's PTB tokenizer, on a synthetic
set: they are not comparable with published COCO figures.

    python -m benchmarks captioning [--quick]
"""

import os
import sys
import tempfile
import time
import warnings

from benchmarks.harness import Result

MODELS = ("show_and_tell", "show_attend_tell")
REQUIRED_BLEU4 = 0.5


def train_and_score(name, quick=False, metrics=("bleu", "rouge_l", "cider"), seed=0):
    """Train `name` with its defaults (fewer examples and epochs when `quick`), then score.

    Returns:
        A dict: "train_seconds", "greedy" and "beam3" (each the scores and "captions"),
        "references".
    """
    from zoo.captioning.metrics import evaluate_captions
    from zoo.data import load_dataset
    from zoo.training import TrainConfig, train

    dataset_kwargs = {"num_train": 1000, "num_test": 200} if quick else {}
    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(
            model=name,
            dataset="shapes_captions",
            dataset_kwargs=dataset_kwargs,
            epochs=3 if quick else None,  # None: the recipe's
            seed=seed,
            out=os.path.join(out, name),
            verbose=0,
        )
        start = time.perf_counter()
        result = train(config)
        train_seconds = time.perf_counter() - start
    splits = load_dataset("shapes_captions", seed=seed, **dataset_kwargs)
    references = splits.extras["test_references"]
    report = {"train_seconds": train_seconds, "references": references}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # metrics left out are listed below
        for key, beam_width in (("greedy", 1), ("beam3", 3)):
            report[key] = evaluate_captions(
                result.model, splits.test, references=references, beam_width=beam_width,
                metrics=metrics,
            )
    return report


def metric_table(reports):
    """Rows model x search, columns the metrics (as printed by `run`)."""
    columns = [c for c in ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider")
               if any(c in r[k] for r in reports.values() for k in ("greedy", "beam3"))]
    names = {"bleu_1": "BLEU-1", "bleu_2": "BLEU-2", "bleu_3": "BLEU-3", "bleu_4": "BLEU-4",
             "meteor": "METEOR", "rouge_l": "ROUGE-L", "cider": "CIDEr-D"}
    lines = ["model             search   " + "  ".join(f"{names[c]:>7}" for c in columns)]
    for name, report in reports.items():
        for key, label in (("greedy", "greedy"), ("beam3", "beam 3")):
            values = "  ".join(f"{report[key][c]:7.3f}" for c in columns)
            lines.append(f"{name:<17} {label:<8} {values}")
    return "\n".join(lines)


def run(quick=False, meteor=False):
    from zoo.captioning.metrics import unavailable_metrics

    metrics = ("bleu", "meteor", "rouge_l", "cider") if meteor else ("bleu", "rouge_l", "cider")
    reports = {name: train_and_score(name, quick, metrics) for name in MODELS}
    missing = unavailable_metrics(metrics)
    print(metric_table(reports), file=sys.stderr)
    for metric, why in missing.items():
        print(f"({metric} left out: {why})", file=sys.stderr)
    for name, report in reports.items():
        example = report["beam3"]["captions"][0], report["references"][0]
        print(f"{name}: beam 3 says {example[0]!r}; references {example[1]}", file=sys.stderr)
    results = []
    for name, report in reports.items():
        beam4, greedy4 = report["beam3"]["bleu_4"], report["greedy"]["bleu_4"]
        results += [
            Result("captioning", f"{name} BLEU-4 (beam 3) vs required", beam4, REQUIRED_BLEU4,
                   "BLEU-4", f"required {REQUIRED_BLEU4}", target=1.0, higher_is_better=True),
            Result("captioning", f"{name} BLEU-4: beam 3 vs greedy", beam4, greedy4, "BLEU-4",
                   "greedy", target=1.0, higher_is_better=True),
        ]
        if "cider" in report["greedy"]:
            results.append(
                Result("captioning", f"{name} CIDEr-D: beam 3 vs greedy",
                       report["beam3"]["cider"], report["greedy"]["cider"], "CIDEr-D", "greedy",
                       target=None, higher_is_better=True)
            )
        results.append(
            Result("captioning", f"{name} training time (recipe defaults)",
                   report["train_seconds"], 600.0, "s", "10-minute budget", target=1.0)
        )
    return results


if __name__ == "__main__":
    from benchmarks.harness import format_table

    print(format_table(run(quick="--quick" in sys.argv, meteor="--meteor" in sys.argv)))
