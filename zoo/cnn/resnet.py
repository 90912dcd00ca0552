"""ResNet-18/34/50/101/152 (He, Zhang, Ren & Sun 2015).

resnet18 and resnet34 use basic blocks (two 3x3 convolutions) without convolution biases, as
torchvision does; resnet50/101/152 copy keras.applications.ResNet50/101/152 layer for layer
(bottleneck blocks, stride on the first 1x1 convolution, convolutions with biases), so that
their ImageNet weights transplant and `count_params()` agrees exactly.

Layer names follow keras.applications: `conv1_conv`, `conv1_bn`, `conv1_relu`, `pool1_pool`,
then `conv{stage}_block{block}_{index}_conv/_bn/_relu`, `..._0_conv` for projection shortcuts,
`..._add` and `..._out` (the names keep "relu" whatever `activation` is).

Stage names for `zoo.features`: `stage1` is the stem output (`conv1_relu`, stride 2); `stage2`
... `stage5` are the outputs of conv2 ... conv5 (strides 4, 8, 16, 32).
"""

import keras

import layers as zoo_layers
from zoo import weights as zoo_weights
from zoo.cnn import common
from zoo.registry import Paper, register_model

RESNET_PAPER = Paper(
    authors="He, Zhang, Ren & Sun",
    year=2015,
    title="Deep Residual Learning for Image Recognition",
    url="https://arxiv.org/abs/1512.03385",
)

# depth name -> (block type, blocks in conv2..conv5). Filters per stage: 64, 128, 256, 512
# (bottleneck blocks output 4x that).
RESNET_SPECS = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)),
}
STAGE_FILTERS = (64, 128, 256, 512)
DEFAULT_SHAPE = (224, 224, 3)
MIN_SHAPE = (32, 32, 3)
SMALL_CONFIG = {"input_shape": (32, 32, 3), "classes": 10}
BN_EPSILON = 1.001e-5  # keras.applications' value


def _bn(x, name):
    return keras.layers.BatchNormalization(axis=-1, epsilon=BN_EPSILON, name=name)(x)


def _bottleneck_block(x, filters, stride, conv_shortcut, activation, name):
    """keras.applications' residual_block_v1: 1x1 (stride) -> 3x3 -> 1x1 (4x filters)."""
    if conv_shortcut:
        shortcut = keras.layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(x)
        shortcut = _bn(shortcut, f"{name}_0_bn")
    else:
        shortcut = x
    x = keras.layers.Conv2D(filters, 1, strides=stride, name=f"{name}_1_conv")(x)
    x = _bn(x, f"{name}_1_bn")
    x = zoo_layers.activation_layer(activation, name=f"{name}_1_relu")(x)
    x = keras.layers.Conv2D(filters, 3, padding="same", name=f"{name}_2_conv")(x)
    x = _bn(x, f"{name}_2_bn")
    x = zoo_layers.activation_layer(activation, name=f"{name}_2_relu")(x)
    x = keras.layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    x = _bn(x, f"{name}_3_bn")
    x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return zoo_layers.activation_layer(activation, name=f"{name}_out")(x)


def _conv3x3(x, filters, stride, name):
    """Bias-free 3x3 convolution padded by 1 on every side (torchvision's, also at stride 2)."""
    if stride == 1:
        return keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
    x = keras.layers.ZeroPadding2D(1, name=f"{name[: -len('_conv')]}_pad")(x)
    return keras.layers.Conv2D(filters, 3, strides=stride, use_bias=False, name=name)(x)


def _basic_block(x, filters, stride, conv_shortcut, activation, name):
    """torchvision's BasicBlock: 3x3 (stride) -> 3x3, plus a 1x1 projection when shapes change."""
    if conv_shortcut:
        shortcut = keras.layers.Conv2D(
            filters, 1, strides=stride, use_bias=False, name=f"{name}_0_conv"
        )(x)
        shortcut = _bn(shortcut, f"{name}_0_bn")
    else:
        shortcut = x
    x = _conv3x3(x, filters, stride, f"{name}_1_conv")
    x = _bn(x, f"{name}_1_bn")
    x = zoo_layers.activation_layer(activation, name=f"{name}_1_relu")(x)
    x = _conv3x3(x, filters, 1, f"{name}_2_conv")
    x = _bn(x, f"{name}_2_bn")
    x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return zoo_layers.activation_layer(activation, name=f"{name}_out")(x)


def _resnet(
    depth_name,
    include_top,
    weights,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation,
    name,
    activation,
):
    block_type, repeats = RESNET_SPECS[depth_name]
    bottleneck = block_type == "bottleneck"
    common.check_classes(classes)
    common.check_pooling(pooling)
    common.check_activation(activation)
    common.check_classifier_activation(classifier_activation)
    common.check_weights(
        weights,
        include_top=include_top,
        classes=classes,
        imagenet=depth_name in zoo_weights.IMAGENET_SOURCES,
        model_name=depth_name,
    )
    image, inputs, _ = common.model_input(
        input_tensor,
        input_shape,
        default_shape=DEFAULT_SHAPE,
        min_shape=MIN_SHAPE,
        model_name=depth_name,
        channels=3 if weights == "imagenet" else None,
    )

    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(image)
    x = keras.layers.Conv2D(64, 7, strides=2, use_bias=bottleneck, name="conv1_conv")(x)
    x = _bn(x, "conv1_bn")
    x = zoo_layers.activation_layer(activation, name="conv1_relu")(x)
    x = common.stage(x, 1)
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)

    block = _bottleneck_block if bottleneck else _basic_block
    in_channels = 64
    for stage_index, (filters, count) in enumerate(zip(STAGE_FILTERS, repeats), 2):
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
                name=f"conv{stage_index}_block{block_index}",
            )
            in_channels = out_channels
        x = common.stage(x, stage_index)

    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = common.classifier_output(x, classes, classifier_activation)
    else:
        x = common.global_pool(x, pooling)
    model = common.finish(inputs, x, name, weights)
    if weights == "imagenet":
        zoo_weights.load_imagenet(model, depth_name, include_top)
    return model


_ARGS_DOC = """
    Args:
        include_top: Include global average pooling and the classifier.
        weights: None, {imagenet}or the path to a `.weights.h5` file.
        input_tensor: Optional Keras tensor to use as the image input.
        input_shape: (height, width, channels); default (224, 224, 3), at least 32x32 (any
            larger size works, including None height/width: the top pools globally).
        pooling: With include_top=False: None (the conv5 map), "avg" or "max".
        classes: Number of classes.
        classifier_activation: "softmax" (float32 `layers.StableSoftmax`), None for logits,
            or another Keras activation.
        name: Model name.
        activation: Activation after each BatchNormalization and each addition: a Keras
            activation name, "shifted_relu" or a callable.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: for an input below 32x32, `classes < 1`, `weights="imagenet"` with
            `include_top=True` and `classes != 1000`, or any other invalid argument.
"""

_DISTINCTIVE = """
    Why residuals: a deeper plain network trains to a *higher* training error than a shallower
    one (degradation), although it could copy the shallow one and add identities. Each block
    therefore learns a residual F(x) added to an identity shortcut, y = F(x) + x, which makes
    the identity easy (F = 0) and gives gradients a direct path through the whole depth.
"""

_BLOCKS = {
    "basic": "Basic blocks: two 3x3 convolutions (bias-free, BatchNorm after each).",
    "bottleneck": (
        "Bottleneck blocks: 1x1 reduce -> 3x3 -> 1x1 expand (4x), which keeps deep networks\n"
        "    affordable: the 3x3 convolution runs on a quarter of the channels."
    ),
}


def _public(depth_name, params, summary, trainable=None):
    imagenet = depth_name in zoo_weights.IMAGENET_SOURCES
    block_type, repeats = RESNET_SPECS[depth_name]

    def builder(
        include_top=True,
        weights=None,
        input_tensor=None,
        input_shape=None,
        pooling=None,
        classes=1000,
        classifier_activation="softmax",
        name=depth_name,
        activation="relu",
    ):
        return _resnet(
            depth_name,
            include_top,
            weights,
            input_tensor,
            input_shape,
            pooling,
            classes,
            classifier_activation,
            name,
            activation,
        )

    count = (
        f"{params:,} parameters (`count_params()`, exactly keras.applications', with\n"
        "    BatchNorm's moving statistics)"
        if imagenet
        else f"{trainable:,} trainable parameters (torchvision's count; `count_params()`, which\n"
        f"    adds BatchNorm's moving statistics, gives {params:,})"
    )
    builder.__name__ = builder.__qualname__ = depth_name
    builder.__doc__ = (
        f'{depth_name.replace("resnet", "ResNet-")} of He et al. 2015, "Deep Residual '
        f'Learning for Image Recognition".\n{_DISTINCTIVE}\n    {_BLOCKS[block_type]} Blocks '
        f"per stage: {repeats}.\n\n    {count} at 224x224x3 with 1000 classes.\n"
        + _ARGS_DOC.format(
            imagenet="'imagenet' (keras.applications' weights), " if imagenet else ""
        )
    )
    builder.__module__ = __name__
    return register_model(
        task="image-classification",
        paper=RESNET_PAPER,
        summary=summary,
        default_input_shape=DEFAULT_SHAPE,
        min_input_shape=MIN_SHAPE,
        params=params,
        small_config=SMALL_CONFIG,
        default_dataset="cifar10",
    )(builder)


resnet18 = _public(
    "resnet18",
    11_699_112,
    "basic residual blocks [2, 2, 2, 2], bias-free convs; 11,689,512 trainable",
    trainable=11_689_512,
)
resnet34 = _public(
    "resnet34",
    21_814_696,
    "basic residual blocks [3, 4, 6, 3], bias-free convs; 21,797,672 trainable",
    trainable=21_797_672,
)
resnet50 = _public(
    "resnet50", 25_636_712, "bottleneck residual blocks [3, 4, 6, 3]; ImageNet weights"
)
resnet101 = _public(
    "resnet101", 44_707_176, "bottleneck residual blocks [3, 4, 23, 3]; ImageNet weights"
)
resnet152 = _public(
    "resnet152", 60_419_944, "bottleneck residual blocks [3, 8, 36, 3]; ImageNet weights"
)
