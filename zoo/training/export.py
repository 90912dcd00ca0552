"""`zoo export`: a trained model's forward pass as a serving artifact, through Keras'
`model.export`.

* "saved_model": a TensorFlow SavedModel directory (`tf.saved_model.load(path).serve(x)`;
  TensorFlow Serving).
* "onnx": an `.onnx` file (ONNX Runtime and others), converted by `tf2onnx`: install the
  `export` extra (`pip install 'zoo[export]'`).
* "litert": a `.tflite` file for LiteRT (TensorFlow Lite) on phones and microcontrollers.
  The recurrent models' and captioners' loops over time convert to TensorFlow ops that
  LiteRT's built-in kernels lack (`FlexTensorListReserve`, ...): such a file runs only with
  the Flex delegate (TensorFlow Select ops), which `export_model` says when it writes one.

What is exported is the model's call: for `char_lm`, int32 ids `(batch, time)` -> the next
character's probabilities at every step; for a captioner, the teacher-forced pass
`[images, caption_in]` -> next-token logits (captions are then generated step by step by the
caller), and in a SavedModel also a `caption(images)` endpoint: greedy search in the graph,
returning `(ids [B, max_length + 1], log-probabilities [B])` (ids index `model.vocabulary`).

The artifact holds the model only: images must be prepared as in training (the run's
`data.json` gives the normalisation and the class names; see `zoo.training.predict`).
"""

import importlib.util
import os
import re
import warnings

import numpy as np

from zoo.training.saved_runs import find_saved_model, load_model
from zoo.validation import first_line

FORMATS = {  # keys: zoo.validation.EXPORT_FORMATS
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


def _input_signature(model):
    """The served inputs: a functional model's own; a subclassed one's from its
    `export_input_signature()` (char_lm: int32 ids of any length); None: Keras decides."""
    if getattr(model, "inputs", None):
        return None
    declared = getattr(model, "export_input_signature", None)
    return declared() if declared is not None else None


def _call_once(model, signature):
    """Call a freshly loaded model on zeros: Keras' export refuses a model that was never
    called ("The model provided has never called")."""
    specs = getattr(model, "inputs", None) or signature
    if not specs:
        return
    zeros = [np.zeros((1, *[d or 1 for d in s.shape[1:]]), dtype=s.dtype) for s in specs]
    model(zeros if len(zeros) > 1 else zeros[0], training=False)


def flex_ops(path):
    """The TensorFlow ("Flex") ops a `.tflite` file needs beyond LiteRT's built-in kernels:
    their names are the custom op codes stored in the flatbuffer."""
    with open(path, "rb") as f:
        return sorted({m.decode() for m in re.findall(rb"Flex[A-Z][A-Za-z0-9]+", f.read())})


def _saved_model_with_endpoints(model, out, endpoints):
    """A SavedModel with `serve` (the model's call) and the model's extra endpoints."""
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    specs = [keras.InputSpec(shape=t.shape, dtype=t.dtype) for t in model.inputs]
    archive.add_endpoint("serve", lambda *x: model(list(x) if len(x) > 1 else x[0],
                                                   training=False), input_signature=specs)
    for name, (fn, signature) in endpoints.items():
        archive.add_endpoint(name, fn, input_signature=signature)
    archive.write_out(out, verbose=False)


def _notes(model, format, out):
    """Lines that say what was exported where it is not simply the classifier's forward pass."""
    notes = []
    if hasattr(model, "export_endpoints"):
        notes.append(
            "exported the teacher-forced pass: [images, caption_in (int32 ids starting with "
            "<start>)] -> next-token logits; generating a caption means calling it once per "
            "token" + (". The SavedModel's `caption(images)` does greedy search in the graph "
                       "(ids, log-probabilities)." if format == "saved_model" else
                       ", or export --format saved_model for a `caption(images)` endpoint."))
    if format == "litert":
        needed = flex_ops(out)
        if needed:
            notes.append(
                f"this LiteRT file needs TensorFlow ops that LiteRT's built-in kernels lack "
                f"({', '.join(needed[:3])}{', ...' if len(needed) > 3 else ''}: the loop over "
                "time): it runs only with the Flex delegate (TensorFlow Select ops, e.g. "
                "Android's tensorflow-lite-select-tf-ops), not in a plain tf.lite.Interpreter "
                "or ai_edge_litert interpreter. The saved_model and onnx formats need no "
                "delegate.")
    return notes


def export_model(path, format="saved_model", out=None, say=None):
    """Export a run's model (or a `.keras` file) for serving.

    Args:
        path: A run directory or a `.keras` file.
        format: "saved_model", "onnx" or "litert".
        out: The artifact's path; default: see `default_export_path`.
        say: Called with each note on what was exported (a captioner's inputs, a LiteRT file
            that needs the Flex delegate); None: no notes.

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
    signature = _input_signature(model)
    endpoints = model.export_endpoints() if hasattr(model, "export_endpoints") else {}
    try:
        _call_once(model, signature)
        with warnings.catch_warnings():
            # Keras' tf2onnx patch probes `np.object`, which NumPy 2 answers with a warning.
            warnings.filterwarnings("ignore", message=".*np.object.*", category=FutureWarning)
            if format == "saved_model" and endpoints:
                _saved_model_with_endpoints(model, out, endpoints)
            else:
                model.export(out, format=keras_format, verbose=False, input_signature=signature)
    except KeyboardInterrupt:
        raise
    except Exception as error:
        reason = first_line(error)
        raise ValueError(
            f"Keras could not export {saved.model_file!r} ({type(model).__name__}) as {format} "
            f"to {out!r} ({type(error).__name__}: {reason})."
        ) from None
    for note in _notes(model, format, out):
        if say is not None:
            say(note)
    return out
