"""Datasets: tfds loaders and the offline sets the package ships, behind one registry.

TensorFlow-specific code (tf.data, tfds) lives here and in `zoo.training`; models never
import this package.
"""

from zoo.data import captions, folders, images, sequences  # noqa: F401  (they register datasets)
from zoo.data.base import (
    DatasetSplits,
    dataset_entry,
    list_datasets,
    load_dataset,
    register_dataset,
)

__all__ = ["DatasetSplits", "dataset_entry", "list_datasets", "load_dataset", "register_dataset"]
