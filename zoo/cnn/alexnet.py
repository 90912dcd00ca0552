"""AlexNet (Krizhevsky, Sutskever & Hinton 2012) and ZFNet (Zeiler & Fergus 2013).

Stage names for `zoo.features`: `stage1` and `stage2` follow the first and second
convolution blocks (after pooling and normalization), `stage3` and `stage4` are the third and
fourth convolutions, `stage5` the fifth after its max pooling (the input of fc6).
"""

import math

import keras

import layers as zoo_layers
from zoo.cnn import common
from zoo.registry import Paper, register_model

ALEXNET_PAPER = Paper(
    authors="Krizhevsky, Sutskever & Hinton",
    year=2012,
    title="ImageNet Classification with Deep Convolutional Neural Networks",
    url="https://papers.nips.cc/paper/4824-imagenet-classification-with-deep-convolutional-neural-networks",
)
ZFNET_PAPER = Paper(
    authors="Zeiler & Fergus",
    year=2013,
    title="Visualizing and Understanding Convolutional Networks",
    url="https://arxiv.org/abs/1311.2901",
)

ALEXNET_DEFAULT_SHAPE = (227, 227, 3)
ALEXNET_MIN_SHAPE = (67, 67, 3)
ZFNET_DEFAULT_SHAPE = (224, 224, 3)
ZFNET_MIN_SHAPE = (53, 53, 3)
ZFNET_FILTER_RMS = 0.1


def _common_checks(classes, pooling, activation, classifier_activation, dropout, weights, model):
    common.check_classes(classes)
    common.check_pooling(pooling)
    common.check_activation(activation)
    common.check_classifier_activation(classifier_activation)
    common.check_dropout(*dropout)
    common.check_weights(weights, include_top=False, classes=classes, model_name=model)


def _top(x, include_top, pooling, classes, classifier_activation, activation, dropout):
    """fc6 -> dropout -> fc7 -> dropout -> classifier (both papers), or global pooling."""
    if not include_top:
        return common.global_pool(x, pooling)
    x = keras.layers.Flatten(name="flatten")(x)
    for fc in ("fc6", "fc7"):
        x = keras.layers.Dense(4096, name=fc)(x)
        x = zoo_layers.activation_layer(activation, name=f"{fc}_act")(x)
        x = common.dropout(x, *dropout, name=f"{fc}_dropout")
    return common.classifier_output(x, classes, classifier_activation)


@register_model(
    task="image-classification",
    paper=ALEXNET_PAPER,
    summary="5 conv (96-256-384-384-256) + 3 FC, ReLU, local response norm, dropout",
    default_input_shape=ALEXNET_DEFAULT_SHAPE,
    min_input_shape=ALEXNET_MIN_SHAPE,
    params=62_378_344,
    small_config={"input_shape": ALEXNET_MIN_SHAPE, "classes": 10},
    default_dataset="cifar10",
)
def alexnet(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="alexnet",
    activation="relu",
    dropout_rate=0.5,
    dropout_scaling="inverted",
):
    """AlexNet of Krizhevsky, Sutskever & Hinton 2012, "ImageNet Classification with Deep
    Convolutional Neural Networks".

    The network that won ILSVRC-2012 by a wide margin. What was distinctive: ReLUs instead of
    saturating tanh (several times faster training), local response normalization after the
    first two convolutions (`layers.LocalResponseNormalization`, k=2, n=5, alpha=1e-4,
    beta=0.75), overlapping 3x3 max pooling with stride 2, and dropout (0.5) on fc6 and fc7
    against the over-fitting of 60 million parameters.

    Layers (227x227x3 input): conv1 96 11x11 stride 4 -> LRN -> pool; conv2 256 5x5 -> LRN
    -> pool; conv3 384 3x3; conv4 384 3x3; conv5 256 3x3 -> pool (6x6x256); fc6 4096; fc7 4096;
    classifier. The paper split conv2, conv4 and conv5 between two GPUs (each half seeing only
    its own half of the channels, 60,965,224 parameters); this is the single-tower network
    used by most re-implementations: 62,378,344 parameters with 1000 classes. Keras' default
    initialisers replace the paper's N(0, 0.01) weights and unit biases.

    Input: 227x227 (the paper's "224" does not give its 55x55 conv1 output); any size from
    67x67 up works (fc6 flattens the last map, so the top needs a fixed size).

    Args:
        include_top: Include fc6, fc7 and the classifier.
        weights: None or the path to a `.weights.h5` file.
        input_tensor: Optional Keras tensor to use as the image input.
        input_shape: (height, width, channels); default (227, 227, 3), at least 67x67.
        pooling: With include_top=False: None (the pooled conv5 map), "avg" or "max".
        classes: Number of classes.
        classifier_activation: "softmax" (float32 `layers.StableSoftmax`), None for logits,
            or another Keras activation.
        name: Model name.
        activation: Hidden activation: a Keras activation name, "shifted_relu" or a callable.
        dropout_rate: Dropout after fc6 and fc7 (the paper's 0.5).
        dropout_scaling: "inverted" (default), "inference" (the paper's: multiply outputs by
            1 - rate at test time) or "none"; see `layers.ScaledDropout`.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: for an input below 67x67, `classes < 1`, `weights="imagenet"` (none
            exist for AlexNet), or any other invalid argument.
    """
    dropout = (dropout_rate, dropout_scaling)
    _common_checks(classes, pooling, activation, classifier_activation, dropout, weights, name)
    image, inputs, _ = common.model_input(
        input_tensor,
        input_shape,
        default_shape=ALEXNET_DEFAULT_SHAPE,
        min_shape=ALEXNET_MIN_SHAPE,
        model_name="alexnet",
        static_size=include_top,
    )
    x = keras.layers.Conv2D(96, 11, strides=4, name="conv1")(image)
    x = zoo_layers.activation_layer(activation, name="conv1_act")(x)
    x = zoo_layers.LocalResponseNormalization(name="conv1_norm")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = common.stage(x, 1)
    x = keras.layers.Conv2D(256, 5, padding="same", name="conv2")(x)
    x = zoo_layers.activation_layer(activation, name="conv2_act")(x)
    x = zoo_layers.LocalResponseNormalization(name="conv2_norm")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    x = common.stage(x, 2)
    for index, filters in ((3, 384), (4, 384), (5, 256)):
        x = keras.layers.Conv2D(filters, 3, padding="same", name=f"conv{index}")(x)
        x = zoo_layers.activation_layer(activation, name=f"conv{index}_act")(x)
        if index < 5:
            x = common.stage(x, index)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool5")(x)
    x = common.stage(x, 5)
    x = _top(x, include_top, pooling, classes, classifier_activation, activation, dropout)
    return common.finish(inputs, x, name, weights)


def _filter_rms_constraint(kernel_size, in_channels):
    """Zeiler & Fergus' filter renormalization: a filter whose RMS exceeds 0.1 is scaled to 0.1.

    RMS = L2 norm / sqrt(number of weights), so this is `MaxNorm` over each filter's
    (height, width, input channels) with a maximum L2 norm of 0.1 * sqrt(k * k * c).
    """
    return keras.constraints.MaxNorm(
        max_value=ZFNET_FILTER_RMS * math.sqrt(kernel_size * kernel_size * in_channels),
        axis=[0, 1, 2],
    )


@register_model(
    task="image-classification",
    paper=ZFNET_PAPER,
    summary="AlexNet with a 7x7 stride-2 first conv, stride-2 conv2, dense conv3-5",
    default_input_shape=ZFNET_DEFAULT_SHAPE,
    min_input_shape=ZFNET_MIN_SHAPE,
    params=62_357_608,
    small_config={"input_shape": (64, 64, 3), "classes": 10},
    default_dataset="cifar10",
)
def zfnet(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="zfnet",
    activation="relu",
    dropout_rate=0.5,
    dropout_scaling="inverted",
):
    """ZFNet of Zeiler & Fergus 2013, "Visualizing and Understanding Convolutional Networks".

    AlexNet, corrected with what the authors' deconvolution visualisations showed: AlexNet's
    11x11 stride-4 first layer left dead filters and aliasing artefacts in the second layer, so
    ZFNet uses 96 filters of 7x7 with stride 2 and a stride-2 conv2, keeping more mid-frequency
    information. Layers (224x224x3 input, the paper's Fig. 3): conv1 96 7x7 stride 2 -> 3x3
    max pool stride 2 -> contrast normalization (55x55x96); conv2 256 5x5 stride 2 -> pool ->
    normalization (13x13x256); conv3 384, conv4 384, conv5 256 (3x3, dense connections: one GPU)
    -> pool (6x6x256); fc6 4096 and fc7 4096 with dropout 0.5; classifier. Following the paper,
    each convolution filter whose RMS exceeds 0.1 is renormalised to 0.1 after every update (a
    kernel constraint). Contrast normalization is `layers.LocalResponseNormalization` with
    AlexNet's constants. 62,357,608 parameters with 1000 classes.

    Pooling rounds up (Caffe's convention, padding "same") so that the sizes are the paper's
    110 -> 55 and 26 -> 13. Any input from 53x53 up works.

    Args:
        include_top: Include fc6, fc7 and the classifier.
        weights: None or the path to a `.weights.h5` file.
        input_tensor: Optional Keras tensor to use as the image input.
        input_shape: (height, width, channels); default (224, 224, 3), at least 53x53.
        pooling: With include_top=False: None (the pooled conv5 map), "avg" or "max".
        classes: Number of classes.
        classifier_activation: "softmax" (float32 `layers.StableSoftmax`), None for logits,
            or another Keras activation.
        name: Model name.
        activation: Hidden activation: a Keras activation name, "shifted_relu" or a callable.
        dropout_rate: Dropout after fc6 and fc7 (the paper's 0.5).
        dropout_scaling: "inverted", "inference" or "none"; see `layers.ScaledDropout`.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: for an input below 53x53, `classes < 1`, `weights="imagenet"`, or any
            other invalid argument.
    """
    dropout = (dropout_rate, dropout_scaling)
    _common_checks(classes, pooling, activation, classifier_activation, dropout, weights, name)
    image, inputs, shape = common.model_input(
        input_tensor,
        input_shape,
        default_shape=ZFNET_DEFAULT_SHAPE,
        min_shape=ZFNET_MIN_SHAPE,
        model_name="zfnet",
        static_size=include_top,
    )
    in_channels = shape[2]
    x = keras.layers.ZeroPadding2D(1, name="conv1_pad")(image)
    x = keras.layers.Conv2D(
        96, 7, strides=2, kernel_constraint=_filter_rms_constraint(7, in_channels), name="conv1"
    )(x)
    x = zoo_layers.activation_layer(activation, name="conv1_act")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    x = zoo_layers.LocalResponseNormalization(name="conv1_norm")(x)
    x = common.stage(x, 1)
    x = keras.layers.Conv2D(
        256, 5, strides=2, kernel_constraint=_filter_rms_constraint(5, 96), name="conv2"
    )(x)
    x = zoo_layers.activation_layer(activation, name="conv2_act")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)
    x = zoo_layers.LocalResponseNormalization(name="conv2_norm")(x)
    x = common.stage(x, 2)
    previous = 256
    for index, filters in ((3, 384), (4, 384), (5, 256)):
        x = keras.layers.Conv2D(
            filters,
            3,
            padding="same",
            kernel_constraint=_filter_rms_constraint(3, previous),
            name=f"conv{index}",
        )(x)
        x = zoo_layers.activation_layer(activation, name=f"conv{index}_act")(x)
        if index < 5:
            x = common.stage(x, index)
        previous = filters
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool5")(x)
    x = common.stage(x, 5)
    x = _top(x, include_top, pooling, classes, classifier_activation, activation, dropout)
    return common.finish(inputs, x, name, weights)
