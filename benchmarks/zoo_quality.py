"""The quality table: every registered model, trained with its own recipe, on its offline data,
over 3 seeds, next to baselines measured by the same run on the same splits.

Each model is built with its registry `small_config` and trained by `zoo.training.train` with
nothing but the model's recipe (optimizer, learning rate, schedule, epochs) on the offline
dataset of its task, once per seed (weights, data order, dropout; the splits are fixed), and
scored on that dataset's test split, read once at the end of each run:

    image classifiers      digits (scikit-learn, 8x8)   test accuracy, next to an RBF SVM and
                                                        logistic regression on the same split
    sequence regressors    adding problem, T=100        test MSE < 0.01 (LSTM, GRU; answering
                                                        1 scores about 1/6)
    sequence classifiers   copy task (delay 20)         test loss vs the memoryless baseline
    language model         tiny_corpus                  test perplexity < the unigram model's
    captioners             shapes_captions              test BLEU-4 >= 0.5

`zoo train` (LeNet-5 at its full 32x32 input, the README's first command) is a row of its own.
The recipes were chosen on validation data only (benchmarks/TUNING.md); this benchmark is the
one place that reads the test split.

    python -m benchmarks.zoo_quality lenet5 "zoo train" char_lm --readme   # 3 seeds each
    python -m benchmarks zoo_quality                    # every model (many hours on 2 cores)
    python -m benchmarks.zoo_quality --quick            # lenet5 and lstm_regressor, 2 epochs,
                                                        # 1 seed, nothing recorded

Rows are merged into the committed `benchmarks/results/zoo_quality.json` (only the rows
measured are replaced), and `--readme` renders the whole file into README.md between
`<!-- quality:start -->` and `<!-- quality:end -->`.
"""

import argparse
import dataclasses
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import quality_record  # noqa: E402
from benchmarks.harness import Result, format_table  # noqa: E402

SEEDS = (0, 1, 2)
DEFAULT_RUN = "zoo train"  # the README's first command: LeNet-5, full size, its recipe
README_START = "<!-- quality:start -->"
README_END = "<!-- quality:end -->"


@dataclasses.dataclass(frozen=True)
class Task:
    """How one registry task is scored."""

    dataset: str
    metric: str  # a key of TrainResult.test_metrics, or "bleu4"
    unit: str
    higher_is_better: bool
    target: float | None  # fixed target (None: the task's baseline, or no target)
    dataset_kwargs: dict = dataclasses.field(default_factory=dict)


TASKS = {
    "image-classification": Task("digits", "accuracy", "test accuracy", True, None),
    "sequence-regression": Task(
        "adding_problem", "loss", "test MSE", False, 0.01, {"sequence_length": 100}
    ),
    "sequence-classification": Task("copy_task", "loss", "test cross-entropy", False, None,
                                    {"delay": 20}),
    "language-modeling": Task("tiny_corpus", "perplexity", "test perplexity", False, None),
    "image-captioning": Task("shapes_captions", "bleu4", "test BLEU-4", True, 0.5),
}
NO_TARGET = {"rnn_regressor"}  # the tanh RNN cannot learn T=100: the row shows why LSTMs exist
QUICK_MODELS = ("lenet5", "lstm_regressor")
SVM_BASELINE = "RBF SVM, scikit-learn defaults (SVC())"


def baselines(datasets):
    """The baseline rows of these datasets' tasks, measured now: {row name: row}."""
    rows, where = {}, quality_record.provenance()

    def add(name, dataset, unit, value, higher_is_better):
        rows[name] = {"kind": "baseline", "dataset": dataset, "unit": unit, "values": [value],
                      "seeds": [], "mean": value, "std": 0.0,
                      "higher_is_better": higher_is_better, **where}

    if "digits" in datasets:
        for name, accuracy in quality_record.digits_baselines().items():
            add(name, "digits (the loader's split: 1,437 train / 360 test)", "test accuracy",
                accuracy, True)
    if "adding_problem" in datasets:
        add("always answer 1", "adding_problem (T=100, test split)", "test MSE",
            quality_record.adding_baseline(100), False)
    if "tiny_corpus" in datasets:
        add("unigram model (training-text character frequencies)",
            "tiny_corpus (test text)", "test perplexity", quality_record.corpus_baseline(),
            False)
    return rows


def reference(name, task, splits, baseline_rows):
    """(text, target): what the model's test metric is compared with."""
    if task.dataset == "adding_problem":
        mse = baseline_rows.get("always answer 1", {}).get("mean", splits.extras["baseline_mse"])
        if name in NO_TARGET:
            return f"always 1: {mse:.3f}", None
        return f"< {task.target} (always 1: {mse:.3f})", task.target
    if task.dataset == "copy_task":
        return f"memoryless: {splits.extras['baseline_cross_entropy']:.4f}", None
    if task.dataset == "tiny_corpus":
        row = baseline_rows.get("unigram model (training-text character frequencies)")
        unigram = row["mean"] if row else quality_record.corpus_baseline()
        return f"< unigram {unigram:.2f}", unigram
    if task.dataset == "digits":
        svm = baseline_rows.get(SVM_BASELINE)
        accuracy = svm["mean"] if svm else quality_record.digits_baselines()[SVM_BASELINE]
        return f">= RBF SVM {accuracy:.4f}", accuracy
    return f">= {task.target}", task.target


def _caption_callbacks(task, splits):
    if task.metric != "bleu4":
        return []
    from zoo.training.caption_metrics import CaptionMetrics

    # One element per test image, scored against all of its references, as on validation.
    return [CaptionMetrics(splits.test, references=splits.extras.get("test_references"),
                           prefix="test_", max_examples=500)]


def measure_once(name, seed, epochs=None, verbose=0):
    """One training run of a row; returns (test metric, seconds, epochs)."""
    import zoo
    from zoo.data import load_dataset
    from zoo.training import train

    model = "lenet5" if name == DEFAULT_RUN else name
    task = TASKS[zoo.model_info(model).task]
    splits = load_dataset(task.dataset, **task.dataset_kwargs)
    overrides = {"epochs": epochs} if epochs else {}
    with tempfile.TemporaryDirectory(prefix="zoo_quality_") as out:
        started = time.perf_counter()
        result = train(model=model, dataset=task.dataset,
                       dataset_kwargs=dict(task.dataset_kwargs), small=name != DEFAULT_RUN,
                       seed=seed, out=out, restart=True, save_best=False, verbose=verbose,
                       callbacks=_caption_callbacks(task, splits), **overrides)
        seconds = time.perf_counter() - started
    value = (result.history[-1]["test_bleu4"] if task.metric == "bleu4"
             else result.test_metrics[task.metric])
    return float(value), seconds, len(result.history)


def measure(name, seeds=SEEDS, baseline_rows=None, epochs=None, verbose=0):
    """The row of one model (or `DEFAULT_RUN`) over `seeds`."""
    import zoo
    from zoo.data import load_dataset

    model = "lenet5" if name == DEFAULT_RUN else name
    task = TASKS[zoo.model_info(model).task]
    values, seconds = [], []
    for seed in seeds:
        value, took, ran = measure_once(name, seed, epochs, verbose)
        values.append(value)
        seconds.append(round(took, 1))
        print(f"  {name} seed {seed}: {value:.4g} ({took:.0f} s)", file=sys.stderr, flush=True)
    splits = load_dataset(task.dataset, **task.dataset_kwargs)
    text, target = reference(name, task, splits, baseline_rows or {})
    mean, std = quality_record.summary(values)
    return {
        "kind": "model", "dataset": task.dataset, "epochs": ran, "small": name != DEFAULT_RUN,
        "unit": task.unit, "seeds": list(seeds), "values": values, "mean": mean, "std": std,
        "seconds": seconds, "reference": text, "target": target,
        "higher_is_better": task.higher_is_better, **quality_record.provenance(),
    }


def as_result(name, row):
    """A `harness.Result` for `python -m benchmarks`' table (ratio >= 1 meets the target)."""
    return Result(benchmark="zoo_quality", case=f"{name}: {row['dataset']}, {len(row['values'])}"
                  " seed(s)", ours=row["mean"], peer=row["target"] or row["mean"],
                  unit=row["unit"], peer_name=row["reference"],
                  target=None if row["target"] is None else 1.0,
                  higher_is_better=row["higher_is_better"])


def order():
    import zoo

    return [DEFAULT_RUN] + zoo.list_models()


def measure_rows(names, seeds=SEEDS, verbose=0, record=True):
    """Baselines of the tasks involved, then every named row: {row name: row}. With `record`,
    each row is merged into the committed record as soon as it is measured (an interrupted
    run keeps the rows it finished)."""
    import zoo

    datasets = {TASKS[zoo.model_info("lenet5" if n == DEFAULT_RUN else n).task].dataset
                for n in names}
    rows = baselines(datasets)
    if record:
        quality_record.merge(rows)
    for name in names:
        print(f"training {name} with its recipe ...", file=sys.stderr, flush=True)
        rows[name] = measure(name, seeds, rows, verbose=verbose)
        if record:
            quality_record.merge({name: rows[name]})
    return rows


def run(quick=False, names=None, verbose=0):
    """`python -m benchmarks`' entry: quick runs record nothing; full runs merge their rows."""
    if quick:
        results = []
        for name in QUICK_MODELS:
            value, _, _ = measure_once(name, 0, epochs=2, verbose=verbose)
            results.append(Result("zoo_quality", f"{name}: 2 epochs, seed 0 (quick)", value,
                                  value, "test metric", "itself"))
        return results
    rows = measure_rows(names or order(), verbose=verbose)
    return [as_result(n, r) for n, r in rows.items() if r["kind"] == "model"]


def update_readme(record, path="README.md"):
    """Replace the table between the README's quality markers with the whole record's."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{head}{README_START}\n{quality_record.markdown(record, order())}"
                f"{README_END}{tail}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*",
                        help=f"models or {DEFAULT_RUN!r} (default: all, and {DEFAULT_RUN!r})")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_MODELS}, 2 epochs")
    parser.add_argument("--readme", action="store_true",
                        help="render the whole committed record into README.md")
    parser.add_argument("--render-only", action="store_true",
                        help="measure nothing; with --readme, re-render the table")
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(order()))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {order()}")
    if args.quick:
        print(format_table(run(quick=True, verbose=args.verbose)))
        return
    if not args.render_only:
        rows = measure_rows(args.names or order(), tuple(args.seeds), args.verbose)
        print(format_table([as_result(n, r) for n, r in rows.items() if r["kind"] == "model"]))
    if args.readme:
        update_readme(quality_record.load())


if __name__ == "__main__":
    main()
