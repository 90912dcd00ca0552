"""zoo: faithful, documented Keras 3 models, trained on one device or many.

    >>> from zoo import vgg16, list_models, create_model
    >>> model = vgg16(classes=10, input_shape=(32, 32, 3))

The package is lazy (PEP 562): `import zoo` imports neither TensorFlow nor the model families,
so that `zoo --help` answers at once. The first access to a model function, a family
(`zoo.cnn`, `zoo.rnn`, `zoo.captioning`) or a registry function imports the families, which
register their models. The public names are those of the families' `__all__` plus the registry
functions below.
"""

import importlib
import os

# Keep TensorFlow's C++ start-up chatter (CUDA probing, CPU feature notes) out of `zoo` output;
# a value the user set wins. Set here, before anything below can import TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

FAMILIES = ("cnn", "rnn", "captioning")
_REGISTRY_NAMES = (
    "ModelInfo",
    "Paper",
    "Recipe",
    "create_model",
    "list_models",
    "model_info",
    "register_model",
)


def load_families():
    """Import every model family (which registers its models); returns them in `FAMILIES` order.

    Idempotent and cheap after the first call. The registry functions call it, so code that
    reaches the registry through `zoo.registry` sees every model too.
    """
    return [importlib.import_module(f"zoo.{family}") for family in FAMILIES]


def _public_names():
    names = list(_REGISTRY_NAMES)
    for family in load_families():
        names += [name for name in family.__all__ if name not in names]
    return names


def __getattr__(name):
    if name in FAMILIES:
        return importlib.import_module(f"zoo.{name}")
    if name == "__all__":
        return _public_names()
    if name in _REGISTRY_NAMES:
        load_families()
        return getattr(importlib.import_module("zoo.registry"), name)
    if not name.startswith("_"):
        for family in load_families():
            if name in family.__all__:
                return getattr(family, name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(FAMILIES) | set(_public_names()))
