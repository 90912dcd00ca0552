"""AlexNet (Krizhevsky, Sutskever & Hinton 2012) and ZFNet (Zeiler & Fergus 2013).

**AlexNet** won ILSVRC-2012 by a wide margin. What was distinctive: ReLUs instead of
saturating tanh (several times faster training), local response normalization after the
first two convolutions (`zoo.layers.LocalResponseNormalization`, k=2, n=5, alpha=1e-4,
beta=0.75), overlapping 3x3 max pooling with stride 2, and dropout (0.5) on fc6 and fc7
against the over-fitting of 60 million parameters. Layers (227x227x3 input): conv1 96 11x11
stride 4 -> LRN -> pool; conv2 256 5x5 -> LRN -> pool; conv3 384 3x3; conv4 384 3x3; conv5
256 3x3 -> pool (6x6x256); fc6 4096; fc7 4096; classifier. The paper split conv2, conv4 and
conv5 between two GPUs (each half seeing only its own half of the channels, 60,965,224
parameters); this is the single-tower network of most re-implementations: 62,378,344
parameters with 1000 classes. Input 227x227 (the paper's "224" does not give its 55x55 conv1
output); any size from 67x67 up works.

**ZFNet** is AlexNet corrected with what the authors' deconvolution visualisations showed:
AlexNet's 11x11 stride-4 first layer left dead filters and aliasing artefacts in the second
layer, so ZFNet uses 96 filters of 7x7 with stride 2 and a stride-2 conv2, keeping more
mid-frequency information. Layers (224x224x3 input, the paper's Fig. 3): conv1 96 7x7 stride
2 -> 3x3 max pool stride 2 -> contrast normalization (55x55x96); conv2 256 5x5 stride 2 ->
pool -> normalization (13x13x256); conv3 384, conv4 384, conv5 256 (3x3, dense connections:
one GPU) -> pool (6x6x256); fc6 and fc7 4096 with dropout 0.5; classifier. Following the
paper, each convolution filter whose RMS exceeds 0.1 is renormalised to 0.1 after every
update (a kernel constraint). Contrast normalization is `zoo.layers.LocalResponseNormalization`
with AlexNet's constants. Pooling rounds up (Caffe's convention, padding "same") so that the
sizes are the paper's 110 -> 55 and 26 -> 13. 62,357,608 parameters with 1000 classes; any
input from 53x53 up works.

Initialisation: both papers drew weights from N(0, 0.01) (AlexNet with unit biases in conv2,
conv4, conv5 and fc6/fc7). Fully connected layers keep N(0, 0.01) with zero biases; the
convolutions use He et al.'s N(0, 2 / fan_out) (torchvision's practice), with which the
8-layer stacks start learning in the first epoch on small data.

Stage names for `zoo.features`: `stage1` and `stage2` follow the first and second
convolution blocks (after pooling and normalization), `stage3` and `stage4` are the third and
fourth convolutions, `stage5` the fifth after its max pooling (the input of fc6).
"""

import math
import typing

import keras

import zoo.layers as zoo_layers
from zoo.cnn import common
from zoo.registry import Paper, Variant, register_variant

ALEXNET_PAPER = Paper(
    authors="Krizhevsky, Sutskever & Hinton",
    year=2012,
    title="ImageNet Classification with Deep Convolutional Neural Networks",
    url="https://papers.nips.cc/paper/4824-imagenet-classification-with-deep-convolutional-"
    "neural-networks",
)
ZFNET_PAPER = Paper(
    authors="Zeiler & Fergus",
    year=2013,
    title="Visualizing and Understanding Convolutional Networks",
    url="https://arxiv.org/abs/1311.2901",
)

ZFNET_FILTER_RMS = 0.1

ALEXNET_RECIPE = common.sgd_recipe(
    paper_setting=(
        "SGD, batch 128, momentum 0.9, weight decay 5e-4, lr 0.01 divided by 10 when the "
        "validation error stopped improving (3 times in about 90 epochs); random 224x224 "
        "crops and flips, PCA colour augmentation"
    ),
    adaptation=(
        "lr 0.01 stated for batch 32 instead of 128, 1 warm-up epoch, and fixed steps at 50% "
        "and 75% of a 10-epoch run instead of the plateau-driven decay"
    ),
)
ZFNET_RECIPE = common.sgd_recipe(
    paper_setting=(
        "SGD, batch 128, momentum 0.9, lr 0.01 annealed by hand on the validation error, "
        "dropout 0.5, 70 epochs; 224x224 crops and flips (AlexNet's weight decay 5e-4)"
    ),
    adaptation=(
        "lr 0.01 stated for batch 32 instead of 128, 1 warm-up epoch, and fixed steps at 50% "
        "and 75% of a 10-epoch run instead of the hand annealing"
    ),
)


class AlexNetSpec(typing.NamedTuple):
    """The architecture row of one variant (what ZFNet changed in AlexNet)."""

    conv1: tuple  # (kernel, stride, zero padding)
    conv2_stride: int
    pool_padding: str  # "valid" (AlexNet) or "same" (ZFNet: Caffe's rounding up)
    norm_after_pool: bool  # ZFNet pools before normalising, AlexNet after
    filter_rms: float | None  # ZFNet's filter renormalization
    default_shape: tuple
    min_shape: tuple


VARIANTS = {
    "alexnet": Variant(
        summary="5 conv (96-256-384-384-256) + 3 FC, ReLU, local response norm, dropout",
        params=62_378_344,
        recipe=ALEXNET_RECIPE,
        small_config={"input_shape": (67, 67, 3), "classes": 10},
        default_input_shape=(227, 227, 3),
        min_input_shape=(67, 67, 3),
        spec=AlexNetSpec((11, 4, 0), 1, "valid", False, None, (227, 227, 3), (67, 67, 3)),
    ),
    "zfnet": Variant(
        summary="AlexNet with a 7x7 stride-2 first conv, stride-2 conv2, dense conv3-5",
        params=62_357_608,
        recipe=ZFNET_RECIPE,
        paper=ZFNET_PAPER,
        small_config={"input_shape": (64, 64, 3), "classes": 10},
        default_input_shape=(224, 224, 3),
        min_input_shape=(53, 53, 3),
        spec=AlexNetSpec((7, 2, 1), 2, "same", True, ZFNET_FILTER_RMS, (224, 224, 3), (53, 53, 3)),
    ),
}


def _filter_rms_constraint(rms, kernel_size, in_channels):
    """Zeiler & Fergus' filter renormalization: a filter whose RMS exceeds `rms` is scaled
    back to it.

    RMS = L2 norm / sqrt(number of weights), so this is `MaxNorm` over each filter's
    (height, width, input channels) with a maximum L2 norm of rms * sqrt(k * k * c).
    """
    if rms is None:
        return None
    return keras.constraints.MaxNorm(
        max_value=rms * math.sqrt(kernel_size * kernel_size * in_channels), axis=[0, 1, 2]
    )


def _conv(x, filters, kernel_size, spec, activation, name, strides=1, padding="valid"):
    constraint = _filter_rms_constraint(spec.filter_rms, kernel_size, x.shape[-1])
    x = common.conv2d(
        filters, kernel_size, strides=strides, padding=padding, kernel_constraint=constraint,
        name=name,
    )(x)
    return zoo_layers.activation_layer(activation, name=f"{name}_act")(x)


def _pool_and_normalize(x, spec, index):
    pool = keras.layers.MaxPooling2D(
        3, strides=2, padding=spec.pool_padding, name=f"pool{index}"
    )
    norm = zoo_layers.LocalResponseNormalization(name=f"conv{index}_norm")
    x = norm(pool(x)) if spec.norm_after_pool else pool(norm(x))
    return common.stage(x, index)


def _alexnet(
    variant,
    *,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    activation="relu",
    dropout=0.5,
    dropout_scaling="inverted",
):
    """Build `variant`, "alexnet" or "zfnet" (see the module docstring for both).

    Args:
        variant: "alexnet" or "zfnet".
        include_top: Include fc6, fc7 and the classifier.
        weights: None or the path to a `.weights.h5` file (no ImageNet weights exist).
        input_tensor: Optional Keras tensor to use as the image input.
        input_shape: (height, width, channels); default (227, 227, 3) for AlexNet, (224, 224,
            3) for ZFNet; at least 67x67 / 53x53. fc6 flattens the last map, so the top needs
            a fixed size.
        pooling: With include_top=False: None (the pooled conv5 map), "avg" or "max".
        classes: Number of classes.
        classifier_activation: "softmax" (float32 `zoo.layers.StableSoftmax`), None for logits,
            or another Keras activation.
        name: Model name (default: the variant's name).
        activation: Hidden activation: a Keras activation name, "shifted_relu" or a callable.
        dropout: Dropout rate after fc6 and fc7 (the papers' 0.5).
        dropout_scaling: "inverted" (default), "inference" (AlexNet's: multiply outputs by
            1 - rate at test time) or "none"; see `zoo.layers.ScaledDropout`.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: for an input below the minimum size, `classes < 1`, `weights="imagenet"`
            (none exist), or any other invalid argument.
    """
    spec = VARIANTS[variant].spec
    dropout_spec = (dropout, dropout_scaling)
    common.check_arguments(
        variant,
        include_top=include_top,
        weights=weights,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        activation=activation,
        dropout_spec=dropout_spec,
    )
    image, inputs, _ = common.model_input(
        input_tensor,
        input_shape,
        default_shape=spec.default_shape,
        min_shape=spec.min_shape,
        model_name=variant,
        static_size=include_top,
    )
    kernel, stride, padding = spec.conv1
    x = image
    if padding:
        x = keras.layers.ZeroPadding2D(padding, name="conv1_pad")(x)
    x = _conv(x, 96, kernel, spec, activation, "conv1", strides=stride)
    x = _pool_and_normalize(x, spec, 1)
    conv2_padding = "valid" if spec.conv2_stride > 1 else "same"
    x = _conv(x, 256, 5, spec, activation, "conv2", spec.conv2_stride, conv2_padding)
    x = _pool_and_normalize(x, spec, 2)
    for index, filters in ((3, 384), (4, 384), (5, 256)):
        x = _conv(x, filters, 3, spec, activation, f"conv{index}", padding="same")
        if index < 5:
            x = common.stage(x, index)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool5")(x)
    x = common.stage(x, 5)
    if include_top:
        x = keras.layers.Flatten(name="flatten")(x)
        for fc in ("fc6", "fc7"):
            x = common.fully_connected(x, 4096, activation, dropout_spec, name=fc)
        x = common.classifier_output(x, classes, classifier_activation)
    else:
        x = common.global_pool(x, pooling)
    return common.finish(inputs, x, name or variant, weights)


_register = register_variant(
    VARIANTS, _alexnet, task="image-classification", paper=ALEXNET_PAPER, default_dataset="cifar10"
)


@_register
def alexnet(**kwargs):
    """AlexNet of Krizhevsky, Sutskever & Hinton 2012 (single tower); see `_alexnet`."""
    return _alexnet("alexnet", **kwargs)


@_register
def zfnet(**kwargs):
    """ZFNet of Zeiler & Fergus 2013, AlexNet with smaller, denser early filters; see `_alexnet`."""
    return _alexnet("zfnet", **kwargs)
