"""GoogLeNet / Inception v1 (Szegedy et al. 2014).

Stage names for `zoo.features`: `stage1` is conv1's output (stride 2), `stage2` the output of
conv2 and its normalization (stride 4, 192 channels), `stage3` inception 3b (stride 8, 480),
`stage4` inception 4e (stride 16, 832) and `stage5` inception 5b (stride 32, 1024).
"""

import dataclasses

import keras

import zoo.layers as zoo_layers
from zoo.cnn import common
from zoo.registry import Paper, register_model
from zoo.validation import check_bool

GOOGLENET_PAPER = Paper(
    authors="Szegedy, Liu, Jia, Sermanet, Reed, Anguelov, Erhan, Vanhoucke & Rabinovich",
    year=2014,
    title="Going Deeper with Convolutions",
    url="https://arxiv.org/abs/1409.4842",
)

# The paper's Table 1: module -> (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj).
INCEPTION_SPECS = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
DEFAULT_SHAPE = (224, 224, 3)
MIN_SHAPE = (32, 32, 3)
# The auxiliary classifiers average-pool 5x5 (stride 3) the 4a and 4d maps, which are 1/16 of
# the input: they need at least 5x5 maps, i.e. 65x65 inputs.
AUX_MIN_SIZE = 65
AUX_DROPOUT_RATE = 0.7


# The Inception family's SGD recipe as adapted to 10 epochs; googlenet_bn trains with it as is.
INCEPTION_RECIPE = common.sgd_recipe(
    weight_decay=2e-4,
    paper_setting=(
        "asynchronous SGD, momentum 0.9, lr decreased by 4% every 8 epochs, Polyak averaging "
        "of the weights for the final model; auxiliary losses weighted 0.3; crops of 8-100% "
        "of the image area with aspect ratios 3/4-4/3, photometric distortions (initial lr "
        "and weight decay not stated; Caffe's reference: lr 0.01, weight decay 2e-4)"
    ),
    adaptation=(
        "approximate: synchronous SGD, 1 warm-up epoch and steps at 50% and 75% of a 10-epoch "
        "run (a 4% decay every 8 epochs is a constant rate over 10), no Polyak averaging and "
        "no auxiliary classifiers"
    ),
)
# googlenet (no batch norm) left the chance-level plateau late or never on some seeds with
# INCEPTION_RECIPE (validation 0.979, 0.597, 0.972). A validation search (benchmarks/TUNING.md,
# 7 candidates x 3 seeds) chose global-norm clipping at 1, 2 warm-up epochs and 15 epochs:
# 0.965 +- 0.012 (half the rate, 10 epochs: 0.963 +- 0.018, within a validation digit).
GOOGLENET_RECIPE = dataclasses.replace(
    INCEPTION_RECIPE,
    clip_norm=1.0,
    warmup_epochs=2.0,
    epochs=15,
    adaptation=(
        "approximate: synchronous SGD, steps at 50% and 75% of a 15-epoch run (a 4% decay "
        "every 8 epochs is nearly a constant rate over 15), no Polyak averaging and no auxiliary "
        "classifiers; 2 warm-up epochs and gradients clipped to global norm 1, chosen on "
        "validation: without batch norm some seeds stayed on the chance-level plateau"
    ),
)


def _conv(x, filters, kernel_size, activation, name, strides=1):
    x = common.conv2d(
        filters, kernel_size, strides=strides, padding="same", init_mode="fan_in", name=name
    )(x)
    return zoo_layers.activation_layer(activation, name=f"{name}_act")(x)


def _inception(x, spec, activation, name):
    """Four parallel branches concatenated: 1x1; 1x1 -> 3x3; 1x1 -> 5x5; 3x3 max pool -> 1x1."""
    n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj = spec
    branch1 = _conv(x, n1x1, 1, activation, f"{name}_1x1")
    branch2 = _conv(x, n3x3_reduce, 1, activation, f"{name}_3x3_reduce")
    branch2 = _conv(branch2, n3x3, 3, activation, f"{name}_3x3")
    branch3 = _conv(x, n5x5_reduce, 1, activation, f"{name}_5x5_reduce")
    branch3 = _conv(branch3, n5x5, 5, activation, f"{name}_5x5")
    branch4 = keras.layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    branch4 = _conv(branch4, pool_proj, 1, activation, f"{name}_pool_proj")
    return keras.layers.Concatenate(axis=-1, name=f"{name}_output")(
        [branch1, branch2, branch3, branch4]
    )


def _auxiliary(x, classes, classifier_activation, activation, dropout_scaling, name):
    """The paper's side classifier: 5x5/3 average pool, 1x1 conv 128, FC 1024, dropout 0.7."""
    x = keras.layers.AveragePooling2D(5, strides=3, name=f"{name}_pool")(x)
    x = _conv(x, 128, 1, activation, f"{name}_conv")
    x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    x = common.fully_connected(
        x, 1024, activation, (AUX_DROPOUT_RATE, dropout_scaling), name=f"{name}_fc"
    )
    return common.classifier_output(
        x, classes, classifier_activation, name=f"{name}_predictions", logits_name=f"{name}_logits"
    )


@register_model(
    task="image-classification",
    paper=GOOGLENET_PAPER,
    summary="Inception v1: 9 inception modules with 1x1 reductions, optional aux classifiers",
    default_input_shape=DEFAULT_SHAPE,
    min_input_shape=MIN_SHAPE,
    params=6_998_552,
    small_config={"input_shape": (32, 32, 3), "classes": 10},
    default_dataset="cifar10",
    recipe=GOOGLENET_RECIPE,
)
def googlenet(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="googlenet",
    activation="relu",
    dropout=0.4,
    dropout_scaling="inverted",
    auxiliary_classifiers=False,
):
    """GoogLeNet (Inception v1) of Szegedy et al. 2014, "Going Deeper with Convolutions".

    22 layers deep with 12x fewer parameters than AlexNet. Each inception module runs 1x1,
    3x3 and 5x5 convolutions and a 3x3 max pooling side by side and concatenates them, so that
    every stage sees several scales; 1x1 convolutions *reduce* the channels before the
    expensive 3x3 and 5x5 ones (and project the pooling branch), which keeps the cost
    bounded as the network grows deeper and wider. Global average pooling replaces the big
    fully connected layers, followed by dropout (0.4) and one linear classifier.

    Layers (224x224x3 input, the paper's Table 1): conv 7x7/2 (64) -> max pool 3x3/2 -> LRN
    -> conv 1x1 (64) -> conv 3x3 (192) -> LRN -> max pool -> inception 3a, 3b -> max pool ->
    4a ... 4e -> max pool -> 5a, 5b -> global average pool -> dropout -> classifier.
    6,998,552 parameters with 1000 classes and no auxiliary classifiers (the paper's table
    sums to about 6.8M; it does not count biases).

    Auxiliary classifiers (`auxiliary_classifiers=True`): during training the paper adds two
    side classifiers on the outputs of 4a and 4d (5x5/3 average pool, 1x1 conv 128, FC 1024,
    dropout 0.7, linear), weighted 0.3 in the loss, to push gradient into the middle layers.
    The model then has three outputs `[predictions, aux1_predictions, aux2_predictions]`;
    compile with e.g. `loss_weights=[1.0, 0.3, 0.3]`, and for inference keep the first only:
    `keras.Model(model.input, model.outputs[0])`. They need inputs of at least 65x65.

    All convolutions use "same" padding, so every size from 32x32 (a 1x1 final map) up works.

    Initialisation: the paper does not state it (its networks were trained with DistBelief);
    convolutions use He et al.'s N(0, 2 / fan_in), which keeps the activations' scale through
    the 1x1 reductions of 22 layers without batch norm (fan-out scaling, torchvision's choice
    for its batch-norm GoogLeNet, inflates it there), the classifier N(0, 0.01), zero biases.

    Args:
        include_top: Include global pooling, dropout and the classifier.
        weights: None or the path to a `.weights.h5` file.
        input_tensor: Optional Keras tensor to use as the image input.
        input_shape: (height, width, channels); default (224, 224, 3), at least 32x32.
        pooling: With include_top=False: None (the 5b map), "avg" or "max".
        classes: Number of classes.
        classifier_activation: "softmax" (float32 `zoo.layers.StableSoftmax`), None for logits,
            or another Keras activation.
        name: Model name.
        activation: Activation after every convolution: a Keras activation name,
            "shifted_relu" or a callable.
        dropout: Dropout rate before the classifier (the paper's 0.4).
        dropout_scaling: "inverted", "inference" or "none"; see `zoo.layers.ScaledDropout`.
        auxiliary_classifiers: Add the two training-time side classifiers (needs
            include_top=True).

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: for an input below 32x32 (65x65 with auxiliary classifiers),
            `classes < 1`, `weights="imagenet"`, or any other invalid argument.
    """
    common.check_arguments(
        "googlenet",
        include_top=include_top,
        weights=weights,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        activation=activation,
        dropout_spec=(dropout, dropout_scaling),
    )
    check_bool("auxiliary_classifiers", auxiliary_classifiers)
    if auxiliary_classifiers and not include_top:
        raise ValueError(
            "Argument `auxiliary_classifiers=True` needs include_top=True (they are "
            "classifiers). Received: include_top=False"
        )
    image, inputs, shape = common.model_input(
        input_tensor,
        input_shape,
        default_shape=DEFAULT_SHAPE,
        min_shape=(AUX_MIN_SIZE, AUX_MIN_SIZE, 3) if auxiliary_classifiers else MIN_SHAPE,
        model_name="googlenet with auxiliary classifiers" if auxiliary_classifiers else "googlenet",
        static_size=auxiliary_classifiers,
    )

    x = _conv(image, 64, 7, activation, "conv1", strides=2)
    x = common.stage(x, 1)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    x = zoo_layers.LocalResponseNormalization(name="norm1")(x)
    x = _conv(x, 64, 1, activation, "conv2_reduce")
    x = _conv(x, 192, 3, activation, "conv2")
    x = zoo_layers.LocalResponseNormalization(name="norm2")(x)
    x = common.stage(x, 2)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)
    auxiliary_inputs = []
    for module, spec in INCEPTION_SPECS.items():
        if module in ("4a", "5a"):
            pool = f"pool{int(module[0]) - 1}"
            x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=pool)(x)
        x = _inception(x, spec, activation, f"inception_{module}")
        if module in ("4a", "4d"):
            auxiliary_inputs.append(x)
        if module in ("3b", "4e", "5b"):
            x = common.stage(x, int(module[0]))

    if not include_top:
        return common.finish(inputs, common.global_pool(x, pooling), name, weights)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = common.dropout(x, dropout, dropout_scaling, name="dropout")
    outputs = common.classifier_output(x, classes, classifier_activation)
    if auxiliary_classifiers:
        outputs = [outputs] + [
            _auxiliary(
                branch, classes, classifier_activation, activation, dropout_scaling, f"aux{i}"
            )
            for i, branch in enumerate(auxiliary_inputs, 1)
        ]
    return common.finish(inputs, outputs, name, weights)
