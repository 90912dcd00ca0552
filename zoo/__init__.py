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
import importlib.abc
import importlib.util
import os
import sys
import warnings

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
# Public names served by other modules than the families and the registry.
_OTHER_NAMES = {"load_model": "zoo.loading", "LoadedModel": "zoo.loading"}


def load_families():
    """Import every model family (which registers its models); returns them in `FAMILIES` order.

    Idempotent and cheap after the first call. The registry functions call it, so code that
    reaches the registry through `zoo.registry` sees every model too.
    """
    return [importlib.import_module(f"zoo.{family}") for family in FAMILIES]


def _public_names():
    names = list(_REGISTRY_NAMES) + list(_OTHER_NAMES)
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
    if name in _OTHER_NAMES:
        return getattr(importlib.import_module(_OTHER_NAMES[name]), name)
    if not name.startswith("_") and importlib.util.find_spec(f"zoo.{name}") is not None:
        # `from zoo import listing`: Python asks this hook before importing the submodule;
        # answering from the families would import all of them (and TensorFlow) for nothing.
        return importlib.import_module(f"zoo.{name}")
    if not name.startswith("_"):
        for family in load_families():
            if name in family.__all__:
                return getattr(family, name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(FAMILIES) | set(_public_names()))


# ------------------------------------------------------------------ Keras deserialisation
# `keras.models.load_model("model.keras")` finds the zoo's classes (StableSoftmax,
# CharLanguageModel, the captioners) only once their modules have registered them with
# `register_keras_serializable`. `import zoo` must stay light (no TensorFlow for `zoo --help`),
# so: if Keras is already imported, import the families now; otherwise register them right
# after Keras finishes importing, through a finder that wraps Keras' own loader.


class _AfterKeras(importlib.abc.MetaPathFinder):
    """Wraps the loader of the top-level `keras` module: runs it, then `load_families()`.

    It stays on `sys.meta_path` until Keras is actually executed: TensorFlow looks Keras up
    with `importlib.util.find_spec` before importing it, and that spec is thrown away.
    """

    searching = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras" or self.searching:
            return None
        self.searching = True  # the search below must not find this finder again
        try:
            spec = importlib.util.find_spec("keras")
        finally:
            self.searching = False
        if spec is None or spec.loader is None:
            return spec
        original, finder = spec.loader, self

        class Loader(importlib.abc.Loader):
            def create_module(self, spec):
                return original.create_module(spec)

            def exec_module(self, module):
                if finder in sys.meta_path:
                    sys.meta_path.remove(finder)
                original.exec_module(module)
                sys.modules["keras"] = module  # as the import system will; families need it
                if _zoo_module_initializing():
                    # A zoo module imported Keras (e.g. `import zoo.layers` first): the families
                    # would import that half-initialised module. The module registers its own
                    # classes; `zoo.load_model` imports the rest when it needs them.
                    return
                try:
                    load_families()
                except Exception as error:  # never make `import keras` fail because of zoo
                    warnings.warn(f"zoo could not register its Keras classes: {error!r}",
                                  stacklevel=2)

        spec.loader = Loader()
        return spec


def _zoo_module_initializing():
    return any(
        getattr(getattr(module, "__spec__", None), "_initializing", False)
        for name, module in list(sys.modules.items())
        if name.startswith("zoo.")
    )


def _register_with_keras():
    if "keras" in sys.modules:
        load_families()
    elif not any(isinstance(finder, _AfterKeras) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterKeras())


_register_with_keras()
