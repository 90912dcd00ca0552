"""Using a trained model: read image files, classify them, caption them, or continue a text
(`zoo predict`, `zoo caption`, `zoo generate`); the run's files are found and loaded by
`zoo.training.saved_runs`.

A run directory (from `zoo train`) holds `model.keras` (or `best.keras`), the engine's record
(`config.json`) and `data.json`, so that prediction can treat a new image as training treated
its images: scaled to [0, 1], resized (bilinear) to the model's
input, normalised with the training set's mean and standard deviation, and answered with class
names. Registry models with ImageNet weights (`vgg16`, `vgg19`, `resnet50`, `resnet101`,
`resnet152`) are used with keras.applications' preprocessing and ImageNet's class names.

Every mistake (a missing file, a file that is not an image, a model of another task) is a
`ValueError` naming the file or argument and what was expected.
"""

import dataclasses
import os

import numpy as np

from zoo.training.saved_runs import dataset_metadata, find_saved_model, load_model
from zoo.training.task import infer_outputs

# zoo name -> the keras.applications module whose `preprocess_input` its ImageNet weights expect.
IMAGENET_PREPROCESSING = {
    "vgg16": "vgg16",
    "vgg19": "vgg19",
    "resnet50": "resnet",
    "resnet101": "resnet",
    "resnet152": "resnet",
}


# ------------------------------------------------------------------------ classification


def _check_image_model(model, source):
    inputs = getattr(model, "inputs", None) or []
    outputs = getattr(model, "outputs", None) or []
    if (len(inputs) != 1 or len(inputs[0].shape) != 4 or len(outputs) != 1
            or len(outputs[0].shape) != 2):
        shapes = [tuple(t.shape) for t in inputs] or "unknown"
        raise ValueError(
            f"--model {source!r} is a {type(model).__name__} with inputs {shapes}, not an image "
            "classifier: `zoo predict` needs one image input (batch, height, width, channels) "
            "and class scores out. Use `zoo caption` for a captioner, `zoo generate` for "
            "char_lm."
        )


def to_probabilities(outputs, kind):
    """Class probabilities (float64) from what a model returns: "probabilities",
    "log_probabilities" or "logits" (`zoo.training.task.OUTPUT_KINDS`)."""
    outputs = np.asarray(outputs, dtype="float64")
    if kind == "probabilities":
        return outputs
    if kind == "log_probabilities":
        return np.exp(outputs)
    if kind == "logits":
        shifted = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)
    raise ValueError(f"A classifier returns probabilities, log-probabilities or logits. "
                     f"Received: outputs={kind!r}")


@dataclasses.dataclass
class ImageClassifier:
    """A classifier with what it needs to read new images as its training images were read.

    Attributes:
        model: The Keras model.
        source: Where it came from (for messages).
        outputs: What the model returns ("probabilities", "log_probabilities", "logits").
        class_names: Label names, or None (then labels print as numbers).
        mean, std: Per-channel normalisation of [0, 1] pixels, or None.
        imagenet_preprocessing: The keras.applications module name for ImageNet weights.
    """

    model: object
    source: str
    outputs: str
    class_names: list | None = None
    mean: list | None = None
    std: list | None = None
    imagenet_preprocessing: str | None = None
    channel_order: str | None = None

    def preprocess(self, images):
        """Model inputs from `[N, H, W, C]` images in [0, 1]."""
        if self.imagenet_preprocessing:
            import keras

            module = getattr(keras.applications, self.imagenet_preprocessing)
            return module.preprocess_input(images * 255.0)
        if self.channel_order == "BGR":
            images = images[..., ::-1]
        if self.mean is not None:
            return (images - np.asarray(self.mean, "float32")) / np.asarray(self.std, "float32")
        return images

    def top_classes(self, images, top=5):
        """`[[(class name, probability), ...] per image]`, most probable first."""
        probabilities = to_probabilities(
            self.model.predict(self.preprocess(images), verbose=0), self.outputs
        )
        top = min(top, probabilities.shape[-1])
        if self.imagenet_preprocessing:
            return _imagenet_names(probabilities, top)
        names = self.class_names or [str(i) for i in range(probabilities.shape[-1])]
        if len(names) != probabilities.shape[-1]:
            raise ValueError(
                f"The run of --model {self.source!r} names {len(names)} classes but the model "
                f"has {probabilities.shape[-1]} outputs."
            )
        order = np.argsort(-probabilities, axis=-1, kind="stable")[:, :top]
        return [[(names[i], float(row[i])) for i in indices]
                for row, indices in zip(probabilities, order)]


def _imagenet_names(probabilities, top):
    import keras

    try:
        decoded = keras.applications.imagenet_utils.decode_predictions(probabilities, top=top)
    except KeyboardInterrupt:
        raise
    except Exception as error:
        raise ValueError(
            f"Could not get ImageNet's class names ({type(error).__name__}: "
            f"{(str(error).splitlines() or [''])[0][:200]}). Keras downloads them once to "
            "~/.keras/models/imagenet_class_index.json; on a machine without network, copy that "
            "file there from one with network."
        ) from None
    return [[(name, float(score)) for _, name, score in row] for row in decoded]


def _imagenet_classifier(name):
    import zoo

    info = zoo.model_info(name)
    if name not in IMAGENET_PREPROCESSING or not info.imagenet_weights:
        raise ValueError(
            f"--model {name!r} is a registry model without ImageNet weights; pass a run "
            f"directory or a .keras file, or one of {sorted(IMAGENET_PREPROCESSING)}."
        )
    try:
        model = zoo.create_model(name, weights="imagenet")
    except KeyboardInterrupt:
        raise
    except Exception as error:
        raise ValueError(
            f"Could not get the ImageNet weights of {name!r} ({type(error).__name__}: "
            f"{(str(error).splitlines() or [''])[0][:200]}). keras.applications downloads them "
            "once into ~/.keras/models/; on a machine without network, copy them there."
        ) from None
    return ImageClassifier(model, name, infer_outputs(model, info.task),
                           imagenet_preprocessing=IMAGENET_PREPROCESSING[name])


def _is_registry_name(reference):
    return (not os.path.exists(reference) and os.sep not in reference
            and not reference.endswith(".keras"))


def load_image_classifier(reference, dataset=None, data_kwargs=None):
    """An `ImageClassifier` from a run directory, a `.keras` file or an ImageNet model name.

    Args:
        reference: Run directory, `.keras` file, or a registry name with ImageNet weights.
        dataset: The dataset a bare `.keras` file was trained on (its normalisation and class
            names); a run directory's record says it itself.
        data_kwargs: That dataset's loader options (e.g. `path` for image_folder).

    Raises:
        ValueError: for a missing file, a model that is not an image classifier, or a bare file
            without `dataset`.
    """
    reference = os.fspath(reference)
    if _is_registry_name(reference):
        from zoo import registry

        if reference in registry.list_models():
            return _imagenet_classifier(reference)
    saved = find_saved_model(reference)
    model = load_model(saved.model_file)
    _check_image_model(model, reference)
    record = saved.record
    data = record.get("data")
    if dataset is not None or data is None:
        name = dataset or record.get("dataset")
        if name is None:
            raise ValueError(
                f"--model {reference!r} has no run record beside it (config.json, data.json): "
                "pass --dataset NAME, the dataset it was trained on, so that images are "
                "normalised as in training and classes get their names."
            )
        same = name == record.get("dataset")
        kwargs = data_kwargs if data_kwargs is not None or not same else record.get(
            "dataset_kwargs")
        data = dataset_metadata(name, kwargs)
    if data.get("task") not in (None, "image-classification"):
        raise ValueError(
            f"--model {reference!r} was trained on {data.get('dataset')!r}, a {data['task']} "
            "dataset; `zoo predict` classifies images."
        )
    outputs = record.get("outputs") or infer_outputs(model, "image-classification")
    return ImageClassifier(model, reference, outputs, data.get("class_names"), data.get("mean"),
                           data.get("std"), channel_order=data.get("channel_order"))


def predict_images(paths, model, top=5, dataset=None, data_kwargs=None, batch_size=32):
    """`zoo predict`: the `top` most probable classes of each image file.

    Args:
        paths: Image files.
        model: An `ImageClassifier`, or what `load_image_classifier` takes.
        top: Classes per image.
        dataset, data_kwargs: See `load_image_classifier`.
        batch_size: Images per forward pass.

    Returns:
        One list of `(class name, probability)` per path, most probable first.
    """
    from zoo.data.folders import read_image_files
    from zoo.validation import check_int

    check_int("top", top)
    check_int("batch_size", batch_size)
    if not isinstance(model, ImageClassifier):
        model = load_image_classifier(model, dataset, data_kwargs)
    _, height, width, channels = model.model.inputs[0].shape
    results = []
    for start in range(0, len(paths), batch_size):
        images = read_image_files(paths[start : start + batch_size], height, width, channels)
        results += model.top_classes(images, top)
    return results


# ------------------------------------------------------------------------ captions and text


def _load_for(reference, method, command, needed, trained_with):
    saved = find_saved_model(reference)
    model = load_model(saved.model_file)
    if not callable(getattr(model, method, None)):
        raise ValueError(
            f"--model {reference!r} holds a {type(model).__name__}, not {needed}: `{command}` "
            f"needs a model trained with {trained_with}."
        )
    return model


def caption_images(paths, model, beam_width=3, batch_size=32):
    """`zoo caption`: one caption per image file (`Captioner.caption`).

    Args:
        paths: Image files; each is scaled to [0, 1] and resized to the captioner's input.
        model: A captioner, a `.keras` file or a run directory holding one.
        beam_width: 1 for greedy search, more for beam search.
        batch_size: Images per decoding call.

    Returns:
        The captions, in order.
    """
    from zoo.data.folders import read_image_files
    from zoo.validation import check_int

    check_int("beam_width", beam_width)
    check_int("batch_size", batch_size)
    if isinstance(model, (str, os.PathLike)):
        model = _load_for(model, "caption", "zoo caption", "a captioner",
                          "--model show_and_tell or show_attend_tell")
    height, width, channels = model.image_shape
    captions = []
    for start in range(0, len(paths), batch_size):
        images = read_image_files(paths[start : start + batch_size], height, width, channels)
        captions += list(model.caption(images, beam_width=beam_width))
    return captions


def generate_text(model, prompt, length=200, temperature=1.0, seed=None):
    """`zoo generate`: continue `prompt` with a character language model (`char_lm`).

    Args:
        model: A `char_lm` model, a `.keras` file or a run directory holding one.
        prompt, length, temperature, seed: As `model.generate` takes them.

    Returns:
        The generated continuation (without the prompt).
    """
    if isinstance(model, (str, os.PathLike)):
        model = _load_for(model, "generate", "zoo generate", "a character language model",
                          "--model char_lm")
    return model.generate(prompt, length=length, temperature=temperature, seed=seed)
