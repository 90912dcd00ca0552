"""StableSoftmax forward + backward against tf.nn.softmax (the peer), in the same process.

Both run inside one `tf.function` (graph mode, as in training), with and without XLA. The
ratio is the peer's time over ours: 1.0 means as fast, 0.91 means 1.10x slower (the target).
"""

import numpy as np
import tensorflow as tf

from benchmarks.harness import Result, compare_seconds
from layers import stable_softmax

SHAPES = [(256, 1000), (32, 128, 8192)]
TARGET = 1 / 1.10


def _step(softmax, jit):
    @tf.function(jit_compile=jit)
    def forward_backward(x, upstream):
        with tf.GradientTape() as tape:
            tape.watch(x)
            probs = softmax(x)
        return tape.gradient(probs, x, output_gradients=upstream)

    return forward_backward


def run(quick=False):
    results = []
    repeat = 3 if quick else 15
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        if quick:
            shape = shape[:-1] + (min(shape[-1], 1000),)
        x = tf.constant(rng.standard_normal(shape).astype(np.float32) * 10)
        upstream = tf.constant(rng.standard_normal(shape).astype(np.float32))
        for jit in (False, True):
            ours = _step(lambda v: stable_softmax(v, axis=-1), jit)
            peer = _step(lambda v: tf.nn.softmax(v, axis=-1), jit)
            # Same answer first: a fast wrong kernel is no result.
            np.testing.assert_allclose(ours(x, upstream), peer(x, upstream), atol=1e-5)
            t_ours, t_peer = compare_seconds(
                lambda o=ours, a=(x, upstream): o(*a).numpy(),
                lambda p=peer, a=(x, upstream): p(*a).numpy(),
                repeat=repeat,
            )
            results.append(
                Result(
                    benchmark="softmax fwd+bwd",
                    case=f"{list(shape)}{' xla' if jit else ''}",
                    ours=t_ours * 1e3,
                    peer=t_peer * 1e3,
                    unit="ms",
                    peer_name="tf.nn.softmax",
                    target=TARGET,
                )
            )
    return results
