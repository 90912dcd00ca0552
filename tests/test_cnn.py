"""The CNN zoo: parameter counts, transplanted keras.applications weights, shapes, bad input.

References are independent of the code under test: keras.applications models, the issue's
figures (torchvision's and Keras' counts), closed-form parameter counts from the papers'
layer tables, and stride arithmetic.
"""


import keras
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import zoo
from zoo import weights as zoo_weights

CNN_MODELS = [
    "lenet5",
    "alexnet",
    "zfnet",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "vgg11_bn",
    "vgg19_bn",
    "googlenet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
]


def conv(k, c_in, c_out, bias=True):
    return k * k * c_in * c_out + (c_out if bias else 0)


def dense(n_in, n_out):
    return n_in * n_out + n_out


def vgg_count(convs_per_block, batch_norm=False):
    """count_params(): with batch norm, 4 numbers per channel (gamma, beta, mean, variance)."""
    total, c_in = 0, 3
    for convs, filters in zip(convs_per_block, (64, 128, 256, 512, 512)):
        for _ in range(convs):
            total += conv(3, c_in, filters) + (4 * filters if batch_norm else 0)
            c_in = filters
    return total + dense(7 * 7 * 512, 4096) + dense(4096, 4096) + dense(4096, 1000)


# Closed forms from the papers' layer tables, and the issue's figures.
LENET5_COUNT = conv(5, 1, 6) + conv(5, 6, 16) + conv(5, 16, 120) + dense(120, 84) + dense(84, 10)
ALEXNET_COUNT = (
    conv(11, 3, 96)
    + conv(5, 96, 256)
    + conv(3, 256, 384)
    + conv(3, 384, 384)
    + conv(3, 384, 256)
    + dense(6 * 6 * 256, 4096)
    + dense(4096, 4096)
    + dense(4096, 1000)
)
ZFNET_COUNT = ALEXNET_COUNT - conv(11, 3, 96) + conv(7, 3, 96)
EXPECTED_TOTAL = {
    "lenet5": LENET5_COUNT,
    "alexnet": ALEXNET_COUNT,
    "zfnet": ZFNET_COUNT,
    "vgg11": vgg_count((1, 1, 2, 2, 2)),
    "vgg13": vgg_count((2, 2, 2, 2, 2)),
    "vgg16": 138_357_544,
    "vgg19": 143_667_240,
    "vgg11_bn": vgg_count((1, 1, 2, 2, 2), batch_norm=True),
    "vgg19_bn": vgg_count((2, 2, 4, 4, 4), batch_norm=True),
    "resnet50": 25_636_712,
    "resnet101": 44_707_176,
    "resnet152": 60_419_944,
}
EXPECTED_TRAINABLE = {"resnet18": 11_689_512, "resnet34": 21_797_672}


def run(model, x):
    """Eager inference (no tracing: cheaper than `predict` for one small batch)."""
    return keras.tree.map_structure(keras.ops.convert_to_numpy, model(x, training=False))


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def randomize(model, seed=0):
    """Random weights everywhere, including BatchNorm statistics (variances kept positive)."""
    rng = np.random.default_rng(seed)
    values = []
    for weight in model.weights:
        value = rng.standard_normal(weight.shape, dtype=np.float32) * np.float32(0.05)
        if "moving_variance" in weight.path or weight.path.endswith("gamma"):
            value = 1.0 + np.abs(value)
        values.append(value)
    model.set_weights(values)


def assert_same_outputs(source, target, shape, seed=1):
    x = np.random.default_rng(seed).standard_normal((2, *shape)).astype("float32")
    expected = keras.ops.convert_to_numpy(source(x, training=False))
    got = keras.ops.convert_to_numpy(target(x, training=False))
    assert expected.shape == got.shape
    assert np.max(np.abs(expected - got)) <= 1e-5 * max(1.0, np.max(np.abs(expected)))


KERAS_APPLICATIONS = {
    "vgg16": keras.applications.VGG16,
    "vgg19": keras.applications.VGG19,
    "resnet50": keras.applications.ResNet50,
    "resnet101": keras.applications.ResNet101,
    "resnet152": keras.applications.ResNet152,
}


@pytest.mark.parametrize("name", CNN_MODELS)
def test_parameter_count_at_defaults(name):
    # StatelessScope defers variable initialisation: shapes only, no 500 MB of random numbers.
    with keras.StatelessScope():
        model = zoo.create_model(name)
        total = model.count_params()
        assert zoo.model_info(name).params == total, "registry `params` must be count_params()"
    if name in EXPECTED_TOTAL:
        assert total == EXPECTED_TOTAL[name]
    elif name in EXPECTED_TRAINABLE:
        assert trainable_count(model) == EXPECTED_TRAINABLE[name]
        assert not any(w.path.endswith("bias") for w in model.weights if "_conv" in w.path)
    else:  # googlenet: the paper's "about 6.8M"; the issue allows 6.6-7.0M
        assert name == "googlenet"
        assert 6_600_000 <= total <= 7_000_000


def test_lenet5_is_the_same_network_at_28_and_32():
    small, paper = zoo.lenet5(input_shape=(28, 28, 1)), zoo.lenet5()
    assert small.count_params() == paper.count_params() == LENET5_COUNT
    assert small.get_layer("stage3").output.shape[1:] == (1, 1, 120)
    # A 28x28 digit zero-padded to 32x32 by hand gives the same outputs (the paper's set-up).
    zoo_weights.transplant(paper, small)
    x = np.random.default_rng(0).standard_normal((2, 28, 28, 1)).astype("float32")
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    np.testing.assert_allclose(run(small, x), run(paper, padded))


# --- transplant equivalence against keras.applications at small inputs ----------------------


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("vgg16", {"include_top": False}),
        ("vgg16", {"classes": 10}),
        ("resnet50", {"include_top": False, "pooling": "avg"}),
        pytest.param("resnet50", {"classes": 10}, marks=pytest.mark.slow),
        pytest.param("vgg19", {"classes": 10}, marks=pytest.mark.slow),
        pytest.param("resnet101", {}, marks=pytest.mark.slow),
        pytest.param("resnet152", {}, marks=pytest.mark.slow),
    ],
)
def test_transplant_matches_keras_applications(name, kwargs):
    """Same outputs (max abs difference <= 1e-5) after transplanting random weights."""
    shape = (32, 32, 3)
    source = KERAS_APPLICATIONS[name](weights=None, input_shape=shape, **kwargs)
    randomize(source)
    target = zoo.create_model(name, input_shape=shape, **kwargs)
    pairs = zoo.weights.transplant(source, target)
    assert len(pairs) == sum(1 for layer in source.layers if layer.weights)
    # Paired by name (zoo keeps Keras' names), then by order: Keras' `predictions` Dense is
    # the zoo's `logits` (its `predictions` is the StableSoftmax).
    head = [("predictions", "logits")] if kwargs.get("include_top", True) else []
    assert [(s, t) for s, t in pairs if s != t] == head
    assert_same_outputs(source, target, shape)


def test_transplant_rejects_mismatched_models():
    vgg = zoo.vgg11(input_shape=(32, 32, 3), classes=10)
    lenet = zoo.lenet5()
    with pytest.raises(ValueError, match="Cannot transplant"):
        zoo.weights.transplant(lenet, vgg)
    with pytest.raises(ValueError, match="does not fit"):
        zoo.weights.transplant(zoo.vgg11(input_shape=(32, 32, 3), classes=7), vgg)
    with pytest.raises(TypeError, match="source_model"):
        zoo.weights.transplant("vgg11", vgg)
    # strict=False: a classifier's body into a headless model (its extra layers are ignored).
    headless = zoo.vgg11(input_shape=(32, 32, 3), include_top=False)
    pairs = zoo.weights.transplant(vgg, headless, strict=False)
    assert len(pairs) == 8
    with pytest.raises(ValueError, match="strict=False"):
        zoo.weights.transplant(vgg, headless)


def test_imagenet_weights_go_through_keras_applications(monkeypatch):
    """weights="imagenet" builds keras.applications' model and transplants it (no network:
    the source is built with weights=None and randomised here)."""
    built = {}
    real_source = zoo_weights.imagenet_source

    def fake_source(model_name, include_top, weights="imagenet"):
        assert weights == "imagenet"
        source = real_source(model_name, include_top, weights=None)
        randomize(source, seed=3)
        built[model_name] = source
        return source

    monkeypatch.setattr(zoo_weights, "imagenet_source", fake_source)
    model = zoo.vgg16(weights="imagenet", include_top=False, input_shape=(32, 32, 3))
    assert_same_outputs(built["vgg16"], model, (32, 32, 3))


def test_weights_from_a_file(tmp_path):
    model = zoo.lenet5()
    path = str(tmp_path / "lenet5.weights.h5")
    model.save_weights(path)
    loaded = zoo.lenet5(weights=path)
    x = np.random.default_rng(0).standard_normal((2, 32, 32, 1)).astype("float32")
    np.testing.assert_array_equal(run(model, x), run(loaded, x))


# --- shapes ---------------------------------------------------------------------------------

FINAL_CHANNELS = {
    "lenet5": 120,
    "alexnet": 256,
    "zfnet": 256,
    "vgg11": 512,
    "googlenet": 1024,
    "resnet18": 512,
    "resnet50": 2048,
}


@pytest.mark.parametrize(
    "name, pooling",
    [
        ("lenet5", None),
        ("lenet5", "avg"),
        ("lenet5", "max"),
        ("alexnet", None),
        ("zfnet", "avg"),
        ("vgg11", "max"),
        ("googlenet", "avg"),
        ("resnet18", "max"),
        ("resnet50", None),
    ],
)
def test_headless_output_shapes(name, pooling):
    shape = zoo.model_info(name).min_input_shape
    model = zoo.create_model(name, include_top=False, pooling=pooling, input_shape=shape)
    channels = FINAL_CHANNELS[name]
    if pooling is None:
        assert model.output_shape[0] is None and model.output_shape[-1] == channels
        assert len(model.output_shape) == 4
    else:
        assert model.output_shape == (None, channels)
    x = np.random.default_rng(0).standard_normal((2, *shape)).astype("float32")
    out = run(model, x)
    assert out.shape[0] == 2 and np.all(np.isfinite(out))
    if pooling is not None:  # global mean or max of the last stage's map
        unpooled = run(zoo.features(model, zoo.stage_names(model)[-1]), x)
        reduce = np.mean if pooling == "avg" else np.max
        np.testing.assert_allclose(out, reduce(unpooled, axis=(1, 2)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "name, size",
    [
        ("vgg11", 32),
        ("vgg11", 96),
        ("resnet18", 48),
        ("googlenet", 96),
        ("lenet5", 28),
        ("lenet5", 30),
        ("lenet5", 40),
        ("alexnet", 67),
        ("alexnet", 99),
        ("zfnet", 53),
        ("zfnet", 80),
    ],
)
def test_classifier_at_several_input_sizes(name, size):
    channels = zoo.model_info(name).min_input_shape[-1]
    model = zoo.create_model(name, input_shape=(size, size, channels), classes=5)
    x = np.random.default_rng(0).standard_normal((3, size, size, channels)).astype("float32")
    probs = run(model, x)
    assert probs.shape == (3, 5) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", ["vgg11", "resnet18", "resnet50", "googlenet"])
def test_stage_k_is_at_stride_2_to_the_k(name):
    size = 64
    model = zoo.create_model(name, include_top=False, input_shape=(size, size, 3))
    assert zoo.stage_names(model) == [f"stage{k}" for k in range(1, 6)]
    extractor = zoo.features(model, zoo.stage_names(model))
    for k in range(1, 6):
        assert extractor.output[f"stage{k}"].shape[1:3] == (size // 2**k, size // 2**k)


def test_features_share_weights_with_the_model():
    model = zoo.resnet18(include_top=False, input_shape=(32, 32, 3))
    extractor = zoo.features(model, ["stage4", "stage5"])
    x = np.random.default_rng(0).standard_normal((2, 32, 32, 3)).astype("float32")
    maps = run(extractor, x)
    assert set(maps) == {"stage4", "stage5"}
    np.testing.assert_allclose(maps["stage5"], run(model, x), rtol=1e-6)
    # keras.applications' layer names work as well.
    single = zoo.features(model, "conv4_block2_out")
    np.testing.assert_allclose(run(single, x), maps["stage4"], rtol=1e-6)


def test_features_rejects_unknown_names():
    model = zoo.lenet5()
    with pytest.raises(ValueError, match=r"'stage4'.*Did you mean.*stage1', 'stage2', 'stage3'"):
        zoo.features(model, ["stage4"])
    with pytest.raises(ValueError, match="at least one"):
        zoo.features(model, [])
    with pytest.raises(TypeError, match="names"):
        zoo.features(model, 3)


def test_input_tensor_is_used():
    image = keras.Input(shape=(40, 40, 3), name="my_image")
    model = zoo.resnet18(input_tensor=image, classes=4)
    assert model.inputs[0] is image
    assert model.output_shape == (None, 4)


def test_logits_are_the_softmax_inputs():
    probs_model = zoo.vgg11(input_shape=(32, 32, 3), classes=6)
    logits_model = zoo.vgg11(input_shape=(32, 32, 3), classes=6, classifier_activation=None)
    zoo.weights.transplant(probs_model, logits_model)
    x = np.random.default_rng(0).standard_normal((4, 32, 32, 3)).astype("float32")
    logits = run(logits_model, x).astype("float64")
    reference = np.exp(logits - logits.max(axis=1, keepdims=True))
    reference /= reference.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(run(probs_model, x), reference, atol=1e-6)


@pytest.mark.parametrize("activation", ["shifted_relu", "gelu"])
def test_other_activations(activation):
    model = zoo.resnet18(input_shape=(32, 32, 3), classes=3, activation=activation)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert ("ShiftedReLU" in kinds) == (activation == "shifted_relu")
    x = np.random.default_rng(0).standard_normal((2, 32, 32, 3)).astype("float32")
    assert np.all(np.isfinite(run(model, x)))


def test_mixed_precision_outputs_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    model = zoo.lenet5()
    assert model.get_layer("conv1").compute_dtype == "float16"
    assert model.output.dtype == "float32"


def test_dropout_arguments_reach_the_layers():
    model = zoo.alexnet(input_shape=(67, 67, 3), dropout=0.3, dropout_scaling="inference")
    dropouts = [layer for layer in model.layers if type(layer).__name__ == "ScaledDropout"]
    assert [(d.rate, d.scaling) for d in dropouts] == [(0.3, "inference")] * 2
    assert [type(layer).__name__ for layer in model.layers].count("LocalResponseNormalization") == 2


def test_googlenet_auxiliary_classifiers_train():
    model = zoo.googlenet(input_shape=(65, 65, 3), classes=4, auxiliary_classifiers=True)
    assert [tuple(o.shape) for o in model.outputs] == [(None, 4)] * 3
    model.compile(
        "sgd",
        ["sparse_categorical_crossentropy"] * 3,
        loss_weights=[1.0, 0.3, 0.3],
        run_eagerly=True,  # one step: tracing would cost more than it saves
    )
    x = np.random.default_rng(0).standard_normal((2, 65, 65, 3)).astype("float32")
    y = np.array([0, 3])
    losses = model.train_on_batch(x, [y, y, y])
    assert np.all(np.isfinite(losses))
    aux_params = sum(layer.count_params() for layer in model.layers if layer.name.startswith("aux"))
    # Per side classifier: 1x1 conv 512->128 (528 for aux2), FC 1024, FC 1024->4; at 65x65
    # the 4a/4d maps are 5x5, pooled 5x5/3 to 1x1x128 (4x4x128 at the paper's 224x224).
    expected = sum(conv(1, c, 128) + dense(128, 1024) + dense(1024, 4) for c in (512, 528))
    assert aux_params == expected


def test_zfnet_renormalizes_filters_to_rms_0_1():
    model = zoo.zfnet(input_shape=(53, 53, 3), classes=2)
    kernel = model.get_layer("conv1").kernel
    kernel.assign(np.full(kernel.shape, 0.5, "float32"))
    model.compile(keras.optimizers.SGD(1e-6), "sparse_categorical_crossentropy")
    model.train_on_batch(np.zeros((1, 53, 53, 3), "float32"), np.array([1]))
    rms = np.sqrt(np.mean(np.square(keras.ops.convert_to_numpy(kernel)), axis=(0, 1, 2)))
    np.testing.assert_allclose(rms, 0.1, rtol=1e-4)


def test_resnet_takes_any_size_without_flatten():
    model = zoo.resnet18(input_shape=(None, None, 3), classes=3)
    for size in (32, 57):
        x = np.zeros((1, size, size, 3), "float32")
        assert run(model, x).shape == (1, 3)


# --- LeNet-5 learns the digits --------------------------------------------------------------


def test_lenet5_reaches_97_percent_on_sklearn_digits():
    digits = load_digits()
    images = (digits.images / 8.0 - 1.0).astype("float32")[..., None]  # [-1, 1] for tanh
    images = keras.ops.convert_to_numpy(keras.ops.image.resize(images, (28, 28)))
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    model = zoo.lenet5(input_shape=(28, 28, 1))
    epochs, batch_size = 15, 64
    steps = epochs * int(np.ceil(len(x_train) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(3e-3, steps)
    model.compile(
        keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy >= 0.97
