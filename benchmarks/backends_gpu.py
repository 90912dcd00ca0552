"""zoo.resnet50 through Keras on JAX against torchvision's resnet50 in PyTorch, on one GPU.

Prepared for a GPU machine that has JAX and PyTorch but no TensorFlow; NOT YET RUN (no GPU was
available when it was written). Training images per second at batch 256, 224x224, 1000
classes, SGD with momentum 0.9, in float32 and in bfloat16 (Keras' "mixed_bfloat16" policy;
torch.autocast to bfloat16), each framework in its own subprocess:

    python -m benchmarks.backends_gpu                 # batch 256, 20 timed steps
    python -m benchmarks.backends_gpu --batch 128 --steps 10

Both sides keep their batch on the device (no host transfer is timed) and wait for the device
before reading the clock. Keras' step is `train_on_batch` (the step `fit` runs, XLA-compiled);
PyTorch's is the usual eager loop with channels-last memory. Prints one line per case and a
table of images/s with the ratio JAX / PyTorch.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time


def keras_jax(batch, steps, precision):
    import jax
    import jax.numpy as jnp
    import keras
    import numpy as np

    import zoo

    if precision == "bfloat16":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = zoo.resnet50(weights=None, input_shape=(224, 224, 3), classes=1000)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss="sparse_categorical_crossentropy", jit_compile=True)
    rng = np.random.default_rng(0)
    device = jax.devices()[0]
    images = jax.device_put(jnp.asarray(rng.standard_normal((batch, 224, 224, 3)), "float32"),
                            device)
    labels = jax.device_put(jnp.asarray(rng.integers(0, 1000, (batch,))), device)
    for _ in range(3):  # compile and warm up; the returned loss is a host float: a sync
        model.train_on_batch(images, labels)
    start = time.perf_counter()
    for _ in range(steps):
        loss = model.train_on_batch(images, labels)
    seconds = time.perf_counter() - start
    return {"images_per_second": batch * steps / seconds, "device": str(device),
            "loss": float(loss)}


def torch_vision(batch, steps, precision):
    import torch
    import torchvision

    device = torch.device("cuda")
    model = torchvision.models.resnet50(num_classes=1000).to(device)
    model = model.to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    images = torch.randn(batch, 3, 224, 224, device=device).to(memory_format=torch.channels_last)
    labels = torch.randint(0, 1000, (batch,), device=device)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bfloat16"):
            loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        return loss

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        loss = step()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"images_per_second": batch * steps / seconds,
            "device": torch.cuda.get_device_name(0), "loss": float(loss)}


WORKERS = {"jax": keras_jax, "torch": torch_vision}


def measure(framework, batch, steps, precision):
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-m", "benchmarks.backends_gpu", "--worker", framework,
               "--batch", str(batch), "--steps", str(steps), "--precision", precision]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr else "failed"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def compare(batch, steps):
    """One `Result` per precision (JAX images/s against PyTorch's); failed runs are reported."""
    from benchmarks.harness import Result

    results = []
    for precision in ("float32", "bfloat16"):
        runs = {framework: measure(framework, batch, steps, precision) for framework in WORKERS}
        print(f"  {precision}: {runs}", file=sys.stderr, flush=True)
        if any("error" in r for r in runs.values()):
            continue
        results.append(Result(
            benchmark="backends_gpu",
            case=f"resnet50 train 224x224 b{batch} {precision} on {runs['torch']['device']}",
            ours=runs["jax"]["images_per_second"], peer=runs["torch"]["images_per_second"],
            unit="images/s", peer_name="torchvision resnet50, PyTorch", higher_is_better=True,
        ))
    return results


def run(quick=False):
    """For `python -m benchmarks`: nothing without a GPU (this CPU has its own benchmark)."""
    if shutil.which("nvidia-smi") is None:
        print("  backends_gpu: no GPU here (nvidia-smi not found); skipped", file=sys.stderr)
        return []
    return compare(*((64, 5) if quick else (256, 20)))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.backends_gpu",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--worker", choices=tuple(WORKERS))
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args.batch, args.steps, args.precision)))
        return
    from benchmarks.harness import format_table

    print(format_table(compare(args.batch, args.steps)))


if __name__ == "__main__":
    main()
