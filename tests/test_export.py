"""`zoo export`: each artifact is reloaded by its own runtime (TensorFlow, ONNX Runtime, LiteRT)
and must compute what the Keras model computes: LeNet-5, batch norm in inference mode
(ResNet-18), local response normalization (GoogLeNet), a recurrent model (char_lm) and a
captioner, whose SavedModel's `caption` endpoint is checked against a greedy loop over the
model's teacher-forced pass."""

import importlib.util
import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from cli_helpers import run_cli

import zoo

ONNX = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("tf2onnx") is None,
    reason="ONNX export needs the `export` extra (tf2onnx, onnxruntime)",
)


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


@ONNX
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
    np.testing.assert_allclose(_run_litert(str(out), x), expected, atol=1e-5)


def _run_litert(path, x):
    interpreter = _litert_interpreter(path)
    (entry,) = interpreter.get_input_details()
    interpreter.resize_tensor_input(entry["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(entry["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def test_batch_norm_is_exported_in_inference_mode(tmp_path, rng, capsys):
    model = zoo.create_model("resnet18", input_shape=(32, 32, 3), classes=4)
    for layer in model.layers:  # moving statistics far from a batch's own
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.moving_mean.shape
            layer.moving_mean.assign(rng.normal(0, 0.5, channels))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, channels))
    model.save(tmp_path / "resnet.keras")
    x = rng.normal(size=(4, 32, 32, 3)).astype("float32")
    expected = model(x, training=False).numpy()
    batch_statistics = model(x, training=True).numpy()
    assert np.abs(expected - batch_statistics).max() > 1e-3  # the test can tell them apart
    status, _, err = run_cli(["export", str(tmp_path / "resnet.keras"), "--format", "litert"],
                             capsys)
    assert status == 0, err
    np.testing.assert_allclose(_run_litert(str(tmp_path / "resnet.tflite"), x), expected,
                               atol=1e-5)


@pytest.mark.slow  # about 45 s: LiteRT's conversion of the 6M-parameter network
def test_googlenet_with_local_response_normalization(tmp_path, rng, capsys):
    model = zoo.create_model("googlenet", input_shape=(32, 32, 3), classes=4)
    assert any(type(layer).__name__ == "LocalResponseNormalization" for layer in model.layers)
    model.save(tmp_path / "googlenet.keras")
    x = rng.normal(size=(2, 32, 32, 3)).astype("float32")
    expected = model.predict(x, verbose=0)
    status, out, err = run_cli(["export", str(tmp_path / "googlenet.keras"), "--format",
                                "litert"], capsys)
    assert status == 0 and "note:" not in out, err  # built-in kernels only
    np.testing.assert_allclose(_run_litert(str(tmp_path / "googlenet.tflite"), x), expected,
                               atol=1e-5)


def test_char_lm_exports_and_litert_says_it_needs_the_flex_delegate(tmp_path, capsys):
    model = zoo.create_model("char_lm", vocabulary=list("abcdef"), units=8, num_layers=1,
                             embedding_dim=4)
    model.save(tmp_path / "char_lm.keras")
    ids = np.array([[2, 3, 4, 5, 6], [7, 2, 2, 3, 0]], "int32")
    expected = model.predict(ids, verbose=0)
    status, _, err = run_cli(["export", str(tmp_path / "char_lm.keras")], capsys)
    assert status == 0, err
    loaded = tf.saved_model.load(str(tmp_path / "char_lm_saved_model"))
    np.testing.assert_allclose(loaded.serve(tf.constant(ids)).numpy(), expected, atol=1e-6)
    status, out, err = run_cli(["export", str(tmp_path / "char_lm.keras"), "--format",
                                "litert"], capsys)
    assert status == 0, err
    assert "note: this LiteRT file needs TensorFlow ops" in out and "Flex delegate" in out
    with pytest.raises(RuntimeError, match="Flex delegate"):  # the note is true
        _run_litert(str(tmp_path / "char_lm.tflite"), ids)


def _greedy_by_hand(model, images, length):
    """Greedy captions from the teacher-forced pass alone: feed the prefix, take the argmax
    over the ids that can be generated, stop at <end> (padding after it)."""
    from zoo.text import END_ID, PAD_ID, START_ID

    prefix = np.full((len(images), 1), START_ID, "int32")
    done = np.zeros(len(images), bool)
    chosen = []
    for _ in range(length):
        logits = model([images, prefix], training=False).numpy()[:, -1].astype("float64")
        logits[:, [PAD_ID, START_ID]] = -np.inf
        token = np.where(done, PAD_ID, logits.argmax(-1)).astype("int32")
        chosen.append(token)
        done |= token == END_ID
        prefix = np.concatenate([prefix, token[:, None]], axis=1)
    return np.stack(chosen, axis=1)


def test_captioner_serves_its_pass_and_a_greedy_caption_endpoint(tmp_path, rng, capsys):
    info = zoo.model_info("show_and_tell")
    model = zoo.create_model("show_and_tell", **info.small_config)
    model.save(tmp_path / "captioner.keras")
    images = rng.random((3, *model.image_shape)).astype("float32")
    caption_in = np.array([[2, 5, 6, 7]] * 3, "int32")
    status, out, err = run_cli(["export", str(tmp_path / "captioner.keras")], capsys)
    assert status == 0, err
    assert "note: exported the teacher-forced pass" in out and "caption(images)" in out
    loaded = tf.saved_model.load(str(tmp_path / "captioner_saved_model"))
    np.testing.assert_allclose(
        loaded.serve(tf.constant(images), tf.constant(caption_in)).numpy(),
        model([images, caption_in], training=False).numpy(), atol=1e-5)
    ids, _ = loaded.caption(tf.constant(images))
    expected = _greedy_by_hand(model, images, ids.shape[1])
    np.testing.assert_array_equal(ids.numpy(), expected)


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
