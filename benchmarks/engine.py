"""Engine: zoo's training step against Keras' own `model.fit`, and resnet50's share of the
machine's matrix-multiply peak.

Rows 1-3: LeNet-5 (28x28 digits), ResNet-18 (32x32x3, its small config) and the small
LSTM classifier (length-50 token sequences), batch 32 on one device. Every engine takes the
same `tf.data` pipeline (cached, repeated, batched, prefetched), the same optimizer (the
model's recipe: Adam, or SGD with momentum for ResNet) and computes loss and accuracy:

* ours: `DistributedTrainer.bind_steps`, `DEFAULT_STEPS_PER_EXECUTION` steps per call with the
  learning rate of each step passed in, exactly as `zoo train` runs it;
* peers: `model.compile(..., steps_per_execution=1)` and `=10`, then `model.fit` (Keras'
  default strategy, its fastest on one device); each timed block is one `fit` call of the same
  number of steps (`steps_per_epoch`), since that is how `fit` is used (its set-up per call
  is ~0.01 s here); the ratio is against the faster of the two settings.

Blocks of the engines (and ours a second time, whose ratio to the first is the noise floor)
are interleaved in rounds (`harness.rotating_medians`), and examples per second are compared by
their medians. Target: ratio >= 1.0 against the best `fit` on every row.

Last row: resnet50 (32x32, batch 32) training FLOP/s against the FLOP/s of a 2048x2048 float32
`tf.matmul` measured in the same run. Training FLOPs per image are 3x the forward FLOPs (the
backward pass costs twice the forward), counted from the model's convolution and dense layers
(2 x multiply-adds; batch norm and activations are left out).

No GPU was lent to the session that wrote this benchmark: the numbers in the README are a 2-core
CPU's. On a GPU the same rows read differently: a step of these small models takes a few
hundred microseconds of device time, so per-call host overhead (Python, launching the
`tf.function`, the device-to-host read of the statistics) is the whole story, and several
steps per call matter far more than on a CPU (where a LeNet-5 step is ~5 ms of compute);
`fit` with steps_per_execution=1 falls further behind. The matmul peak is the GPU's float32
(TF32 on Ampere and later) rate, tens of TFLOP/s, and ResNet-50 at 32x32 with batch 32 reaches
a small share of it (the layers are too small to fill the device): run with larger images
and batches, and `--mixed-precision`, to see the share a real workload reaches.
"""

import statistics
import time

from benchmarks.harness import Result, rotating_medians

BATCH = 32
FIT_SETTINGS = (1, 10)
# (model, steps per timed block, quick steps): about a second per block on a 2-core CPU.
CASES = (("lenet5", 160, 80), ("resnet18", 10, 10), ("lstm_classifier", 160, 80))
SEQUENCE_LENGTH = 50
# Steps per call compared in the full run (LeNet-5): 16 is where the gain levels off.
SWEEP = (1, 4, 16, 64)


def _data(name, steps):
    """The cached, repeated, batched pipeline every engine reads: (dataset, model kwargs)."""
    import numpy as np
    import tensorflow as tf

    from zoo.data import load_dataset

    rng = np.random.default_rng(0)
    if name == "lenet5":
        splits = load_dataset("digits", min_image_size=(28, 28))
        data, kwargs = splits.train, {"input_shape": (28, 28, 1), "classes": 10}
    elif name == "resnet18":
        x = rng.normal(size=(BATCH * 20, 32, 32, 3)).astype("float32")
        y = rng.integers(0, 10, size=BATCH * 20).astype("int32")
        data, kwargs = tf.data.Dataset.from_tensor_slices((x, y)), {
            "input_shape": (32, 32, 3), "classes": 10}
    else:
        from zoo import registry

        kwargs = dict(registry.model_info(name).small_config)
        x = rng.integers(1, kwargs["vocabulary_size"], size=(BATCH * 40, SEQUENCE_LENGTH))
        y = rng.integers(0, kwargs["classes"], size=BATCH * 40)
        data = tf.data.Dataset.from_tensor_slices((x.astype("int32"), y.astype("int32")))
    return (data.cache().repeat().batch(BATCH, drop_remainder=True)
            .prefetch(tf.data.AUTOTUNE)), kwargs


def _optimizer(name):
    import keras

    from zoo import registry

    recipe = registry.model_info(name).recipe
    if recipe.optimizer == "sgd":
        return keras.optimizers.SGD(recipe.lr, momentum=recipe.momentum)
    return keras.optimizers.Adam(recipe.lr)


def _engines(name, steps, strategy):
    """{engine name: a callable taking `steps` training steps}."""
    import keras

    import zoo
    from zoo.training import DistributedTrainer
    from zoo.training.config import DEFAULT_STEPS_PER_EXECUTION

    data, kwargs = _data(name, steps)
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = zoo.create_model(name, **kwargs)
        optimizer = _optimizer(name)
    trainer = DistributedTrainer(model, optimizer, strategy,
                                 zoo.model_info(name).task)
    run = trainer.bind_steps(iter(strategy.experimental_distribute_dataset(data)))
    rate = float(optimizer.learning_rate.numpy())
    per_call = DEFAULT_STEPS_PER_EXECUTION

    def ours():
        totals, done = None, 0
        while done < steps:
            count = min(per_call, steps - done)
            totals = run([rate] * count, totals).totals
            done += count

    engines = {"zoo": ours}
    for setting in FIT_SETTINGS:
        keras.utils.set_random_seed(0)
        # Keras' default strategy: fit under a OneDeviceStrategy scope spends ~0.25 s more per
        # call distributing the dataset (measured on this CPU).
        peer = zoo.create_model(name, **kwargs)
        peer.compile(_optimizer(name), loss=keras.losses.SparseCategoricalCrossentropy(),
                     metrics=["accuracy"], steps_per_execution=setting)

        def fit(peer=peer):
            peer.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)

        engines[f"fit {setting}"] = fit
    engines["zoo again"] = ours
    return engines


def _training_flops_per_image(model):
    """3x the forward multiply-adds x 2 of the convolution and dense layers."""
    import keras

    forward = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.Conv2D):
            kernel = layer.kernel.shape  # (kh, kw, in / groups, out)
            height, width = layer.output.shape[1:3]
            forward += 2 * height * width * kernel[0] * kernel[1] * kernel[2] * kernel[3]
        elif isinstance(layer, keras.layers.Dense):
            forward += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
    return 3 * forward


def _matmul_flops(rounds):
    import tensorflow as tf

    a = tf.random.normal((2048, 2048))
    b = tf.random.normal((2048, 2048))
    product = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    float(product())
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        float(product())
        times.append(time.perf_counter() - start)
    return 2 * 2048**3 / statistics.median(times)


def _resnet50_share(strategy, quick):
    import keras
    import numpy as np
    import tensorflow as tf

    import zoo
    from zoo.training import DistributedTrainer

    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH * 4, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=BATCH * 4).astype("int32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).cache().repeat().batch(BATCH)
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = zoo.resnet50(input_shape=(32, 32, 3), classes=10)
        optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    trainer = DistributedTrainer(model, optimizer, strategy, "image-classification")
    run = trainer.bind_steps(iter(strategy.experimental_distribute_dataset(data)))
    steps = 3 if quick else 6
    run([0.1] * 2)  # trace and warm up

    def train():
        run([0.1] * steps)

    # The matmul and the training steps in turns, as the other rows.
    matmul_rates = []
    seconds = rotating_medians(
        {"train": train, "matmul": lambda: matmul_rates.append(_matmul_flops(5))},
        rounds=2 if quick else 4, warmup=0)
    achieved = _training_flops_per_image(model) * BATCH * steps / seconds["train"]
    return achieved, statistics.median(matmul_rates)


def _steps_per_call(strategy, rounds):
    """LeNet-5 images/s with N steps per call, for the N of `SWEEP`: how the default
    (`DEFAULT_STEPS_PER_EXECUTION`) was chosen."""
    import keras

    import zoo
    from zoo.training import DistributedTrainer

    data, kwargs = _data("lenet5", 0)
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = zoo.create_model("lenet5", **kwargs)
        optimizer = _optimizer("lenet5")
    trainer = DistributedTrainer(model, optimizer, strategy, "image-classification")
    run = trainer.bind_steps(iter(strategy.experimental_distribute_dataset(data)))
    steps = max(SWEEP)

    def calls_of(count):
        def block():
            totals = None
            for _ in range(steps // count):
                totals = run([1e-3] * count, totals).totals
        return block

    seconds = rotating_medians({n: calls_of(n) for n in SWEEP}, rounds=rounds, warmup=2)
    return {n: BATCH * steps / value for n, value in seconds.items()}


def run(quick=False):
    import tensorflow as tf

    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    rounds = 3 if quick else 7
    results = []
    for name, steps, quick_steps in CASES:
        steps = quick_steps if quick else steps
        seconds = rotating_medians(_engines(name, steps, strategy), rounds=rounds, warmup=2)
        speed = {engine: BATCH * steps / value for engine, value in seconds.items()}
        best = max(FIT_SETTINGS, key=lambda s: speed[f"fit {s}"])
        case = f"{name}, batch {BATCH}, 1 device, {steps} steps x {rounds} rounds"
        results.append(Result("engine", case, speed["zoo"], speed[f"fit {best}"],
                              "examples/s", f"model.fit spe={best}, the best", target=1.0,
                              higher_is_better=True))
        other = [s for s in FIT_SETTINGS if s != best][0]
        results.append(Result("engine", f"{name}: against the other fit setting",
                              speed["zoo"], speed[f"fit {other}"], "examples/s",
                              f"model.fit spe={other}", higher_is_better=True))
        results.append(Result("engine", f"{name}: noise floor (zoo against itself)",
                              speed["zoo again"], speed["zoo"], "examples/s", "zoo",
                              higher_is_better=True))
    if not quick:
        speed = _steps_per_call(strategy, rounds)
        for count in SWEEP[1:]:
            results.append(Result("engine", f"lenet5: zoo, {count} steps per call",
                                  speed[count], speed[1], "examples/s",
                                  "zoo, 1 step per call", higher_is_better=True))
    achieved, peak = _resnet50_share(strategy, quick)
    results.append(Result(
        "engine", "resnet50 32x32 training FLOP/s, share of the 2048^2 matmul peak",
        achieved / 1e9, peak / 1e9, "GFLOP/s", "float32 tf.matmul 2048x2048",
        higher_is_better=True))
    return results
