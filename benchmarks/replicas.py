"""Replicas: 2 logical CPU replicas (MirroredStrategy) vs 1 device at the same global batch.

On a CPU the two logical devices share one thread pool, so this measures the overhead of
mirroring (splitting the batch, two forward/backward passes, the all-reduce, the mirrored
update), not a speed-up: the ratio is (1-device step time) / (2-replica step time), ideally 1.
The measurement runs in a subprocess, because the CPU must be split into logical devices
before TensorFlow initialises.

Scaling efficiency on real GPUs: train the same model at the same *per-replica* batch on 1 and
on N GPUs and compare throughputs, efficiency = throughput(N) / (N * throughput(1)). With zoo:

    zoo train --model resnet18 --dataset cifar10 --epochs 2 --devices 1 --out /tmp/r1
    zoo train --model resnet18 --dataset cifar10 --epochs 2 --devices 8 --out /tmp/r8

then compare `seconds` of the second epoch (the first includes tracing) in the two
`history.csv` files: efficiency = seconds(1 GPU) / seconds(N GPUs), since the N-GPU epoch has
N times fewer steps of N times more examples. Goyal et al. (2017) report ~90% on 256 GPUs
for ResNet-50; below ~70% on one machine usually means the input pipeline or a small
per-replica batch is the bottleneck.
"""

import json
import os
import subprocess
import sys

from benchmarks.harness import Result

_SCRIPT = r"""
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from zoo.training.strategy import configure_cpu_replicas, get_strategy
configure_cpu_replicas(2)
import keras, numpy as np, tensorflow as tf
import zoo
from zoo.training import DistributedTrainer

global_batch, steps, repeats = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
x = rng.normal(size=(global_batch * steps, 28, 28, 1)).astype("float32")
y = rng.integers(0, 10, size=global_batch * steps).astype("int32")
data = tf.data.Dataset.from_tensor_slices((x, y)).batch(global_batch).cache()
results = {}
for name, devices in (("one", 1), ("two", 2)):
    strategy = get_strategy(devices=devices)
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = zoo.lenet5(input_shape=(28, 28, 1), classes=10)
        optimizer = keras.optimizers.SGD(0.01)
    trainer = DistributedTrainer(model, optimizer, strategy, "image-classification")
    batches = strategy.experimental_distribute_dataset(data)
    for batch in batches:  # warm-up: trace and cache
        trainer.step(batch, 0.01)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for batch in batches:
            trainer.step(batch, 0.01)
        times.append((time.perf_counter() - start) / steps)
    results[name] = times
print(json.dumps(results))
"""


def run(quick=False):
    global_batch, steps, repeats = 64, (10 if quick else 30), (3 if quick else 7)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    completed = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(global_batch), str(steps), str(repeats)],
        capture_output=True, text=True, env=env, check=True,
    )
    times = json.loads(completed.stdout.strip().splitlines()[-1])
    return [
        Result(
            benchmark="replicas",
            case=f"lenet5 28x28, global batch {global_batch}: 2 logical CPU replicas",
            ours=min(times["two"]) * 1e3,
            peer=min(times["one"]) * 1e3,
            unit="ms/step",
            peer_name="1 device",
        )
    ]
