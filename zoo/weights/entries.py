"""What the registry records about a set of pretrained weights: `WeightsEntry` and the
`Preprocessing` its images need. Plain dataclasses (NumPy and keras.ops are imported only
when images are preprocessed), so the registry and `zoo info` read them without TensorFlow.
"""

import dataclasses

import numpy as np

CHANNEL_ORDERS = ("RGB", "BGR")


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How images must be prepared for a set of weights.

    The evaluation pipeline of the source: resize the shorter side to `resize` pixels
    (`interpolation`), centre-crop `crop` x `crop`, then `__call__`: scale [0, 1] RGB pixels by
    `scale` (1: stay in [0, 1], torchvision; 255: Caffe's 0-255), reorder the channels to
    `channel_order`, subtract `mean` and divide by `std` (both given in the model's channel
    order and scale).

    Attributes:
        resize: Shorter side before the centre crop (evaluation).
        crop: Centre crop, the model's input size at evaluation.
        mean: Per-channel mean, in `channel_order` and on the `scale` range.
        std: Per-channel standard deviation (1.0 each for Caffe-style mean subtraction).
        channel_order: "RGB" or "BGR" (Caffe's).
        scale: 1.0 for [0, 1] pixels, 255.0 for 0-255 pixels.
        interpolation: Resampling for the resize ("bilinear").
    """

    resize: int
    crop: int
    mean: tuple
    std: tuple = (1.0, 1.0, 1.0)
    channel_order: str = "RGB"
    scale: float = 1.0
    interpolation: str = "bilinear"

    def __post_init__(self):
        if self.channel_order not in CHANNEL_ORDERS:
            raise ValueError(
                f"Argument `channel_order` must be one of {CHANNEL_ORDERS}. "
                f"Received: channel_order={self.channel_order!r}"
            )
        for argument in ("mean", "std"):
            value = getattr(self, argument)
            if len(value) != 3:
                raise ValueError(
                    f"Argument `{argument}` must have 3 values (one per channel). "
                    f"Received: {argument}={value!r}"
                )

    def __call__(self, images):
        """Map a batch of [0, 1] RGB float images (..., height, width, 3) to model input.

        NumPy arrays give NumPy arrays; backend tensors (e.g. in a tf.data map or a Keras
        layer) give tensors of the active backend through keras.ops.
        """
        if isinstance(images, np.ndarray):
            ops = np
            x = images.astype(np.float32)
        else:
            import keras

            ops = keras.ops
            x = ops.cast(images, "float32")
        x = x * self.scale
        if self.channel_order == "BGR":
            x = ops.flip(x, axis=-1)
        mean = np.asarray(self.mean, np.float32)
        std = np.asarray(self.std, np.float32)
        return (x - mean) / std

    def to_json(self):
        """The fields as plain JSON values (lists for tuples), for run records."""
        return {
            field.name: list(value) if isinstance(value, tuple) else value
            for field in dataclasses.fields(self)
            for value in (getattr(self, field.name),)
        }

    @classmethod
    def from_json(cls, data):
        """Inverse of `to_json`."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def describe(self):
        """One line for people."""
        numbers = ", ".join(f"{m:g}" for m in self.mean)
        if self.std == (1.0, 1.0, 1.0):
            normalise = f"subtract mean ({numbers})"
        else:
            normalise = f"mean ({numbers}), std ({', '.join(f'{s:g}' for s in self.std)})"
        pixels = "0-255" if self.scale == 255.0 else "[0, 1]"
        return (
            f"resize {self.resize} ({self.interpolation}), centre crop {self.crop}, "
            f"{self.channel_order} {pixels}, {normalise}"
        )


TORCHVISION_PREPROCESSING = Preprocessing(
    resize=256, crop=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
)
# keras.applications' "caffe" mode (vgg16/vgg19/resnet preprocess_input): 0-255 BGR, minus
# the ImageNet mean in BGR order, no scaling. The resize/crop are the usual 256 -> 224 of the
# Caffe evaluation that keras.io's accuracy table used (single centre crop at 224).
CAFFE_PREPROCESSING = Preprocessing(
    resize=256,
    crop=224,
    mean=(103.939, 116.779, 123.68),
    channel_order="BGR",
    scale=255.0,
)


@dataclasses.dataclass(frozen=True)
class WeightsEntry:
    """One set of pretrained weights of one model.

    Attributes:
        source: Where they come from ("torchvision", "keras.applications").
        url: The file with the classifier (include_top=True).
        file_name: Its name in the Keras cache (`$KERAS_HOME/models/`).
        file_hash: Its published hash (hex), or a prefix of it (`hash_is_prefix`).
        hash_algorithm: "sha256" or "md5" (keras.applications publishes md5).
        hash_is_prefix: True where only a prefix is published (torchvision's file names carry
            the first 8+ hex digits of the sha256, which torch.hub checks).
        license: What the source says about the weights' terms.
        preprocessing: The `Preprocessing` the weights were trained and evaluated with.
        top1: The source's published ImageNet-1k validation top-1 accuracy, in percent.
        top1_reference: Where that number is published.
        source_name: The source's own name for them (e.g. "ResNet18_Weights.IMAGENET1K_V1").
        url_without_top: A separate file for include_top=False, where the source has one.
        file_hash_without_top: Its hash.
    """

    source: str
    url: str
    file_name: str
    file_hash: str
    license: str
    preprocessing: Preprocessing
    top1: float
    top1_reference: str
    hash_algorithm: str = "sha256"
    hash_is_prefix: bool = False
    source_name: str = ""
    url_without_top: str | None = None
    file_hash_without_top: str | None = None

    def to_json(self):
        """The fields as plain JSON values (the preprocessing as a dict), for run records."""
        data = dataclasses.asdict(self)
        data["preprocessing"] = self.preprocessing.to_json()
        return data
