"""`zoo export`: each artifact is reloaded by its own runtime (TensorFlow, ONNX Runtime, LiteRT)
and must compute what the Keras model computes."""

import importlib.util
import os
import warnings

import numpy as np
import pytest
import tensorflow as tf

import zoo
from zoo.cli import main


def run_cli(argv, capsys):
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def lenet_run(tmp_path, rng):
    """A run directory holding a LeNet-5 (custom StableSoftmax head) and a batch of inputs."""
    run = tmp_path / "run"
    run.mkdir()
    model = zoo.create_model("lenet5", input_shape=(28, 28, 1), classes=10)
    model.save(run / "model.keras")
    (run / "config.json").write_text('{"model": "lenet5", "dataset": "digits"}')
    x = rng.normal(size=(3, 28, 28, 1)).astype("float32")
    return run, model, x, model.predict(x, verbose=0)


def test_saved_model_serves_what_keras_computes(lenet_run, capsys):
    run, _, x, expected = lenet_run
    status, out, err = run_cli(["export", str(run)], capsys)
    assert status == 0, err
    path = run / "saved_model"
    assert out.strip() == f"exported {run} as saved_model: {path}"
    loaded = tf.saved_model.load(str(path))  # kept: its variables die with it
    served = loaded.serve(tf.constant(x)).numpy()
    np.testing.assert_allclose(served, expected, atol=1e-5)


@pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("tf2onnx") is None,
    reason="ONNX export needs the `export` extra (tf2onnx, onnxruntime)",
)
def test_onnx_runs_in_onnx_runtime_as_in_keras(lenet_run, capsys):
    import onnxruntime

    run, _, x, expected = lenet_run
    status, _, err = run_cli(["export", str(run), "--format", "onnx"], capsys)
    assert status == 0, err
    session = onnxruntime.InferenceSession(str(run / "model.onnx"))
    (name,) = [i.name for i in session.get_inputs()]
    np.testing.assert_allclose(session.run(None, {name: x})[0], expected, atol=1e-5)


def _litert_interpreter(path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # TensorFlow's own copy (deprecated, still in TF 2.21)
        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Interpreter(model_path=path)


def test_litert_runs_in_the_interpreter_as_in_keras(lenet_run, tmp_path, capsys):
    run, _, x, expected = lenet_run
    out = tmp_path / "phone" / "lenet.tflite"
    os.makedirs(out.parent)
    status, _, err = run_cli(["export", str(run / "model.keras"), "--format", "litert",
                              "--out", str(out)], capsys)
    assert status == 0, err
    interpreter = _litert_interpreter(str(out))
    (entry,) = interpreter.get_input_details()
    interpreter.resize_tensor_input(entry["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(entry["index"], x)
    interpreter.invoke()
    result = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(result, expected, atol=1e-5)


def test_export_errors(lenet_run, tmp_path, monkeypatch, capsys):
    run, _, _, _ = lenet_run
    status, _, err = run_cli(["export", str(tmp_path / "missing")], capsys)
    assert status == 2 and "RUN_OR_FILE" in err and "does not exist" in err
    status, _, err = run_cli(["export", str(run), "--format", "coreml"], capsys)
    assert status == 2 and "invalid choice: 'coreml'" in err
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tf2onnx" else real(name, *a))
    status, _, err = run_cli(["export", str(run), "--format", "onnx"], capsys)
    assert status == 2 and "pip install 'zoo[export]'" in err and "Traceback" not in err
