"""Loading saved models in Python: `zoo.load_model` (the model with its preprocessing and
class names), and plain `keras.models.load_model` after `import zoo`, whichever of the two is
imported first, while `import zoo` and `zoo --help` stay without TensorFlow and Keras."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from engine_helpers import ROOT, env
from image_files import make_folder
from PIL import Image

import zoo
from zoo.data import load_dataset
from zoo.training.saved_runs import save_data_record


def run_python(code):
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env(),
                          capture_output=True, text=True, timeout=300)


def test_import_zoo_and_help_stay_without_tensorflow_and_keras():
    code = (
        "import sys\nimport zoo\nfrom zoo.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('keras', 'tensorflow', 'zoo.cnn') if m in sys.modules))"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """lenet5 (StableSoftmax), char_lm (CharLanguageModel) and show_and_tell, saved."""
    folder = tmp_path_factory.mktemp("models")
    paths = {}
    for name in ("lenet5", "char_lm", "show_and_tell"):
        model = zoo.create_model(name, **zoo.model_info(name).small_config)
        paths[name] = str(folder / f"{name}.keras")
        model.save(paths[name])
    return paths


# TensorFlow imports Keras itself, after looking it up with importlib.util.find_spec.
IMPORTS = {"zoo": "import zoo\nimport keras\n", "keras": "import keras\nimport zoo\n",
           "tensorflow": "import zoo\nimport tensorflow\nimport keras\n"}


@pytest.mark.parametrize("first", list(IMPORTS))
def test_keras_load_model_after_a_plain_import_zoo(saved_models, first):
    imports = IMPORTS[first]
    code = imports + (
        f"for name, path in {saved_models!r}.items():\n"
        "    model = keras.models.load_model(path)\n"
        "    print(name, type(model).__name__)\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = dict(line.split() for line in result.stdout.strip().splitlines())
    assert loaded == {"lenet5": "Functional", "char_lm": "CharLanguageModel",
                      "show_and_tell": type(zoo.create_model(
                          "show_and_tell", **zoo.model_info("show_and_tell").small_config
                      )).__name__}


def test_importing_zoo_layers_first_works(saved_models):
    """`zoo.layers` imports Keras itself: the families must not be imported half-way through
    it (a circular import); its own classes are registered, and `zoo.load_model` finds the
    rest."""
    code = (
        "from zoo.layers import StableSoftmax\nimport keras\nimport zoo\n"
        f"paths = {saved_models!r}\n"
        "print(type(keras.models.load_model(paths['lenet5'])).__name__)\n"
        "print(type(zoo.load_model(paths['char_lm']).model).__name__)\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["Functional", "CharLanguageModel"]


def test_load_model_from_a_run_gives_preprocessing_and_class_names(tmp_path):
    photos = tmp_path / "photos"
    make_folder(str(photos), {"red": 3, "green": 3, "blue": 3}, size=(6, 5))
    splits = load_dataset("image_folder", path=str(photos))
    run = tmp_path / "run"
    run.mkdir()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 5, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    model.save(run / "model.keras")
    (run / "config.json").write_text(json.dumps({"model": "lenet5", "outputs": "probabilities",
                                                 "dataset": "image_folder"}))
    save_data_record(str(run), splits)

    loaded = zoo.load_model(str(run))
    assert loaded.class_names == ["blue", "green", "red"]
    assert loaded.run_dir == str(run) and loaded.model_file == str(run / "model.keras")
    mean, std = np.array(splits.extras["mean"]), np.array(splits.extras["std"])
    assert loaded.preprocessing == {"mean": list(mean), "std": list(std),
                                    "channel_order": "RGB"}
    path = photos / "green" / "001.png"
    pixels = np.asarray(Image.open(path).convert("RGB"), "float64")[None] / 255.0
    expected = model.predict((pixels - mean) / std, verbose=0)
    np.testing.assert_allclose(loaded.predict(pixels), expected, rtol=1e-5)

    # A bare file: the model, without what only a run directory knows.
    bare = tmp_path / "bare.keras"
    os.replace(run / "model.keras", bare)
    loaded = zoo.load_model(str(bare))
    assert loaded.class_names is None and loaded.preprocessing is None
    assert loaded.outputs == "probabilities"
    with pytest.raises(ValueError, match="path .* does not exist"):
        zoo.load_model(str(tmp_path / "missing"))
