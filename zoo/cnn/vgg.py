"""VGG-11/13/16/19 (Simonyan & Zisserman 2014), interchangeable with keras.applications.VGG16/19.

Stage names for `zoo.features`: `stage1` ... `stage5` are the outputs of `block1_pool` ...
`block5_pool` (strides 2, 4, 8, 16, 32).
"""

import keras

import layers as zoo_layers
from zoo import weights as zoo_weights
from zoo.cnn import common
from zoo.registry import Paper, register_model

VGG_PAPER = Paper(
    authors="Simonyan & Zisserman",
    year=2014,
    title="Very Deep Convolutional Networks for Large-Scale Image Recognition",
    url="https://arxiv.org/abs/1409.1556",
)

# Convolutions per block (filters 64, 128, 256, 512, 512); the paper's configurations A, B, D, E.
VGG_SPECS = {
    "vgg11": (1, 1, 2, 2, 2),
    "vgg13": (2, 2, 2, 2, 2),
    "vgg16": (2, 2, 3, 3, 3),
    "vgg19": (2, 2, 4, 4, 4),
}
BLOCK_FILTERS = (64, 128, 256, 512, 512)
DEFAULT_SHAPE = (224, 224, 3)
MIN_SHAPE = (32, 32, 3)
SMALL_CONFIG = {"input_shape": (32, 32, 3), "classes": 10}


def _vgg(
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
    dropout_rate,
    dropout_scaling,
):
    imagenet = depth_name in zoo_weights.IMAGENET_SOURCES
    common.check_classes(classes)
    common.check_pooling(pooling)
    common.check_activation(activation)
    common.check_classifier_activation(classifier_activation)
    common.check_dropout(dropout_rate, dropout_scaling)
    common.check_weights(
        weights, include_top=include_top, classes=classes, imagenet=imagenet, model_name=depth_name
    )
    image, inputs, shape = common.model_input(
        input_tensor,
        input_shape,
        default_shape=DEFAULT_SHAPE,
        min_shape=MIN_SHAPE,
        model_name=depth_name,
        static_size=include_top,
        channels=3 if weights == "imagenet" else None,
    )
    if weights == "imagenet" and include_top and shape != DEFAULT_SHAPE:
        raise ValueError(
            f"{depth_name} with weights='imagenet' and include_top=True flattens a 7x7 map "
            f"into fc1, so the input must be {DEFAULT_SHAPE} (use include_top=False for other "
            f"sizes). Received: input_shape={shape}"
        )

    x = image
    for block, (convs, filters) in enumerate(zip(VGG_SPECS[depth_name], BLOCK_FILTERS), 1):
        for index in range(1, convs + 1):
            conv_name = f"block{block}_conv{index}"
            x = keras.layers.Conv2D(filters, 3, padding="same", name=conv_name)(x)
            x = zoo_layers.activation_layer(activation, name=f"{conv_name}_act")(x)
        x = keras.layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
        x = common.stage(x, block)

    if include_top:
        x = keras.layers.Flatten(name="flatten")(x)
        for fc in ("fc1", "fc2"):
            x = keras.layers.Dense(4096, name=fc)(x)
            x = zoo_layers.activation_layer(activation, name=f"{fc}_act")(x)
            x = common.dropout(x, dropout_rate, dropout_scaling, name=f"{fc}_dropout")
        x = common.classifier_output(x, classes, classifier_activation)
    else:
        x = common.global_pool(x, pooling)
    model = common.finish(inputs, x, name, weights)
    if weights == "imagenet":
        zoo_weights.load_imagenet(model, depth_name, include_top)
    return model


_ARGS_DOC = """
    Args:
        include_top: Include the three fully connected layers (fc1, fc2, classifier).
        weights: None, {imagenet}or the path to a `.weights.h5` file.
        input_tensor: Optional Keras tensor to use as the image input.
        input_shape: (height, width, channels); default (224, 224, 3), at least 32x32. With
            the top, fc1 flattens the last map (7x7x512 at 224, 1x1x512 at 32).
        pooling: With include_top=False: None (the block5_pool map), "avg" or "max".
        classes: Number of classes.
        classifier_activation: "softmax" (float32 `layers.StableSoftmax`), None for logits,
            or another Keras activation.
        name: Model name.
        activation: Hidden activation: Keras name, "shifted_relu" or a callable.
        dropout_rate: Dropout after fc1 and fc2 (the paper's 0.5).
        dropout_scaling: "inverted", "inference" or "none" (see `layers.ScaledDropout`).

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: for an input below 32x32, `classes < 1`, `weights="imagenet"` with
            `include_top=True` and `classes != 1000`, or any other invalid argument.
"""

_DISTINCTIVE = """
    VGG replaces large filters by stacks of 3x3 convolutions: two 3x3 layers see a 5x5 region
    and three see 7x7, with fewer parameters (3 * 9 C^2 instead of 49 C^2) and a non-linearity
    after each, so depth grows at constant receptive field cost. Max pooling halves the
    resolution after each of the five blocks while the filters double (64 to 512).
"""


def _public(depth_name, params, summary, config):
    imagenet = depth_name in zoo_weights.IMAGENET_SOURCES

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
        dropout_rate=0.5,
        dropout_scaling="inverted",
    ):
        return _vgg(
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
            dropout_rate,
            dropout_scaling,
        )

    builder.__name__ = builder.__qualname__ = depth_name
    builder.__doc__ = (
        f'{depth_name.upper()} (configuration {config}) of Simonyan & Zisserman 2014, "Very '
        f'Deep Convolutional Networks for Large-Scale Image Recognition".\n{_DISTINCTIVE}\n'
        f"    {params:,} parameters at 224x224x3 with 1000 classes"
        + (" (exactly keras.applications' count; layer names are Keras' too)." if imagenet else ".")
        + "\n"
        + _ARGS_DOC.format(
            imagenet="'imagenet' (keras.applications' weights), " if imagenet else ""
        )
    )
    builder.__module__ = __name__
    return register_model(
        task="image-classification",
        paper=VGG_PAPER,
        summary=summary,
        default_input_shape=DEFAULT_SHAPE,
        min_input_shape=MIN_SHAPE,
        params=params,
        small_config=SMALL_CONFIG,
        default_dataset="cifar10",
    )(builder)


vgg11 = _public("vgg11", 132_863_336, "8 conv 3x3 layers in 5 blocks + 3 FC (config A)", "A")
vgg13 = _public("vgg13", 133_047_848, "10 conv 3x3 layers in 5 blocks + 3 FC (config B)", "B")
vgg16 = _public(
    "vgg16", 138_357_544, "13 conv 3x3 layers in 5 blocks + 3 FC; ImageNet weights", "D"
)
vgg19 = _public(
    "vgg19", 143_667_240, "16 conv 3x3 layers in 5 blocks + 3 FC; ImageNet weights", "E"
)
