"""The argparse types of the `zoo` command's numbers, shared by zoo.cli.parser and
zoo.cli.tuning_parser. The bounds are checked by zoo.validation (one definition); the wording is
argparse's."""

import argparse
import math

from zoo.validation import check_number


def int_at_least(minimum):
    """An argparse type: an integer >= `minimum`."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def _number_in(low, high=None, low_inclusive=True, high_inclusive=False):
    """An argparse type: a number above `low` and, if `high` is given, below it (e.g. [0, 1)).
    NaN is refused."""
    if high is None:
        bound = f"{'>=' if low_inclusive else '>'} {low}"
    else:
        bound = f"in {'[' if low_inclusive else '('}{low}, {high}{']' if high_inclusive else ')'}"

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        try:  # the API's check decides (one definition); the wording is argparse's
            return check_number("value", value, low, high, low_inclusive, high_inclusive)
        except ValueError:
            finite = "a finite number " if math.isinf(value) else ""
            raise argparse.ArgumentTypeError(f"must be {finite}{bound}, got {text}") from None

    return parse


positive_float = _number_in(0, low_inclusive=False)
non_negative_float = _number_in(0)
fraction = _number_in(0, 1)
decay_factor = _number_in(0, 1, low_inclusive=False, high_inclusive=True)
_milestone = _number_in(0, 1, low_inclusive=False)
