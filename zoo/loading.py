"""`zoo.load_model(path)`: a trained model with what it needs to be used on new data.

    >>> import zoo
    >>> loaded = zoo.load_model("runs/resnet18-image_folder")   # or a .keras file
    >>> loaded.class_names, loaded.preprocessing
    (['cat', 'dog'], {'mean': [...], 'std': [...], 'channel_order': 'RGB'})
    >>> probabilities = loaded.predict(images)   # [N, H, W, C] pixels in [0, 1]

A run directory (from `zoo train`) says how its images were normalised and what its classes
are (`data.json`, beside `config.json`); a bare `.keras` file says neither, and the fields are
None. Plain `keras.models.load_model` works too after `import zoo` (see `zoo/__init__.py`),
returning the bare model.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass
class LoadedModel:
    """A saved model and what its run directory says about it.

    Attributes:
        model: The Keras model.
        model_file: The `.keras` file read.
        run_dir: Its run directory, or None for a file without one.
        class_names: Label i is `class_names[i]`; None when unknown.
        preprocessing: `{"mean", "std", "channel_order"}`: the model's inputs are
            `(pixels[..., order] - mean) / std` of [0, 1] RGB pixels; None when unknown.
        outputs: What the model returns ("probabilities", "log_probabilities", "logits",
            "values"), from the run record, else read from its output layer.
        record: The run record (`config.json`, with `data.json` under "data"); {} without.
    """

    model: object
    model_file: str
    run_dir: str | None
    class_names: list | None
    preprocessing: dict | None
    outputs: str | None
    record: dict

    def preprocess(self, images):
        """Model inputs from `[N, H, W, C]` RGB pixels in [0, 1] (as the run's training images
        were normalised); unchanged when the normalisation is unknown."""
        images = np.asarray(images, dtype="float32")
        if self.preprocessing is None:
            return images
        if self.preprocessing.get("channel_order") == "BGR":
            images = images[..., ::-1]
        mean = np.asarray(self.preprocessing["mean"], "float32")
        std = np.asarray(self.preprocessing["std"], "float32")
        return (images - mean) / std

    def predict(self, images, batch_size=32):
        """Class probabilities (float64) of `[N, H, W, C]` images in [0, 1]."""
        from zoo.training.predict import to_probabilities

        outputs = self.model.predict(self.preprocess(images), batch_size=batch_size, verbose=0)
        return to_probabilities(outputs, self.outputs)


def load_model(path):
    """Load a run directory (its `model.keras`, else `best.keras`) or a `.keras` file.

    Args:
        path: A run directory or a `.keras` file.

    Returns:
        `LoadedModel`.

    Raises:
        ValueError: for a missing path, a folder without a model, or a file Keras cannot read.
    """
    from zoo.training import saved_runs
    from zoo.training.task import infer_outputs

    saved = saved_runs.find_saved_model(path, argument="path")
    model = saved_runs.load_model(saved.model_file, argument="path")
    data = saved.record.get("data") or {}
    preprocessing = None
    if data.get("mean") is not None and data.get("std") is not None:
        preprocessing = {"mean": list(data["mean"]), "std": list(data["std"]),
                         "channel_order": data.get("channel_order") or "RGB"}
    outputs = saved.record.get("outputs")
    if outputs is None:
        task = data.get("task") or "image-classification"
        try:
            outputs = infer_outputs(model, task)
        except (ValueError, TypeError):
            outputs = None
    return LoadedModel(model, saved.model_file, saved.run_dir, data.get("class_names"),
                       preprocessing, outputs, saved.record)
