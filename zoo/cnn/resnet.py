"""ResNet-18/34/50/101/152 (He, Zhang, Ren & Sun 2015) and torchvision's ResNet-50/101/152 v1.5.

resnet18 and resnet34 use basic blocks (two 3x3 convolutions) without convolution biases, as
torchvision does; resnet50/101/152 copy keras.applications.ResNet50/101/152 layer for layer
(bottleneck blocks, stride on the first 1x1 convolution, convolutions with biases), so that
their ImageNet weights transplant and `count_params()` agrees exactly.

resnet50_v1_5, resnet101_v1_5 and resnet152_v1_5 are torchvision's ResNet-50/101/152 (NVIDIA
calls the layout "v1.5"): the downsampling stride sits on the 3x3 convolution of a stage's
first bottleneck block instead of the first 1x1 one (the 1x1 then sees every position, which
torchvision's weights reach +0.5% top-1 with), and no convolution has a bias (batch norm
follows each). Where torch pads a strided convolution by 1 on every side, Keras' "same" would
pad (0, 1): those convolutions take an explicit `ZeroPadding2D(1)`, so torchvision's weights
give torchvision's outputs. The torchvision-layout variants use its batch-norm epsilon 1e-5.

Layer names follow keras.applications: `conv1_conv`, `conv1_bn`, `conv1_relu`, `pool1_pool`,
then `conv{stage}_block{block}_{index}_conv/_bn/_relu`, `..._0_conv` for projection shortcuts,
`..._add` and `..._out` (the names keep "relu" whatever `activation` is).

Stage names for `zoo.features`: `stage1` is the stem output (`conv1_relu`, stride 2); `stage2`
... `stage5` are the outputs of conv2 ... conv5 (strides 4, 8, 16, 32).

Initialisation as He et al. 2015 and torchvision: convolution kernels from N(0, 2 / fan_out)
("kaiming_normal_, mode='fan_out'"), BatchNorm gamma 1 and beta 0, the classifier from
N(0, 0.01); `zero_init_residual=True` (the default, as timm's `zero_init_last`) starts the
last BatchNorm gamma of every residual branch at 0, so that each block begins as the identity
(Goyal et al. 2017, section 5.1; torchvision's option of the same name, default False there).
Without it the deep variants did not learn the digits in 10 epochs (see `_resnet`).

Every variant is one short public function over the private builder `_resnet`, which
documents the arguments; `VARIANTS` holds what differs.
"""

import typing

import keras

import zoo.layers as zoo_layers
from zoo.cnn import common
from zoo.registry import Paper, Variant, register_variant
from zoo.validation import check_bool

RESNET_PAPER = Paper(
    authors="He, Zhang, Ren & Sun",
    year=2015,
    title="Deep Residual Learning for Image Recognition",
    url="https://arxiv.org/abs/1512.03385",
)

STAGE_FILTERS = (64, 128, 256, 512)  # bottleneck blocks output 4x that
DEFAULT_SHAPE = (224, 224, 3)
MIN_SHAPE = (32, 32, 3)
SMALL_CONFIG = {"input_shape": (32, 32, 3), "classes": 10}
BN_EPSILON = 1.001e-5  # keras.applications' value
TORCHVISION_BN_EPSILON = 1e-5  # PyTorch's default, for the torchvision-layout variants
RESNET50_V1_5_PARAMS = 25_610_152
RESNET101_V1_5_PARAMS = 44_654_504
RESNET152_V1_5_PARAMS = 60_344_232
# torchvision's running-average momentum 0.1, which is Keras' 0.9. Keras' default 0.99 (and
# keras.applications') needs ~500 steps to forget the initial statistics: after 10 epochs of
# the digits (450 steps) resnet18 trained to 88% but tested at chance with it.
BN_MOMENTUM = 0.9

RESNET_RECIPE = common.sgd_recipe(
    lr=0.1,
    reference_batch=256,
    weight_decay=1e-4,
    paper_setting=(
        "SGD, batch 256, lr 0.1 divided by 10 when the error plateaus (about epochs 30 and "
        "60 of 90), momentum 0.9, weight decay 1e-4, no dropout; scale augmentation, 224x224 "
        "crops, flips, colour augmentation; gradual warm-up from Goyal et al. 2017"
    ),
    adaptation=(
        "the paper's lr per 256 images, linearly scaled to the batch (0.0125 at 32); 1 "
        "warm-up epoch instead of 5 and steps at 50% and 75% of a 10-epoch run"
    ),
)


class ResNetSpec(typing.NamedTuple):
    """The architecture row of one variant."""

    block: str  # "basic" or "bottleneck"
    repeats: tuple  # blocks in conv2 ... conv5
    torchvision: bool  # torchvision's layout: bias-free, stride on the 3x3 conv, BN eps 1e-5


def _variant(block, repeats, params, summary, torchvision=None):
    return Variant(
        summary=summary,
        params=params,
        recipe=RESNET_RECIPE,
        spec=ResNetSpec(block, repeats, block == "basic" if torchvision is None else torchvision),
    )


# count_params() at 224x224x3 with 1000 classes (with BatchNorm's moving statistics): exactly
# keras.applications' for 50/101/152; resnet18/34 and the v1.5 variants have torchvision's
# trainable counts (checked by the tests). ImageNet weights: zoo.weights.catalog.
VARIANTS = {
    "resnet18": _variant(
        "basic",
        (2, 2, 2, 2),
        11_699_112,
        "basic residual blocks [2, 2, 2, 2], bias-free convs; 11,689,512 trainable",
    ),
    "resnet34": _variant(
        "basic",
        (3, 4, 6, 3),
        21_814_696,
        "basic residual blocks [3, 4, 6, 3], bias-free convs; 21,797,672 trainable",
    ),
    "resnet50": _variant(
        "bottleneck",
        (3, 4, 6, 3),
        25_636_712,
        "bottleneck residual blocks [3, 4, 6, 3] (v1: stride on the 1x1 conv)",
    ),
    "resnet101": _variant(
        "bottleneck",
        (3, 4, 23, 3),
        44_707_176,
        "bottleneck residual blocks [3, 4, 23, 3] (v1: stride on the 1x1 conv)",
    ),
    "resnet152": _variant(
        "bottleneck",
        (3, 8, 36, 3),
        60_419_944,
        "bottleneck residual blocks [3, 8, 36, 3] (v1: stride on the 1x1 conv)",
    ),
    "resnet50_v1_5": _variant(
        "bottleneck",
        (3, 4, 6, 3),
        RESNET50_V1_5_PARAMS,
        "torchvision's ResNet-50: stride on the 3x3 conv (v1.5), bias-free convs",
        torchvision=True,
    ),
    "resnet101_v1_5": _variant(
        "bottleneck",
        (3, 4, 23, 3),
        RESNET101_V1_5_PARAMS,
        "torchvision's ResNet-101: stride on the 3x3 conv (v1.5), bias-free convs",
        torchvision=True,
    ),
    "resnet152_v1_5": _variant(
        "bottleneck",
        (3, 8, 36, 3),
        RESNET152_V1_5_PARAMS,
        "torchvision's ResNet-152: stride on the 3x3 conv (v1.5), bias-free convs",
        torchvision=True,
    ),
}


def _bn(x, name, zero_gamma=False, epsilon=BN_EPSILON):
    return keras.layers.BatchNormalization(
        axis=-1,
        epsilon=epsilon,
        momentum=BN_MOMENTUM,
        gamma_initializer="zeros" if zero_gamma else "ones",
        name=name,
    )(x)


def _shortcut(x, filters, stride, conv_shortcut, use_bias, name, epsilon=BN_EPSILON):
    """The identity, or a 1x1 projection (+ BatchNorm) where the shape changes."""
    if not conv_shortcut:
        return x
    x = common.conv2d(filters, 1, strides=stride, use_bias=use_bias, name=f"{name}_0_conv")(x)
    return _bn(x, f"{name}_0_bn", epsilon=epsilon)


def _bottleneck_block(
    x, filters, stride, conv_shortcut, activation, zero_init, name, torchvision=False
):
    """keras.applications' residual_block_v1: 1x1 (stride) -> 3x3 -> 1x1 (4x filters); with
    `torchvision`, v1.5: 1x1 -> 3x3 (stride, padded 1) -> 1x1, bias-free, BN epsilon 1e-5."""
    epsilon = TORCHVISION_BN_EPSILON if torchvision else BN_EPSILON
    bias = not torchvision
    shortcut = _shortcut(x, 4 * filters, stride, conv_shortcut, bias, name, epsilon)
    first_stride = 1 if torchvision else stride
    x = common.conv2d(filters, 1, strides=first_stride, use_bias=bias, name=f"{name}_1_conv")(x)
    x = _bn(x, f"{name}_1_bn", epsilon=epsilon)
    x = zoo_layers.activation_layer(activation, name=f"{name}_1_relu")(x)
    if torchvision:
        x = _conv3x3(x, filters, stride, f"{name}_2_conv")
    else:
        x = common.conv2d(filters, 3, padding="same", name=f"{name}_2_conv")(x)
    x = _bn(x, f"{name}_2_bn", epsilon=epsilon)
    x = zoo_layers.activation_layer(activation, name=f"{name}_2_relu")(x)
    x = common.conv2d(4 * filters, 1, use_bias=bias, name=f"{name}_3_conv")(x)
    x = _bn(x, f"{name}_3_bn", zero_gamma=zero_init, epsilon=epsilon)
    x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return zoo_layers.activation_layer(activation, name=f"{name}_out")(x)


def _conv3x3(x, filters, stride, name):
    """Bias-free 3x3 convolution padded by 1 on every side (torchvision's, also at stride 2)."""
    if stride == 1:
        return common.conv2d(filters, 3, padding="same", use_bias=False, name=name)(x)
    x = keras.layers.ZeroPadding2D(1, name=f"{name[: -len('_conv')]}_pad")(x)
    return common.conv2d(filters, 3, strides=stride, use_bias=False, name=name)(x)


def _basic_block(
    x, filters, stride, conv_shortcut, activation, zero_init, name, torchvision=True
):
    """torchvision's BasicBlock: 3x3 (stride) -> 3x3, plus a 1x1 projection when shapes change."""
    epsilon = TORCHVISION_BN_EPSILON
    shortcut = _shortcut(x, filters, stride, conv_shortcut, False, name, epsilon)
    x = _conv3x3(x, filters, stride, f"{name}_1_conv")
    x = _bn(x, f"{name}_1_bn", epsilon=epsilon)
    x = zoo_layers.activation_layer(activation, name=f"{name}_1_relu")(x)
    x = _conv3x3(x, filters, 1, f"{name}_2_conv")
    x = _bn(x, f"{name}_2_bn", zero_gamma=zero_init, epsilon=epsilon)
    x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return zoo_layers.activation_layer(activation, name=f"{name}_out")(x)


def _resnet(
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
    zero_init_residual=True,
):
    """Build ResNet `variant` (a key of `VARIANTS`).

    Why residuals: a deeper plain network trains to a *higher* training error than a
    shallower one (degradation), although it could copy the shallow one and add identities.
    Each block therefore learns a residual F(x) added to an identity shortcut, y = F(x) + x,
    which makes the identity easy (F = 0) and gives gradients a direct path through the whole
    depth. Basic blocks (resnet18/34): two 3x3 convolutions (bias-free, BatchNorm after each).
    Bottleneck blocks (resnet50/101/152): 1x1 reduce -> 3x3 -> 1x1 expand (4x), which keeps
    deep networks affordable: the 3x3 convolution runs on a quarter of the channels.

    Args:
        variant: "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", or
            "resnet50_v1_5", "resnet101_v1_5", "resnet152_v1_5" (torchvision's layout).
        include_top: Include global average pooling and the classifier.
        weights: None, "imagenet" (resnet50/101/152: keras.applications' weights; resnet18,
            resnet34 and the v1.5 variants: torchvision's), or the path to a `.weights.h5`
            file.
        input_tensor: Optional Keras tensor to use as the image input.
        input_shape: (height, width, channels); default (224, 224, 3), at least 32x32 (any
            larger size works, including None height/width: the top pools globally).
        pooling: With include_top=False: None (the conv5 map), "avg" or "max".
        classes: Number of classes.
        classifier_activation: "softmax" (float32 `zoo.layers.StableSoftmax`), None for logits,
            or another Keras activation.
        name: Model name (default: the variant's name).
        activation: Activation after each BatchNormalization and each addition: a Keras
            activation name, "shifted_relu" or a callable.
        zero_init_residual: Start the last BatchNorm gamma of each residual branch at 0
            (Goyal et al. 2017), so every block is the identity at initialisation. True by
            default, as timm's `zero_init_last` (torchvision's default is False): measured on
            the digits (10 epochs of the recipe), resnet50 reached 0.77 test accuracy and
            resnet152 0.43 without it; resnet101 reached 0.99 validation accuracy with it.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: for an input below 32x32, `classes < 1`, `weights="imagenet"` with
            `include_top=True` and `classes != 1000`, or any other invalid argument.
    """
    spec = VARIANTS[variant].spec
    bottleneck = spec.block == "bottleneck"
    common.check_arguments(
        variant,
        include_top=include_top,
        weights=weights,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        activation=activation,
    )
    epsilon = TORCHVISION_BN_EPSILON if spec.torchvision else BN_EPSILON
    check_bool("zero_init_residual", zero_init_residual)
    image, inputs, _ = common.model_input(
        input_tensor,
        input_shape,
        default_shape=DEFAULT_SHAPE,
        min_shape=MIN_SHAPE,
        model_name=variant,
        channels=3 if weights == "imagenet" else None,
    )

    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(image)
    x = common.conv2d(64, 7, strides=2, use_bias=not spec.torchvision, name="conv1_conv")(x)
    x = _bn(x, "conv1_bn", epsilon=epsilon)
    x = zoo_layers.activation_layer(activation, name="conv1_relu")(x)
    x = common.stage(x, 1)
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)

    block = _bottleneck_block if bottleneck else _basic_block
    in_channels = 64
    for stage_index, (filters, count) in enumerate(zip(STAGE_FILTERS, spec.repeats), 2):
        out_channels = 4 * filters if bottleneck else filters
        for block_index in range(1, count + 1):
            stride = 2 if block_index == 1 and stage_index > 2 else 1
            # keras.applications always projects in a stage's first bottleneck block;
            # torchvision's basic blocks project only when the shape changes.
            conv_shortcut = block_index == 1 and (
                bottleneck or stride != 1 or in_channels != out_channels
            )
            x = block(
                x,
                filters,
                stride,
                conv_shortcut,
                activation,
                zero_init_residual,
                name=f"conv{stage_index}_block{block_index}",
                torchvision=spec.torchvision,
            )
            in_channels = out_channels
        x = common.stage(x, stage_index)

    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = common.classifier_output(x, classes, classifier_activation)
    else:
        x = common.global_pool(x, pooling)
    return common.finish(inputs, x, name or variant, weights, variant, include_top)


_register = register_variant(
    VARIANTS,
    _resnet,
    task="image-classification",
    paper=RESNET_PAPER,
    default_input_shape=DEFAULT_SHAPE,
    min_input_shape=MIN_SHAPE,
    small_config=SMALL_CONFIG,
    default_dataset="cifar10",
)


@_register
def resnet18(**kwargs):
    """ResNet-18 of He et al. 2015 (basic blocks, torchvision's layout); see `_resnet`."""
    return _resnet("resnet18", **kwargs)


@_register
def resnet34(**kwargs):
    """ResNet-34 of He et al. 2015 (basic blocks, torchvision's layout); see `_resnet`."""
    return _resnet("resnet34", **kwargs)


@_register
def resnet50(**kwargs):
    """ResNet-50 of He et al. 2015, as keras.applications.ResNet50; see `_resnet`."""
    return _resnet("resnet50", **kwargs)


@_register
def resnet101(**kwargs):
    """ResNet-101 of He et al. 2015, as keras.applications.ResNet101; see `_resnet`."""
    return _resnet("resnet101", **kwargs)


@_register
def resnet152(**kwargs):
    """ResNet-152 of He et al. 2015, as keras.applications.ResNet152; see `_resnet`."""
    return _resnet("resnet152", **kwargs)


@_register
def resnet50_v1_5(**kwargs):
    """ResNet-50 of He et al. 2015 in torchvision's v1.5 layout (stride on the 3x3 conv)."""
    return _resnet("resnet50_v1_5", **kwargs)


@_register
def resnet101_v1_5(**kwargs):
    """ResNet-101 of He et al. 2015 in torchvision's v1.5 layout (stride on the 3x3 conv)."""
    return _resnet("resnet101_v1_5", **kwargs)


@_register
def resnet152_v1_5(**kwargs):
    """ResNet-152 of He et al. 2015 in torchvision's v1.5 layout (stride on the 3x3 conv)."""
    return _resnet("resnet152_v1_5", **kwargs)
