"""zoo: faithful, documented Keras 3 models, trained on one device or many.

    >>> from zoo import vgg16, list_models, create_model
    >>> model = vgg16(classes=10, input_shape=(32, 32, 3))

Importing the package registers every model (each family module registers on import).
"""

import os

# Keep TensorFlow's C++ start-up chatter (CUDA probing, CPU feature notes) out of `zoo` output;
# a value the user set wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from zoo import captioning, cnn, rnn
from zoo.captioning import *  # noqa: F403
from zoo.cnn import *  # noqa: F403
from zoo.registry import (
    ModelInfo,
    Paper,
    create_model,
    list_models,
    model_info,
    register_model,
)
from zoo.rnn import *  # noqa: F403

__version__ = "0.1.0"

__all__ = [
    "ModelInfo",
    "Paper",
    "create_model",
    "list_models",
    "model_info",
    "register_model",
    *cnn.__all__,
    *rnn.__all__,
    *captioning.__all__,
]
