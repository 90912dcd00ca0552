"""`zoo predict`, `zoo caption`, `zoo generate`: trained models used on files, checked against
the model called directly on images read independently (Pillow + NumPy); and one-line errors
for every wrong input."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from cli_helpers import run_cli  # tests/ is on sys.path
from image_files import make_folder, write_image
from PIL import Image

import zoo
from zoo.data import load_dataset
from zoo.layers import StableSoftmax
from zoo.training.predict import to_probabilities
from zoo.training.saved_runs import save_data_record


def tiny_classifier(input_shape, classes, head="probabilities", seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape)
    x = keras.layers.Dense(classes)(keras.layers.Flatten()(inputs))
    if head != "logits":
        x = StableSoftmax(log=head == "log_probabilities")(x)
    return keras.Model(inputs, x)


def pil_pixels(path, size=None):
    """An independent reading of an image file: RGB floats in [0, 1], optionally resized."""
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype="float32") / 255.0
    if size is not None and pixels.shape[:2] != tuple(size):
        pixels = tf.image.resize(pixels, size, method="bilinear").numpy()
    return pixels


def parse_predictions(line):
    path, _, rest = line.partition(": ")
    pairs = [item.rsplit(" ", 1) for item in rest.split(", ")]
    return path, [(name, float(p)) for name, p in pairs]


@pytest.fixture
def folder_run(tmp_path):
    """A run directory of an image classifier trained on a generated colour folder."""
    photos = tmp_path / "photos"
    make_folder(str(photos), {"red": 4, "green": 4, "blue": 4}, size=(6, 5))
    splits = load_dataset("image_folder", path=str(photos))
    run = tmp_path / "run"
    run.mkdir()
    model = tiny_classifier((6, 5, 3), 3)
    model.save(run / "model.keras")
    (run / "config.json").write_text(json.dumps({
        "model": "lenet5", "dataset": "image_folder", "outputs": "probabilities",
        "dataset_kwargs": {"path": str(photos)},
    }))
    save_data_record(str(run), splits)
    return run, photos, model, splits


def test_predict_prints_the_models_probabilities_with_class_names(folder_run, capsys):
    run, photos, model, splits = folder_run
    images = [str(photos / "red" / "000.png"), str(photos / "blue" / "002.png")]
    status, out, err = run_cli(["predict", *images, "--model", str(run), "--top", "2"], capsys)
    assert status == 0, err
    mean, std = np.array(splits.extras["mean"]), np.array(splits.extras["std"])
    names = ["blue", "green", "red"]
    for line, path in zip(out.splitlines(), images):
        printed_path, printed = parse_predictions(line)
        expected = model.predict(((pil_pixels(path) - mean) / std)[None], verbose=0)[0]
        order = np.argsort(-expected)[:2]
        assert printed_path == path
        assert [n for n, _ in printed] == [names[i] for i in order]
        np.testing.assert_allclose([p for _, p in printed], expected[order], atol=6e-4)

    # Without data.json the run's record is enough: the folder is read again.
    os.remove(run / "data.json")
    status, again, _ = run_cli(["predict", *images, "--model", str(run), "--top", "2"], capsys)
    assert status == 0 and again == out


def test_a_bare_model_file_needs_the_dataset_it_was_trained_on(tmp_path, capsys):
    model = tiny_classifier((8, 8, 1), 10)
    model.save(tmp_path / "digits.keras")
    image = tmp_path / "seven.png"
    write_image(str(image), np.random.default_rng(1).integers(0, 255, (8, 8)))
    status, _, err = run_cli(["predict", str(image), "--model", str(tmp_path / "digits.keras")],
                             capsys)
    assert status == 2 and "--dataset NAME" in err and "Traceback" not in err
    status, out, err = run_cli(["predict", str(image), "--model", str(tmp_path / "digits.keras"),
                                "--dataset", "digits", "--top", "3"], capsys)
    assert status == 0, err
    extras = load_dataset("digits").extras
    grey = tf.image.rgb_to_grayscale(pil_pixels(image)).numpy()
    expected = model.predict(((grey - extras["mean"][0]) / extras["std"][0])[None], verbose=0)[0]
    _, printed = parse_predictions(out.strip())
    assert [n for n, _ in printed] == [str(i) for i in np.argsort(-expected)[:3]]
    np.testing.assert_allclose([p for _, p in printed], np.sort(expected)[::-1][:3], atol=6e-4)


def test_outputs_become_probabilities(rng):
    logits = rng.normal(size=(3, 5)) * 4
    reference = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(to_probabilities(logits, "logits"), reference, rtol=1e-12)
    np.testing.assert_allclose(to_probabilities(np.log(reference), "log_probabilities"), reference)
    np.testing.assert_array_equal(to_probabilities(reference, "probabilities"), reference)
    with pytest.raises(ValueError, match="values"):
        to_probabilities(logits, "values")


def _fake_imagenet(monkeypatch, tmp_path, index_error=None):
    """resnet50(weights="imagenet") without a download: a small 1000-class stand-in, and
    ImageNet's class index from a file (or a failing download)."""
    from keras.src.applications import imagenet_utils
    from keras.src.utils import file_utils

    from zoo import registry

    stand_in = tiny_classifier((12, 12, 3), 1000, seed=3)
    real = registry.create_model
    monkeypatch.setattr(registry, "create_model", lambda name, **kw: stand_in if kw.get(
        "weights") == "imagenet" else real(name, **kw))
    index = tmp_path / "imagenet_class_index.json"
    index.write_text(json.dumps({str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}))

    def get_file(fname, origin, **kwargs):
        if index_error is not None:
            raise index_error
        assert fname == "imagenet_class_index.json"
        return str(index)

    monkeypatch.setattr(file_utils, "get_file", get_file)
    monkeypatch.setattr(imagenet_utils, "CLASS_INDEX", None)
    return stand_in


def test_imagenet_models_get_their_preprocessing_and_class_names(monkeypatch, tmp_path, capsys):
    stand_in = _fake_imagenet(monkeypatch, tmp_path)
    image = tmp_path / "photo.png"
    write_image(str(image), np.random.default_rng(2).integers(0, 255, (20, 16, 3)))
    status, out, err = run_cli(["predict", str(image), "--model", "resnet50", "--top", "3"],
                               capsys)
    assert status == 0, err
    x = keras.applications.resnet.preprocess_input(pil_pixels(image, (12, 12))[None] * 255.0)
    expected = stand_in.predict(x, verbose=0)[0]
    _, printed = parse_predictions(out.strip())
    assert [n for n, _ in printed] == [f"class_{i}" for i in np.argsort(-expected)[:3]]
    np.testing.assert_allclose([p for _, p in printed], np.sort(expected)[::-1][:3], atol=6e-4)


def test_imagenet_class_names_without_network_is_one_clear_line(monkeypatch, tmp_path, capsys):
    _fake_imagenet(monkeypatch, tmp_path, index_error=Exception(
        "URL fetch failure on https://storage.googleapis.com/download.tensorflow.org/data/"
        "imagenet_class_index.json: None -- [Errno -3] Temporary failure in name resolution"))
    image = tmp_path / "photo.png"
    write_image(str(image), np.zeros((12, 12, 3)))
    status, _, err = run_cli(["predict", str(image), "--model", "resnet50"], capsys)
    assert status == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "~/.keras/models/imagenet_class_index.json" in err and "URL fetch failure" in err


def test_imagenet_weights_without_network_and_models_without_them(monkeypatch, tmp_path, capsys):
    from zoo import registry

    def no_network(name, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None")

    monkeypatch.setattr(registry, "create_model", no_network)
    image = tmp_path / "photo.png"
    write_image(str(image), np.zeros((12, 12, 3)))
    status, _, err = run_cli(["predict", str(image), "--model", "vgg16"], capsys)
    assert status == 2 and "ImageNet weights of 'vgg16'" in err and "~/.keras/models" in err
    status, _, err = run_cli(["predict", str(image), "--model", "lenet5"], capsys)
    assert status == 2 and "'lenet5' is a registry model without ImageNet weights" in err


def test_bad_files_and_wrong_models_are_one_line_errors(folder_run, tmp_path, capsys):
    run, photos, _, _ = folder_run
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    fake = tmp_path / "broken.keras"
    fake.write_text("not a zip archive")
    sequence_model = keras.Sequential([keras.Input((None,), dtype="int32"),
                                       keras.layers.Embedding(10, 4),
                                       keras.layers.GlobalAveragePooling1D(),
                                       keras.layers.Dense(2)])
    sequence_model.save(tmp_path / "sequence.keras")
    good = str(photos / "red" / "000.png")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "notes.txt").write_text("no images here")
    cases = [
        (["predict", str(text), "--model", str(run)], f"IMAGE '{text}' is not an image"),
        (["predict", str(tmp_path / "nope.png"), "--model", str(run)], "does not exist"),
        (["predict", str(tmp_path / "empty"), "--model", str(run)],
         "is a folder without image files"),
        (["predict", good, "--model", str(tmp_path / "missing")], "does not exist; expected a "
         "run directory"),
        (["predict", good, "--model", str(text)], "is not a .keras file"),
        (["predict", good, "--model", str(fake)], "could not be loaded as a Keras model"),
        (["predict", good, "--model", str(tmp_path)], "is a folder without model.keras"),
        (["predict", good, "--model", str(tmp_path / "sequence.keras"), "--dataset", "digits"],
         "not an image classifier"),
        (["caption", good, "--model", str(run)], "not a captioner"),
        (["generate", "--model", str(run), "--prompt", "a"], "not a character language model"),
    ]
    for argv, message in cases:
        status, _, err = run_cli(argv, capsys)
        assert status == 2, argv
        assert message in err, (argv, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    # Flag values are argparse's: one error line, without its usage block.
    status, _, err = run_cli(["predict", good, "--model", str(run), "--top", "0"], capsys)
    assert status == 2 and err == "zoo predict: error: argument --top: must be >= 1, got 0\n"


def test_caption_reads_files_as_the_captioner_expects(monkeypatch, tmp_path, capsys):
    info = zoo.model_info("show_and_tell")
    model = zoo.create_model("show_and_tell", **info.small_config)
    model.save(tmp_path / "captioner.keras")
    seen = []  # what the loaded captioner is given
    original = type(model).caption
    monkeypatch.setattr(type(model), "caption", lambda self, images, **kw: seen.append(
        (np.array(images), kw)) or original(self, images, **kw))
    paths = []
    for i, size in enumerate([(20, 24), (16, 16)]):
        paths.append(str(tmp_path / f"{i}.png"))
        write_image(paths[-1], np.random.default_rng(i).integers(0, 255, (*size, 3)))
    status, out, err = run_cli(["caption", *paths, "--model", str(tmp_path / "captioner.keras"),
                                "--beam-width", "2"], capsys)
    assert status == 0, err
    images = np.stack([pil_pixels(p, model.image_shape[:2]) for p in paths])
    np.testing.assert_allclose(seen[0][0], images, atol=1e-6)
    assert seen[0][1] == {"beam_width": 2}
    expected = model.caption(images, beam_width=2)
    assert out.splitlines() == [f"{p}: {c}" for p, c in zip(paths, expected)]
    text = tmp_path / "notanimage.txt"
    text.write_text("hello")
    status, _, err = run_cli(["caption", str(text), "--model", str(tmp_path / "captioner.keras")],
                             capsys)
    assert status == 2 and "is not an image" in err and "Traceback" not in err


def test_generate_continues_the_prompt_with_the_models_sampler(tmp_path, capsys):
    info = zoo.model_info("char_lm")
    model = zoo.create_model("char_lm", **info.small_config)
    model.save(tmp_path / "char_lm.keras")
    argv = ["generate", "--model", str(tmp_path / "char_lm.keras"), "--prompt", "abc",
            "--length", "12", "--temperature", "0.5", "--seed", "3"]
    status, out, err = run_cli(argv, capsys)
    assert status == 0, err
    expected = model.generate("abc", length=12, temperature=0.5, seed=3)
    assert out == "abc" + expected + "\n" and len(expected) == 12
    assert run_cli(argv, capsys)[1] == out  # the same seed, the same text


def test_predict_a_folder_recursively_as_json_and_csv(folder_run, capsys):
    run, photos, model, splits = folder_run
    (photos / ".hidden.png").write_bytes(b"not read")  # hidden files are skipped
    expected_paths = sorted(str(p) for p in photos.rglob("*.png") if not p.name.startswith("."))
    status, out, err = run_cli(["predict", str(photos), "--model", str(run), "--top", "2",
                                "--format", "json"], capsys)
    assert status == 0, err
    answers = json.loads(out)
    assert [a["path"] for a in answers] == expected_paths and len(answers) == 12
    mean, std = np.array(splits.extras["mean"]), np.array(splits.extras["std"])
    names = ["blue", "green", "red"]
    for answer in answers[:3]:
        probabilities = model.predict(
            ((pil_pixels(answer["path"]) - mean) / std)[None], verbose=0)[0]
        order = np.argsort(-probabilities)[:2]
        assert [c["name"] for c in answer["classes"]] == [names[i] for i in order]
        np.testing.assert_allclose([c["probability"] for c in answer["classes"]],
                                   probabilities[order], rtol=1e-5)
    status, out, err = run_cli(["predict", str(photos / "red"), str(photos / "blue" / "001.png"),
                                "--model", str(run), "--top", "2", "--format", "csv"], capsys)
    assert status == 0, err
    import csv

    rows = list(csv.reader(out.splitlines()))
    assert rows[0] == ["path", "class_1", "probability_1", "class_2", "probability_2"]
    assert [r[0] for r in rows[1:]] == sorted(str(p) for p in (photos / "red").glob("*.png")) + [
        str(photos / "blue" / "001.png")]
    by_path = {a["path"]: a for a in answers}
    for row in rows[1:]:
        classes = by_path[row[0]]["classes"]
        assert row[1::2] == [c["name"] for c in classes]
        np.testing.assert_allclose([float(v) for v in row[2::2]],
                                   [c["probability"] for c in classes], rtol=1e-12)
    status, _, err = run_cli(["predict", str(photos), "--model", str(run), "--format", "xml"],
                             capsys)
    assert status == 2 and "--format: invalid choice: 'xml'" in err


def test_a_fine_tuned_runs_bgr_inputs_are_read_back_in_bgr(folder_run, capsys):
    run, photos, model, splits = folder_run
    data = json.loads((run / "data.json").read_text())
    data.update(mean=[0.4, 0.5, 0.6], std=[0.2, 0.25, 0.3], channel_order="BGR")
    (run / "data.json").write_text(json.dumps(data))
    path = str(photos / "green" / "003.png")
    status, out, err = run_cli(["predict", path, "--model", str(run), "--top", "3",
                                "--format", "json"], capsys)
    assert status == 0, err
    bgr = pil_pixels(path)[..., ::-1]
    probabilities = model.predict(((bgr - [0.4, 0.5, 0.6]) / [0.2, 0.25, 0.3])[None],
                                  verbose=0)[0]
    got = {c["name"]: c["probability"] for c in json.loads(out)[0]["classes"]}
    np.testing.assert_allclose([got[n] for n in ["blue", "green", "red"]], probabilities,
                               rtol=1e-5)
