"""What a fine-tuning run starts from (see `zoo.training.finetune`): the weights' source
(`resolve_source`: ImageNet, a run, a file, with its hash), and the inputs the pretrained layers
expect, the dataset's images brought to them (`prepare_data`).

The copied layers must see inputs like those they were trained on, so the dataset's own
normalisation is undone (back to [0, 1] pixels) and the weights' is applied: the registry
entry's preprocessing for ImageNet weights (keras.applications' caffe convention for its five
models, torchvision's mean/std otherwise), or the source run's own mean/std. Grey images (the
digits, MNIST) get their one channel repeated three times (a grey photo in RGB); small images
are resized up (bilinear) to the model's minimum input by the loader, e.g. the 8x8 digits to
32x32 for ResNet-18.
"""

import dataclasses
import hashlib
import os

from zoo import registry

IMAGENET = "imagenet"
# keras.applications' weights (caffe mode): BGR, 0-255 pixels minus ImageNet's mean.
CAFFE_MEAN_BGR = (103.939 / 255, 116.779 / 255, 123.68 / 255)
CAFFE_MODELS = ("vgg16", "vgg19", "resnet50", "resnet101", "resnet152")
# torchvision's (and timm's *.tv_in1k) weights: RGB in [0, 1], ImageNet mean and std.
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)


# ----------------------------------------------------------------------- input normalisation


@dataclasses.dataclass(frozen=True)
class InputNormalization:
    """What a model's inputs are: `(pixels[..., order] - mean) / std` of [0, 1] pixels.

    Every ImageNet convention is of this form: caffe (BGR, 0-255 minus the mean: std 1/255),
    torch (RGB, ImageNet mean/std), tf ([-1, 1]: mean = std = 0.5).
    """

    mean: tuple
    std: tuple
    channel_order: str = "RGB"

    def apply(self, pixels):
        """Model inputs from `[..., C]` pixels in [0, 1] (NumPy or TensorFlow)."""
        if self.channel_order == "BGR":
            pixels = pixels[..., ::-1]
        return (pixels - self.mean) / self.std

    def to_json(self):
        return {"mean": list(self.mean), "std": list(self.std),
                "channel_order": self.channel_order}


def _from_preprocessing(preprocessing):
    """An `InputNormalization` from a registry weights entry's `Preprocessing` (mean and std
    on its `scale`: 255 for Caffe's 0-255 pixels), or None if it states no mean and std."""
    form = preprocessing.to_json() if hasattr(preprocessing, "to_json") else dict(preprocessing)
    if "mean" not in form or "std" not in form:
        return None
    scale = float(form.get("scale") or 1.0)
    return InputNormalization(tuple(float(v) / scale for v in form["mean"]),
                              tuple(float(v) / scale for v in form["std"]),
                              str(form.get("channel_order") or "RGB").upper())


def imagenet_weights_entry(info):
    """The registry's ImageNet `WeightsEntry` of a model, or None (older registry)."""
    entries = getattr(info, "weights", None)
    return entries.get(IMAGENET) if isinstance(entries, dict) else None


def imagenet_normalization(info):
    """The inputs a model's ImageNet weights expect: the registry entry's preprocessing, else
    keras.applications' caffe convention for its five models, else torchvision's."""
    entry = imagenet_weights_entry(info)
    if entry is not None and getattr(entry, "preprocessing", None) is not None:
        found = _from_preprocessing(entry.preprocessing)
        if found is not None:
            return found
    if info.name in CAFFE_MODELS:
        return InputNormalization(CAFFE_MEAN_BGR, (1 / 255,) * 3, "BGR")
    return InputNormalization(TORCH_MEAN, TORCH_STD, "RGB")


# ----------------------------------------------------------------------- the source


@dataclasses.dataclass
class WeightsSource:
    """Resolved `--weights`.

    Attributes:
        kind: "imagenet", "run" or "file".
        source: "imagenet", or the absolute path of the run directory / file.
        sha256: The weights' hash: the registry's published one for ImageNet ("md5:..." or
            "sha256:...", None when it has none), else the model file's sha256.
        model_file: The `.keras` file (run or file), else None.
        record: The source run's record (`config.json` + `data.json` under "data"), or {}.
        normalization: What the copied layers expect as inputs, or None (the dataset's own).
        class_names: The source's classes, or None when unknown.
    """

    kind: str
    source: str
    sha256: str | None
    model_file: str | None = None
    record: dict = dataclasses.field(default_factory=dict)
    normalization: InputNormalization | None = None
    class_names: list | None = None

    def to_record(self):
        """For the run record: the source, its hash (and the registry's URL for ImageNet)."""
        return {"source": self.source, "hash": self.sha256,
                **({"url": self.record.get("url")} if self.kind == IMAGENET else {})}


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_source(weights, info):
    """`--weights` -> `WeightsSource`; one-line errors for what cannot be used."""
    if weights is None:
        return None
    weights = os.fspath(weights)
    if weights == IMAGENET:
        if info.task != "image-classification" or not _has_imagenet_weights(info):
            with_weights = [n for n in registry.list_models(task="image-classification")
                            if _has_imagenet_weights(registry.model_info(n))]
            raise ValueError(
                f"Model {info.name!r} has no ImageNet weights; --weights imagenet works for "
                f"{', '.join(with_weights)}. Received: weights='imagenet'"
            )
        entry = imagenet_weights_entry(info)
        digest = getattr(entry, "file_hash", None)
        if digest:  # the registry's published hash of the weights file
            digest = f"{getattr(entry, 'hash_algorithm', 'sha256')}:{digest}"
        return WeightsSource(IMAGENET, IMAGENET, digest,
                             normalization=imagenet_normalization(info),
                             record={"source": getattr(entry, "source", None) or (
                                 "keras.applications" if info.name in CAFFE_MODELS else
                                 "zoo.weights"), "url": getattr(entry, "url", None)})
    from zoo.training.saved_runs import find_saved_model

    saved = find_saved_model(weights, argument="--weights")
    data = saved.record.get("data") or {}
    normalization = None
    if data.get("mean") is not None and data.get("std") is not None:
        normalization = InputNormalization(tuple(data["mean"]), tuple(data["std"]),
                                           data.get("channel_order") or "RGB")
    return WeightsSource(
        "run" if saved.run_dir and os.path.isdir(weights) else "file",
        os.path.abspath(weights), file_sha256(saved.model_file), saved.model_file,
        saved.record, normalization, data.get("class_names"),
    )


def _has_imagenet_weights(info):
    return imagenet_weights_entry(info) is not None or bool(getattr(info, "imagenet_weights",
                                                                    False))


# ----------------------------------------------------------------------- the data


def prepare_data(splits, source, model_channels=None):
    """The splits with their images normalised as the weights expect (see the module doc).

    Args:
        splits: The loader's `DatasetSplits` (images normalised with `extras` mean/std).
        source: The `WeightsSource`.
        model_channels: Channels of the source model's input (3 for ImageNet); None keeps the
            data's.

    Returns:
        New `DatasetSplits` (input shape, mean/std and channel order in `extras` updated), or
        the same when the source does not say how its inputs were normalised.
    """
    import tensorflow as tf

    target = source.normalization
    if target is None:
        return splits
    mean, std = splits.extras.get("mean"), splits.extras.get("std")
    shape = tuple(splits.model_kwargs.get("input_shape") or ())
    if mean is None or std is None or len(shape) != 3:
        raise ValueError(
            f"--weights {source.source!r} needs images whose normalisation the dataset states "
            f"(mean and std); dataset {splits.name!r} ({splits.task}) does not."
        )
    channels = model_channels or shape[-1]
    if shape[-1] not in (1, channels) or len(target.mean) != channels:
        raise ValueError(
            f"--weights {source.source!r} expects {len(target.mean)}-channel images; dataset "
            f"{splits.name!r} has {shape[-1]} channel(s)."
        )
    data_mean = tf.constant(mean, tf.float32)
    data_std = tf.constant(std, tf.float32)
    target_mean = tf.constant(target.mean, tf.float32)
    target_std = tf.constant(target.std, tf.float32)

    def renormalize(image, *rest):
        pixels = image * data_std + data_mean  # back to [0, 1]
        if shape[-1] == 1 and channels == 3:
            pixels = tf.repeat(pixels, 3, axis=-1)  # a grey image in RGB
        if target.channel_order == "BGR":
            pixels = pixels[..., ::-1]
        return ((pixels - target_mean) / target_std, *rest)

    def mapped(dataset):
        return None if dataset is None else dataset.map(
            renormalize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    extras = {**splits.extras, "mean": tuple(target.mean), "std": tuple(target.std),
              "channel_order": target.channel_order}
    return dataclasses.replace(
        splits, train=mapped(splits.train), validation=mapped(splits.validation),
        test=mapped(splits.test), extras=extras,
        model_kwargs={**splits.model_kwargs, "input_shape": (*shape[:2], channels)},
    )


def source_channels(source):
    """Channels of the source model's input: 3 for ImageNet, the run's for a run."""
    if source.kind == IMAGENET:
        return 3
    shape = (source.record.get("data") or {}).get("input_shape")
    return int(shape[-1]) if shape else None


