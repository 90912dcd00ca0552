"""Run benchmarks: `python -m benchmarks` (all), `python -m benchmarks softmax cnn`, `--quick`."""

import argparse
import importlib
import os
import pkgutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import benchmarks  # noqa: E402
from benchmarks.harness import format_table  # noqa: E402

_NOT_BENCHMARKS = {"harness", "__main__", "quality_record", "tuning"}  # helpers, not benchmarks


def available():
    return sorted(
        m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name not in _NOT_BENCHMARKS
    )


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {available()})")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller cases")
    args = parser.parse_args(argv)
    names = args.names or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; available: {available()}")
    results = []
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results.extend(module.run(quick=args.quick))
    print(format_table(results))


if __name__ == "__main__":
    main()
