"""torchvision's GoogLeNet: Inception v1 (Szegedy et al. 2014) with batch normalization.

torchvision's `googlenet` (and its ImageNet weights, 69.8% top-1, "ported from the original
paper" per torchvision) differs from the paper's network (`zoo.googlenet`):

- every convolution is bias-free and followed by batch norm (epsilon 1e-3) and ReLU
  (torchvision's BasicConv2d); no local response normalization;
- the "5x5" branch of every inception module is a 3x3 convolution (torchvision issue #906:
  a known difference kept for the weights' sake); its layers are named `..._branch3`;
- the max pools round up (PyTorch's `ceil_mode=True`): a 3x3 stride-2 pool of a 7-wide map
  gives 4 columns, not 3 (see `CeilMaxPooling2D`);
- `transform_input`: torchvision rescales ImageNet-normalised images to (pixel - 0.5) / 0.5
  before conv1; the zoo model has no such layer, the weights' preprocessing
  (`zoo.model_info("googlenet_bn").weights["imagenet"].preprocessing`) does it;
- the two auxiliary classifiers exist in the weights file but not in its inference graph
  (torchvision uses them only in training mode): they are not built here;
- dropout 0.2 before the classifier (torchvision's default; the paper's 0.4).

6,624,904 trainable parameters with 1000 classes, torchvision's count (its `googlenet`
drops the auxiliary heads after loading the weights); 6,639,464 with batch norm's moving
statistics. Layer names: `conv1`, `conv2_reduce`, `conv2` (the paper's),
`inception_{3a..5b}_{branch1, branch2_reduce, branch2, branch3_reduce, branch3, pool_proj}`,
each with `_bn` and `_act`.

Stage names for `zoo.features` as `zoo.googlenet`: `stage1` conv1 (stride 2), `stage2` conv2
(stride 4), `stage3` 3b, `stage4` 4e, `stage5` 5b.
"""

import keras

import zoo.layers as zoo_layers
from zoo.cnn import common
from zoo.cnn.googlenet import GOOGLENET_PAPER, INCEPTION_RECIPE, INCEPTION_SPECS
from zoo.registry import Variant, register_variant

DEFAULT_SHAPE = (224, 224, 3)
MIN_SHAPE = (15, 15, 3)  # torchvision's min_size
BN_EPSILON = 1e-3  # torchvision's BasicConv2d
BN_MOMENTUM = 0.9  # PyTorch's 0.1 in Keras' convention


@keras.saving.register_keras_serializable(package="zoo")
class CeilMaxPooling2D(keras.layers.Layer):
    """Max pooling without padding that rounds the output size up (PyTorch's ceil_mode).

    The output has ceil((size - pool_size) / strides) + 1 positions; the last window may run
    past the edge and then takes the maximum of what is inside. Padding the end by
    `strides - 1` with -inf and pooling "valid" gives exactly that:
    floor((size + strides - 1 - pool_size) / strides) = ceil((size - pool_size) / strides).
    """

    def __init__(self, pool_size, strides, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = pool_size
        self.strides = strides
        self._pool = keras.layers.MaxPooling2D(pool_size, strides=strides, padding="valid")

    def call(self, inputs):
        extra = self.strides - 1
        if extra:
            inputs = keras.ops.pad(
                inputs, [[0, 0], [0, extra], [0, extra], [0, 0]], constant_values=float("-inf")
            )
        return self._pool(inputs)

    def compute_output_shape(self, input_shape):
        def size(dim):
            return None if dim is None else -(-(dim - self.pool_size) // self.strides) + 1

        return (input_shape[0], size(input_shape[1]), size(input_shape[2]), input_shape[3])

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides}


VARIANTS = {
    "googlenet_bn": Variant(
        summary="torchvision's GoogLeNet: BN after every conv, 3x3 in the '5x5' branch",
        params=6_639_464,
        recipe=INCEPTION_RECIPE,
        small_config={"input_shape": (32, 32, 3), "classes": 10},
    ),
}


def _conv(x, filters, kernel_size, activation, name, strides=1):
    """torchvision's BasicConv2d: bias-free conv, batch norm (eps 1e-3), activation."""
    if strides > 1:  # torch pads (k - 1) / 2 on every side; Keras' "same" would not
        x = keras.layers.ZeroPadding2D((kernel_size - 1) // 2, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    x = common.conv2d(
        filters, kernel_size, strides=strides, padding=padding, use_bias=False, name=name
    )(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return zoo_layers.activation_layer(activation, name=f"{name}_act")(x)


def _inception(x, spec, activation, name):
    """Four branches: 1x1; 1x1 -> 3x3; 1x1 -> 3x3 (torchvision's "5x5"); 3x3 pool -> 1x1."""
    n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj = spec
    branch1 = _conv(x, n1x1, 1, activation, f"{name}_branch1")
    branch2 = _conv(x, n3x3_reduce, 1, activation, f"{name}_branch2_reduce")
    branch2 = _conv(branch2, n3x3, 3, activation, f"{name}_branch2")
    branch3 = _conv(x, n5x5_reduce, 1, activation, f"{name}_branch3_reduce")
    branch3 = _conv(branch3, n5x5, 3, activation, f"{name}_branch3")
    # torch: 3x3 stride 1, padding 1 (ignored by the max): Keras' "same"
    branch4 = keras.layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    branch4 = _conv(branch4, pool_proj, 1, activation, f"{name}_pool_proj")
    return keras.layers.Concatenate(axis=-1, name=f"{name}_output")(
        [branch1, branch2, branch3, branch4]
    )


def _googlenet_bn(
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
    dropout=0.2,
    dropout_scaling="inverted",
):
    """Build torchvision's GoogLeNet (see the module docstring).

    Args:
        variant: "googlenet_bn".
        include_top: Include global average pooling, dropout and the classifier.
        weights: None, "imagenet" (torchvision's weights) or the path to a `.weights.h5` file.
        input_tensor: Optional Keras tensor to use as the image input.
        input_shape: (height, width, channels); default (224, 224, 3), at least 15x15.
        pooling: With include_top=False: None (the 5b map), "avg" or "max".
        classes: Number of classes.
        classifier_activation: "softmax" (float32 `layers.StableSoftmax`), None for logits,
            or another Keras activation.
        name: Model name (default: the variant's name).
        activation: Activation after every batch norm: a Keras activation name,
            "shifted_relu" or a callable.
        dropout: Dropout rate before the classifier (torchvision's 0.2).
        dropout_scaling: "inverted", "inference" or "none"; see `layers.ScaledDropout`.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError: for an input below 15x15, `classes < 1`, `weights="imagenet"` with
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
        channels=3 if weights == "imagenet" else None,
    )
    x = _conv(image, 64, 7, activation, "conv1", strides=2)
    x = common.stage(x, 1)
    x = CeilMaxPooling2D(3, 2, name="pool1")(x)
    x = _conv(x, 64, 1, activation, "conv2_reduce")
    x = _conv(x, 192, 3, activation, "conv2")
    x = common.stage(x, 2)
    x = CeilMaxPooling2D(3, 2, name="pool2")(x)
    for module, spec in INCEPTION_SPECS.items():
        if module == "4a":
            x = CeilMaxPooling2D(3, 2, name="pool3")(x)
        if module == "5a":
            x = CeilMaxPooling2D(2, 2, name="pool4")(x)
        x = _inception(x, spec, activation, f"inception_{module}")
        if module in ("3b", "4e", "5b"):
            x = common.stage(x, int(module[0]))
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = common.dropout(x, dropout, dropout_scaling, name="dropout")
        x = common.classifier_output(x, classes, classifier_activation)
    else:
        x = common.global_pool(x, pooling)
    return common.finish(inputs, x, name or variant, weights, variant, include_top)


_register = register_variant(
    VARIANTS,
    _googlenet_bn,
    task="image-classification",
    paper=GOOGLENET_PAPER,
    default_input_shape=DEFAULT_SHAPE,
    min_input_shape=MIN_SHAPE,
    default_dataset="cifar10",
)


@_register
def googlenet_bn(**kwargs):
    """GoogLeNet of Szegedy et al. 2014 with batch norm, torchvision's; see `_googlenet_bn`."""
    return _googlenet_bn("googlenet_bn", **kwargs)
