"""The model registry: listing, creating, describing, the README table, and a `.keras` round
trip for every registered model (parametrised over `list_models()`, so a model is covered the
day it registers)."""

import pathlib

import keras
import numpy as np
import pytest

import zoo
import zoo.data
from zoo.registry import README_END, README_START, TASKS, markdown_table

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
ALL_MODELS = zoo.list_models()


def test_list_models_with_a_pattern():
    assert zoo.list_models("resnet*") == [
        "resnet101",
        "resnet101_v1_5",
        "resnet152",
        "resnet152_v1_5",
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet50_v1_5",
    ]
    assert zoo.list_models("vgg1?") == ["vgg11", "vgg13", "vgg16", "vgg19"]
    assert zoo.list_models("no_such_model*") == []
    assert ALL_MODELS == sorted(ALL_MODELS) and len(set(ALL_MODELS)) == len(ALL_MODELS)


def test_list_models_by_task():
    images = zoo.list_models(task="image-classification")
    assert {"lenet5", "alexnet", "zfnet", "googlenet", "vgg16", "resnet50"} <= set(images)
    for task in TASKS:
        names = zoo.list_models(task=task)
        assert all(zoo.model_info(n).task == task for n in names)
    assert sorted(n for t in TASKS for n in zoo.list_models(task=t)) == ALL_MODELS
    assert zoo.list_models("resnet*", task="language-modeling") == []
    with pytest.raises(ValueError, match="task='images'"):
        zoo.list_models(task="images")


def test_create_model_passes_arguments():
    model = zoo.create_model("lenet5", classes=3, input_shape=(28, 28, 1))
    assert model.name == "lenet5" and model.output_shape == (None, 3)
    assert model.input_shape == (None, 28, 28, 1)
    with pytest.raises(TypeError):
        zoo.create_model("lenet5", no_such_argument=1)


def test_model_info_describes_the_model():
    info = zoo.model_info("resnet50")
    assert info.name == "resnet50" and info.family == "cnn"
    assert info.task == "image-classification"
    assert info.paper.year == 2015 and "He" in info.paper.authors
    assert info.paper.url.startswith("https://")
    assert info.default_input_shape == (224, 224, 3)
    assert info.min_input_shape == (32, 32, 3)
    assert info.params == 25_636_712
    assert info.builder is zoo.resnet50
    assert "He" in str(info.paper) and "2015" in str(info.paper)


@pytest.mark.parametrize(
    "typo, suggestion", [("vgg61", "vgg16"), ("resnet5", "resnet50"), ("LeNet5", "lenet5")]
)
def test_unknown_name_suggests_the_closest(typo, suggestion):
    for lookup in (zoo.model_info, zoo.create_model):
        with pytest.raises(ValueError, match=f"Did you mean .*'{suggestion}'") as error:
            lookup(typo)
        assert repr(typo) in str(error.value)
    with pytest.raises(ValueError, match="Unknown model 'xyzzy'.*Available models"):
        zoo.create_model("xyzzy")


def test_readme_table_is_in_sync():
    text = README.read_text(encoding="utf-8")
    assert README_START in text and README_END in text
    block = text.split(README_START, 1)[1].split(README_END, 1)[0]
    assert block.strip() == markdown_table().strip(), (
        "The README's model table is out of date; regenerate it with\n"
        '    .venv/bin/python -c "import zoo.registry as r, zoo; r.update_readme()"'
    )


def test_the_committed_listing_is_the_registries():
    from zoo import listing

    assert listing.load() == listing.from_registries(), (
        "zoo/listing.json (what `zoo list` shows without TensorFlow) is out of date; "
        "regenerate it with\n    .venv/bin/python -m zoo.listing"
    )


@pytest.mark.parametrize("pattern, task, pretrained", [
    (None, None, False), ("resnet*", None, False), ("*lstm*", None, False),
    (None, "sequence-regression", False), (None, None, True), ("vgg1?*", None, True),
    ("resnet*", "language-modeling", False),
])
def test_the_listing_filters_as_the_registry_does(pattern, task, pretrained):
    from zoo import listing

    rows = listing.models(pattern, task=task, pretrained=pretrained)
    assert [row["name"] for row in rows] == zoo.list_models(pattern, task=task,
                                                           pretrained=pretrained)
    assert [row["name"] for row in listing.datasets(task)] == zoo.data.list_datasets(task=task)


def test_markdown_table_has_a_row_per_model():
    rows = markdown_table().strip().splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == ALL_MODELS
    assert "| `vgg16` | image-classification |" in markdown_table()
    assert "138,357,544" in markdown_table()


@pytest.mark.parametrize("name", ALL_MODELS)
def test_registry_entry_is_complete(name):
    info = zoo.model_info(name)
    assert info.task in TASKS
    assert info.summary and "\n" not in info.summary
    assert isinstance(info.paper.year, int) and info.paper.url.startswith("http")
    assert isinstance(info.params, int) and info.params > 0
    if info.default_input_shape and info.min_input_shape:
        assert len(info.default_input_shape) == len(info.min_input_shape)
        assert all(
            m is None or d is None or m <= d
            for d, m in zip(info.default_input_shape, info.min_input_shape)
        )
    assert info.builder.__doc__, "every model function cites its paper in its docstring"
    if info.default_dataset is not None:
        assert info.default_dataset in zoo.data.list_datasets()
        assert zoo.data.dataset_entry(info.default_dataset).task == info.task


INTEGER_INPUT_TASKS = ("sequence-classification", "language-modeling")


def example_inputs(name, model, rng):
    """Inputs for `model`: standard normal floats, integers in [0, 10); None dimensions other
    than the batch become 8.

    Functional models say what they take (`model.inputs`); for a subclassed model the shape is
    the registry's `default_input_shape`, with integer ids for the token tasks
    (`INTEGER_INPUT_TASKS`) and floats otherwise.
    """
    if hasattr(model, "inputs") and model.inputs:
        specs = [(tensor.shape[1:], tensor.dtype) for tensor in model.inputs]
    else:
        info = zoo.model_info(name)
        dtype = "int32" if info.task in INTEGER_INPUT_TASKS else "float32"
        specs = [(info.default_input_shape, dtype)]
    arrays = []
    for shape, dtype in specs:
        shape = (2, *(8 if d is None else d for d in shape))
        if "int" in keras.backend.standardize_dtype(dtype):
            arrays.append(rng.integers(0, 10, size=shape).astype(dtype))
        else:
            arrays.append(rng.standard_normal(shape).astype(dtype))
    return arrays[0] if len(arrays) == 1 else arrays


@pytest.mark.parametrize("name", ALL_MODELS)
def test_small_config_round_trips_through_keras_file(name, tmp_path):
    model = zoo.create_model(name, **zoo.model_info(name).small_config)
    x = example_inputs(name, model, np.random.default_rng(0))
    expected = model(x, training=False)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert len(loaded.weights) == len(model.weights)
    for original, restored in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(original), keras.ops.convert_to_numpy(restored)
        )
    got = loaded(x, training=False)
    expected_leaves = keras.tree.flatten(expected)
    got_leaves = keras.tree.flatten(got)
    assert len(expected_leaves) == len(got_leaves)
    for want, have in zip(expected_leaves, got_leaves):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(want), keras.ops.convert_to_numpy(have)
        )
