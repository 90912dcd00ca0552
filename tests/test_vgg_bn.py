"""The batch-norm VGG variants `vgg11_bn` ... `vgg19_bn`.

References: torchvision's published parameter counts (the `num_params` of
`VGG11_BN_Weights` ... `VGG19_BN_Weights` in torchvision's model docs), a closed-form count
per layer, and a float64 NumPy fold of each BatchNorm into the convolution before it (at
inference BN is an affine map, so vgg*_bn must equal the plain vgg* with folded weights).
"""

import keras
import numpy as np
import pytest

import zoo

# torchvision's documented num_params (trainable: gamma and beta, no running statistics).
TORCHVISION_NUM_PARAMS = {
    "vgg11_bn": 132_868_840,
    "vgg13_bn": 133_053_736,
    "vgg16_bn": 138_365_992,
    "vgg19_bn": 143_678_248,
}
# The paper's Table 1: convolutions per block for configurations A, B, D, E.
CONVS = {"vgg11": (1, 1, 2, 2, 2), "vgg13": (2, 2, 2, 2, 2), "vgg16": (2, 2, 3, 3, 3),
         "vgg19": (2, 2, 4, 4, 4)}
FILTERS = (64, 128, 256, 512, 512)


def closed_form(convs, classes=1000, flat=7 * 7 * 512):
    """(trainable, batch-norm channels) of a VGG with BatchNorm after every conv."""
    trainable, channels, c_in = 0, 0, 3
    for count, filters in zip(convs, FILTERS):
        for _ in range(count):
            trainable += 3 * 3 * c_in * filters + filters  # kernel + bias (torchvision keeps it)
            trainable += 2 * filters  # gamma, beta
            channels += filters
            c_in = filters
    trainable += flat * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * classes + classes
    return trainable, channels


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("name", sorted(TORCHVISION_NUM_PARAMS))
def test_parameter_counts_match_torchvision_and_the_closed_form(name):
    with keras.StatelessScope():  # shapes only
        model = zoo.create_model(name)
    trainable, channels = closed_form(CONVS[name[: -len("_bn")]])
    assert trainable_count(model) == TORCHVISION_NUM_PARAMS[name] == trainable
    # count_params() adds BatchNorm's moving mean and variance; the registry records it.
    assert model.count_params() == trainable + 2 * channels == zoo.model_info(name).params


def fold_batch_norm(kernel, bias, gamma, beta, mean, variance, epsilon):
    """Float64 BN(conv(x)) as one convolution: scale the kernel, shift the bias."""
    scale = gamma.astype("float64") / np.sqrt(variance.astype("float64") + epsilon)
    return kernel.astype("float64") * scale, (bias - mean) * scale + beta


def test_batch_norm_sits_after_every_conv_before_its_activation():
    model = zoo.vgg11_bn(input_shape=(32, 32, 3), classes=4)
    names = [layer.name for layer in model.layers]
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == sum(CONVS["vgg11"])
    for conv in convs:
        norm = model.layers[names.index(conv.name) + 1]
        assert isinstance(norm, keras.layers.BatchNormalization)
        assert norm.name == f"{conv.name}_bn"
        # torchvision's eps=1e-5 and momentum 0.1 (PyTorch's convention) = Keras' 0.9.
        assert (norm.epsilon, norm.momentum) == (1e-5, 0.9)
        assert names[names.index(conv.name) + 2] == f"{conv.name}_act"
    assert zoo.stage_names(model) == [f"stage{k}" for k in range(1, 6)]


def test_inference_equals_the_plain_network_with_folded_batch_norm():
    rng = np.random.default_rng(0)
    with_bn = zoo.vgg11_bn(input_shape=(32, 32, 3), classes=5, classifier_activation=None)
    for weight in with_bn.weights:
        value = rng.normal(scale=0.05, size=weight.shape)
        if "moving_variance" in weight.path or weight.path.endswith("gamma"):
            value = 0.5 + np.abs(value) * 10
        weight.assign(value.astype("float32"))
    plain = zoo.vgg11(input_shape=(32, 32, 3), classes=5, classifier_activation=None)
    for layer in plain.layers:
        if not layer.weights:
            continue
        source = with_bn.get_layer(layer.name).get_weights()
        if isinstance(layer, keras.layers.Conv2D):
            norm = with_bn.get_layer(f"{layer.name}_bn")
            gamma, beta, mean, variance = norm.get_weights()
            source = fold_batch_norm(*source, gamma, beta, mean, variance, norm.epsilon)
        layer.set_weights([np.asarray(w, "float32") for w in source])
    x = rng.standard_normal((2, 32, 32, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(plain(x, training=False))
    got = keras.ops.convert_to_numpy(with_bn(x, training=False))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_batch_norm_variants_have_torchvision_weights_and_check_arguments():
    with pytest.raises(ValueError, match="classes=10"):
        zoo.vgg16_bn(weights="imagenet", classes=10)
    with pytest.raises(ValueError, match="classes=0"):
        zoo.vgg13_bn(classes=0)
    info = zoo.model_info("vgg19_bn")
    assert info.paper == zoo.model_info("vgg19").paper
    assert info.weights["imagenet"].source == "torchvision"
    assert info.recipe.optimizer == "sgd" and info.recipe.momentum == 0.9
