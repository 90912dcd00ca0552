"""What the backend tests and the TensorFlow reference script share: for every registered model,
its small instance, deterministic weights, inputs, targets and loss.

The weights come from NumPy, seeded by each variable's path, so TensorFlow, JAX and PyTorch hold
the same numbers without a file passing between them; the reference script (`tf_reference.py`)
records TensorFlow's outputs for them and the tests compare each backend's outputs with those.
Imports no TensorFlow: the same code runs under every backend.
"""

import zlib

import keras
import numpy as np

import zoo
from zoo.registry import list_models, model_info

MODELS = list_models()
BATCH = 2
STEPS = 7  # sequence length of the token and regression tasks
CAPTION_STEPS = 6
CHAR_PROMPT = "the quick"
GENERATION_LENGTH = 12


def build(name):
    """The registry's small instance of `name` with deterministic weights (fresh Keras state).

    No `keras.utils.set_random_seed`: it imports TensorFlow whenever it is installed, and the
    weights are set below anyway.
    """
    keras.backend.clear_session()
    model = zoo.create_model(name, **model_info(name).small_config)
    set_deterministic_weights(model)
    return model


def _values(path, shape):
    """Weights of a sensible scale for `path`: He-normal kernels (fan-in = all but the last
    axis), small biases, batch-norm statistics near the identity."""
    rng = np.random.default_rng(zlib.crc32(path.encode()))
    leaf = path.rsplit("/", 1)[-1]
    if leaf in ("gamma", "moving_variance"):
        return rng.uniform(0.5, 1.5, shape)
    if leaf in ("beta", "moving_mean", "bias") or len(shape) < 2:
        return 0.1 * rng.standard_normal(shape)
    if leaf == "embeddings":
        return rng.standard_normal(shape)
    fan_in = int(np.prod(shape[:-1]))
    return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)


def set_deterministic_weights(model):
    """Assign every floating-point weight from `_values`; returns the sorted weight paths."""
    paths = [variable.path for variable in model.weights]
    if len(set(paths)) != len(paths):
        raise AssertionError(f"duplicate weight paths in {model.name}: {sorted(paths)}")
    for variable in model.weights:
        dtype = keras.backend.standardize_dtype(variable.dtype)
        if "float" in dtype:
            variable.assign(_values(variable.path, tuple(variable.shape)).astype(dtype))
    return sorted(paths)


def inputs(name, model, seed=0):
    """A batch of `BATCH` inputs for `name`'s task, the same arrays on every backend."""
    rng = np.random.default_rng(seed)
    info = model_info(name)
    if info.task == "image-captioning":
        images = rng.random((BATCH, *info.small_config["input_shape"])).astype("float32")
        caption_in = rng.integers(2, model.decoder.vocabulary_size, (BATCH, CAPTION_STEPS))
        return [images, caption_in.astype("int32")]
    if info.task in ("sequence-classification", "language-modeling"):
        return rng.integers(1, 10, (BATCH, STEPS)).astype("int32")
    if info.task == "sequence-regression":
        return rng.standard_normal((BATCH, STEPS, 2)).astype("float32")
    return rng.random((BATCH, *info.small_config["input_shape"])).astype("float32")


def targets(name, model, x, seed=1):
    """Training targets for `inputs(name, model)`."""
    rng = np.random.default_rng(seed)
    task = model_info(name).task
    if task == "image-captioning":
        return rng.integers(2, model.decoder.vocabulary_size, x[1].shape).astype("int32")
    if task == "language-modeling":
        return rng.integers(2, 10, x.shape).astype("int32")
    if task == "sequence-regression":
        return rng.standard_normal((BATCH, 1)).astype("float32")
    return rng.integers(0, model.output_shape[-1], (BATCH,)).astype("int32")


def loss(name):
    """The loss `fit` trains `name` with: the captioners output logits, the classifiers and the
    language model probabilities, the regressors a number."""
    task = model_info(name).task
    if task == "sequence-regression":
        return "mse"
    if task == "image-captioning":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return keras.losses.SparseCategoricalCrossentropy()


def outputs(model, x):
    """The model's inference outputs as one float32 NumPy array."""
    (result,) = keras.tree.flatten(model(x, training=False))
    return np.asarray(keras.ops.convert_to_numpy(result), dtype="float32")


def caption_images(name, seed=2):
    """Images for the generation comparison."""
    shape = model_info(name).small_config["input_shape"]
    return np.random.default_rng(seed).random((3, *shape)).astype("float32")
