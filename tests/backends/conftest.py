"""The backend tests: run once per backend, as its own pytest run, e.g.

    KERAS_BACKEND=jax python -m pytest -o addopts="-q" --confcutdir tests/backends tests/backends

(the backend is fixed when Keras is imported; `--confcutdir` keeps tests/conftest.py, which sets
up TensorFlow, out of the run). Under TensorFlow (the main suite) nothing here is collected:
TensorFlow is the reference these tests compare with.
"""

import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
HERE = pathlib.Path(__file__).resolve().parent
REPOSITORY = HERE.parents[1]

if BACKEND == "tensorflow":
    collect_ignore_glob = ["test_*.py"]
else:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    @pytest.fixture(autouse=True)
    def _fresh_keras_state():
        # Not keras.utils.set_random_seed: it imports TensorFlow whenever it is installed.
        keras.backend.clear_session()
        yield
        keras.config.set_dtype_policy("float32")


def _reference_key():
    """A digest of everything TensorFlow's reference depends on: the model and layer code, the
    reference script, and the Keras and TensorFlow versions (read without importing them)."""
    from importlib import metadata

    digest = hashlib.sha256()
    paths = [*sorted((REPOSITORY / "zoo").rglob("*.py")),
             *sorted((REPOSITORY / "layers").rglob("*.py")),
             HERE / "cases.py", HERE / "tf_reference.py"]
    for path in paths:
        digest.update(str(path.relative_to(REPOSITORY)).encode() + path.read_bytes())
    for package in ("keras", "tensorflow"):
        digest.update(metadata.version(package).encode())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def tf_reference():
    """The folder holding TensorFlow's outputs (`tf_reference.py`), computed in a subprocess.

    Cached in the temporary folder under a digest of the code, so the JAX and the PyTorch runs
    share one TensorFlow run; a change to any model, layer or test recomputes it.
    """
    folder = pathlib.Path(tempfile.gettempdir()) / f"zoo-tf-reference-{_reference_key()}"
    if not (folder / "reference.npz").exists():
        partial = pathlib.Path(tempfile.mkdtemp(prefix="zoo-tf-reference-partial-"))
        env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
        result = subprocess.run(
            [sys.executable, str(HERE / "tf_reference.py"), str(partial)],
            env=env, cwd=REPOSITORY, capture_output=True, text=True, timeout=900,
        )
        if result.returncode != 0:
            pytest.fail(f"tf_reference.py failed:\n{result.stderr[-4000:]}")
        try:
            partial.rename(folder)
        except OSError:  # another run finished first: its files are the same
            shutil.rmtree(partial, ignore_errors=True)
    return folder


@pytest.fixture(scope="session")
def reference(tf_reference):
    import numpy as np

    with np.load(tf_reference / "reference.npz") as data:
        return dict(data)
