"""The benchmark harness: rotating order, warm-up left out, medians robust to a burst of load."""

import itertools

import pytest

from benchmarks import harness


def test_rotating_medians_rotates_the_order_and_leaves_out_the_warmup(monkeypatch):
    clock = itertools.count()
    monkeypatch.setattr(harness.time, "perf_counter", lambda: next(clock))
    calls = []
    functions = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    harness.rotating_medians(functions, rounds=4, warmup=2)
    assert "".join(calls) == "abc" "bca" "cab" "abc" "bca" "cab"


def test_rotating_medians_are_medians_of_the_timed_rounds(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(harness.time, "perf_counter", lambda: now[0])
    # "slow" takes 2 s a call but for one 100 s burst; "fast" 1 s, after 50 s warm-up calls.
    durations = {"slow": iter([2, 2, 2, 2, 100, 2]), "fast": iter([50, 50, 50, 1, 1, 1])}

    def advance(name):
        now[0] += next(durations[name])

    seconds = harness.rotating_medians(
        {name: (lambda name=name: advance(name)) for name in durations}, rounds=3, warmup=3
    )
    assert seconds == {"slow": pytest.approx(2.0), "fast": pytest.approx(1.0)}
