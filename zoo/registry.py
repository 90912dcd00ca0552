"""The model registry: every model function registers itself with what a user needs to know.

Modelled on timm's registry: a decorator on the public model function, `list_models` with
wildcards, `create_model(name, **kwargs)`, and `model_info(name)`.
"""

import dataclasses
import fnmatch
import inspect
from collections.abc import Callable

from zoo.validation import (  # OPTIMIZERS, SCHEDULES: public here too
    OPTIMIZERS,
    SCHEDULES,  # noqa: F401 (public here too)
    check_choice,
    check_int,
    check_learning_rate_plan,
    check_number,
    did_you_mean,
    unknown_name_error,
)
from zoo.weights import catalog as weights_catalog
from zoo.weights.entries import Preprocessing, WeightsEntry  # noqa: F401 (public here too)

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
class Recipe:
    """How `zoo train` trains a model unless a flag overrides a field.

    The values are the paper's where they work at the zoo's scale; where they do not (small
    offline datasets, a few epochs on a CPU), `adaptation` says what changed and why, and
    `paper_setting` records what the paper did.

    Attributes:
        optimizer: One of `OPTIMIZERS`.
        lr: Peak learning rate for a global batch of `reference_batch` examples; the training
            engine scales it to the actual global batch (`--lr-scaling`, Goyal et al. 2017).
        reference_batch: The global batch `lr` is stated for (ResNet: 0.1 per 256).
        batch_size: Per-replica batch size `zoo train` uses.
        momentum: SGD/RMSprop momentum (0 for none).
        nesterov: Nesterov momentum (SGD).
        weight_decay: L2 weight decay, applied by the optimizer.
        schedule: One of `SCHEDULES` (after warm-up).
        milestones: For the step schedule: fractions of training at which the rate is multiplied
            by `decay_factor`.
        decay_factor: The step schedule's multiplier.
        warmup_epochs: Gradual linear warm-up, in epochs.
        label_smoothing: Label smoothing for classification losses (Szegedy et al. 2016).
        augment: The dataset's training-time augmentation: True uses it where the dataset has
            one, False never, None (the default) only where the dataset turns it on by default
            (CIFAR's crops and flips; the digits' shifts are opt-in, chosen by LeNet-5's recipe
            on validation). See `zoo.training.pipeline.augmentation`.
        epochs: Epochs of a full run.
        clip_norm: Global-norm gradient clipping, or None.
        paper_setting: One line: what the paper itself used.
        adaptation: One line: what the zoo changes for small data and why ("" if nothing).
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    reference_batch: int = 32
    batch_size: int = 32
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "cosine"
    milestones: tuple = (0.5, 0.75)
    decay_factor: float = 0.1
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    augment: bool | None = None
    epochs: int = 15
    clip_norm: float | None = None
    paper_setting: str = ""
    adaptation: str = ""

    def __post_init__(self):
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_learning_rate_plan(self.lr, self.reference_batch, self.epochs, self.schedule,
                                 self.warmup_epochs, self.milestones, self.decay_factor)
        check_int("batch_size", self.batch_size)
        check_number("momentum", self.momentum, low=0, high=1, high_inclusive=False)
        check_number("weight_decay", self.weight_decay, low=0)
        check_number("label_smoothing", self.label_smoothing, low=0, high=1,
                     high_inclusive=False)
        check_number("clip_norm", self.clip_norm, low=0, low_inclusive=False, allow_none=True)
        if self.augment not in (True, False, None):
            raise ValueError(f"Argument `augment` must be True, False or None. "
                             f"Received: augment={self.augment!r}")

    def fields(self):
        """The training fields (everything but the two descriptive lines), as a dict."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("paper_setting", "adaptation")
        }


DEFAULT_RECIPE = Recipe()


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
        recipe: How `zoo train` trains it (`Recipe`).
        weights: Pretrained weights by name: {"imagenet": WeightsEntry} (source, URL, hash,
            licence, preprocessing, published top-1), {} if none (`zoo.weights.catalog`).
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
    recipe: Recipe = DEFAULT_RECIPE
    weights: dict = dataclasses.field(default_factory=dict)

    @property
    def imagenet_weights(self):
        """Whether `weights="imagenet"` is available."""
        return "imagenet" in self.weights


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
    recipe=None,
    weights=None,
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
        recipe: How `zoo train` trains it; None means `DEFAULT_RECIPE`.
        weights: {name: WeightsEntry}; None: the catalog's (`zoo.weights.catalog`).

    Returns:
        The decorator; it returns the function unchanged.
    """
    check_choice("task", task, TASKS)
    if recipe is not None and not isinstance(recipe, Recipe):
        raise TypeError(f"Argument `recipe` must be a Recipe or None. Received: recipe={recipe!r}")

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
            recipe=recipe or DEFAULT_RECIPE,
            weights=dict(weights_catalog.weights_of(model_name) if weights is None else weights),
        )
        return fn

    return decorator


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of a family's variant table (timm's `default_cfgs`): what the registry needs to
    know about one model that its family does not share.

    A family file holds `VARIANTS = {"vgg16": Variant(...), ...}`, one private builder, and one
    short public function per variant, registered with `register_variant(VARIANTS, ...)`.

    Attributes:
        summary: One line: what is distinctive about it.
        params: `count_params()` at the default configuration, checked by the tests.
        recipe: How `zoo train` trains it.
        small_config: Keyword arguments for a small, fast instance; None: the family's.
        spec: The architecture row the family's builder reads (e.g. convolutions per block).
        paper: The variant's own paper where it is not the family's (ZFNet in the AlexNet
            family); None: the family's.
        min_input_shape: The variant's own smallest input; None: the family's.
        default_input_shape: The variant's own default input; None: the family's.
        defaults: Builder arguments whose default differs for this variant (e.g.
            `{"bidirectional": True}`); the variant function's signature shows them.
        excluded: Builder arguments this variant does not take (a TypeError, as for any
            unknown argument).
    """

    summary: str
    params: int
    recipe: Recipe = DEFAULT_RECIPE
    small_config: dict | None = None
    spec: object = None
    paper: Paper | None = None
    min_input_shape: tuple | None = None
    default_input_shape: tuple | None = None
    defaults: dict = dataclasses.field(default_factory=dict)
    excluded: tuple = ()

    def arguments(self, variant, kwargs):
        """`kwargs` over this variant's defaults; an excluded argument is a TypeError."""
        for name in self.excluded:
            if name in kwargs:
                raise TypeError(f"{variant}() got an unexpected keyword argument {name!r}")
        return {**self.defaults, **kwargs}


def variant_signature(builder, row):
    """The signature a variant function offers: its builder's keyword arguments (after the
    leading `variant`), with the row's own defaults and without its excluded arguments."""
    parameters = list(inspect.signature(builder).parameters.values())[1:]
    return inspect.Signature(
        [
            p.replace(default=row.defaults[p.name]) if p.name in row.defaults else p
            for p in parameters
            if p.name not in row.excluded
        ]
    )


def register_variant(table, builder, **family):
    """Decorator: register a variant function with its row of `table` (keyed by the function's
    name) and the arguments its family shares (task, paper, shapes, default dataset,
    small_config).

        @register_variant(VARIANTS, _vgg, task="image-classification", paper=VGG_PAPER, ...)
        def vgg16(**kwargs):
            '''VGG-16 (configuration D) of Simonyan & Zisserman 2014.'''
            return _vgg("vgg16", **kwargs)

    The function keeps its own name, code and one-line docstring; its `__signature__` is the
    builder's keyword arguments (`variant_signature`), so `help()`, IDEs and the training
    engine (which reads `classifier_activation`'s default) see the real arguments.
    """

    def decorator(fn):
        row = table[fn.__name__]
        fn.__signature__ = variant_signature(builder, row)
        arguments = dict(family)
        for own in ("small_config", "paper", "min_input_shape", "default_input_shape"):
            if getattr(row, own) is not None:
                arguments[own] = getattr(row, own)
        return register_model(
            summary=row.summary,
            params=row.params,
            recipe=row.recipe,
            **arguments,
        )(fn)

    return decorator


def _register_builtin_models():
    """Import the zoo's model families, which register their models on import (`import zoo`
    is lazy, so a caller that reaches the registry first would otherwise find it empty)."""
    import zoo

    zoo.load_families()


def _lookup(name):
    if name not in _REGISTRY:
        _register_builtin_models()
    if name in _REGISTRY:
        return _REGISTRY[name]
    raise unknown_name_error("model", name, _REGISTRY)


def list_models(pattern=None, task=None, pretrained=False):
    """Registered model names, sorted.

    Args:
        pattern: Optional shell-style wildcard, e.g. "resnet*" or "*lstm*".
        task: Optional task filter (one of `TASKS`).
        pretrained: Only models with pretrained weights (`ModelInfo.weights`), as timm's.
    """
    if task is not None:
        check_choice("task", task, TASKS)
    _register_builtin_models()
    names = sorted(_REGISTRY)
    if pattern is not None:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    if task is not None:
        names = [n for n in names if _REGISTRY[n].task == task]
    if pretrained:
        names = [n for n in names if _REGISTRY[n].weights]
    return names


def model_info(name):
    """The `ModelInfo` of a registered model; unknown names suggest the closest ones."""
    return _lookup(name)


class UnknownArgumentError(TypeError, ValueError):
    """A model argument the model does not take (a TypeError, as Python's own, and a
    ValueError, so that the `zoo` command reports it in one line)."""


def create_model(name, /, **kwargs):
    """Build a registered model: `create_model("vgg16", classes=10, input_shape=(32, 32, 3))`.

    Raises:
        UnknownArgumentError: for an argument the model function does not take, naming the
            model and suggesting the closest of its arguments.
    """
    info = _lookup(name)
    parameters = inspect.signature(info.builder).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        for key in kwargs:
            if key not in parameters:
                raise UnknownArgumentError(
                    f"Model {info.name!r} takes no argument {key!r}."
                    f"{did_you_mean(key, parameters)} Its arguments: "
                    f"{', '.join(parameters)}. Received: {key}={kwargs[key]!r}"
                )
    return info.builder(**kwargs)


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
