"""What every custom layer must do: config round trip, .keras save/load, MirroredStrategy,
mixed precision, XLA; and layers/ must stay backend-neutral."""

import ast
import pathlib

import keras
import numpy as np
import pytest

import layers

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


@pytest.mark.parametrize("name", LAYER_FACTORIES)
def test_inside_mirrored_strategy(name, two_replica_strategy):
    with two_replica_strategy.scope():
        model = _model(LAYER_FACTORIES[name]())
        model.compile(optimizer="sgd", loss="mse")
    history = model.fit(X, np.zeros((4, 5, 6), np.float32), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert two_replica_strategy.num_replicas_in_sync == 2


@pytest.mark.parametrize("name", LAYER_FACTORIES)
def test_mixed_float16_policy(name):
    keras.mixed_precision.set_global_policy("mixed_float16")
    model = _model(LAYER_FACTORIES[name]())
    out = model(X, training=True)
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    assert np.isfinite(keras.ops.convert_to_numpy(keras.ops.cast(out, "float32"))).all()


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
