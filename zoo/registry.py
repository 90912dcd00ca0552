"""The model registry: every model function registers itself with what a user needs to know.

Modelled on timm's registry: a decorator on the public model function, `list_models` with
wildcards, `create_model(name, **kwargs)`, and `model_info(name)`.
"""

import dataclasses
import difflib
import fnmatch
from collections.abc import Callable

TASKS = (
    "image-classification",
    "sequence-classification",
    "sequence-regression",
    "language-modeling",
    "image-captioning",
)


@dataclasses.dataclass(frozen=True)
class Paper:
    """The publication a model follows."""

    authors: str
    year: int
    title: str
    url: str

    def __str__(self):
        return f"{self.authors} ({self.year}), {self.title}"


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one model.

    Attributes:
        name: Registry name (the public function's name, e.g. "vgg16").
        task: One of `TASKS`.
        family: Module family ("cnn", "rnn", "captioning").
        paper: The paper the model follows.
        summary: One line: what is distinctive about it.
        default_input_shape: Input shape at the default configuration (without batch).
        min_input_shape: Smallest input shape that works (without batch); None if any.
        params: `count_params()` at the default configuration, checked by the tests.
        small_config: Keyword arguments for a small, fast instance (tests, demos).
        default_dataset: Dataset `zoo train --model NAME` uses when none is given.
        builder: The model function itself.
    """

    name: str
    task: str
    family: str
    paper: Paper
    summary: str
    default_input_shape: tuple | None
    min_input_shape: tuple | None
    params: int | None
    small_config: dict
    default_dataset: str | None
    builder: Callable = dataclasses.field(repr=False, compare=False)


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    *,
    task,
    paper,
    summary,
    default_input_shape=None,
    min_input_shape=None,
    params=None,
    small_config=None,
    default_dataset=None,
    name=None,
):
    """Decorator that registers a public model function under its name.

    Args:
        task: One of `TASKS`.
        paper: A `Paper`.
        summary: One-line description.
        default_input_shape: Input shape (no batch) at the default configuration.
        min_input_shape: Smallest accepted input shape (no batch).
        params: Parameter count at the default configuration (`model.count_params()`).
        small_config: kwargs giving a small instance for quick tests.
        default_dataset: name in `zoo.data.list_datasets()` used by `zoo train --model NAME`.
        name: Registry name; defaults to the function's `__name__`.

    Returns:
        The decorator; it returns the function unchanged.
    """
    if task not in TASKS:
        raise ValueError(f"Argument `task` must be one of {TASKS}. Received: task={task!r}")

    def decorator(fn):
        model_name = name or fn.__name__
        if model_name in _REGISTRY:
            raise ValueError(f"A model named {model_name!r} is already registered.")
        family = fn.__module__.split(".")[1] if fn.__module__.startswith("zoo.") else "user"
        _REGISTRY[model_name] = ModelInfo(
            name=model_name,
            task=task,
            family=family,
            paper=paper,
            summary=summary,
            default_input_shape=tuple(default_input_shape) if default_input_shape else None,
            min_input_shape=tuple(min_input_shape) if min_input_shape else None,
            params=params,
            small_config=dict(small_config or {}),
            default_dataset=default_dataset,
            builder=fn,
        )
        return fn

    return decorator


def unknown_name_error(kind, name, known):
    """A ValueError for an unknown model or dataset name that suggests the closest ones."""
    close = difflib.get_close_matches(str(name), list(known), n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(
        f"Unknown {kind} {name!r}.{hint} Available {kind}s: {', '.join(sorted(known))}."
    )


def _lookup(name):
    if name in _REGISTRY:
        return _REGISTRY[name]
    raise unknown_name_error("model", name, _REGISTRY)


def list_models(pattern=None, task=None):
    """Registered model names, sorted.

    Args:
        pattern: Optional shell-style wildcard, e.g. "resnet*" or "*lstm*".
        task: Optional task filter (one of `TASKS`).
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"Argument `task` must be one of {TASKS}. Received: task={task!r}")
    names = sorted(_REGISTRY)
    if pattern is not None:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    if task is not None:
        names = [n for n in names if _REGISTRY[n].task == task]
    return names


def model_info(name):
    """The `ModelInfo` of a registered model; unknown names suggest the closest ones."""
    return _lookup(name)


def create_model(name, /, **kwargs):
    """Build a registered model: `create_model("vgg16", classes=10, input_shape=(32, 32, 3))`."""
    return _lookup(name).builder(**kwargs)


def markdown_table():
    """The README's model table, generated from the registry."""
    rows = [
        "| model | task | paper | default input | parameters | summary |",
        "| --- | --- | --- | --- | ---: | --- |",
    ]
    for name in list_models():
        info = _REGISTRY[name]
        shape = (
            "x".join("T" if d is None else str(d) for d in info.default_input_shape)
            if info.default_input_shape
            else "-"
        )
        params = f"{info.params:,}" if info.params is not None else "-"
        paper = f"[{info.paper.authors} {info.paper.year}]({info.paper.url})"
        rows.append(f"| `{name}` | {info.task} | {paper} | {shape} | {params} | {info.summary} |")
    return "\n".join(rows) + "\n"


README_START = "<!-- models:start -->"
README_END = "<!-- models:end -->"


def update_readme(path="README.md"):
    """Rewrite the model table between the README's markers. Returns True if it changed."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    new = f"{head}{README_START}\n{markdown_table()}{README_END}{tail}"
    if new != text:
        with open(path, "w", encoding="utf-8") as f:
            f.write(new)
    return new != text
