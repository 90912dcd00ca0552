"""A run's files for whoever uses the trained model: find a run directory or `.keras` file,
load the model, read the engine's record (`config.json`) and `data.json`, what the data looked
like (`save_data_record`: class names, normalisation, input shape), so that prediction,
evaluation, export and fine-tuning treat new inputs as training treated its own.

Every mistake (a missing file, a damaged record) is a `ValueError` naming the file or argument
and what was expected.
"""

import dataclasses
import json
import os

from zoo.training.records import (
    BEST_FILE,
    MODEL_FILE,
    RECORD_FILE,
    upgrade_record,
    write_text_atomic,
)
from zoo.validation import first_line

MODEL_FILES = (MODEL_FILE, BEST_FILE)
DATA_RECORD = "data.json"


@dataclasses.dataclass
class SavedModel:
    """A model file and what its run directory says about it.

    Attributes:
        model_file: The `.keras` file.
        run_dir: The run directory holding the record, or None for a bare file.
        record: The engine's record (`config.json`) with `data.json` under "data"; {} if none.
    """

    model_file: str
    run_dir: str | None
    record: dict


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(f"The run record {path!r} is unreadable ({error}).") from None


def read_run_record(run_dir):
    """The run record of a directory (`config.json`), with `data.json` under "data"."""
    record = {}
    path = os.path.join(run_dir, RECORD_FILE)
    if os.path.isfile(path):
        record.update(upgrade_record(_read_json(path)))
    data_path = os.path.join(run_dir, DATA_RECORD)
    if os.path.isfile(data_path):
        record["data"] = _read_json(data_path)
    return record


def _run_dir_of(model_file):
    """The run directory a model file belongs to (its folder, or the parent of worker-N/)."""
    folder = os.path.dirname(os.path.abspath(model_file))
    candidates = [folder]
    if os.path.basename(folder).startswith("worker-"):
        candidates.append(os.path.dirname(folder))
    for candidate in candidates:
        if any(os.path.isfile(os.path.join(candidate, n)) for n in (RECORD_FILE, DATA_RECORD)):
            return candidate
    return None


def find_saved_model(path, argument="--model"):
    """Resolve a run directory or a `.keras` file to a `SavedModel`.

    Raises:
        ValueError: if the path does not exist, is a folder without a saved model, or is not a
            `.keras` file.
    """
    path = os.fspath(path)
    expected = "a run directory (from `zoo train`) or a .keras file"
    if not os.path.exists(path):
        raise ValueError(f"{argument} {path!r} does not exist; expected {expected}.")
    if os.path.isdir(path):
        for name in MODEL_FILES:
            if os.path.isfile(os.path.join(path, name)):
                return SavedModel(os.path.join(path, name), path, read_run_record(path))
        if os.path.isfile(os.path.join(path, RECORD_FILE)):  # a run without a model yet
            raise ValueError(
                f"{argument} {path!r} is a run directory without {' or '.join(MODEL_FILES)}: "
                "the run has not finished (in progress, interrupted or diverged) nor improved "
                "on its validation loss yet; rerun its zoo train command to resume it."
            )
        raise ValueError(
            f"{argument} {path!r} is a folder without {' or '.join(MODEL_FILES)}; expected "
            f"{expected}."
        )
    if not path.endswith(".keras"):
        raise ValueError(f"{argument} {path!r} is not a .keras file; expected {expected}.")
    run_dir = _run_dir_of(path)
    return SavedModel(path, run_dir, read_run_record(run_dir) if run_dir else {})


def load_model(model_file, argument="--model"):
    """`keras.models.load_model` with the zoo's classes registered and a one-line error."""
    import keras

    import zoo

    zoo.load_families()  # registers the zoo's layers and models for deserialisation
    try:
        return keras.models.load_model(model_file)
    except KeyboardInterrupt:
        raise
    except Exception as error:
        reason = first_line(error)
        raise ValueError(
            f"{argument} {model_file!r} could not be loaded as a Keras model "
            f"({type(error).__name__}: {reason})."
        ) from None


# ------------------------------------------------------------------------ the data record


def data_record(splits):
    """What prediction needs to know about a run's data, as JSON-ready values.

    Args:
        splits: The `DatasetSplits` the run trained on.

    Returns:
        {"dataset", "task", "input_shape", "class_names", "mean", "std"} (None where unknown).
    """

    def listed(value):
        return None if value is None else [v if isinstance(v, str) else float(v) for v in value]

    shape = splits.model_kwargs.get("input_shape")
    # Fine-tuned from BGR weights (keras.applications'): the channel order of the inputs.
    order = splits.extras.get("channel_order")
    return {
        **({"channel_order": order} if order else {}),
        "dataset": splits.name,
        "task": splits.task,
        "input_shape": None if shape is None else [int(d) if d is not None else None
                                                   for d in shape],
        "class_names": listed(splits.extras.get("class_names")),
        "mean": listed(splits.extras.get("mean")),
        "std": listed(splits.extras.get("std")),
    }


def save_data_record(run_dir, splits):
    """Write `data.json` (see `data_record`) into `run_dir`, atomically; returns its path."""
    path = os.path.join(run_dir, DATA_RECORD)
    write_text_atomic(path, json.dumps(data_record(splits), indent=1) + "\n")
    return path


def check_data_record(run_dir, splits):
    """On a resume: rewrite `data.json` if it is missing, unreadable or not this run's data.
    Returns a note saying so, or None."""
    path = os.path.join(run_dir, DATA_RECORD)
    expected = json.loads(json.dumps(data_record(splits)))  # JSON's view: tuples as lists
    try:
        with open(path, encoding="utf-8") as f:
            if json.load(f) == expected:
                return None
            problem = "did not describe this run's data"
    except FileNotFoundError:
        problem = "was missing"
    except (OSError, ValueError) as error:
        problem = f"was unreadable ({type(error).__name__})"
    save_data_record(run_dir, splits)
    return f"{path} {problem}; rewrote it"


def dataset_metadata(name, data_kwargs=None):
    """`data_record` of a dataset without a run: the normalisation and class names.

    The tfds sets answer from constants (no download); other sets (digits, image_folder) are
    loaded with `data_kwargs` to read their `extras`.
    """
    from zoo.data import base, images

    if name in images.IMAGE_DATASETS and name != "digits":
        shape, _, mean, std = images.IMAGE_DATASETS[name]
        return {"dataset": name, "task": "image-classification", "input_shape": list(shape),
                "class_names": images.class_names(name), "mean": list(mean), "std": list(std)}
    entry = base.dataset_entry(name)
    return data_record(entry.loader(**(data_kwargs or {})))
