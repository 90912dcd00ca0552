"""Every registered model on this backend: TensorFlow's outputs for the same weights, a `.keras`
round trip, and a few `fit` steps; `.keras` files written by TensorFlow load here.

The deeper variants of a family (the same builder with more blocks) are marked `slow`: on 2 CPU
cores their XLA compilation alone takes minutes, and their code is the shallow variants'.
"""

import keras
import numpy as np
import pytest

from backends import cases

# float32 and 1e-5 relative; the absolute floor is 1e-5 of the output's largest magnitude, for
# outputs that are sums of values near zero (the relative error of a near-zero sum is unbounded).
RTOL = 1e-5
DEEP = {name for name in cases.MODELS
        if name.startswith(("resnet34", "resnet101", "resnet152", "resnet50_", "vgg13", "vgg16",
                            "vgg19"))}
MODELS = [pytest.param(n, marks=pytest.mark.slow) if n in DEEP else n for n in cases.MODELS]


def assert_close_to_tensorflow(got, want):
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL * float(np.abs(want).max()))


@pytest.mark.parametrize("name", MODELS)
def test_matches_tensorflow_round_trips_and_trains(name, reference, tmp_path):
    model = cases.build(name)
    assert sorted(v.path for v in model.weights) == list(reference[f"{name}/paths"])
    x = cases.inputs(name, model)
    got = cases.outputs(model, x)
    assert_close_to_tensorflow(got, reference[f"{name}/outputs"])

    model.save(tmp_path / f"{name}.keras")
    loaded = keras.saving.load_model(tmp_path / f"{name}.keras")
    np.testing.assert_array_equal(cases.outputs(loaded, x), got)

    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=cases.loss(name))
    before = [np.array(keras.ops.convert_to_numpy(w)) for w in model.trainable_weights]
    # Two examples, batch 1: two training steps.
    history = model.fit(x, cases.targets(name, model, x), batch_size=1, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    assert all(np.isfinite(a).all() for a in after)
    # Not every weight: a convolution's bias before batch normalization gets zero gradient.
    assert any(not np.array_equal(b, a) for b, a in zip(before, after))


@pytest.mark.parametrize("name", ["lenet5", "lstm_classifier"])
def test_predict_compiles_to_the_same_numbers(name, reference):
    model = cases.build(name)
    x = cases.inputs(name, model)
    assert_close_to_tensorflow(model.predict(x, verbose=0), reference[f"{name}/outputs"])


@pytest.mark.parametrize("name", ["lenet5", "resnet18", "lstm_classifier", "char_lm",
                                  "show_attend_tell"])
def test_keras_file_written_by_tensorflow_loads(name, tf_reference, reference):
    model = keras.saving.load_model(tf_reference / f"{name}.keras")
    x = cases.inputs(name, model)
    assert_close_to_tensorflow(cases.outputs(model, x), reference[f"{name}/outputs"])
