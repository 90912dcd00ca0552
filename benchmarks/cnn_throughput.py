"""Training throughput of zoo.resnet50 and zoo.vgg16 against keras.applications' twins.

Same architecture, batch, input, optimizer and loss; one `train_on_batch` step timed after
warm-up, ours and Keras' measured alternately in the same process so that machine load hits
both alike. Each pair runs twice: `jit_compile=False` (TensorFlow graph) and
`jit_compile=True` (XLA; Keras' "auto" default picks it too when every layer supports it). Target: ours / Keras >= 0.98 images per second.

Differences that are part of the comparison: the zoo models end in a float32
`layers.StableSoftmax` (Keras: a softmax Dense), use separate activation layers, add identity
`stageN` layers, and zoo.vgg16 applies the paper's dropout (0.5) after fc1 and fc2, which
keras.applications.VGG16 leaves out.

    python -m benchmarks cnn_throughput           # 224x224, batch 32 (meant for a GPU)
    python -m benchmarks cnn_throughput --quick   # 32x32, batch 8: a smoke run for a CPU
"""

import statistics
import time

import keras
import numpy as np

import zoo
from benchmarks.harness import Result

PAIRS = (
    ("resnet50", zoo.resnet50, keras.applications.ResNet50),
    ("vgg16", zoo.vgg16, keras.applications.VGG16),
)


def _train_step(builder, shape, classes, jit_compile):
    model = builder(weights=None, input_shape=shape, classes=classes)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        jit_compile=jit_compile,
    )
    return model


def _time_alternately(steps, repeat, warmup):
    """Median seconds per call of each function, calls interleaved round-robin."""
    for _ in range(warmup):
        for step in steps:
            step()
    times = [[] for _ in steps]
    for _ in range(repeat):
        for step, record in zip(steps, times):
            start = time.perf_counter()
            step()
            record.append(time.perf_counter() - start)
    return [statistics.median(record) for record in times]


def run(quick=False):
    size, batch, repeat, warmup = (32, 8, 5, 1) if quick else (224, 32, 20, 3)
    shape, classes = (size, size, 3), 10 if quick else 1000
    rng = np.random.default_rng(0)
    images = rng.standard_normal((batch, *shape)).astype("float32")
    labels = rng.integers(0, classes, size=(batch,))
    results = []
    for jit_compile in (False, True):
        for name, ours_builder, keras_builder in PAIRS:
            keras.backend.clear_session()
            ours = _train_step(ours_builder, shape, classes, jit_compile)
            peer = _train_step(keras_builder, shape, classes, jit_compile)
            seconds = _time_alternately(
                [
                    lambda m=ours: m.train_on_batch(images, labels),
                    lambda m=peer: m.train_on_batch(images, labels),
                ],
                repeat=repeat,
                warmup=warmup,
            )
            mode = f"jit_compile={jit_compile}"
            results.append(
                Result(
                    benchmark="cnn_throughput",
                    case=f"{name} train {size}x{size} b{batch}, {mode}",
                    ours=batch / seconds[0],
                    peer=batch / seconds[1],
                    unit="images/s",
                    peer_name=f"keras.applications.{keras_builder.__name__}",
                    target=0.98,
                    higher_is_better=True,
                )
            )
            del ours, peer
    return results
