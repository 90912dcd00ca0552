"""Diagnostics: what `zoo train --diagnostics` costs per epoch.

`train()` on the digits with the diagnostics on ("ours") and off ("peer": the same run without
them, whose training step is the same compiled step), LeNet-5 with its tanh and with ReLU (the
dead-unit count then runs too). Each run trains a few epochs; the first epoch (tracing) is left
out and the median of the others' wall time (`seconds` in the history: the steps, the
validation pass and the end-of-epoch callbacks, the diagnostics included) is compared. Runs
with and without alternate, so that load from elsewhere falls on both. The ratio is the share
of the epoch's speed that the diagnostics keep (1.0: free; 0.5: epochs take twice as long).
On small models the fixed cost (a copy of the weights, one forward-backward pass on 256
validation examples, a Python call per call of the step) is a visible share of a 0.3 s epoch;
on large ones it is one more forward-backward pass per epoch.
"""

import statistics
import tempfile

from benchmarks.harness import Result


def _epoch_seconds(diagnostics, epochs, model_kwargs):
    from zoo.training import train

    with tempfile.TemporaryDirectory() as out:
        result = train(model="lenet5", dataset="digits", epochs=epochs, diagnostics=diagnostics,
                       model_kwargs=model_kwargs, out=out, verbose=0, restart=True)
    return [row["seconds"] for row in result.history[1:]]


def run(quick=False):
    epochs, rounds = (3, 1) if quick else (6, 2)
    results = []
    for case, kwargs in (("lenet5 (tanh), digits", {}),
                         ("lenet5 (relu), digits", {"activation": "relu"})):
        times = {True: [], False: []}
        for _ in range(rounds):
            for diagnostics in (False, True):
                times[diagnostics] += _epoch_seconds(diagnostics, epochs, kwargs)
        results.append(Result(
            "diagnostics", f"{case}: s/epoch", statistics.median(times[True]),
            statistics.median(times[False]), "s", "diagnostics off"))
    return results
