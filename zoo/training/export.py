"""`zoo export`: a trained model's forward pass as a serving artifact, through Keras'
`model.export`.

* "saved_model": a TensorFlow SavedModel directory (`tf.saved_model.load(path).serve(x)`;
  TensorFlow Serving).
* "onnx": an `.onnx` file (ONNX Runtime and others), converted by `tf2onnx`: install the
  `export` extra (`pip install 'zoo[export]'`).
* "litert": a `.tflite` file for LiteRT (TensorFlow Lite) on phones and microcontrollers.

The artifact holds the model only: images must be prepared as in training (the run's
`data.json` gives the normalisation and the class names; see `zoo.training.predict`).
"""

import importlib.util
import os
import warnings

import numpy as np

from zoo.training.predict import find_saved_model, load_model

FORMATS = {
    # zoo name -> (Keras' format name, default file name in the run directory)
    "saved_model": ("tf_saved_model", "saved_model"),
    "onnx": ("onnx", "model.onnx"),
    "litert": ("litert", "model.tflite"),
}


def default_export_path(saved, format):
    """Where `export_model` writes when no `out` is given: into the run directory, or beside a
    bare `.keras` file (`NAME_saved_model/`, `NAME.onnx`, `NAME.tflite`)."""
    _, file_name = FORMATS[format]
    if saved.run_dir is not None:
        return os.path.join(saved.run_dir, file_name)
    stem = os.path.splitext(saved.model_file)[0]
    return f"{stem}_saved_model" if format == "saved_model" else stem + os.path.splitext(
        file_name
    )[1]


def _call_once(model):
    """Call a freshly loaded functional model on zeros: Keras' ONNX export refuses a model that
    was never called ("The model provided has never called")."""
    inputs = getattr(model, "inputs", None)
    if not inputs:
        return
    zeros = [np.zeros((1, *[d or 1 for d in t.shape[1:]]), dtype=t.dtype) for t in inputs]
    model(zeros if len(zeros) > 1 else zeros[0], training=False)


def export_model(path, format="saved_model", out=None):
    """Export a run's model (or a `.keras` file) for serving.

    Args:
        path: A run directory or a `.keras` file.
        format: "saved_model", "onnx" or "litert".
        out: The artifact's path; default: see `default_export_path`.

    Returns:
        The path written.

    Raises:
        ValueError: for an unknown format, a missing model, a missing converter (ONNX without
            `tf2onnx`) or a model Keras cannot export in that format.
    """
    from zoo.validation import check_choice

    check_choice("format", format, tuple(FORMATS))
    if format == "onnx" and importlib.util.find_spec("tf2onnx") is None:
        raise ValueError(
            "ONNX export needs tf2onnx, which is not installed: pip install 'zoo[export]' "
            "(tf2onnx, onnx, onnxruntime)."
        )
    saved = find_saved_model(path, argument="RUN_OR_FILE")
    model = load_model(saved.model_file, argument="RUN_OR_FILE")
    out = out or default_export_path(saved, format)
    keras_format, _ = FORMATS[format]
    try:
        _call_once(model)
        with warnings.catch_warnings():
            # Keras' tf2onnx patch probes `np.object`, which NumPy 2 answers with a warning.
            warnings.filterwarnings("ignore", message=".*np.object.*", category=FutureWarning)
            model.export(out, format=keras_format, verbose=False)
    except KeyboardInterrupt:
        raise
    except Exception as error:
        reason = (str(error).strip().splitlines() or [""])[0][:300]
        raise ValueError(
            f"Keras could not export {saved.model_file!r} ({type(model).__name__}) as {format} "
            f"to {out!r} ({type(error).__name__}: {reason})."
        ) from None
    return out
