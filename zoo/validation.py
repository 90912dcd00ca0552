"""The argument checks every zoo module shares.

One wording for one kind of mistake, Keras' style: the argument, what is allowed, and
"Received: name=value". Models, data loaders, training and the command line call these
instead of keeping their own copies.

    check_int("units", units)                      # int >= 1
    check_int("crop_border", border, minimum=0)    # int >= 0
    check_int("max_words", n, allow_none=True)     # int >= 1 or None
    check_number("lr", lr, low=0, low_inclusive=False)
    check_rate("dropout", rate)                    # number in [0, 1)
    check_choice("cell", cell, ("rnn", "lstm", "gru"))   # with "Did you mean ...?"
    check_bool("bidirectional", bidirectional)     # True or False, not 1 or "yes"

`layers/` keeps its own checks: it imports Keras only, never zoo.
"""

import difflib
import math

# The allowed values of the settings that the API and the command line share, defined once
# (the `zoo` parser imports them without loading TensorFlow).
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "step", "cosine")
LR_SCALING_RULES = ("linear", "sqrt", "none")
PRECISIONS = ("bfloat16", "float16")
EXPORT_FORMATS = ("saved_model", "onnx", "litert")
# Model and dataset arguments renamed to keras-hub's names, old -> new. A call with the old
# name fails with a "Did you mean" naming the new one (`did_you_mean`); run and search
# records written before the rename are read with the new names (`rename_arguments`).
RENAMED_ARGUMENTS = {"dropout_rate": "dropout", "vocab_size": "vocabulary_size"}


def is_int(value):
    """True for Python and NumPy integers, False for bools (True is not a size)."""
    if isinstance(value, bool):
        return False
    try:
        import numpy as np

        return isinstance(value, (int, np.integer))
    except ImportError:  # pragma: no cover - NumPy is a dependency
        return isinstance(value, int)


def check_int(name, value, minimum=1, maximum=None, allow_none=False):
    """`value` must be an int in [minimum, maximum] (or None when `allow_none`).

    Returns:
        The value as a Python int (or None).
    """
    if value is None and allow_none:
        return None
    if not is_int(value) or value < minimum or (maximum is not None and value > maximum):
        allowed = f"an int >= {minimum}" if maximum is None else f"an int in [{minimum}, {maximum}]"
        if allow_none:
            allowed += " or None"
        raise ValueError(f"Argument `{name}` must be {allowed}. Received: {name}={value!r}")
    return int(value)


def check_number(
    name, value, low=None, high=None, low_inclusive=True, high_inclusive=True, allow_none=False
):
    """`value` must be a finite real number within the given bounds.

    Returns:
        The value as a Python float (or None).
    """
    if value is None and allow_none:
        return None
    ok = not isinstance(value, bool)
    try:
        number = float(value) if ok else math.nan
    except (TypeError, ValueError):
        ok, number = False, math.nan
    ok = ok and math.isfinite(number)
    if ok and low is not None:
        ok = number >= low if low_inclusive else number > low
    if ok and high is not None:
        ok = number <= high if high_inclusive else number < high
    if not ok:
        bounds = []
        if low is not None:
            bounds.append(f"{'>=' if low_inclusive else '>'} {low}")
        if high is not None:
            bounds.append(f"{'<=' if high_inclusive else '<'} {high}")
        allowed = "a finite number" + (f" {' and '.join(bounds)}" if bounds else "")
        if allow_none:
            allowed += " or None"
        raise ValueError(f"Argument `{name}` must be {allowed}. Received: {name}={value!r}")
    return number


def check_learning_rate_plan(lr, reference_batch, epochs, schedule, warmup_epochs, milestones,
                             decay_factor):
    """The learning-rate fields a `registry.Recipe` and a `LearningRatePlan` share, checked
    in one place (the same messages from both)."""
    check_number("lr", lr, low=0, low_inclusive=False)
    check_int("reference_batch", reference_batch)
    check_int("epochs", epochs)
    check_choice("schedule", schedule, SCHEDULES)
    check_number("warmup_epochs", warmup_epochs, low=0)
    for milestone in milestones:
        check_number("milestones", milestone, low=0, high=1, low_inclusive=False,
                     high_inclusive=False)
    check_number("decay_factor", decay_factor, low=0, high=1, low_inclusive=False)


def check_bool(name, value):
    """`value` must be True or False (not 1, "yes" or None: those are usually a mix-up).

    Returns:
        The value.
    """
    if not isinstance(value, bool):
        raise ValueError(f"Argument `{name}` must be True or False. Received: {name}={value!r}")
    return value


def check_rate(name, value):
    """A dropout-like rate: a number in [0, 1)."""
    return check_number(name, value, low=0, high=1, high_inclusive=False)


def closest(name, known, n=3, cutoff=0.5):
    """The known names closest to `name` (for "Did you mean ...?")."""
    return difflib.get_close_matches(str(name), [str(k) for k in known], n=n, cutoff=cutoff)


def first_line(text, limit=300):
    """The first line of a library's message, at most `limit` characters (the rest of
    TensorFlow's and Keras' messages is graph dumps and tracebacks)."""
    return (str(text).strip().splitlines() or [""])[0][:limit]


def did_you_mean(name, known):
    """" Did you mean 'x' or 'y'?" for the closest known names, or "".

    A renamed argument (`RENAMED_ARGUMENTS`) whose new name is known gets the new name.
    """
    known = [str(k) for k in known]
    renamed = RENAMED_ARGUMENTS.get(str(name))
    if renamed in known:
        return f" Did you mean {renamed!r}? (`{name}` was renamed `{renamed}`.)"
    close = closest(name, known)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def rename_arguments(kwargs):
    """`kwargs` with the old names of `RENAMED_ARGUMENTS` replaced by the new ones (a copy;
    a new name already present wins). For records written before the rename."""
    if not isinstance(kwargs, dict):
        return kwargs
    renamed = {}
    for key, value in kwargs.items():
        new = RENAMED_ARGUMENTS.get(key)
        if new is not None and new in kwargs:
            continue
        renamed[new or key] = value
    return renamed


def check_choice(name, value, allowed):
    """`value` must be one of `allowed`; a near miss gets a suggestion.

    Returns:
        The value.
    """
    allowed = tuple(allowed)
    try:
        ok = value in allowed
    except TypeError:  # unhashable values against a set-like container
        ok = False
    if not ok:
        hint = did_you_mean(value, [a for a in allowed if a is not None]) if isinstance(
            value, str
        ) else ""
        raise ValueError(
            f"Argument `{name}` must be one of {allowed}.{hint} Received: {name}={value!r}"
        )
    return value


def unknown_name_error(kind, name, known):
    """A ValueError for an unknown model, dataset, ... name that suggests the closest ones."""
    return ValueError(
        f"Unknown {kind} {name!r}.{did_you_mean(name, known)} "
        f"Available {kind}s: {', '.join(sorted(map(str, known)))}."
    )
