"""torchvision weights: every converted model against torchvision's own model, plus the cache.

Parity (`test_converted_model_matches_torchvision`): for each of the 13 models whose ImageNet
weights come from torchvision, `tests/torchvision_reference.py` (a separate process per model:
torchvision cannot be imported after TensorFlow) builds torchvision's model with seeded random weights
(batch norm's affine parameters and running statistics randomised too, eval mode), writes its
state dict with the real `torch.save`, and records its outputs on random [0, 1] RGB images
normalised as torchvision's transforms do. The test puts that file into a temporary Keras
cache under the real file name, sets the catalog's hash prefix to the file's, and builds
`zoo.create_model(name, weights="imagenet", ...)`: the same path as the real weights (cache
-> hash check -> NumPy reader -> converter). The zoo model runs on the same images through
the weights' own `Preprocessing`; outputs must agree to rtol 1e-4 and atol 1e-4 x max|output|.

What is compared, to stay inside the suite's time (and disk: these files are full size):
- vgg11: logits at 224x224 (the only size where fc1's 7x7x512 flatten exists with the top),
  which checks the NCHW -> NHWC flatten permutation of fc1;
- vgg13, vgg11_bn, vgg13_bn, vgg16_bn, vgg19_bn: the convolutional features at 32x32
  (include_top=False; torchvision's classifier is shrunk to 4 units in those files, same
  indices, which the zoo model does not read) - the heads are the same map as vgg11's;
- resnet18 (32), resnet34 (45: odd sizes), resnet50/101/152_v1_5 (32): logits;
- alexnet_owt: logits at 224 (fc6's 6x6x256 flatten) and at 100 (the adaptive 6x6 pool);
- googlenet_bn: logits at 75x75, where the ceil-mode pools see odd sizes (19, 9, 5, 3), with
  the aux heads in the file (not loaded) and torchvision's transform_input on.
The trainable parameter counts are checked against torchvision's published `num_params`.
"""

import dataclasses
import hashlib
import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import zoo
from zoo.weights import catalog, download

TORCHVISION_MODELS = sorted(
    name for name, entry in catalog.IMAGENET.items() if entry.source == "torchvision"
)
REFERENCE_SCRIPT = os.path.join(os.path.dirname(__file__), "torchvision_reference.py")
needs_torchvision = pytest.mark.skipif(
    importlib.util.find_spec("torchvision") is None, reason="torchvision is not installed"
)


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()  # small files only


def torchvision_reference(folder, name):
    """Run tests/torchvision_reference.py for one model (one process per model: with pytest's
    workers a shared fixture would run once per worker, and the full-size files of one model
    at a time keep the disk use down)."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, REFERENCE_SCRIPT, str(folder), name], check=True, env=env)
    with open(folder / "cases.json") as file:
        return json.load(file)


def place_in_cache(monkeypatch, tmp_path, name, source):
    """A Keras cache holding `source` under the real file name, the catalog's hash prefix set
    to the file's, and no network (any download attempt fails the test)."""
    entry = catalog.IMAGENET[name]
    models = tmp_path / "keras_home" / "models"
    models.mkdir(parents=True)
    os.symlink(source, models / entry.file_name)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    replaced = dataclasses.replace(entry, file_hash=download.file_digest(source)[:8])
    monkeypatch.setitem(catalog.IMAGENET, name, replaced)

    def no_download(*args, **kwargs):
        raise AssertionError("the test must not download")

    monkeypatch.setattr(keras.utils, "get_file", no_download)
    return replaced


@pytest.mark.slow  # 10-60 s a model on a busy 2-core machine: full-size files, 224x224 heads
@needs_torchvision
@pytest.mark.parametrize("name", TORCHVISION_MODELS)
def test_converted_model_matches_torchvision(name, monkeypatch, tmp_path):
    folder = tmp_path / "torchvision"
    folder.mkdir()
    cases = torchvision_reference(folder, name)
    case = cases["cases"][name]
    entry = place_in_cache(monkeypatch, tmp_path, name, folder / f"{name}.pth")
    arrays = np.load(folder / f"{name}.npz")
    include_top = case["compare"] == "logits"
    for size in case["sizes"]:
        model = zoo.create_model(
            name,
            weights="imagenet",
            include_top=include_top,
            input_shape=(size, size, 3),
            classifier_activation=None,
        )
        images = entry.preprocessing(arrays[f"images_{size}"])
        got = keras.ops.convert_to_numpy(model(images, training=False))
        expected = arrays[f"outputs_{size}"]
        assert got.shape == expected.shape
        np.testing.assert_allclose(
            got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max(), err_msg=name
        )
    # Trainable parameters at the default configuration = torchvision's published count:
    # the registry's count minus batch norm's moving statistics (independent of the size).
    moving = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert zoo.model_info(name).params - moving == cases["parameters"][name]


def test_every_torchvision_model_has_a_reference_case():
    text = open(REFERENCE_SCRIPT).read()
    assert all(f'("{name}", ' in text for name in TORCHVISION_MODELS)
    assert len(TORCHVISION_MODELS) == 13


def test_a_wrong_hash_is_refused_in_one_line_and_the_file_removed(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    entry = catalog.IMAGENET["resnet18"]
    path = tmp_path / "models" / entry.file_name
    path.parent.mkdir()
    path.write_bytes(b"not the published file")
    with pytest.raises(ValueError) as error:
        zoo.resnet18(weights="imagenet", include_top=False, input_shape=(32, 32, 3))
    message = str(error.value)
    assert len(message.splitlines()) == 1
    assert "sha256" in message and entry.file_hash in message and str(path) in message
    assert not path.exists()


def test_without_network_one_line_names_the_file_the_url_and_where_to_put_it(
    monkeypatch, tmp_path
):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://download.pytorch.org/...: None -- "
                        "[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    entry = catalog.IMAGENET["googlenet_bn"]
    with pytest.raises(ValueError) as error:
        zoo.googlenet_bn(weights="imagenet", include_top=False, input_shape=(32, 32, 3))
    message = str(error.value)
    assert len(message.splitlines()) == 1
    assert entry.file_name in message and entry.url in message
    assert os.path.join(str(tmp_path), "models", entry.file_name) in message


def test_download_goes_to_the_keras_cache_once_and_is_verified(monkeypatch, tmp_path):
    source = tmp_path / "published.bin"
    source.write_bytes(b"weights" * 1000)
    digest = sha256(source)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    calls = []
    real_get_file = keras.utils.get_file

    def counting_get_file(*args, **kwargs):
        calls.append(args)
        return real_get_file(*args, **kwargs)

    monkeypatch.setattr(keras.utils, "get_file", counting_get_file)
    url = source.as_uri()  # file:// - no network
    for _ in range(2):
        path = download.fetch(url, "copy-1234.bin", digest[:10], is_prefix=True)
    assert path == str(tmp_path / "home" / "models" / "copy-1234.bin") and len(calls) == 1
    assert download.fetch(url, "copy-1234.bin", digest) == path  # the whole hash too
    with pytest.raises(ValueError, match="sha256 prefix 0000"):
        download.fetch(url, "copy-1234.bin", "0000", is_prefix=True)


@pytest.mark.parametrize("mode", ["caffe", "torch"])
def test_preprocessing_matches_keras_applications(mode):
    """keras.applications' preprocess_input (0-255 input) is the independent reference."""
    from keras.applications import imagenet_utils

    from zoo.weights.entries import CAFFE_PREPROCESSING, TORCHVISION_PREPROCESSING

    images = np.random.default_rng(0).uniform(0, 1, (2, 5, 5, 3)).astype("float32")
    expected = imagenet_utils.preprocess_input(images * 255.0, mode=mode)
    ours = CAFFE_PREPROCESSING if mode == "caffe" else TORCHVISION_PREPROCESSING
    np.testing.assert_allclose(ours(images), expected, rtol=1e-5, atol=1e-4)
    tensor = keras.ops.convert_to_numpy(ours(keras.ops.convert_to_tensor(images)))
    np.testing.assert_allclose(tensor, expected, rtol=1e-5, atol=1e-4)


def test_every_model_with_weights_records_its_entry_and_json_round_trips():
    from zoo.weights.entries import Preprocessing

    pretrained = zoo.list_models(pretrained=True)
    assert len(pretrained) == 18 and "googlenet" not in pretrained
    for name in pretrained:
        info = zoo.model_info(name)
        entry = info.weights["imagenet"]
        assert info.imagenet_weights and entry.url.endswith(entry.file_name)
        assert 50 < entry.top1 < 80 and entry.license and entry.top1_reference
        data = json.loads(json.dumps(entry.to_json()))
        assert Preprocessing.from_json(data["preprocessing"]) == entry.preprocessing
        if entry.source == "torchvision":  # torch.hub: the name carries the sha256 prefix
            assert entry.hash_is_prefix and entry.file_name.split("-")[-1][:8] == entry.file_hash
    assert not zoo.model_info("googlenet").weights


@pytest.mark.parametrize("name", ["vgg11", "alexnet_owt"])
def test_flatten_heads_need_1000_classes_with_the_weights(name):
    with pytest.raises(ValueError, match="classes=10"):
        zoo.create_model(name, weights="imagenet", classes=10)


def test_cli_lists_the_pretrained_models_and_shows_their_weights(capsys):
    from cli_helpers import run_cli

    status, out, _ = run_cli(["list", "--pretrained"], capsys)
    names = [line.split()[0] for line in out.strip().splitlines()[2:]]
    assert status == 0 and names == zoo.list_models(pretrained=True)
    assert "lenet5" not in out and "dataset" not in out and "torchvision (69.758%)" in out
    status, out, _ = run_cli(["info", "resnet18"], capsys)
    entry = catalog.IMAGENET["resnet18"]
    assert status == 0
    for text in (entry.url, "sha256 (prefix): f37072fd", "BSD-3-Clause", "69.758%",
                 "mean (0.485, 0.456, 0.406)"):
        assert text in out, text
    status, out, _ = run_cli(["info", "lenet5"], capsys)
    assert status == 0 and "pretrained weights: none" in out
