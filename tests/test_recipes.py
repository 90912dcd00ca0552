"""Per-model recipes and the one idiom for variants (issue 13, items 1 and 3).

References: the papers' training set-ups as the issue states them (VGG, AlexNet, ZFNet: SGD
momentum 0.9, weight decay 5e-4, step decay; ResNet: SGD 0.1 per 256 images, weight decay
1e-4, warm-up; GoogLeNet: SGD momentum 0.9; the recurrent models: Adam with clipping), and
keras.applications' own signatures for the CNN arguments.
"""

import importlib
import inspect
import json
import pathlib

import keras
import pytest

import zoo
from zoo.registry import DEFAULT_RECIPE, Recipe

# importlib: `zoo.cnn.alexnet` as an attribute is the model function, not its module.
alexnet_module = importlib.import_module("zoo.cnn.alexnet")
resnet_module = importlib.import_module("zoo.cnn.resnet")
vgg_module = importlib.import_module("zoo.cnn.vgg")
alexnet_owt_module = importlib.import_module("zoo.cnn.alexnet_owt")
googlenet_bn_module = importlib.import_module("zoo.cnn.googlenet_bn")
rnn_module = importlib.import_module("zoo.rnn.classifiers")

# The CNNs and the recurrent classifiers/regressors (char_lm and the captioners have their own
# tests).
OWN_MODELS = [
    name
    for name in zoo.list_models()
    if zoo.model_info(name).builder.__module__.startswith(("zoo.cnn.", "zoo.rnn.classifiers"))
]
VARIANT_FAMILIES = {
    vgg_module: vgg_module._vgg,
    resnet_module: resnet_module._resnet,
    alexnet_module: alexnet_module._alexnet,
    alexnet_owt_module: alexnet_owt_module._alexnet_owt,
    googlenet_bn_module: googlenet_bn_module._googlenet_bn,
    rnn_module: rnn_module._sequence_model,
}


# Recipes chosen by a validation search: benchmarks/results/tuning_MODEL.json, committed.
SEARCHES = {path.stem.removeprefix("tuning_"): json.loads(path.read_text())["chosen"]
            for path in (pathlib.Path(__file__).parents[1] / "benchmarks" / "results").glob(
                "tuning_*.json")}


@pytest.mark.parametrize("name", OWN_MODELS)
def test_every_model_has_its_own_documented_recipe(name):
    recipe = zoo.model_info(name).recipe
    assert isinstance(recipe, Recipe) and recipe != DEFAULT_RECIPE
    assert recipe.paper_setting and recipe.adaptation, "say what the paper did and what changed"
    # The zoo's budget: learn the digits within 10 epochs, unless a validation search chose
    # more (LeNet-5, the default run: 40 epochs, 20 s; GoogLeNet: 15).
    budget = SEARCHES.get(name, {}).get("epochs", 10)
    assert 1 <= recipe.epochs <= budget, f"the zoo's budget: {budget} epochs"


@pytest.mark.parametrize("name", sorted(SEARCHES))
def test_a_searched_recipe_is_what_its_committed_search_chose(name):
    assert {"lenet5", "googlenet", "vgg19", "show_attend_tell"} <= set(SEARCHES)
    recipe = zoo.model_info(name).recipe
    for field, chosen in SEARCHES[name].items():
        value = getattr(recipe, field)
        assert (list(value) if isinstance(value, tuple) else value) == chosen, field


def _recipes(pattern):
    names = zoo.list_models(pattern)
    assert names
    return {name: zoo.model_info(name).recipe for name in names}


@pytest.mark.parametrize("pattern", ["vgg*", "alexnet", "zfnet"])
def test_vgg_alexnet_zfnet_recipes_are_the_papers_sgd(pattern):
    for recipe in _recipes(pattern).values():
        assert (recipe.optimizer, recipe.momentum, recipe.weight_decay) == ("sgd", 0.9, 5e-4)
        assert recipe.schedule == "step" and recipe.decay_factor == 0.1


def test_resnet_recipe_is_0_1_per_256_images_with_warm_up():
    for recipe in _recipes("resnet*").values():
        assert (recipe.optimizer, recipe.lr, recipe.reference_batch) == ("sgd", 0.1, 256)
        assert (recipe.momentum, recipe.weight_decay) == (0.9, 1e-4)
        assert recipe.warmup_epochs > 0 and recipe.schedule == "step"


def test_googlenet_and_lenet_recipes():
    googlenet = zoo.model_info("googlenet").recipe
    assert (googlenet.optimizer, googlenet.momentum) == ("sgd", 0.9)
    assert "4%" in googlenet.paper_setting and "Polyak" in googlenet.adaptation
    lenet = zoo.model_info("lenet5").recipe
    assert "Levenberg-Marquardt" in lenet.paper_setting
    # The paper did not augment; the zoo's recipe shifts the digits, and says so.
    assert "no augmentation" in lenet.paper_setting
    assert lenet.augment and "shifts" in lenet.adaptation


def test_recurrent_recipes_clip_the_gradient():
    for pattern in ("*_classifier", "*_regressor"):
        for recipe in _recipes(pattern).values():
            assert recipe.optimizer == "adam" and recipe.clip_norm == 1.0
            assert not recipe.augment


@pytest.mark.parametrize("name", OWN_MODELS)
def test_each_variant_is_an_explicit_function_with_a_one_line_docstring(name):
    function = zoo.model_info(name).builder
    # Written as its own `def`, not made by a factory that renames a closure.
    assert function.__code__.co_name == function.__qualname__ == name
    lines = function.__doc__.strip().splitlines()
    paper = zoo.model_info(name).paper
    first_author = paper.authors.split()[0].rstrip(",")
    if function.__module__ in {m.__name__ for m in VARIANT_FAMILIES}:
        assert len(lines) == 1, "one line; the arguments are documented once, on the builder"
    assert str(paper.year) in lines[0] and first_author in lines[0]


@pytest.mark.parametrize("module", list(VARIANT_FAMILIES), ids=lambda m: m.__name__)
def test_every_row_of_a_variant_table_is_registered_and_public(module):
    for name, row in module.VARIANTS.items():
        info = zoo.model_info(name)
        assert info.builder is getattr(zoo, name) is getattr(module, name)
        assert (info.params, info.recipe, info.summary) == (row.params, row.recipe, row.summary)
        if row.paper is not None:  # a row's own paper and shapes win over the family's
            assert info.paper == row.paper
        if row.min_input_shape is not None:
            assert info.min_input_shape == row.min_input_shape
    if module is alexnet_module:
        assert zoo.model_info("zfnet").paper.authors == "Zeiler & Fergus"
        assert zoo.model_info("alexnet").paper.authors.startswith("Krizhevsky")


@pytest.mark.parametrize(
    "name, reference",
    [
        ("vgg16", keras.applications.VGG16),
        ("vgg11_bn", keras.applications.VGG16),
        ("resnet50", keras.applications.ResNet50),
        ("resnet18", keras.applications.ResNet50),
        ("alexnet", keras.applications.VGG16),
        ("googlenet", keras.applications.InceptionV3),
        ("lenet5", keras.applications.VGG16),
    ],
)
def test_cnns_take_keras_applications_arguments(name, reference):
    # The public function's signature (a variant's is its builder's, `variant_signature`).
    ours = inspect.signature(getattr(zoo, name)).parameters
    for argument, parameter in inspect.signature(reference).parameters.items():
        assert argument in ours, f"{name} lacks keras.applications' `{argument}`"
        if argument not in ("weights", "name", "classes"):  # no download, own name, lenet's 10
            assert ours[argument].default == parameter.default, argument


def test_variant_signatures_show_each_variants_own_defaults():
    builder = inspect.signature(rnn_module._sequence_model).parameters
    assert "variant" not in inspect.signature(zoo.lstm_classifier).parameters
    assert inspect.signature(zoo.lstm_classifier).parameters["classes"].default == 2
    assert inspect.signature(zoo.bilstm_classifier).parameters["bidirectional"].default is True
    regressor = inspect.signature(zoo.gru_regressor).parameters
    assert regressor["classes"].default is None and regressor["input_dim"].default == 2
    assert "classifier_activation" not in regressor and "classifier_activation" in builder
    with pytest.raises(TypeError, match="classifier_activation"):
        zoo.gru_regressor(classifier_activation="softmax")
    # What the signature says is what the function does.
    model = zoo.bilstm_classifier(vocabulary_size=10, units=2, embedding_dim=2)
    assert model.output_shape == (None, 2) and "bidirectional_1" in [
        layer.name for layer in model.layers
    ]


def test_unknown_arguments_are_still_type_errors():
    with pytest.raises(TypeError, match="no_such_argument"):
        zoo.vgg16(no_such_argument=1)
    with pytest.raises(TypeError, match="no_such_argument"):
        zoo.lstm_classifier(no_such_argument=1)
