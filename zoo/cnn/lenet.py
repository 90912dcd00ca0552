"""LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998)."""

import keras

import zoo.layers as zoo_layers
from zoo.cnn import common
from zoo.registry import Paper, Recipe, register_model

LENET_PAPER = Paper(
    authors="LeCun, Bottou, Bengio & Haffner",
    year=1998,
    title="Gradient-Based Learning Applied to Document Recognition",
    url="https://doi.org/10.1109/5.726791",
)

PAPER_INPUT_SIZE = 32

LENET_RECIPE = Recipe(
    optimizer="adam",
    # Chosen on the validation split only (benchmarks/TUNING.md; every candidate's scores in
    # benchmarks/results/tuning_lenet5.json): search 2's best of 12 over seeds 0-5.
    lr=3e-3,
    reference_batch=32,
    batch_size=32,
    weight_decay=0.01,
    schedule="step",
    label_smoothing=0.1,
    epochs=40,
    augment=True,
    paper_setting=(
        "stochastic diagonal Levenberg-Marquardt, one example per update, 20 passes over "
        "MNIST's 60,000 digits, global step 5e-4 (passes 1-2), 2e-4 (3-5), 1e-4 (6-8), 5e-5 "
        "(9-12), 1e-5 after; no augmentation in the main experiment"
    ),
    adaptation=(
        "Keras has no diagonal Levenberg-Marquardt: Adam, whose per-parameter step sizes play "
        "the same role, at 3e-3 per batch of 32, decoupled weight decay 0.01, label smoothing "
        "0.1, x0.1 steps at 50% and 75% of 40 epochs, and random shifts of up to one pixel "
        "(1,437 digits are little data), chosen by random searches on the validation split "
        "(benchmarks/TUNING.md)"
    ),
)


@register_model(
    task="image-classification",
    paper=LENET_PAPER,
    summary="conv 6 -> subsample -> conv 16 -> subsample -> conv 120 -> 84 -> 10, tanh",
    default_input_shape=(32, 32, 1),
    min_input_shape=(28, 28, 1),
    params=61_706,
    small_config={"input_shape": (28, 28, 1), "classes": 10},
    default_dataset="digits",
    recipe=LENET_RECIPE,
)
def lenet5(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="lenet5",
    activation="tanh",
):
    """LeNet-5 of LeCun et al. 1998, "Gradient-Based Learning Applied to Document Recognition".

    The network that made convolutional networks practical: local receptive fields, shared
    weights and spatial subsampling give a little shift and distortion invariance with few
    parameters. Layers (paper names, sizes at the paper's 32x32 input):

    * C1: 6 convolutions 5x5 -> 28x28x6, S2: 2x2 average subsampling -> 14x14x6 (`stage1`)
    * C3: 16 convolutions 5x5 -> 10x10x16, S4: 2x2 average subsampling -> 5x5x16 (`stage2`)
    * C5: 120 convolutions 5x5 -> 1x1x120 (`stage3`; the paper calls it a convolution because
      on larger inputs its output is larger than 1x1)
    * F6: 84 units; output: `classes` units.

    61,706 parameters at 32x32x1 with 10 classes (the paper's ~60,000). Modern simplifications,
    as in most re-implementations: S2/S4 are plain average pooling (the paper multiplies each
    map by a trainable coefficient and adds a bias), C3 connects to all six S2 maps (the paper
    uses a sparse table), the output is a softmax layer instead of Euclidean RBF units, and
    `tanh` replaces the paper's scaled 1.7159 tanh(2x/3). Weights start from Keras' Glorot
    uniform (the paper's U(-2.4/F, 2.4/F), F the fan-in, was tuned for its scaled tanh and
    second-order optimiser), the classifier from N(0, 0.01).

    Input size: the paper feeds 32x32 images, MNIST's 28x28 digits centred in a larger field.
    Inputs from 28x28 up to 31x31 are zero-padded to 32x32 in the same way (layer `input_pad`),
    so a 28x28 model has the same layers and parameter count; larger inputs widen C5's output
    and therefore F6.

    Args:
        include_top: Include F6 and the classifier; if False the output is C5's feature map.
        weights: None or the path to a `.weights.h5` file (no ImageNet weights for LeNet).
        input_tensor: Optional Keras tensor to use as the image input.
        input_shape: (height, width, channels), at least (28, 28, 1); default (32, 32, 1).
        pooling: With include_top=False: None, "avg" or "max" global pooling of C5's output.
        classes: Number of classes (default 10, the digits).
        classifier_activation: "softmax" (a float32 `zoo.layers.StableSoftmax`), None for
            logits, or another Keras activation.
        name: Model name.
        activation: Hidden activation: a Keras activation name, "shifted_relu" or a callable.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: for an input below 28x28, `classes < 1`, an unknown activation or pooling,
            or weights that are neither None nor an existing file.
    """
    common.check_arguments(
        "lenet5",
        include_top=include_top,
        weights=weights,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        activation=activation,
    )
    image, inputs, shape = common.model_input(
        input_tensor,
        input_shape,
        default_shape=(32, 32, 1),
        min_shape=(28, 28, 1),
        model_name="lenet5",
        static_size=include_top,
    )

    x = image
    padding = [
        (0, 0) if dim is None else divmod(max(0, PAPER_INPUT_SIZE - dim), 2) for dim in shape[:2]
    ]
    if any(sum(p) for p in padding):
        # divmod gives (half, remainder): put the odd pixel at the bottom/right.
        padding = [(half, half + rest) for half, rest in padding]
        x = keras.layers.ZeroPadding2D(padding=padding, name="input_pad")(x)
    x = keras.layers.Conv2D(6, 5, name="conv1")(x)  # C1
    x = zoo_layers.activation_layer(activation, name="conv1_act")(x)
    x = keras.layers.AveragePooling2D(2, name="pool1")(x)  # S2
    x = common.stage(x, 1)
    x = keras.layers.Conv2D(16, 5, name="conv2")(x)  # C3
    x = zoo_layers.activation_layer(activation, name="conv2_act")(x)
    x = keras.layers.AveragePooling2D(2, name="pool2")(x)  # S4
    x = common.stage(x, 2)
    x = keras.layers.Conv2D(120, 5, name="conv3")(x)  # C5
    x = zoo_layers.activation_layer(activation, name="conv3_act")(x)
    x = common.stage(x, 3)
    if include_top:
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(84, name="fc1")(x)  # F6
        x = zoo_layers.activation_layer(activation, name="fc1_act")(x)
        x = common.classifier_output(x, classes, classifier_activation)
    else:
        x = common.global_pool(x, pooling)
    return common.finish(inputs, x, name, weights)
