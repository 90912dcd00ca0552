"""What every custom layer must do: config round trip, .keras save/load, MirroredStrategy (the
same numbers as one device), mixed precision (the same numbers as float32, to the compute
dtype's precision), XLA; and layers/ must stay backend-neutral."""

import ast
import pathlib

import keras
import numpy as np
import pytest

import zoo.layers as layers

LAYER_FACTORIES = {
    "StableSoftmax": lambda: layers.StableSoftmax(axis=-1),
    "StableSoftmax_log": lambda: layers.StableSoftmax(axis=1, log=True),
    "ScaledDropout": lambda: layers.ScaledDropout(0.4, scaling="inference", seed=2),
    "ShiftedReLU": lambda: layers.ShiftedReLU(shift=1.0, threshold=-1.0),
    "LocalResponseNormalization": lambda: layers.LocalResponseNormalization(depth_radius=1),
}
X = np.random.default_rng(0).standard_normal((4, 5, 6)).astype(np.float32) * 3


def _model(layer):
    inputs = keras.Input(X.shape[1:])
    return keras.Model(inputs, layer(keras.layers.Dense(6)(inputs)))


@pytest.mark.parametrize("name", LAYER_FACTORIES)
def test_config_round_trip(name):
    layer = LAYER_FACTORIES[name]()
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    signature_args = set(type(layer).__init__.__code__.co_varnames[1:]) - {"kwargs"}
    assert signature_args <= set(layer.get_config())


@pytest.mark.parametrize("name", LAYER_FACTORIES)
def test_keras_file_round_trip(name, tmp_path):
    model = _model(LAYER_FACTORIES[name]())
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.layers[-1]) is type(model.layers[-1])
    np.testing.assert_array_equal(loaded.predict(X, verbose=0), model.predict(X, verbose=0))


# Layers whose training-mode output is a function of the input (ScaledDropout's is random).
DETERMINISTIC = [name for name in LAYER_FACTORIES if name != "ScaledDropout"]


def _trained_for_one_step(model):
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    targets = np.random.default_rng(1).standard_normal(X.shape).astype(np.float32)
    history = model.fit(X, targets, batch_size=len(X), epochs=1, shuffle=False, verbose=0)
    return history.history["loss"][0], model.get_weights()


@pytest.mark.parametrize("name", LAYER_FACTORIES)
def test_mirrored_strategy_matches_one_device(name, two_replica_strategy):
    # 2 replicas x 2 examples against 1 device x 4, from the same weights: the same inference
    # outputs and, for deterministic layers, the same training step (loss and new weights).
    # Tolerance 1e-5: float32 sums taken in another order (per replica, then all-reduced).
    one_device = _model(LAYER_FACTORIES[name]())
    with two_replica_strategy.scope():
        replicated = _model(LAYER_FACTORIES[name]())
    replicated.set_weights(one_device.get_weights())
    assert two_replica_strategy.num_replicas_in_sync == 2
    np.testing.assert_allclose(
        replicated.predict(X, batch_size=len(X), verbose=0),
        one_device.predict(X, batch_size=len(X), verbose=0),
        rtol=1e-5,
        atol=1e-6,
    )
    if name not in DETERMINISTIC:
        return
    initial = one_device.get_weights()
    with two_replica_strategy.scope():
        loss, weights = _trained_for_one_step(replicated)
    expected_loss, expected_weights = _trained_for_one_step(one_device)
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    for ours, expected in zip(weights, expected_weights):
        np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(expected_weights[0] - initial[0]).max() > 1e-3  # the step moved the kernel


# Tolerance on max|output - float32 output| / max|float32 output|: inputs, weights and the
# Dense's products are rounded to the compute dtype (unit roundoff u = 2**-11 for float16,
# 2**-8 for bfloat16); measured errors are below 2 u for every layer, the bound is 4 u.
POLICIES = {"mixed_float16": ("float16", 4 * 2.0**-11), "mixed_bfloat16": ("bfloat16", 4 * 2.0**-8)}


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("name", LAYER_FACTORIES)
def test_mixed_precision_matches_float32(name, policy):
    compute_dtype, tolerance = POLICIES[policy]
    reference = _model(LAYER_FACTORIES[name]())
    expected = keras.ops.convert_to_numpy(reference(X, training=True))
    keras.mixed_precision.set_global_policy(policy)
    model = _model(LAYER_FACTORIES[name]())  # same seed: ScaledDropout draws the same mask
    model.set_weights(reference.get_weights())
    out = model(X, training=True)
    assert keras.backend.standardize_dtype(out.dtype) == compute_dtype
    ours = keras.ops.convert_to_numpy(keras.ops.cast(out, "float32"))
    error = np.abs(ours - expected).max() / np.abs(expected).max()
    assert error <= tolerance, f"relative error {error:.2g} > {tolerance:.2g}"


@pytest.mark.parametrize("name", LAYER_FACTORIES)
def test_jit_compile_matches_eager(name):
    model = _model(LAYER_FACTORIES[name]())
    model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    compiled = model.predict(X, verbose=0)
    np.testing.assert_allclose(compiled, keras.ops.convert_to_numpy(model(X)), rtol=1e-5, atol=1e-6)
    model.fit(X, np.zeros((4, 5, 6), np.float32), epochs=1, verbose=0)


def test_layers_package_never_imports_tensorflow():
    package = pathlib.Path(layers.__file__).parent
    offenders = []
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "tensorflow"]
    assert not offenders, offenders
    assert len(list(package.glob("*.py"))) >= 5
