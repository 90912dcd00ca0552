"""The dataset registry and the contract every loader follows.

A loader is a function registered with `register_dataset` that returns `DatasetSplits`:
*unbatched* `tf.data.Dataset`s whose elements are `(inputs, targets)` or
`(inputs, targets, sample_weight)`, plus what a model needs to fit the data. Training batches,
shards and prefetches them; loaders only produce examples.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

from zoo.validation import unknown_name_error


@dataclasses.dataclass
class DatasetSplits:
    """What a loader returns.

    Attributes:
        name: Registered dataset name.
        train: Unbatched training examples.
        test: Unbatched held-out examples.
        task: The registry task it serves (see `zoo.registry.TASKS`).
        model_kwargs: Arguments that make a model of that task fit this data, passed to
            `zoo.create_model` (e.g. `{"input_shape": (8, 8, 1), "classes": 10}` or
            `{"vocabulary_size": 20000, "classes": 2}`).
        num_train: Number of training examples (for steps per epoch), if known.
        num_test: Number of test examples, if known.
        extras: Anything else a model needs (e.g. a caption tokenizer).
        validation: Unbatched validation examples for model selection (best checkpoint, early
            stopping), never the test split. A loader sets it when the dataset has its own
            validation split, or when its training examples are not independent (e.g. several
            captions of one image: a held-out caption's image would also be in training);
            otherwise training holds out 10% of `train`, one example of every ten at a seeded
            position (`zoo.training.pipeline.hold_out_validation`), and `num_train` there
            counts the remaining 90%.
        num_validation: Number of validation examples, if known.
    """

    name: str
    train: Any
    test: Any
    task: str
    model_kwargs: dict
    num_train: int | None = None
    num_test: int | None = None
    extras: dict = dataclasses.field(default_factory=dict)
    validation: Any = None
    num_validation: int | None = None


@dataclasses.dataclass(frozen=True)
class DatasetEntry:
    name: str
    task: str
    summary: str
    offline: bool
    loader: Callable = dataclasses.field(repr=False, compare=False)


_DATASETS: dict[str, DatasetEntry] = {}


def register_dataset(name, *, task, summary, offline):
    """Register a loader. `offline=True` means it needs no network (bundled or generated)."""

    def decorator(fn):
        if name in _DATASETS:
            raise ValueError(f"A dataset named {name!r} is already registered.")
        _DATASETS[name] = DatasetEntry(name, task, summary, offline, fn)
        return fn

    return decorator


def list_datasets(task=None):
    """Registered dataset names, sorted, optionally only those for one task."""
    return sorted(n for n, e in _DATASETS.items() if task is None or e.task == task)


def dataset_entry(name):
    """The `DatasetEntry` for a name; unknown names suggest the closest ones."""
    if name in _DATASETS:
        return _DATASETS[name]
    raise unknown_name_error("dataset", name, _DATASETS)


def load_dataset(name, **kwargs):
    """Load a registered dataset: `load_dataset("digits", seed=0)` -> `DatasetSplits`."""
    return dataset_entry(name).loader(**kwargs)


def tfds_num_examples(info, split, dataset):
    """Examples in a tfds split: from tfds' metadata, else the dataset's cardinality, else None."""
    try:
        return info.splits[split].num_examples
    except KeyError:  # e.g. under tfds.testing.mock_data, which records no split sizes
        count = int(dataset.cardinality())
        return count if count >= 0 else None
