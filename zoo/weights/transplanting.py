"""Copy weights between Keras models of the same architecture, layer by layer.

`transplant(source_model, target_model)` is how `weights="imagenet"` works for `vgg16`,
`vgg19`, `resnet50`, `resnet101` and `resnet152`: the `keras.applications` model is built with
its ImageNet weights and its weights are transplanted into the zoo model, which keeps Keras'
layer names (see `zoo.weights.keras_applications`).

    >>> import keras, zoo
    >>> source = keras.applications.ResNet50(weights=None)
    >>> target = zoo.resnet50()
    >>> pairs = zoo.weights.transplant(source, target)   # [("conv1_conv", "conv1_conv"), ...]
"""

import keras


def weighted_layers(model):
    """Layers that own weights, in build order, descending into nested models."""
    found = []
    for layer in model.layers:
        if hasattr(layer, "layers"):  # a nested model (or any layer holding layers)
            found.extend(weighted_layers(layer))
        elif layer.weights:
            found.append(layer)
    return found


def weight_shapes(layer):
    return [tuple(w.shape) for w in layer.weights]


def transplant(source_model, target_model, strict=True):
    """Copy the weights of `source_model` into `target_model`, layer by layer.

    Layers that own weights are paired first by name (a target layer takes the source layer
    of the same name when their weight shapes agree: zoo models keep keras.applications'
    names such as `block1_conv1` or `conv2_block1_1_conv`), then the remaining ones in build
    order (e.g. Keras' `predictions` Dense and the zoo's `logits` Dense). Every weight is
    copied, including BatchNormalization's moving mean and variance.

    Args:
        source_model: A built Keras model to copy from.
        target_model: A built Keras model with the same weighted layers.
        strict: If True (default), every weighted layer of both models must be paired. If
            False, source layers left over after every target layer is paired are ignored
            (e.g. copy a classifier's body into an `include_top=False` model, whose weighted
            layers come first).

    Returns:
        The list of `(source_layer_name, target_layer_name)` pairs that were copied.

    Raises:
        TypeError: if either argument is not a Keras model.
        ValueError: if the layers cannot be paired (different counts, layer types or weight
            shapes); nothing is copied in that case.
    """
    for argument, model in (("source_model", source_model), ("target_model", target_model)):
        if not isinstance(model, keras.Model):
            raise TypeError(
                f"Argument `{argument}` must be a keras.Model. Received: {argument}={model!r}"
            )
    sources = weighted_layers(source_model)
    targets = weighted_layers(target_model)
    by_name = {layer.name: layer for layer in sources}
    matched = {}
    for target in targets:
        source = by_name.get(target.name)
        if source is not None and weight_shapes(source) == weight_shapes(target):
            matched[id(target)] = source
    used = {id(layer) for layer in matched.values()}
    leftover_sources = [layer for layer in sources if id(layer) not in used]
    leftover_targets = [layer for layer in targets if id(layer) not in matched]
    too_few = len(leftover_sources) < len(leftover_targets)
    if too_few or (strict and len(leftover_sources) != len(leftover_targets)):
        raise ValueError(
            f"Cannot transplant weights: {len(sources)} weighted layers in source_model "
            f"{source_model.name!r} against {len(targets)} in target_model "
            f"{target_model.name!r}; after pairing by name, unpaired source layers "
            f"{[layer.name for layer in leftover_sources][:5]} and target layers "
            f"{[layer.name for layer in leftover_targets][:5]}"
            + ("" if too_few else " (pass strict=False to ignore extra source layers)")
        )
    for source, target in zip(leftover_sources, leftover_targets):
        matched[id(target)] = source
    pairs = []
    for target in targets:
        source = matched[id(target)]
        if (type(source).__name__ != type(target).__name__
                or weight_shapes(source) != weight_shapes(target)):
            raise ValueError(
                f"Cannot transplant weights: source layer {source.name!r} "
                f"({type(source).__name__}, weight shapes {weight_shapes(source)}) does not fit "
                f"target layer {target.name!r} ({type(target).__name__}, weight shapes "
                f"{weight_shapes(target)})"
            )
        pairs.append((source, target))
    for source, target in pairs:
        target.set_weights(source.get_weights())
    return [(source.name, target.name) for source, target in pairs]
