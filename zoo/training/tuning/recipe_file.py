"""Recipe files: a run's recipe fields as JSON, written by `zoo tune` (its best trial) and read
by `zoo train --recipe FILE` (flags given on the command line still win).

    {"model": "lenet5", "dataset": "digits",
     "recipe": {"lr": 0.0042, "weight_decay": 0.0001, "batch_size": 32, ...},
     "validation": {"val_loss": 0.21, "val_accuracy": 0.95}, "note": "..."}

Only "recipe" is required; its keys are `zoo.training.config.RECIPE_FIELDS`, and every field
it does not name comes from the model's recipe as usual.
"""

import json
import os

from zoo.training.config import RECIPE_FIELDS
from zoo.training.records import write_text_atomic
from zoo.validation import did_you_mean

FILE_KEYS = ("model", "dataset", "recipe", "validation", "note", "trial", "search")


def write_recipe_file(path, recipe, model=None, dataset=None, **described):
    """Write a recipe file (atomically); `described`: "validation", "note", ... (read by
    people, not by `zoo train`)."""
    for key in recipe:
        _check_name(key, RECIPE_FIELDS, "recipe field", path)
    document = {"model": model, "dataset": dataset, "recipe": dict(recipe), **described}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_text_atomic(path, json.dumps(document, indent=1, default=list) + "\n")
    return path


def load_recipe_file(path):
    """The `TrainConfig` fields a recipe file sets: its "recipe" entries, and "model" and
    "dataset" when it names them.

    Raises:
        ValueError: for a missing or unreadable file, or an unknown field (naming it).
    """
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except OSError as error:
        raise ValueError(f"Cannot read the recipe file {path!r}: {error.strerror or error}. "
                         "Received: --recipe " + str(path)) from None
    except ValueError as error:
        raise ValueError(f"The recipe file {path!r} is not JSON ({error}).") from None
    if not isinstance(document, dict) or not isinstance(document.get("recipe"), dict):
        raise ValueError(
            f"The recipe file {path!r} must hold a JSON object with a \"recipe\" object of "
            f"recipe fields ({', '.join(RECIPE_FIELDS)})."
        )
    for key in document:
        _check_name(key, FILE_KEYS, "key", path)
    fields = {}
    for key, value in document["recipe"].items():
        _check_name(key, RECIPE_FIELDS, "recipe field", path)
        fields[key] = tuple(value) if key == "milestones" and value is not None else value
    for key in ("model", "dataset"):
        if document.get(key) is not None:
            fields[key] = document[key]
    return fields


def _check_name(name, known, kind, path):
    if name not in known:
        raise ValueError(
            f"Unknown {kind} {name!r} in the recipe file {path!r}.{did_you_mean(name, known)} "
            f"Allowed: {', '.join(known)}."
        )
