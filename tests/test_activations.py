"""ShiftedReLU and the activation-name helper the zoo models use."""

import keras
import numpy as np
import pytest

from zoo.layers import ShiftedReLU, activation_layer, shifted_relu

X = np.linspace(-3, 3, 61).astype(np.float32)


def test_general_relu_form():
    out = keras.ops.convert_to_numpy(ShiftedReLU()(X))
    np.testing.assert_allclose(out, np.maximum(X.astype(np.float64), 0) - 0.5, atol=1e-7)


def test_srelu_form_is_max_x_minus_one():
    out = keras.ops.convert_to_numpy(ShiftedReLU(shift=1.0, threshold=-1.0)(X))
    np.testing.assert_allclose(out, np.maximum(X.astype(np.float64), -1.0), atol=1e-6)


def test_mean_over_standard_normal_is_closer_to_zero_than_relu():
    z = np.random.default_rng(0).standard_normal(100_000).astype(np.float32)
    relu_mean = np.maximum(z, 0).mean()  # closed form 1/sqrt(2 pi) = 0.399
    assert abs(relu_mean - 1 / np.sqrt(2 * np.pi)) < 0.01
    shifted_mean = keras.ops.convert_to_numpy(ShiftedReLU()(z)).mean()
    assert abs(shifted_mean) < abs(relu_mean) / 3


def test_function_and_layer_agree_and_gradient_is_step():
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(shifted_relu(X, 0.25, 0.5)),
        keras.ops.convert_to_numpy(ShiftedReLU(0.25, 0.5)(X)),
    )
    import tensorflow as tf

    x = tf.Variable(np.array([-1.0, 0.25, 2.0], np.float32))
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(shifted_relu(x, 0.5, 0.0))
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [0.0, 1.0, 1.0])


def test_activation_layer_by_name():
    assert isinstance(activation_layer("shifted_relu"), ShiftedReLU)
    relu = activation_layer("relu", name="act")
    assert isinstance(relu, keras.layers.Activation) and relu.name == "act"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(relu(X)), np.maximum(X, 0))
    with pytest.raises(ValueError, match=r"activation.*'shifted_relu'.*activation='relux'"):
        activation_layer("relux")


def test_function_as_dense_activation_survives_save_and_load(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(4, activation=shifted_relu)(inputs))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("kwargs", [{"shift": "half"}, {"threshold": None}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=r"must be a number. Received"):
        ShiftedReLU(**kwargs)
