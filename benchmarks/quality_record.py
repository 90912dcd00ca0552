"""The quality table's committed record: provenance, baselines, merging, and the README table.

`benchmarks/results/zoo_quality.json` holds one entry per row: a model (or the default run,
`zoo train`) or a baseline, with its per-seed values, mean and std, and where, when and with
what it was measured (date, machine, library versions, git commit). Re-measuring some rows
replaces those rows only (`merge`). The README table is rendered from the whole file
(`markdown`): rows measured over fewer than `FULL_SEEDS` seeds are listed apart, as such.
"""

import datetime
import json
import math
import os
import platform
import statistics
import subprocess
from collections import Counter

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
RECORD = os.path.join(RESULTS_DIR, "zoo_quality.json")
FULL_SEEDS = 3
DIGITS_SPLIT_SEED = 0  # zoo.data.images.load_digits_dataset's default split


def machine():
    """One line: the CPU (or accelerators) the row was measured on."""
    import tensorflow as tf

    accelerators = [d.device_type for d in tf.config.list_physical_devices()
                    if d.device_type != "CPU"]
    cpu = platform.processor() or platform.machine()
    where = f"{os.cpu_count()} CPU cores ({cpu}), {platform.system()}"
    return where + (f", {len(accelerators)} {accelerators[0]}" if accelerators else "")


def git_commit():
    """The checked-out commit, with "+dirty" when the tree has uncommitted changes
    (`ZOO_QUALITY_COMMIT` names it when measuring from an exported tree, which has no .git)."""
    if os.environ.get("ZOO_QUALITY_COMMIT"):
        return os.environ["ZOO_QUALITY_COMMIT"]
    root = os.path.dirname(RESULTS_DIR)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root,
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty.strip() else "")


def versions():
    import keras
    import numpy
    import sklearn
    import tensorflow

    return {"python": platform.python_version(), "tensorflow": tensorflow.__version__,
            "keras": keras.__version__, "numpy": numpy.__version__,
            "scikit-learn": sklearn.__version__}


def provenance():
    """Date, machine, library versions and git commit of a measurement."""
    return {"date": datetime.date.today().isoformat(), "machine": machine(),
            "versions": versions(), "commit": git_commit()}


def summary(values):
    """(mean, std): the sample std over seeds (0 for one value)."""
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


# ---------------------------------------------------------------- baselines (same run, same split)

def digits_arrays():
    """Exactly the loader's train/test examples (`load_digits_dataset(split_seed=0)`), flat."""
    from zoo.data.images import _digits_arrays

    x_train, x_test, y_train, y_test = _digits_arrays(DIGITS_SPLIT_SEED)
    return (x_train.reshape(len(x_train), -1) / 16.0, x_test.reshape(len(x_test), -1) / 16.0,
            y_train, y_test)


def digits_baselines():
    """{name: test accuracy} of scikit-learn classifiers trained on the loader's 1,437 training
    digits (all of them: zoo's models train on 90% and validate on 10%) and scored on its 360
    test digits. The SVM's C and gamma are chosen by 5-fold cross-validation on the training
    split only; `SVC()` is scikit-learn's default."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.svm import SVC

    x_train, x_test, y_train, y_test = digits_arrays()
    search = GridSearchCV(SVC(), {"C": [1, 3, 10, 30, 100], "gamma": ["scale", 0.01, 0.03,
                                                                      0.1, 0.3]},
                          cv=StratifiedKFold(5, shuffle=True, random_state=0))
    models = {
        "RBF SVM, scikit-learn defaults (SVC())": SVC(),
        "RBF SVM, C and gamma by 5-fold CV on the training split": search,
        "logistic regression (max_iter=5000)": LogisticRegression(max_iter=5000),
    }
    results = {}
    for name, model in models.items():
        model.fit(x_train, y_train)
        results[name] = float((model.predict(x_test) == y_test).mean())
        if model is search:
            results[name + f" {search.best_params_}"] = results.pop(name)
    return results


def adding_baseline(sequence_length=100):
    """Test MSE of always answering 1 (the mean of the sum of two U(0,1)): 1/6 in expectation."""
    import numpy as np

    from zoo.data import load_dataset

    splits = load_dataset("adding_problem", sequence_length=sequence_length)
    targets = np.concatenate([np.ravel(y) for _, y in splits.test.batch(1024).as_numpy_iterator()])
    return float(np.mean((targets - 1.0) ** 2))


def unigram_perplexity(train_text, test_text):
    """exp(cross-entropy) of the test characters under the training text's character
    frequencies (add-one smoothed over both texts' characters): a model that ignores context."""
    counts = Counter(train_text)
    alphabet = set(train_text) | set(test_text)
    total = len(train_text) + len(alphabet)
    entropy = -sum(math.log((counts[c] + 1) / total) for c in test_text) / len(test_text)
    return math.exp(entropy)


def corpus_baseline(test_fraction=0.1):
    """The unigram perplexity of tiny_corpus' test text (the loader's split: the last 10%)."""
    from zoo.data import load_dataset

    text = load_dataset("tiny_corpus").extras["text"]
    split = int(len(text) * (1 - test_fraction))
    return unigram_perplexity(text[:split], text[split:])


# ---------------------------------------------------------------- the record

def load(path=RECORD):
    if not os.path.exists(path):
        return {"rows": {}}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def merge(rows, path=RECORD):
    """Replace (or add) these rows in the committed record, keep every other row; returns it."""
    record = load(path)
    record["rows"].update(rows)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1, sort_keys=True)
        f.write("\n")
    return record


def _figure(value):
    return f"{value:.4g}" if abs(value) >= 1e-3 else f"{value:.2e}"


def _cell(row):
    mean, std = row["mean"], row["std"]
    if len(row["values"]) == 1:
        return _figure(mean)
    spread = f"{std:.2g}" if std >= 1e-3 or std == 0 else f"{std:.1e}"  # two digits say enough
    return f"{_figure(mean)} ± {spread}"


def _meets(row):
    target = row.get("target")
    if target is None:
        return "-"
    ok = row["mean"] >= target if row["higher_is_better"] else row["mean"] < target
    return "yes" if ok else "**no**"


def markdown(record, order=None):
    """The README's quality table, from the whole record: one table (the docs' model pages
    take their rows from it), 3-seed rows first, then the baselines, then the rows not yet
    re-measured over `FULL_SEEDS` seeds, marked as such in the seeds column."""
    rows = record["rows"]
    order = order or sorted(rows)
    names = [n for n in order if n in rows] + sorted(set(rows) - set(order))
    models = [n for n in names if rows[n]["kind"] != "baseline"]
    full = [n for n in models if len(rows[n]["values"]) >= FULL_SEEDS]
    partial = [n for n in models if n not in full]
    baselines = [n for n in names if rows[n]["kind"] == "baseline"]
    lines = ["| model | dataset, epochs | seeds | test metric | reference | meets it "
             "| s/run | measured |", "| --- | --- | --- | ---: | --- | --- | ---: | --- |"]
    for name in full + baselines + partial:
        r = rows[name]
        if r["kind"] == "baseline":
            seeds, setting, label = "deterministic", r["dataset"], f"{name} (baseline)"
        else:
            seeds = (", ".join(map(str, r["seeds"])) if name in full else
                     f"**{len(r['values'])}: earlier run, not re-measured**")
            setting, label = f"{r['dataset']}, {r['epochs']} epochs", f"`{name}`"
        seconds = f"{statistics.mean(r['seconds']):.0f}" if r.get("seconds") else "-"
        lines.append(
            f"| {label} | {setting} | {seeds} | {_cell(r)} ({r['unit']}) "
            f"| {r.get('reference', '-')} | {_meets(r) if r['kind'] != 'baseline' else '-'} "
            f"| {seconds} | {r['date']}, `{r['commit']}` |")
    machines = sorted({rows[n]["machine"] for n in names})
    notes = ["Measured by `python -m benchmarks.zoo_quality NAME --readme`, each model at its "
             "`small_config` (`zoo train`: LeNet-5 at its full 32x32 input) with its recipe only: "
             "the test metric's mean ± sample std over the "
             "seeds (weights, data order, dropout; the splits are fixed), the test split read "
             "once at the end of each run; the baselines are measured by the same benchmark run "
             "on the same splits."]
    if partial:
        notes.append(f"Rows marked *not re-measured* are single runs (seed 0) from before the "
                     f"{FULL_SEEDS}-seed procedure, with the code and recipes of their day, "
                     "kept until re-measured.")
    notes.append("Machines: " + "; ".join(machines) + " (shared with other jobs: seconds are "
                 "indicative). Per-seed values, library versions and commits: "
                 "`benchmarks/results/zoo_quality.json`.")
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"
