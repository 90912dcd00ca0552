"""Pretrained weights: where they come from, how they are downloaded, and how they are loaded.

    zoo.weights.catalog        model name -> {"imagenet": WeightsEntry} (URL, hash, licence,
                               preprocessing, published top-1), read by the registry
    zoo.weights.entries        the WeightsEntry and Preprocessing dataclasses
    zoo.weights.download       the Keras cache ($KERAS_HOME/models) with hash checks
    zoo.weights.torch_files    a NumPy-only reader of PyTorch .pth files (no torch needed)
    zoo.weights.torchvision    torchvision state dict -> zoo model converters
    zoo.weights.transplanting  `transplant`: layer-by-layer copy between Keras models

`load_imagenet(model, model_name, include_top)` is the one function that loads ImageNet
weights into a built zoo model (`weights="imagenet"` in every model function calls it): from
torchvision's files for most models, from keras.applications for vgg16, vgg19, resnet50,
resnet101 and resnet152 (the v1 architectures whose weights Keras publishes).

Importing this package does not import Keras or TensorFlow (the registry reads the catalog).
"""

from zoo.weights.catalog import IMAGENET, KERAS_APPLICATIONS
from zoo.weights.entries import Preprocessing, WeightsEntry

# zoo name -> the keras.applications constructor with the same architecture.
IMAGENET_SOURCES = KERAS_APPLICATIONS


def __getattr__(name):
    if name == "transplant":  # imports Keras, so only when asked for
        from zoo.weights.transplanting import transplant

        return transplant
    raise AttributeError(f"module 'zoo.weights' has no attribute {name!r}")


def imagenet_source(model_name, include_top, weights="imagenet"):
    """The keras.applications model whose weights `model_name` takes with weights="imagenet".

    Args:
        model_name: One of `IMAGENET_SOURCES` ("vgg16", "vgg19", "resnet50", ...).
        include_top: Whether to include the 1000-class classifier.
        weights: "imagenet" (downloads on first use), or None for the same architecture
            without downloading (tests).
    """
    import keras

    if model_name not in IMAGENET_SOURCES:
        raise ValueError(
            f"keras.applications' ImageNet weights are used for {sorted(IMAGENET_SOURCES)}. "
            f"Received: model_name={model_name!r}"
        )
    constructor = getattr(keras.applications, IMAGENET_SOURCES[model_name])
    return constructor(include_top=include_top, weights=weights, classes=1000)


def load_imagenet(model, model_name, include_top):
    """Load the ImageNet weights of `model_name` into the built zoo `model`.

    torchvision's weights: downloaded once into the Keras cache, hash-checked, read without
    torch and converted (`zoo.weights.torchvision`). keras.applications' weights: Keras'
    model is built with them and transplanted layer by layer.

    Args:
        model: The zoo model, built with `include_top` and 3 input channels.
        model_name: Its registry name (a key of `IMAGENET`).
        include_top: Whether `model` has the 1000-class classifier.

    Returns:
        The model.
    """
    if model_name not in IMAGENET:
        raise ValueError(
            f"ImageNet weights are available for {sorted(IMAGENET)}. "
            f"Received: model_name={model_name!r}"
        )
    if model_name in IMAGENET_SOURCES:
        from zoo.weights.transplanting import transplant

        source = imagenet_source(model_name, include_top)
        transplant(source, model)
        del source
        return model
    from zoo.weights import torchvision

    return torchvision.load(model, model_name, include_top)


__all__ = [
    "IMAGENET",
    "IMAGENET_SOURCES",
    "Preprocessing",
    "WeightsEntry",
    "imagenet_source",
    "load_imagenet",
    "transplant",
]
