"""Image encoders of the captioners: a CNN without its classifier, and what the decoder reads.

`build_cnn` makes the CNN (the built-in [CONV-POOL]*n, a zoo model, a `keras.applications`
model, or one you pass). `vector_encoder` and `annotation_encoder` wrap it into the model the
decoder reads: images -> an image vector v (`InjectedRNNDecoder`), or images -> annotations
a_1..a_L, the feature grid's cells (`SoftAttentionDecoder`).
"""

import keras

from zoo.validation import check_choice, did_you_mean

BUILT_IN_CNN = "small_cnn"
POOLINGS = ("flatten", "avg", "max")


def check_input_shape(input_shape):
    """`(height, width, channels)` of positive ints, as a tuple."""
    shape = tuple(input_shape) if hasattr(input_shape, "__len__") else input_shape
    if (
        not isinstance(shape, tuple)
        or len(shape) != 3
        or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
    ):
        raise ValueError(
            "Argument `input_shape` must be (height, width, channels) of positive ints. "
            f"Received: input_shape={input_shape!r}"
        )
    return shape


def small_cnn(input_shape, conv_filters=(32, 64, 64), name=BUILT_IN_CNN):
    """The built-in [CONV-POOL]*n encoder: 3x3 same-padded ReLU convolutions, 2x2 max pooling.

    Returns a `keras.Model` from images to the feature grid `[B, H / 2^n, W / 2^n, filters]`.

    Raises:
        ValueError: if the images are smaller than 2^n pixels on a side.
    """
    conv_filters = tuple(int(f) for f in conv_filters)
    min_side = 2 ** len(conv_filters)
    if min(input_shape[:2]) < min_side:
        raise ValueError(
            f"Argument `input_shape` must be at least {min_side}x{min_side} for "
            f"{len(conv_filters)} [CONV-POOL] blocks. Received: input_shape={input_shape}"
        )
    images = keras.Input(shape=input_shape, name="images")
    x = images
    for i, filters in enumerate(conv_filters, start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
    return keras.Model(images, x, name=name)


def build_cnn(encoder, input_shape, conv_filters=(32, 64, 64), encoder_weights=None):
    """A CNN without its classifier, from a name or a model.

    Args:
        encoder: None or "small_cnn" (`small_cnn`), a model name registered in the zoo
            (built with `include_top=False`), the name of a `keras.applications` function
            (e.g. "MobileNetV2", built with `include_top=False, weights=encoder_weights`), or
            a `keras.Model`.
        input_shape: Image shape `(H, W, C)`.
        conv_filters: Filters per block of the built-in encoder.
        encoder_weights: `weights` for `keras.applications` encoders (e.g. "imagenet").

    Returns:
        A `keras.Model` mapping images to a feature grid (4D) or a vector (2D).

    Raises:
        ValueError: on an unknown name. TypeError: on another kind of object.
    """
    if encoder is None or encoder == BUILT_IN_CNN:
        return small_cnn(input_shape, conv_filters)
    if isinstance(encoder, keras.Model):
        return encoder
    if isinstance(encoder, str):
        import zoo.cnn  # noqa: F401  (registers the zoo CNNs)
        from zoo import registry

        if encoder in registry.list_models(task="image-classification"):
            return registry.create_model(encoder, include_top=False, input_shape=input_shape)
        applications = [n for n in dir(keras.applications) if n[:1].isupper()]
        if encoder in applications:
            return getattr(keras.applications, encoder)(
                include_top=False, weights=encoder_weights, input_shape=input_shape
            )
        known = [BUILT_IN_CNN, *registry.list_models(task="image-classification"), *applications]
        raise ValueError(
            f"Argument `encoder` names no known CNN.{did_you_mean(encoder, known)} Allowed: "
            f"'{BUILT_IN_CNN}', a zoo image classifier or a keras.applications name. "
            f"Received: encoder={encoder!r}"
        )
    raise TypeError(
        "Argument `encoder` must be None, a name or a keras.Model. "
        f"Received: encoder of type {type(encoder).__name__}"
    )


def _cnn_features(cnn, input_shape, train_encoder, rescale):
    images = keras.Input(shape=input_shape, name="images")
    scaled = images
    if rescale is not None:
        if not hasattr(rescale, "__len__") or len(tuple(rescale)) != 2:
            raise ValueError(
                f"Argument `rescale` must be (scale, offset) or None. Received: rescale={rescale!r}"
            )
        scaled = keras.layers.Rescaling(float(rescale[0]), float(rescale[1]), name="rescale")(
            images
        )
    cnn.trainable = bool(train_encoder)
    # A frozen CNN also runs in inference mode (its batch-norm statistics stay as loaded).
    return images, cnn(scaled, training=None if train_encoder else False)


def vector_encoder(cnn, input_shape, image_units, pooling="flatten", train_encoder=True,
                   rescale=None, name="image_model"):
    """Images -> v = ReLU(W (pooled CNN features) + b), the injection decoder's image vector.

    Args:
        cnn: From `build_cnn`.
        input_shape: Image shape `(H, W, C)`.
        image_units: Size of v.
        pooling: How a feature grid becomes a vector: "flatten", "avg" or "max".
        train_encoder: If False, the CNN is frozen and runs in inference mode.
        rescale: Optional `(scale, offset)`: the CNN sees `images * scale + offset`.
        name: Model name.

    Raises:
        ValueError: on an unknown pooling or a CNN output that is neither a grid nor a vector.
    """
    check_choice("pooling", pooling, POOLINGS)
    images, features = _cnn_features(cnn, input_shape, train_encoder, rescale)
    if len(features.shape) == 4:
        pool = {
            "flatten": keras.layers.Flatten(name="flatten"),
            "avg": keras.layers.GlobalAveragePooling2D(name="avg_pool"),
            "max": keras.layers.GlobalMaxPooling2D(name="max_pool"),
        }[pooling]
        features = pool(features)
    elif len(features.shape) != 2:
        raise ValueError(
            "Argument `encoder` must output a feature grid [B, H, W, C] or a vector [B, D]. "
            f"Received an encoder with output shape {features.shape}"
        )
    vector = keras.layers.Dense(image_units, activation="relu", name="image_fc")(features)
    return keras.Model(images, vector, name=name)


def annotation_encoder(cnn, input_shape, train_encoder=True, rescale=None, name="image_model"):
    """Images -> annotations `[B, L, D]`: the CNN's grid cells (Xu et al., section 3.1.1).

    Raises:
        ValueError: if the CNN does not output a grid of known size.
    """
    images, features = _cnn_features(cnn, input_shape, train_encoder, rescale)
    if len(features.shape) != 4 or None in features.shape[1:]:
        raise ValueError(
            "The attention decoder needs an encoder that outputs a feature grid [B, H, W, C] "
            f"of known size (no pooling). Received an encoder with output shape {features.shape}"
        )
    _, height, width, channels = features.shape
    annotations = keras.layers.Reshape((height * width, channels), name="annotations")(features)
    return keras.Model(images, annotations, name=name)
