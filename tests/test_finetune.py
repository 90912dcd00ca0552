"""Fine-tuning (`train(weights=...)`, `zoo train --weights`): what is copied, what trains, the
inputs the weights expect, exact resume across the phase switch, and one-line errors.

ImageNet weights are never downloaded here: `zoo.weights.load_imagenet` is replaced by a fill
of every weight with a pattern that depends only on the layer's name and the weight's index,
so the test can tell a copied weight from an initialised or a trained one.
"""

import json
import math
import os
import zlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from cli_helpers import run_cli
from image_files import make_folder

import zoo.weights
from zoo import registry
from zoo.data import load_dataset
from zoo.layers import StableSoftmax
from zoo.training import finetune, train
from zoo.training.finetune_inputs import TORCH_MEAN, TORCH_STD, prepare_data
from zoo.weights.entries import TORCHVISION_PREPROCESSING, WeightsEntry

NAME = "test_pretrained_cnn"
ENTRY = WeightsEntry(source="test", url="https://example.org/w.safetensors", file_name="w",
                     file_hash="ab" * 32, license="test", preprocessing=TORCHVISION_PREPROCESSING,
                     top1=50.0, top1_reference="https://example.org")


def test_pretrained_cnn(include_top=True, weights=None, input_shape=(16, 16, 3), pooling=None,
                        classes=1000, classifier_activation="softmax"):
    """Conv-BN-conv backbone, a global-average-pooled head: ResNet's shape, in miniature."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(6, 3, name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, name="conv2")(x)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D()(x)
        x = keras.layers.Dense(classes, name="predictions")(x)
        if classifier_activation == "softmax":
            x = StableSoftmax(dtype="float32")(x)
    model = keras.Model(inputs, x, name=NAME)
    if weights == "imagenet":
        zoo.weights.load_imagenet(model, NAME, include_top)
    return model


test_pretrained_cnn.__test__ = False


def pattern(layer_name, index, shape):
    rng = np.random.default_rng(zlib.crc32(f"{layer_name}/{index}".encode()))
    values = rng.normal(0.0, 0.2, shape).astype("float32")
    return np.abs(values) + 0.5 if index == 3 else values  # BN moving variance > 0


def fake_load_imagenet(model, model_name, include_top):
    assert model_name == NAME and not include_top
    for layer in finetune.weighted_layers(model):
        layer.set_weights([pattern(layer.name, i, w.shape) for i, w in enumerate(layer.weights)])
    return model


@pytest.fixture
def pretrained(monkeypatch):
    monkeypatch.setattr(zoo.weights, "load_imagenet", fake_load_imagenet)
    registry.register_model(task="image-classification", paper=registry.Paper(
        "Test", 2024, "A test model", "https://example.org"), summary="fine-tuning test model",
        default_dataset="digits", min_input_shape=(16, 16, 3),
        weights={"imagenet": ENTRY})(test_pretrained_cnn)
    yield
    registry._REGISTRY.pop(NAME, None)


def layer_weights(model, name):
    return model.get_layer(name).get_weights()


def assert_pattern(model, name):
    for index, value in enumerate(layer_weights(model, name)):
        np.testing.assert_array_equal(value, pattern(name, index, value.shape))


SETTINGS = {"model": NAME, "dataset": "digits", "weights": "imagenet", "batch_size": 64,
            "verbose": 0}


def test_freeze_trains_the_new_head_only_on_the_weights_inputs(pretrained, tmp_path, capsys):
    result = train(out=str(tmp_path / "run"), epochs=1, freeze=True, **{**SETTINGS,
                                                                         "verbose": 1})
    out = capsys.readouterr().out
    assert "3 of 4 weighted layers copied" in out and "head: predictions" in out, out
    for name in ("conv1", "bn1", "conv2"):  # copied, frozen; BN in inference mode
        assert_pattern(result.model, name)
    head = layer_weights(result.model, "predictions")
    assert head[0].shape == (8, 10)
    assert not np.allclose(head[0], pattern("predictions", 0, (8, 10)))
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["weights"] == {"source": "imagenet", "hash": "sha256:" + "ab" * 32,
                                 "url": ENTRY.url}
    assert record["freeze"] is True and record["model_kwargs"]["input_shape"] == [16, 16, 3]
    data = json.loads((tmp_path / "run" / "data.json").read_text())
    np.testing.assert_allclose(data["mean"], TORCH_MEAN)
    np.testing.assert_allclose(data["std"], TORCH_STD)


def test_the_digits_reach_the_model_as_rgb_with_the_weights_normalisation(pretrained):
    splits = load_dataset("digits", min_image_size=(16, 16))
    source = finetune.resolve_source("imagenet", registry.model_info(NAME))
    prepared = prepare_data(splits, source, 3)
    assert prepared.model_kwargs["input_shape"] == (16, 16, 3)
    grey = np.stack([x for x, _ in splits.test.take(5).as_numpy_iterator()]).astype("float64")
    got = np.stack([x for x, _ in prepared.test.take(5).as_numpy_iterator()])
    # The loader's [0, 1] pixels (undo its normalisation), grey in all three channels, then
    # torchvision's ImageNet mean and std: float64 NumPy.
    pixels = grey * splits.extras["std"][0] + splits.extras["mean"][0]
    expected = (np.repeat(pixels, 3, axis=-1) - np.array(TORCH_MEAN)) / np.array(TORCH_STD)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


class _RecordAfterEpoch(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.conv1 = []

    def on_epoch_end(self, epoch, logs=None):
        self.conv1.append(self.model.get_layer("conv1").get_weights()[0].copy())


class _CrashInEpoch(keras.callbacks.Callback):
    """KeyboardInterrupt after `steps` steps of epoch `epoch` (after a mid-epoch checkpoint)."""

    def __init__(self, epoch, steps):
        super().__init__()
        self.epoch, self.steps, self.current = epoch, steps, -1

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch + 1 >= self.steps:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_two_phases_resume_bit_identical_inside_phase_two(pretrained, tmp_path):
    settings = dict(SETTINGS, epochs=3, unfreeze_after=1, checkpoint_every=5,
                    steps_per_execution=5, batch_size=128)
    recorder = _RecordAfterEpoch()
    reference = train(out=str(tmp_path / "reference"), callbacks=[recorder], **settings)
    # Phase 1 leaves the backbone as copied; phase 2 trains it, batch norm excepted.
    np.testing.assert_array_equal(recorder.conv1[0], pattern("conv1", 0, (3, 3, 3, 6)))
    assert not np.array_equal(recorder.conv1[1], recorder.conv1[0])
    assert_pattern(reference.model, "bn1")
    with pytest.raises(KeyboardInterrupt):  # killed in epoch 3 (phase 2), after step 5
        train(out=str(tmp_path / "crashed"), callbacks=[_CrashInEpoch(2, 7)], **settings)
    resumed = train(out=str(tmp_path / "crashed"), **settings)
    for a, b in zip(reference.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in reference.history]
    # Two optimizers in the checkpoint: phase 1's took epoch 1's steps, phase 2's the rest.
    steps = 1293 // 128
    reader = tf.train.load_checkpoint(str(tmp_path / "reference" / "checkpoints"))
    names = reader.get_variable_to_dtype_map()
    iterations = {int(n.split("/")[1]): int(reader.get_tensor(n)) for n in names
                  if n.startswith("optimizer/") and "_iterations" in n}
    assert iterations == {0: steps, 1: 2 * steps}
    # Each epoch's last rate: the recipe's cosine (Adam 1e-3 per batch of 32, here 128: x4)
    # over 3 epochs, times 0.1 in phase 2.
    last = [(epoch + (steps - 1) / steps) / 3 for epoch in range(3)]
    expected = [4e-3 * 0.5 * (1 + math.cos(math.pi * p)) * f for p, f in zip(last, (1, .1, .1))]
    np.testing.assert_allclose([r["lr"] for r in reference.history], expected, rtol=1e-6)


def test_changing_the_weights_or_freezing_on_resume_is_refused(pretrained, tmp_path, capsys):
    out = str(tmp_path / "run")
    status, _, err = run_cli(["train", "--model", NAME, "--weights", "imagenet", "--freeze",
                              "--epochs", "1", "--batch-size", "64", "--out", out, "--quiet"],
                             capsys)
    assert status == 0, err
    assert json.loads((tmp_path / "run" / "config.json").read_text())["freeze"] is True
    with pytest.raises(ValueError, match="freeze: saved True, now False"):
        train(out=out, epochs=1, **SETTINGS)
    with pytest.raises(ValueError, match="weights: saved"):
        train(out=out, epochs=1, **{**SETTINGS, "freeze": True, "weights": out})


def test_weights_from_a_run_continue_or_get_a_new_head(tmp_path, capsys):
    make_folder(str(tmp_path / "a"), {"red": 6, "green": 6, "blue": 6}, size=(28, 28))
    make_folder(str(tmp_path / "b"), {"red": 6, "blue": 6}, size=(28, 28), seed=1)
    make_folder(str(tmp_path / "c"), {"red": 6, "green": 6, "blue": 6}, size=(28, 28), seed=2)
    common = {"model": "lenet5", "dataset": "image_folder", "epochs": 1, "batch_size": 4,
              "verbose": 1}
    source = train(out=str(tmp_path / "source"), dataset_kwargs={"path": str(tmp_path / "a")},
                   **common)
    capsys.readouterr()
    other = train(out=str(tmp_path / "other"), dataset_kwargs={"path": str(tmp_path / "b")},
                  weights=str(tmp_path / "source"), freeze=True, **common)
    out = capsys.readouterr().out
    assert "head: logits (initialised afresh)" in out, out
    for layer in finetune.weighted_layers(source.model)[:-1]:  # copied and frozen
        for a, b in zip(layer.get_weights(), other.model.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(a, b)
    assert other.model.outputs[0].shape[-1] == 2
    train(out=str(tmp_path / "same"), dataset_kwargs={"path": str(tmp_path / "c")},
          weights=str(tmp_path / "source" / "model.keras"), freeze=True, **common)
    out = capsys.readouterr().out
    assert "(logits copied: the same classes)" in out, out
    record = json.loads((tmp_path / "same" / "config.json").read_text())
    assert record["weights"]["source"] == os.path.abspath(tmp_path / "source" / "model.keras")
    assert len(record["weights"]["hash"]) == 64


def test_bad_fine_tuning_options_are_one_line_errors(pretrained, tmp_path, capsys):
    cases = [
        (["train", "--freeze"], "Argument `freeze` applies to fine-tuning"),
        (["train", "--weights", "imagenet"], "Model 'lenet5' has no ImageNet weights"),
        (["train", "--weights", str(tmp_path / "missing")], "--weights '"),
        (["train", "--model", NAME, "--weights", "imagenet", "--epochs", "2",
          "--unfreeze-after", "2", "--out", str(tmp_path / "x")],
         "`unfreeze_after` must be below the run's 2 epochs"),
    ]
    for argv, message in cases:
        status, _, err = run_cli(argv, capsys)
        assert status == 2 and message in err, (argv, err)
        assert len(err.strip().splitlines()) == 1, err
    assert not os.path.exists(tmp_path / "x")


@pytest.mark.skipif(not registry.model_info("resnet18").imagenet_weights,
                    reason="resnet18's ImageNet weights are not registered")
def test_resnet18_copies_every_backbone_layer(monkeypatch):
    def fill(model, model_name, include_top):
        for layer in finetune.weighted_layers(model):
            layer.set_weights([pattern(layer.name, i, w.shape)
                               for i, w in enumerate(layer.weights)])

    monkeypatch.setattr(zoo.weights, "load_imagenet", fill)
    info = registry.model_info("resnet18")
    model = registry.create_model("resnet18", classes=5, input_shape=(32, 32, 3))
    source = finetune.resolve_source("imagenet", info)
    pretrained = finetune.pretrained_model(source, info, {"input_shape": (32, 32, 3)})
    copied, head = finetune.transfer_weights(model, pretrained, source, None)
    layers = finetune.weighted_layers(model)
    assert head == [layers[-1].name] and len(copied) == len(layers) - 1
    for name in copied:
        assert_pattern(model, name)
