"""torchvision's AlexNet: the one-GPU network of Krizhevsky's "One weird trick" (2014).

torchvision's `alexnet` is not the 2012 paper's network (`zoo.alexnet`) but the single-tower
variant of Krizhevsky 2014, "One weird trick for parallelizing convolutional neural
networks", section 4 (its ImageNet weights, 56.5% top-1, are for this one). The differences:

- filters 64-192-384-256-256 instead of 96-256-384-384-256;
- conv1 11x11 stride 4 with 2 pixels of zero padding (224x224 input -> 55x55);
- no local response normalization;
- dropout *before* fc6 and fc7 (torchvision's classifier: Dropout, Linear, ReLU, Dropout,
  Linear, ReLU, Linear), not after them;
- an adaptive 6x6 average pooling before the classifier (the identity at 224x224, where the
  last map is 6x6), so that the top accepts any input size from 63x63 up.

61,100,840 parameters with 1000 classes, torchvision's count. Convolutions and max pools as
torchvision's: 3x3 stride-2 pools without padding, 5x5 and 3x3 convolutions padded to keep
the size ("same"). Initialisation as the zoo's plain networks (`zoo.cnn.common`): He
N(0, 2 / fan_out) convolutions, He N(0, 2 / fan_in) fc6/fc7, N(0, 0.01) classifier.

Stage names for `zoo.features`: `stage1` and `stage2` follow the first two convolutions'
pools, `stage3` and `stage4` are conv3 and conv4, `stage5` the pooled conv5 map.
"""

import keras
import numpy as np

import zoo.layers as zoo_layers
from zoo.cnn import common
from zoo.cnn.alexnet import ALEXNET_RECIPE
from zoo.registry import Paper, Variant, register_variant

OWT_PAPER = Paper(
    authors="Krizhevsky",
    year=2014,
    title="One weird trick for parallelizing convolutional neural networks",
    url="https://arxiv.org/abs/1404.5997",
)
DEFAULT_SHAPE = (224, 224, 3)
MIN_SHAPE = (63, 63, 3)  # torchvision's min_size: the last 3x3 pool needs a 3x3 map
POOLED_SIZE = (6, 6)

VARIANTS = {
    "alexnet_owt": Variant(
        summary="torchvision's AlexNet: 64-192-384-256-256 convs, no LRN, dropout before FC",
        params=61_100_840,
        recipe=ALEXNET_RECIPE,
        small_config={"input_shape": (63, 63, 3), "classes": 10},
    ),
}


def _average_matrix(size_in, size_out):
    """torch's adaptive average pooling along one axis as a (size_out, size_in) matrix: output
    i averages inputs floor(i * in / out) to ceil((i + 1) * in / out) - 1."""
    matrix = np.zeros((size_out, size_in), "float32")
    for i in range(size_out):
        start = (i * size_in) // size_out
        end = -(-((i + 1) * size_in) // size_out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


@keras.saving.register_keras_serializable(package="zoo")
class AdaptiveAveragePooling(keras.layers.Layer):
    """PyTorch's `AdaptiveAvgPool2d(output_size)` for a known input size, also where the
    input is smaller than the output (63x63 images give a 1x1 map, replicated to 6x6).

    Keras' AdaptiveAveragePooling2D fails in graph mode when the input is smaller than the
    output; this layer applies the averaging as two fixed matrices (rows, then columns).
    """

    def __init__(self, output_size, **kwargs):
        super().__init__(**kwargs)
        self.output_size = tuple(output_size)

    def build(self, input_shape):
        height, width = input_shape[1], input_shape[2]
        if height is None or width is None:
            raise ValueError(
                f"{self.name} needs a known height and width. Received: input_shape={input_shape}"
            )
        self._rows = _average_matrix(height, self.output_size[0])
        self._columns = _average_matrix(width, self.output_size[1])

    def call(self, inputs):
        rows = keras.ops.convert_to_tensor(self._rows, dtype=inputs.dtype)
        columns = keras.ops.convert_to_tensor(self._columns, dtype=inputs.dtype)
        return keras.ops.einsum("ih,jw,bhwc->bijc", rows, columns, inputs)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.output_size, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "output_size": self.output_size}


def _conv(x, filters, kernel_size, activation, name, strides=1, padding="same"):
    x = common.conv2d(filters, kernel_size, strides=strides, padding=padding, name=name)(x)
    return zoo_layers.activation_layer(activation, name=f"{name}_act")(x)


def _alexnet_owt(
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
    """Build torchvision's AlexNet (see the module docstring).

    Args:
        variant: "alexnet_owt".
        include_top: Include the adaptive 6x6 pooling, fc6, fc7 and the classifier.
        weights: None, "imagenet" (torchvision's weights) or the path to a `.weights.h5` file.
        input_tensor: Optional Keras tensor to use as the image input.
        input_shape: (height, width, channels); default (224, 224, 3), at least 63x63. The
            top pools adaptively to 6x6, so any known size works with it.
        pooling: With include_top=False: None (the pooled conv5 map), "avg" or "max".
        classes: Number of classes.
        classifier_activation: "softmax" (float32 `layers.StableSoftmax`), None for logits,
            or another Keras activation.
        name: Model name (default: the variant's name).
        activation: Hidden activation: a Keras activation name, "shifted_relu" or a callable.
        dropout: Dropout rate before fc6 and before fc7 (torchvision's 0.5).
        dropout_scaling: "inverted", "inference" or "none"; see `layers.ScaledDropout`.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: for an input below 63x63, `classes < 1`, `weights="imagenet"` with
            `include_top=True` and `classes != 1000`, or any other invalid argument.
    """
    common.check_arguments(
        variant,
        include_top=include_top,
        weights=weights,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        activation=activation,
        dropout_spec=(dropout, dropout_scaling),
    )
    image, inputs, _ = common.model_input(
        input_tensor,
        input_shape,
        default_shape=DEFAULT_SHAPE,
        min_shape=MIN_SHAPE,
        model_name=variant,
        static_size=include_top,
        channels=3 if weights == "imagenet" else None,
    )
    x = keras.layers.ZeroPadding2D(2, name="conv1_pad")(image)  # torch's padding=2
    x = _conv(x, 64, 11, activation, "conv1", strides=4, padding="valid")
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = common.stage(x, 1)
    x = _conv(x, 192, 5, activation, "conv2")
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    x = common.stage(x, 2)
    x = _conv(x, 384, 3, activation, "conv3")
    x = common.stage(x, 3)
    x = _conv(x, 256, 3, activation, "conv4")
    x = common.stage(x, 4)
    x = _conv(x, 256, 3, activation, "conv5")
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool5")(x)
    x = common.stage(x, 5)
    if include_top:
        x = AdaptiveAveragePooling(POOLED_SIZE, name="avgpool")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        for fc in ("fc6", "fc7"):
            x = common.dropout(x, dropout, dropout_scaling, name=f"{fc}_dropout")
            x = keras.layers.Dense(
                4096, kernel_initializer=common.hidden_dense_initializer(), name=fc
            )(x)
            x = zoo_layers.activation_layer(activation, name=f"{fc}_act")(x)
        x = common.classifier_output(x, classes, classifier_activation)
    else:
        x = common.global_pool(x, pooling)
    return common.finish(inputs, x, name or variant, weights, variant, include_top)


_register = register_variant(
    VARIANTS,
    _alexnet_owt,
    task="image-classification",
    paper=OWT_PAPER,
    default_input_shape=DEFAULT_SHAPE,
    min_input_shape=MIN_SHAPE,
    default_dataset="cifar10",
)


@_register
def alexnet_owt(**kwargs):
    """AlexNet of Krizhevsky 2014 ("One weird trick"), torchvision's; see `_alexnet_owt`."""
    return _alexnet_owt("alexnet_owt", **kwargs)
