"""CNN initialisation, checked against its definition: He et al. 2015 (std sqrt(2 / n) for
ReLU layers; torchvision's kaiming_normal_ over fan-out for convolutions), N(0, 0.01) for the
classifier, zero biases, and Goyal et al. 2017's zero-initialised residual branches."""

import keras
import numpy as np
import pytest

import zoo


def run(model, x):
    return keras.tree.map_structure(keras.ops.convert_to_numpy, model(x, training=False))


def _std(layer):
    return float(np.std(keras.ops.convert_to_numpy(layer.kernel)))


def test_initialisation_follows_he_et_al_and_torchvision():
    model = zoo.vgg11(input_shape=(32, 32, 3), classes=10)
    conv_layer = model.get_layer("block3_conv1")  # 3x3, 128 -> 256: fan_out 9 * 256
    np.testing.assert_allclose(_std(conv_layer), np.sqrt(2 / (9 * 256)), rtol=0.03)
    np.testing.assert_allclose(_std(model.get_layer("fc2")), np.sqrt(2 / 4096), rtol=0.03)
    np.testing.assert_allclose(_std(model.get_layer("logits")), 0.01, rtol=0.05)
    for layer in model.layers:
        if getattr(layer, "bias", None) is not None:
            assert not np.any(keras.ops.convert_to_numpy(layer.bias))
    # With batch norm the hidden layers keep torchvision's N(0, 0.01) (He diverged there).
    with_bn = zoo.vgg11_bn(input_shape=(32, 32, 3), classes=10)
    np.testing.assert_allclose(_std(with_bn.get_layer("fc2")), 0.01, rtol=0.03)
    resnet = zoo.resnet18(input_shape=(32, 32, 3), classes=10)
    layer = resnet.get_layer("conv4_block1_1_conv")  # 3x3, 128 -> 256
    np.testing.assert_allclose(_std(layer), np.sqrt(2 / (9 * 256)), rtol=0.03)


def test_zero_init_residual_makes_every_block_start_as_the_identity():
    model = zoo.resnet18(input_shape=(32, 32, 3), classes=3)  # the default, as timm's
    gammas = {
        layer.name: keras.ops.convert_to_numpy(layer.gamma)
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    }
    for name, gamma in gammas.items():
        last_of_branch = name.endswith("_2_bn") and "block" in name
        np.testing.assert_array_equal(gamma, 0.0 if last_of_branch else 1.0)
    # conv2_block2 has an identity shortcut and a ReLU input: its output is its input.
    maps = zoo.features(model, ["conv2_block1_out", "conv2_block2_out"])
    x = np.random.default_rng(0).standard_normal((2, 32, 32, 3)).astype("float32")
    out = run(maps, x)
    np.testing.assert_array_equal(out["conv2_block2_out"], out["conv2_block1_out"])
    plain = zoo.resnet18(input_shape=(32, 32, 3), classes=3, zero_init_residual=False)
    gamma = keras.ops.convert_to_numpy(plain.get_layer("conv2_block1_2_bn").gamma)
    np.testing.assert_array_equal(gamma, 1.0)  # torchvision's default
    with pytest.raises(ValueError, match="zero_init_residual=1"):
        zoo.resnet18(zero_init_residual=1)
