"""Intermediate feature maps of any zoo CNN, for transfer learning and captioning.

Every zoo CNN marks the end of each stage with an identity layer named `stage1`, `stage2`, ...
(LeNet-5 has stage1-3, the others stage1-5; `stage{k}` of VGG, ResNet and GoogLeNet is at
stride 2**k). `features(model, names)` returns a model that computes those outputs, sharing
the original model's layers and weights:

    >>> backbone = zoo.resnet50(include_top=False, input_shape=(224, 224, 3))
    >>> extractor = zoo.features(backbone, ["stage3", "stage4"])
    >>> maps = extractor(images)         # {"stage3": (N, 28, 28, 512), "stage4": (N, 14, 14, 1024)}

Any layer name works too, e.g. keras.applications' "conv4_block6_out".
"""

import difflib

import keras


def stage_names(model):
    """The stage names a model offers, in order (`["stage1", ..., "stage5"]`)."""
    return [layer.name for layer in model.layers if layer.name.startswith("stage")]


def features(model, names, name=None):
    """A model computing the named intermediate outputs of `model`, with shared weights.

    Args:
        model: A functional Keras model (any zoo CNN, or any functional model).
        names: One layer name (e.g. "stage4") or a list of them.
        name: Name of the returned model (default: "<model name>_features").

    Returns:
        A `keras.Model` with `model`'s inputs. Given one name (a string), its output is that
        layer's output tensor; given a list, a dict mapping each name to its output.
        Training the returned model trains `model`'s layers (they are shared); freeze them
        with `model.trainable = False` for feature extraction.

    Raises:
        TypeError: if `model` is not a Keras model with layers or `names` is not a string or
            a list/tuple of strings.
        ValueError: for an empty list, or a name that is not a layer of `model` (the message
            lists the model's stage names and the closest layer names).
    """
    if not isinstance(model, keras.Model) or not hasattr(model, "layers"):
        raise TypeError(
            f"Argument `model` must be a functional keras.Model. Received: model={model!r}"
        )
    single = isinstance(names, str)
    requested = [names] if single else names
    if not isinstance(requested, (list, tuple)) or not all(isinstance(n, str) for n in requested):
        raise TypeError(
            "Argument `names` must be a layer name or a list of layer names, e.g. "
            f"['stage3', 'stage4']. Received: names={names!r}"
        )
    if not requested:
        raise ValueError("Argument `names` must name at least one layer. Received: names=[]")
    layer_names = [layer.name for layer in model.layers]
    outputs = {}
    for layer_name in requested:
        if layer_name not in layer_names:
            close = difflib.get_close_matches(layer_name, layer_names, n=3, cutoff=0.6)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(
                f"Argument `names` contains {layer_name!r}, which is not a layer of model "
                f"{model.name!r}.{hint} Its stages are {stage_names(model)}."
            )
        outputs[layer_name] = model.get_layer(layer_name).output
    result = outputs[names] if single else outputs
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, result, name=name or f"{model.name}_features")
