"""Timing and reporting shared by every benchmark module.

A benchmark module is any `benchmarks/<name>.py` with a `run(quick=False)` function that
returns a list of `Result`s. Each result compares our implementation with a peer measured in
the same process, so the ratio is meaningful on whatever machine runs it.
"""

import dataclasses
import statistics
import time


@dataclasses.dataclass
class Result:
    """One comparison. `ours` and `peer` are in `unit`; `higher_is_better` picks the ratio."""

    benchmark: str
    case: str
    ours: float
    peer: float
    unit: str
    peer_name: str
    target: float | None = None
    higher_is_better: bool = False

    @property
    def ratio(self):
        """How many times better we are than the peer (>1 is better)."""
        return self.ours / self.peer if self.higher_is_better else self.peer / self.ours

    @property
    def verdict(self):
        if self.target is None:
            return ""
        return "ok" if self.ratio >= self.target else "BELOW TARGET"


def median_seconds(fn, repeat=20, warmup=3):
    """Median wall time of `fn()` over `repeat` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare_seconds(ours, peer, repeat=20, rounds=3):
    """Interleaved timing of two callables: (ours, peer) best-of-`rounds` medians, in seconds.

    Alternating the two in rounds means a burst of load from elsewhere on the machine hits
    both, which keeps the ratio honest on a shared machine.
    """
    best_ours = best_peer = float("inf")
    for _ in range(rounds):
        best_ours = min(best_ours, median_seconds(ours, repeat=repeat))
        best_peer = min(best_peer, median_seconds(peer, repeat=repeat))
    return best_ours, best_peer


def rotating_medians(functions, rounds, warmup=2):
    """Median seconds per call of each of `functions` ({name: callable}), called in turn.

    Every round calls each function once, starting one further along than the round before.
    Load from elsewhere on the machine, and whatever one call leaves behind for the next
    (caches, background threads), so falls on all of them alike. Time the same function under
    two names to see the noise floor of the comparison.
    """
    names = list(functions)
    times = {name: [] for name in names}
    for index in range(warmup + rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            functions[name]()
            if index >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(record) for name, record in times.items()}


def format_table(results):
    header = ("benchmark", "case", "ours", "peer", "unit", "ratio (x better)", "target", "")
    rows = [header]
    for r in results:
        rows.append(
            (
                r.benchmark,
                r.case,
                f"{r.ours:.4g}",
                f"{r.peer:.4g} ({r.peer_name})",
                r.unit,
                f"{r.ratio:.3f}",
                f">= {r.target}" if r.target is not None else "-",
                r.verdict,
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
