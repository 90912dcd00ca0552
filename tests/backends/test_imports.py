"""Off TensorFlow, the model code needs no TensorFlow: importing the families, the layers and the
samplers never imports it, and a model builds, trains and generates with it unimportable (as on
a machine without it)."""

import os
import subprocess
import sys
import textwrap

import keras

# None in sys.modules is how Python marks a module as absent: `import tensorflow` raises
# ModuleNotFoundError and importlib.util.find_spec("tensorflow") answers None, as on a machine
# without it (torch probes for it with find_spec).
BLOCK_TENSORFLOW = """
import sys

sys.modules["tensorflow"] = None
"""

SCRIPT = BLOCK_TENSORFLOW + """
import numpy as np
import zoo.captioning, zoo.cnn, zoo.layers, zoo.rnn, zoo.samplers
assert sys.modules["tensorflow"] is None
assert not any(m.startswith("tensorflow.") for m in sys.modules)

import keras
import zoo
model = zoo.lenet5(classes=3, input_shape=(28, 28, 1))
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
x = np.random.default_rng(0).random((4, 28, 28, 1)).astype("float32")
model.fit(x, np.array([0, 1, 2, 0]), batch_size=2, epochs=1, verbose=0)
captioner = zoo.create_model("show_attend_tell", **zoo.model_info("show_attend_tell").small_config)
print(captioner.generate(np.zeros((1, 16, 16, 3), "float32"), "beam"))
lm = zoo.create_model("char_lm", **zoo.model_info("char_lm").small_config)
print(repr(lm.generate("ab", 5, seed=0)))
print("ok")
"""


def test_model_code_runs_without_tensorflow():
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend()}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")
