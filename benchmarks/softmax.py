"""StableSoftmax against tf.nn.softmax (the peer), forward and forward + backward.

Both run inside one `tf.function` (graph mode, as in training), with and without XLA
(`jit_compile=True`), on [256, 1000], [32, 128, 1000] and [32, 128, 8192] float32 logits.
The ratio is the peer's time over ours: 1.0 means as fast; the target is 0.90.

A 10% target on a shared machine is close to its noise, so three functions take turns, one
call each per round, for many rounds (`harness.rotating_medians`): ours, the peer and the peer
again. Ratios are of median times; the peer's ratio to itself is printed as the noise floor.

    python -m benchmarks softmax           # all three shapes (the last: 134 MB per tensor)
    python -m benchmarks softmax --quick   # the two smaller shapes, fewer rounds
"""

import numpy as np
import tensorflow as tf

from benchmarks.harness import Result, rotating_medians
from zoo.layers import stable_softmax

# shape -> rounds: enough calls for stable medians on 2 busy CPU cores (about 3 minutes in all).
SHAPES = {(256, 1000): 400, (32, 128, 1000): 150, (32, 128, 8192): 30}
QUICK_SHAPES = {(256, 1000): 100, (32, 128, 1000): 20}
TARGET = 0.90


def _compiled(softmax, jit, backward):
    @tf.function(jit_compile=jit, autograph=False)
    def forward(x, upstream):
        del upstream
        return softmax(x)

    @tf.function(jit_compile=jit, autograph=False)
    def forward_backward(x, upstream):
        with tf.GradientTape() as tape:
            tape.watch(x)
            probs = softmax(x)
        return tape.gradient(probs, x, output_gradients=upstream)

    return forward_backward if backward else forward


def _case(shape, jit, backward, rounds, rng):
    x = tf.constant(rng.standard_normal(shape).astype(np.float32) * 10)
    upstream = tf.constant(rng.standard_normal(shape).astype(np.float32))
    functions = {
        "ours": _compiled(lambda v: stable_softmax(v, axis=-1), jit, backward),
        "peer": _compiled(lambda v: tf.nn.softmax(v, axis=-1), jit, backward),
        "peer again": _compiled(lambda v: tf.nn.softmax(v, axis=-1), jit, backward),
    }
    # Same answer first: a fast wrong kernel is no result.
    np.testing.assert_allclose(
        functions["ours"](x, upstream), functions["peer"](x, upstream), atol=1e-5
    )
    seconds = rotating_medians(
        {name: (lambda f=f: f(x, upstream).numpy()) for name, f in functions.items()},
        rounds=rounds,
        warmup=3,
    )
    mode = "fwd+bwd" if backward else "fwd"
    case = f"{mode} {list(shape)}{' xla' if jit else ''}"
    common = dict(benchmark="softmax", unit="ms", peer_name="tf.nn.softmax")
    return [
        Result(case=case, ours=seconds["ours"] * 1e3, peer=seconds["peer"] * 1e3,
               target=TARGET, **common),
        Result(case="  noise floor: tf.nn.softmax against itself",
               ours=seconds["peer again"] * 1e3, peer=seconds["peer"] * 1e3, **common),
    ]


def run(quick=False):
    rng = np.random.default_rng(0)
    results = []
    for shape, rounds in (QUICK_SHAPES if quick else SHAPES).items():
        for jit in (False, True):
            for backward in (False, True):
                results += _case(shape, jit, backward, rounds, rng)
    return results
