"""The same zoo models' training step on TensorFlow, JAX and PyTorch: Keras `fit`, one backend per
subprocess (Keras fixes its backend at import), run one after the other.

Every backend compiles the models with Keras' defaults (`jit_compile="auto"`: XLA on
TensorFlow and JAX where every layer supports it, eager PyTorch) and the same SGD optimizer,
loss, batch and data; what is timed is `fit` over a fixed number of batches after a warm-up
`fit` that compiles. The table gives each backend's seconds per step with TensorFlow's as the
peer: the ratio is how many times faster than TensorFlow it is (>1: faster).

    python -m benchmarks backends           # resnet50 at 224x224, batch 8; more steps
    python -m benchmarks backends --quick   # fewer steps, resnet50 at batch 2

On a GPU without TensorFlow, see `benchmarks/backends_gpu.py`.
"""

import json
import os
import statistics
import subprocess
import sys
import time

from benchmarks.harness import Result

BACKENDS = ("tensorflow", "jax", "torch")
MODELS = ("lenet5", "resnet18", "resnet50", "lstm_classifier")


def cases(quick):
    """{model: (builder kwargs, input shape, dtype, classes, batch)}."""
    return {
        "lenet5": (dict(input_shape=(32, 32, 1), classes=10), (32, 32, 1), "float32", 10, 32),
        "resnet18": (dict(input_shape=(32, 32, 3), classes=10), (32, 32, 3), "float32", 10, 32),
        "resnet50": (dict(input_shape=(224, 224, 3), classes=1000), (224, 224, 3), "float32",
                     1000, 2 if quick else 8),
        "lstm_classifier": (dict(vocabulary_size=1000, embedding_dim=32, units=64, classes=2),
                            (50,), "int32", 2, 32),
    }


def _step_seconds(model_name, quick):
    """Median seconds per `fit` step of one model on the backend this process runs."""
    import keras
    import numpy as np

    import zoo

    kwargs, shape, dtype, classes, batch = cases(quick)[model_name]
    steps, repeats = (3, 3) if quick else (10, 5)
    keras.backend.clear_session()
    model = zoo.create_model(model_name, **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    if dtype == "int32":
        x = rng.integers(1, kwargs["vocabulary_size"], (batch * steps, *shape)).astype("int32")
    else:
        x = rng.standard_normal((batch * steps, *shape)).astype("float32")
    y = rng.integers(0, classes, (batch * steps,))
    model.fit(x[: 2 * batch], y[: 2 * batch], batch_size=batch, epochs=1, verbose=0)  # compiles
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
        times.append((time.perf_counter() - start) / steps)
    return statistics.median(times), bool(model.jit_compile)


def worker(backend, quick):
    """Runs in the subprocess: prints {model: [seconds per step, jit]} as JSON."""
    import keras

    assert keras.backend.backend() == backend, keras.backend.backend()
    print(json.dumps({name: _step_seconds(name, quick) for name in MODELS}), flush=True)


def measure(backend, quick):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-m", "benchmarks.backends", "--worker", backend]
    result = subprocess.run(command + (["--quick"] if quick else []), env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"the {backend} run failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run(quick=False):
    seconds = {}
    for backend in BACKENDS:
        print(f"  backends: timing on {backend} ...", file=sys.stderr, flush=True)
        seconds[backend] = measure(backend, quick)
    batches = {name: case[-1] for name, case in cases(quick).items()}
    results = []
    for name in MODELS:
        reference, reference_jit = seconds["tensorflow"][name]
        for backend in BACKENDS[1:]:
            value, jit = seconds[backend][name]
            results.append(Result(
                benchmark="backends",
                case=f"{name} fit step, batch {batches[name]}: {backend} "
                     f"({'jit' if jit else 'eager'}) vs tensorflow "
                     f"({'XLA' if reference_jit else 'graph'})",
                ours=value,
                peer=reference,
                unit="s/step",
                peer_name="tensorflow",
            ))
    return results


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--worker":
        worker(sys.argv[2], "--quick" in sys.argv)
    else:
        from benchmarks.harness import format_table

        print(format_table(run(quick="--quick" in sys.argv)))
