"""CNN argument checks: every bad input gets a ValueError naming the argument, the value and
what is allowed (zoo.validation's wording), before TensorFlow sees a tensor."""

import inspect

import pytest

import zoo
from zoo import weights as zoo_weights
from zoo.registry import UnknownArgumentError
from zoo.validation import RENAMED_ARGUMENTS

CNN_MODELS = zoo.list_models(task="image-classification")


@pytest.mark.parametrize("name", CNN_MODELS)
def test_input_below_minimum_is_rejected(name):
    height, width, channels = zoo.model_info(name).min_input_shape
    bad = (height - 1, width, channels)
    with pytest.raises(ValueError, match=r"input_shape.*minimum") as error:
        zoo.create_model(name, input_shape=bad)
    assert str(bad) in str(error.value) and f"{height}x{width}" in str(error.value)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"classes": 0}, "classes=0"),
        ({"classes": 2.5}, "classes=2.5"),
        ({"classes": True}, "classes=True"),
        ({"include_top": 1}, "include_top=1"),
        ({"dropout": -0.1}, "dropout=-0.1"),
        ({"pooling": "mean", "include_top": False}, "pooling='mean'"),
        ({"activation": "relux"}, "activation='relux'"),
        ({"classifier_activation": "softmaxx"}, "classifier_activation='softmaxx'"),
        ({"input_shape": (32, 32)}, r"input_shape=\(32, 32\)"),
        ({"weights": "imagenet", "classes": 10}, "classes=10"),
        ({"weights": "/no/such/file.weights.h5"}, "weights="),
        ({"weights": "imagenet", "input_shape": (64, 64, 3)}, "input_shape="),
        ({"weights": "imagenet", "include_top": False, "input_shape": (64, 64, 1)}, "3 input"),
    ],
)
def test_bad_arguments(kwargs, match):
    config = {"input_shape": (32, 32, 3), **kwargs}
    with pytest.raises(ValueError, match=match):
        zoo.vgg16(**config)


def test_registry_says_which_models_have_imagenet_weights():
    flagged = {n for n in zoo.list_models() if zoo.model_info(n).imagenet_weights}
    assert flagged == set(zoo_weights.IMAGENET) == set(zoo.list_models(pretrained=True))
    assert set(zoo_weights.IMAGENET_SOURCES) == {
        "vgg16", "vgg19", "resnet50", "resnet101", "resnet152"
    }
    assert {"resnet18", "vgg11", "vgg16_bn", "alexnet_owt", "googlenet_bn"} <= flagged


@pytest.mark.parametrize("name", ["lenet5", "alexnet", "zfnet", "googlenet"])
def test_imagenet_weights_only_where_they_exist(name):
    with pytest.raises(ValueError, match="not available"):
        zoo.create_model(name, weights="imagenet", include_top=False)


def test_dropout_and_auxiliary_argument_checks():
    with pytest.raises(ValueError, match="dropout=1.0"):
        zoo.vgg11(input_shape=(32, 32, 3), dropout=1.0)
    with pytest.raises(ValueError, match="dropout_scaling='paper'"):
        zoo.alexnet(dropout_scaling="paper")
    with pytest.raises(ValueError, match="include_top=False"):
        zoo.googlenet(include_top=False, auxiliary_classifiers=True)
    with pytest.raises(ValueError, match=r"65x65.*input_shape=\(64, 64, 3\)"):
        zoo.googlenet(input_shape=(64, 64, 3), auxiliary_classifiers=True)
    with pytest.raises(ValueError, match="known height and width"):
        zoo.vgg11(input_shape=(None, None, 3))


@pytest.mark.parametrize(
    "name, old, new",
    [
        ("vgg11", "dropout_rate", "dropout"),
        ("alexnet", "dropout_rate", "dropout"),
        ("googlenet_bn", "dropout_rate", "dropout"),
        ("lstm_classifier", "vocab_size", "vocabulary_size"),
    ],
)
def test_renamed_arguments_are_refused_naming_the_new_name(name, old, new):
    with pytest.raises(UnknownArgumentError, match=f"Did you mean '{new}'\\? \\(`{old}` was "
                       f"renamed `{new}`") as error:
        zoo.create_model(name, **{old: 0.3 if old == "dropout_rate" else 50})
    assert f"Received: {old}=" in str(error.value)


@pytest.mark.parametrize("name", zoo.list_models())
def test_no_model_function_takes_a_renamed_argument(name):
    parameters = inspect.signature(zoo.model_info(name).builder).parameters
    assert not set(parameters) & set(RENAMED_ARGUMENTS)
    assert not set(zoo.model_info(name).small_config) & set(RENAMED_ARGUMENTS)


def test_dropout_is_the_rate_of_every_cnn_dropout_layer():
    model = zoo.create_model("vgg11", input_shape=(32, 32, 3), classes=3, dropout=0.3)
    rates = [layer.rate for layer in model.layers if type(layer).__name__ == "ScaledDropout"]
    assert rates == [0.3, 0.3]
