"""What `zoo list` shows, without loading TensorFlow: the registries' facts in `listing.json`.

A model registers itself when its family is imported, and the families import Keras (and
with it TensorFlow: 4-5 s on a laptop) to define their layers; the datasets' loaders import
TensorFlow too. `zoo list` needs none of that, only names, tasks, papers, shapes, parameter
counts and weights, so they are kept in `listing.json` beside this file. The file is written
from the live registries by

    python -m zoo.listing

and a test (`tests/test_registry.py`) fails when it differs from them, so a model added
without rewriting it cannot ship.
"""

import fnmatch
import json
import os

from zoo.validation import check_choice

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "listing.json")


def from_registries():
    """The listing, built from the live registries (imports every family and loader)."""
    from zoo import registry
    from zoo.data import base as data_base

    models = []
    for name in registry.list_models():
        info = registry.model_info(name)
        weights = {key: {"source": entry.source, "top1": entry.top1}
                   for key, entry in sorted(info.weights.items())}
        models.append({
            "name": name, "task": info.task,
            "paper": f"{info.paper.authors} {info.paper.year}",
            "input": list(info.default_input_shape) if info.default_input_shape else None,
            "params": info.params, "default_dataset": info.default_dataset,
            "weights": weights,
        })
    datasets = []
    for name in data_base.list_datasets():
        entry = data_base.dataset_entry(name)
        datasets.append({"name": name, "task": entry.task, "offline": bool(entry.offline),
                         "summary": entry.summary})
    return {"models": models, "datasets": datasets}


def load():
    """The committed listing."""
    with open(PATH, encoding="utf-8") as f:
        return json.load(f)


def models(pattern=None, task=None, pretrained=False):
    """The listed models (dicts, sorted by name), filtered as `registry.list_models` filters.

    Args:
        pattern: Optional shell-style wildcard, e.g. "resnet*".
        task: Optional task filter (one of `registry.TASKS`).
        pretrained: Only models with pretrained weights.
    """
    from zoo.registry import TASKS  # the registry module itself imports no Keras

    if task is not None:
        check_choice("task", task, TASKS)
    rows = load()["models"]
    return [row for row in rows
            if (pattern is None or fnmatch.fnmatch(row["name"], pattern))
            and (task is None or row["task"] == task)
            and (not pretrained or row["weights"])]


def datasets(task=None):
    """The listed datasets (dicts, sorted by name), optionally of one task."""
    return [row for row in load()["datasets"] if task is None or row["task"] == task]


def write(path=PATH):
    """Rewrite the listing from the live registries."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(from_registries(), f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    write()
    print(f"wrote {PATH}")
