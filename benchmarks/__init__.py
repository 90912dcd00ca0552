"""Benchmarks: `python -m benchmarks [NAME ...]` prints ratios against peers measured in one run."""
