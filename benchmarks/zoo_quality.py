"""The quality table: every registered model, trained with its own recipe, on its offline data.

What `zoo train --model NAME --small` gives a new user, measured: each model is built with its
registry `small_config` and trained by `zoo.training.train` with nothing but the model's
recipe (optimizer, learning rate, schedule, epochs; at most `MAX_EPOCHS` on the digits) on the offline
dataset of its task, then scored on that dataset's test split against the issue's targets:

    image classifiers      digits (scikit-learn, 8x8)   test accuracy >= 0.95
    sequence regressors    adding problem, T=100        test MSE < 0.01 (LSTM, GRU; the
                                                        answer 1 scores 1/6 = 0.167)
    sequence classifiers   copy task (delay 20)         test loss vs the memoryless baseline
    language model         tiny_corpus                  test perplexity < the corpus' unigram
                                                        perplexity
    captioners             shapes_captions              test BLEU-4 >= 0.5

A model that misses its target is a defect of its recipe or its initialisation, not a row to
leave out. The tanh `rnn_regressor` and the copy task rows have no target: they show what the
vanishing gradient does (see `benchmarks/rnn_adding.py`).

    python -m benchmarks zoo_quality                    # every model (an hour or two on 2 cores)
    python -m benchmarks.zoo_quality vgg11 lstm_regressor [--readme]
    python -m benchmarks.zoo_quality --quick            # lenet5 and lstm_regressor, 2 epochs

Every run records its rows in `runs/zoo_quality.json` (one entry per model: the row, the
date, the machine), replacing the entries of the models it measured, so a model retrained
after a fix updates its own row. `--readme` writes the table of every registered model
recorded there into README.md between `<!-- quality:start -->` and `<!-- quality:end -->`,
with the dates and the machine it was measured on.
"""

import argparse
import dataclasses
import datetime
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections import Counter

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.harness import Result, format_table  # noqa: E402

MAX_EPOCHS = 10  # the budget on the digits; the other tasks train their recipe's epochs
RECORD = os.path.join("runs", "zoo_quality.json")
README_START = "<!-- quality:start -->"
README_END = "<!-- quality:end -->"


@dataclasses.dataclass(frozen=True)
class Task:
    """How one registry task is scored."""

    dataset: str
    metric: str  # a key of TrainResult.test_metrics, or "bleu4"
    unit: str
    higher_is_better: bool
    target: float | None  # the target for the metric (None: no target)
    dataset_kwargs: dict = dataclasses.field(default_factory=dict)


TASKS = {
    "image-classification": Task("digits", "accuracy", "accuracy", True, 0.95),
    "sequence-regression": Task(
        "adding_problem", "loss", "MSE", False, 0.01, {"sequence_length": 100}
    ),
    "sequence-classification": Task("copy_task", "loss", "cross-entropy", False, None,
                                    {"delay": 20}),
    "language-modeling": Task("tiny_corpus", "perplexity", "perplexity", False, None),
    "image-captioning": Task("shapes_captions", "bleu4", "BLEU-4", True, 0.5),
}
NO_TARGET = {"rnn_regressor"}  # the tanh RNN cannot learn T=100: the row shows why LSTMs exist
QUICK_MODELS = ("lenet5", "lstm_regressor")


def unigram_perplexity(text):
    """exp(entropy) of the character distribution: a model that ignores all context."""
    counts = Counter(text)
    total = sum(counts.values())
    entropy = -sum(c / total * math.log(c / total) for c in counts.values())
    return math.exp(entropy)


def reference(name, task, splits):
    """(figure, label, target): what the model's test metric is compared with."""
    if task.dataset == "adding_problem":
        baseline = splits.extras["baseline_mse"]
        if name in NO_TARGET:
            return baseline, "predict 1", None
        return task.target, f"target; predict 1: {baseline:.3f}", task.target
    if task.dataset == "copy_task":
        return splits.extras["baseline_cross_entropy"], "memoryless baseline", None
    if task.dataset == "tiny_corpus":
        unigram = unigram_perplexity(splits.extras["text"])
        return unigram, "unigram perplexity", unigram
    return task.target, "target", task.target


def _caption_callbacks(task, splits):
    if task.metric != "bleu4":
        return []
    from zoo.training.caption_metrics import CaptionMetrics

    # One element per test image, scored against all of its references, as on validation.
    return [CaptionMetrics(splits.test, references=splits.extras.get("test_references"),
                           prefix="test_", max_examples=500)]


def measure(name, epochs=None, seed=0, verbose=0):
    """Train `name` with its recipe on its task's offline dataset; returns a `Result`.

    `epochs` overrides the recipe's (then no target is judged: a shortened run says nothing
    about the recipe)."""
    import zoo
    from zoo.data import load_dataset
    from zoo.training import train

    info = zoo.model_info(name)
    task = TASKS[info.task]
    splits = load_dataset(task.dataset, **task.dataset_kwargs)
    judged = epochs is None
    epochs = epochs or (min(info.recipe.epochs, MAX_EPOCHS) if task.dataset == "digits"
                        else info.recipe.epochs)
    callbacks = _caption_callbacks(task, splits)
    with tempfile.TemporaryDirectory(prefix=f"zoo_quality_{name}_") as out:
        started = time.perf_counter()
        result = train(
            model=name,
            dataset=task.dataset,
            dataset_kwargs=dict(task.dataset_kwargs),
            small=True,
            epochs=epochs,
            seed=seed,
            out=out,
            restart=True,
            save_best=False,
            verbose=verbose,
            callbacks=callbacks,
        )
        seconds = time.perf_counter() - started
    if task.metric == "bleu4":
        value = result.history[-1]["test_bleu4"]
    else:
        value = result.test_metrics[task.metric]
    figure, label, target = reference(name, task, splits)
    return Result(
        benchmark="zoo_quality",
        case=f"{name}: {task.dataset}, {epochs} epochs, {seconds:.0f} s",
        ours=float(value),
        peer=float(figure),
        unit=f"test {task.unit}",
        peer_name=label,
        # The ratio is ours / figure (higher is better) or figure / ours: >= 1 meets it.
        target=None if target is None or not judged else 1.0,
        higher_is_better=task.higher_is_better,
    )


def models(quick=False):
    import zoo

    return list(QUICK_MODELS) if quick else zoo.list_models()


def run(quick=False, names=None, verbose=0):
    results = []
    for name in names or models(quick):
        print(f"training {name} with its recipe ...", file=sys.stderr, flush=True)
        results.append(measure(name, epochs=2 if quick else None, verbose=verbose))
        print(format_table(results[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    return results


def machine():
    """One line: the CPU (or accelerators) the table was measured on."""
    import tensorflow as tf

    accelerators = [d.device_type for d in tf.config.list_physical_devices() if d.device_type
                    != "CPU"]
    cpu = platform.processor() or platform.machine()
    where = f"{os.cpu_count()} CPU cores ({cpu}), {platform.system()}"
    return where + (f", {len(accelerators)} {accelerators[0]}" if accelerators else "")


def record(results, path=RECORD):
    """Add `results` to the JSON record (replacing the same models' entries); returns it."""
    entries = load_record(path)
    today, where = datetime.date.today().isoformat(), machine()
    for result in results:
        model = result.case.split(": ", 1)[0]
        entries[model] = {"result": dataclasses.asdict(result), "date": today, "machine": where}
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(entries, f, indent=1, sort_keys=True)
    return entries


def load_record(path=RECORD):
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def markdown(entries):
    """The README's quality table from recorded entries, with the dates and the machines."""
    import zoo

    names = [name for name in zoo.list_models() if name in entries]
    dates = sorted({entries[n]["date"] for n in names})
    machines = sorted({entries[n]["machine"] for n in names})
    when = dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"
    lines = [
        f"Measured {when} on {'; '.join(machines)} with `python -m benchmarks zoo_quality "
        "--readme` (seconds on a machine shared with other jobs): each model at its "
        "`small_config`, trained with its recipe only.",
        "",
        "| model | dataset, epochs, seconds | test metric | reference | meets it |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for name in names:
        r = Result(**entries[name]["result"])
        setting = r.case.split(": ", 1)[1]
        verdict = "-" if r.target is None else ("yes" if r.ratio >= r.target else "**no**")
        lines.append(
            f"| `{name}` | {setting} | {r.ours:.4g} ({r.unit}) | {r.peer:.4g} ({r.peer_name}) "
            f"| {verdict} |"
        )
    return "\n".join(lines) + "\n"


def update_readme(entries, path="README.md"):
    """Replace the table between the README's quality markers."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{head}{README_START}\n{markdown(entries)}{README_END}{tail}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="models (default: every registered model)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_MODELS}, 2 epochs")
    parser.add_argument(
        "--readme", action="store_true", help=f"write the table of {RECORD} into README.md"
    )
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args(argv)
    results = run(quick=args.quick, names=args.names or None, verbose=args.verbose)
    print(format_table(results))
    entries = record(results) if not args.quick else load_record()
    if args.readme:
        update_readme(entries)


if __name__ == "__main__":
    main()
