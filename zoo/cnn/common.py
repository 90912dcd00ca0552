"""What every CNN builder shares: argument checks, the input, the head and the weights.

Each family file (lenet, alexnet, vgg, googlenet, resnet) builds its body and calls these
helpers, so that all models accept the same `keras.applications`-style arguments and reject bad
ones with the same messages:

    include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation,
    name, activation (+ dropout, dropout_scaling where the paper uses dropout)

Stage outputs: every model marks the end of each stage with an identity layer named
`stage1`, `stage2`, ... so that `zoo.features(model, ["stage3", "stage4"])` works whatever the
family (see `zoo.cnn.features`). The layers hold no weights and cost nothing at run time.
"""

import os

import keras

import zoo.layers as zoo_layers
from zoo import weights as zoo_weights
from zoo.registry import Recipe
from zoo.validation import check_bool, check_choice, check_int, check_rate, is_int

POOLINGS = (None, "avg", "max")
DROPOUT_SCALINGS = zoo_layers.dropout.SCALINGS  # one list: the layer's own

# Initialisation. Keras' Glorot default leaves deep plain ReLU networks such as VGG at chance
# for epochs on small data. He et al. 2015 ("Delving Deep into Rectifiers") derive std
# sqrt(2 / n) for ReLU layers: torchvision draws conv kernels from N(0, 2 / fan_out)
# ("kaiming_normal_, mode='fan_out'") and we do the same. For the hidden fully connected
# layers torchvision keeps the VGG/AlexNet papers' N(0, 0.01), which shrinks the signal by
# 0.01 * sqrt(fan_in) per layer (0.23 after VGG's fc1 at 32x32, 0.64 after fc2). Measured on
# the digits (vgg11, SGD 0.01): chance after one epoch with it, 67% test accuracy with
# N(0, 2 / fan_in); so the hidden dense layers of the plain networks are He-initialised.
# With batch norm (vgg*_bn) the opposite holds: the normalised features through He-initialised
# 4096-wide layers gave a training loss rising from 3.2 to 29 in 8 steps of lr 0.01 on one
# batch, N(0, 0.01) a steady fall (2.29 -> 1.82); the _bn variants keep torchvision's.
# The classifier keeps N(0, 0.01) everywhere (near-uniform first predictions); biases are 0.
def conv_initializer(mode="fan_out"):
    """He normal, untruncated: torchvision's kaiming_normal_(mode="fan_out") by default.

    `mode="fan_in"` preserves the forward signal instead of the backward one; networks without
    batch norm whose 1x1 convolutions *reduce* the channels (GoogLeNet: 480 -> 64) need it,
    since fan-out scaling there multiplies the activations' variance by fan_in / fan_out.
    """
    return keras.initializers.VarianceScaling(2.0, mode, "untruncated_normal")


def hidden_dense_initializer():
    """He normal over fan-in, untruncated (He et al. 2015), for ReLU fully connected layers."""
    return keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal")


def classifier_initializer():
    """N(0, 0.01): the classifier of the VGG/AlexNet papers and of torchvision."""
    return keras.initializers.RandomNormal(stddev=0.01)


def sgd_recipe(*, paper_setting, adaptation, **fields):
    """The zoo's SGD recipe for CNNs, as the 2012-2015 ImageNet papers trained them: momentum
    0.9, step decay (x0.1 at 50% and 75% of training, where the papers divided by 10 at
    plateaus), one warm-up epoch (Goyal et al. 2017), 10 epochs, batch 32; `fields` override
    (lr, reference_batch, weight_decay, ...)."""
    settings = dict(
        optimizer="sgd",
        lr=0.01,
        reference_batch=32,
        batch_size=32,
        momentum=0.9,
        weight_decay=5e-4,
        schedule="step",
        milestones=(0.5, 0.75),
        decay_factor=0.1,
        warmup_epochs=1.0,
        epochs=10,
    )
    settings.update(fields)
    return Recipe(paper_setting=paper_setting, adaptation=adaptation, **settings)


def conv2d(filters, kernel_size, name, init_mode="fan_out", **kwargs):
    """`keras.layers.Conv2D` with `conv_initializer(init_mode)` and zero biases."""
    return keras.layers.Conv2D(
        filters, kernel_size, kernel_initializer=conv_initializer(init_mode), name=name, **kwargs
    )


def check_classes(classes):
    """`classes` must be an int >= 1."""
    check_int("classes", classes)


def check_pooling(pooling):
    """`pooling` must be None, "avg" or "max"."""
    check_choice("pooling", pooling, POOLINGS)


def check_activation(activation, argument="activation"):
    """`activation` must be a Keras activation name, "shifted_relu", or a callable."""
    if isinstance(activation, keras.layers.Layer):
        raise ValueError(
            f"Argument `{argument}` must be a name (e.g. 'relu', 'shifted_relu') or a callable, "
            f"not a layer instance (one layer cannot be shared by every block). "
            f"Received: {argument}={activation!r}"
        )
    if activation is None or not (isinstance(activation, str) or callable(activation)):
        raise ValueError(
            f"Argument `{argument}` must be a Keras activation name (e.g. 'relu', 'tanh'), "
            f"'shifted_relu', or a callable. Received: {argument}={activation!r}"
        )
    zoo_layers.activation_layer(activation)  # raises ValueError for unknown names


def check_classifier_activation(classifier_activation):
    """None (logits), "softmax" (StableSoftmax), or any other Keras activation."""
    if classifier_activation is None or classifier_activation == "softmax":
        return
    try:
        check_activation(classifier_activation, argument="classifier_activation")
    except ValueError as error:
        raise ValueError(
            "Argument `classifier_activation` must be 'softmax', None (return logits), or "
            f"another Keras activation. Received: classifier_activation={classifier_activation!r}"
        ) from error


def check_dropout(dropout, dropout_scaling):
    """`dropout` (the rate) in [0, 1) and `dropout_scaling` one of `DROPOUT_SCALINGS`."""
    check_rate("dropout", dropout)
    check_choice("dropout_scaling", dropout_scaling, DROPOUT_SCALINGS)


def check_weights(weights, *, include_top, classes, imagenet=None, model_name="this model"):
    """`weights` is None, "imagenet" (where `imagenet` is True; None: where the weights
    catalog has `model_name`) or an existing weights file.

    As in Keras, `weights="imagenet"` with `include_top=True` needs `classes=1000`.
    """
    if weights is None:
        return
    if weights == "imagenet":
        if imagenet is None:
            imagenet = model_name in zoo_weights.IMAGENET
        if not imagenet:
            raise ValueError(
                f"ImageNet weights are not available for {model_name} (they are for "
                f"{', '.join(sorted(zoo_weights.IMAGENET))}). Use weights=None or a path to a "
                f"'.weights.h5' file. Received: weights='imagenet'"
            )
        if include_top and classes != 1000:
            raise ValueError(
                "If using `weights='imagenet'` with `include_top=True`, `classes` should be "
                f"1000 (the ImageNet classes); use include_top=False for another number of "
                f"classes. Received: classes={classes}"
            )
        return
    if not isinstance(weights, (str, os.PathLike)) or not os.path.isfile(weights):
        raise ValueError(
            "Argument `weights` must be None (random initialization), 'imagenet', or the path "
            f"to an existing '.weights.h5' file. Received: weights={weights!r}"
        )


def check_arguments(
    model_name,
    *,
    include_top,
    weights,
    pooling,
    classes,
    classifier_activation,
    activation,
    imagenet=None,
    dropout_spec=None,
):
    """The checks every CNN builder runs first, in one call.

    Args:
        model_name: For messages ("vgg16").
        include_top, weights, pooling, classes, classifier_activation, activation: The
            builder's keras.applications-style arguments.
        imagenet: Whether `weights="imagenet"` exists for this model; None: whether the
            weights catalog has `model_name`.
        dropout_spec: `(dropout, dropout_scaling)` (the builder's rate and scaling) for
            models with dropout, else None.
    """
    check_bool("include_top", include_top)
    check_classes(classes)
    check_pooling(pooling)
    check_activation(activation)
    check_classifier_activation(classifier_activation)
    if dropout_spec is not None:
        check_dropout(*dropout_spec)
    check_weights(
        weights, include_top=include_top, classes=classes, imagenet=imagenet, model_name=model_name
    )


def check_data_format():
    if keras.backend.image_data_format() != "channels_last":
        raise ValueError(
            "zoo CNNs are built channels-last; call "
            "keras.backend.set_image_data_format('channels_last'). Received: "
            f"image_data_format={keras.backend.image_data_format()!r}"
        )


def model_input(
    input_tensor,
    input_shape,
    *,
    default_shape,
    min_shape,
    model_name,
    static_size=False,
    channels=None,
):
    """The model's input layer (and the tensors to build the Model from), after checks.

    Args:
        input_tensor: Optional Keras tensor (or backend tensor) to build the model on.
        input_shape: Optional (height, width, channels); defaults to the tensor's shape or
            `default_shape`.
        default_shape: The model's default input shape.
        min_shape: Smallest (height, width, channels) accepted; spatial sizes are checked.
        model_name: For error messages.
        static_size: True when the head needs known height and width (a Flatten top).
        channels: If set, the number of channels required (3 for ImageNet weights).

    Returns:
        (image_input, model_inputs, shape): the tensor the body starts from, what to pass as
        `keras.Model(inputs=...)`, and the checked shape.
    """
    check_data_format()
    if input_shape is None:
        if input_tensor is not None and len(input_tensor.shape) == 4:
            input_shape = tuple(input_tensor.shape[1:])
        else:
            input_shape = tuple(default_shape)
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    valid = shape is not None and len(shape) == 3
    if valid:
        for dim in shape:
            if dim is not None and (not is_int(dim) or dim < 1):
                valid = False
        valid = valid and shape[2] is not None
    if not valid:
        raise ValueError(
            f"Argument `input_shape` must be a tuple (height, width, channels) of positive "
            f"integers (height and width may be None without a Flatten top). "
            f"Received: input_shape={input_shape!r}"
        )
    if static_size and (shape[0] is None or shape[1] is None):
        raise ValueError(
            f"{model_name} with include_top=True flattens its last feature map, so it needs a "
            f"known height and width. Received: input_shape={shape}"
        )
    too_small = [
        dim is not None and dim < minimum for dim, minimum in zip(shape[:2], min_shape[:2])
    ]
    if any(too_small):
        raise ValueError(
            f"Argument `input_shape` is below the minimum size of {model_name}: height and "
            f"width must be at least {min_shape[0]}x{min_shape[1]} (minimum input_shape="
            f"{tuple(min_shape)}). Received: input_shape={shape}"
        )
    if channels is not None and shape[2] != channels:
        raise ValueError(
            f"ImageNet weights need {channels} input channels. Received: input_shape={shape}"
        )
    if input_tensor is None:
        image_input = keras.Input(shape=shape, name="image")
        return image_input, image_input, shape
    if keras.backend.is_keras_tensor(input_tensor):
        image_input = input_tensor
    else:
        image_input = keras.Input(tensor=input_tensor, shape=shape)
    sources = keras.utils.get_source_inputs(input_tensor)
    return image_input, sources[0] if len(sources) == 1 else sources, shape


def stage(x, index):
    """Mark `x` as the output of stage `index` (an identity layer named `stage{index}`)."""
    return keras.layers.Identity(name=f"stage{index}")(x)


def classifier_output(x, classes, classifier_activation, name="predictions", logits_name="logits"):
    """Dense `logits` layer and its activation (softmax -> float32 StableSoftmax).

    The logits layer is initialised as torchvision's classifiers are, N(0, 0.01) and zero bias.
    """
    initializer = classifier_initializer()
    x = keras.layers.Dense(classes, kernel_initializer=initializer, name=logits_name)(x)
    if classifier_activation is None:
        return x
    if classifier_activation == "softmax":
        return zoo_layers.StableSoftmax(dtype="float32", name=name)(x)
    return keras.layers.Activation(classifier_activation, dtype="float32", name=name)(x)


def fully_connected(x, units, activation, dropout_spec, name, kernel_initializer=None):
    """A hidden fully connected layer of a VGG/AlexNet-style top: Dense -> activation ->
    dropout, named `name`, `name_act`, `name_dropout`.

    Args:
        dropout_spec: `(rate, scaling)` for `zoo.layers.ScaledDropout`.
        kernel_initializer: None for `hidden_dense_initializer()` (He).
    """
    initializer = kernel_initializer or hidden_dense_initializer()
    x = keras.layers.Dense(units, kernel_initializer=initializer, name=name)(x)
    x = zoo_layers.activation_layer(activation, name=f"{name}_act")(x)
    rate, scaling = dropout_spec
    return zoo_layers.ScaledDropout(rate, scaling=scaling, name=f"{name}_dropout")(x)


def global_pool(x, pooling):
    """`include_top=False` pooling, named as in keras.applications."""
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def dropout(x, rate, scaling, name):
    return zoo_layers.ScaledDropout(rate, scaling=scaling, name=name)(x)


def finish(inputs, outputs, name, weights, variant=None, include_top=True):
    """Build the functional model and load its weights: `weights` a file path, or "imagenet"
    (`zoo.weights.load_imagenet` of the registry model `variant`)."""
    model = keras.Model(inputs, outputs, name=name)
    if weights == "imagenet":
        zoo_weights.load_imagenet(model, variant, include_top)
    elif weights is not None:
        model.load_weights(weights)
    return model
