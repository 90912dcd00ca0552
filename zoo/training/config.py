"""A run's settings: what `zoo train` can be told, the model's recipe, and the run record.

* `TrainConfig`: every option. The fields a `zoo.registry.Recipe` covers default to None,
  meaning "from the model's recipe"; a value given overrides the recipe.
* `resolve`: every decision about a run taken once (names, recipe, fine-tuning recipe,
  precision, run directory) into a `ResolvedRun` that the engine and the tuning tools only
  read; `resolve_recipe` is its recipe part: the settings a run uses, and where each came from.
* The run record (`config.json` in the run directory): everything that changes the
  trajectory, written when a run starts and compared when it resumes. A rerun with another
  learning rate, schedule, epoch count, model option... is refused with one message listing
  every difference, instead of silently continuing on a new trajectory.
"""

import dataclasses
import json
import os

from zoo import registry
from zoo.training.finetune import check_finetune_config
from zoo.training.precision import normalize_precision
from zoo.training.records import upgrade_record, write_text_atomic
from zoo.validation import LR_SCALING_RULES, check_bool, check_choice, check_int, check_number

RECORD_VERSION = 1
# Steps per call of the compiled training step when not set. Measured with
# `python -m benchmarks engine` (LeNet-5, batch 32, 2-core CPU): see the README's benchmarks.
DEFAULT_STEPS_PER_EXECUTION = 16
# The TrainConfig fields that a model's Recipe supplies when they are None.
RECIPE_FIELDS = tuple(registry.Recipe().fields())
# When --optimizer names another optimizer than the recipe's, the recipe's optimizer settings
# do not carry over: these are used unless given too (SGD: Keras' default momentum trick of
# the earlier zoo, lr 0.01 with momentum 0.9).
OPTIMIZER_DEFAULTS = {
    "adam": {"lr": 1e-3, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0},
    "adamw": {"lr": 1e-3, "momentum": 0.0, "nesterov": False, "weight_decay": 0.004},
    "sgd": {"lr": 0.01, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0},
    "rmsprop": {"lr": 1e-3, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0},
}
# Clipping when neither the flags nor the recipe set it: recurrent nets need it (Pascanu et
# al. 2013), convnets train without. `--clip-norm 0` turns clipping off for every model.
SEQUENCE_TASKS = ("language-modeling", "image-captioning", "sequence-classification",
                  "sequence-regression")
SEQUENCE_CLIP_NORM = 1.0
# Record keys that describe but do not decide the trajectory.
NOT_COMPARED = ("record_version", "sources", "note")


@dataclasses.dataclass
class TrainConfig:
    """Everything `zoo train` can be told. Defaults are the README's first command.

    Recipe fields (None: the model's `registry.Recipe` value): `optimizer`, `lr`,
    `reference_batch`, `batch_size`, `momentum`, `nesterov`, `weight_decay`, `schedule`,
    `milestones`, `decay_factor`, `warmup_epochs`, `label_smoothing`, `augment`, `epochs`,
    `clip_norm`. See `zoo.registry.Recipe` for their meaning; `lr` is stated for a global batch
    of `reference_batch` examples and scaled to the actual global batch by `lr_scaling`.
    Weight decay is Keras' decoupled form, `w -= lr * weight_decay * w` each step (Loshchilov &
    Hutter 2019), applied by the optimizer to every weight.

    Attributes:
        model: Registry name; None means LeNet-5 (or the dataset's task's first model).
        dataset: Dataset name; None means the model's `default_dataset`.
        batch_size: Per-replica batch size; the global batch is this times the replicas.
        clip_norm: Global-norm gradient clipping; 0 turns it off. When neither this nor the
            recipe sets it, sequence tasks clip at 1.0 and the others do not clip.
        lr_scaling: "linear", "sqrt" or "none" (see `LearningRatePlan`).
        mixed_precision: None/False (float32), "bfloat16" (True means the same) or "float16"
            (with a dynamic loss scale); see `zoo.training.precision`. The caller's dtype
            policy is restored when `train` returns.
        steps_per_execution: Training steps per call of the compiled step (None:
            `DEFAULT_STEPS_PER_EXECUTION`). The weights and sums do not depend on it; the
            progress bar, callbacks' batch hooks and the divergence check see one update per
            call.
        sync_batchnorm: Batch normalisation over the global batch (all replicas) instead of
            each replica's slice, so that N replicas train like one device.
        jit_compile: XLA-compile each replica's forward and backward pass.
        devices: "auto", an int or a list of device names (see `get_strategy`).
        cpu_replicas: Split the CPU into this many logical devices (CPU-only machines).
        crop_border: Pixels dropped from each side of the images.
        batch_size_ramp: None for no ramp; otherwise the first epoch's per-replica batch size
            (0: `batch_size // 8`), doubled each epoch up to `batch_size`.
        seed: Seeds weights, data order, dropout and augmentation.
        out: Run directory; None means `runs/MODEL-DATASET`.
        early_stopping: Patience in epochs (on the validation loss); None disables it.
        save_best: Also keep `best.keras`, the model with the lowest validation loss so far.
        terminate_on_nan: On a NaN/inf loss raise `TrainingDiverged`. If False, restore the
            last finite checkpoint, save it as `model.keras`, evaluate it and return a result
            with `diverged` set. Either way no model with NaN weights is saved.
        checkpoint_every: Also checkpoint every N steps inside an epoch (long epochs resume
            mid-epoch); None: at the end of each epoch only.
        small: Build the model with its registry `small_config` (quick demos).
        model_kwargs: Extra keyword arguments for the model function.
        dataset_kwargs: Extra keyword arguments for the dataset loader (e.g. `num_train`).
        restart: Delete an existing run in `out` and start again instead of resuming.
        verbose: 0 silent, 1 set-up and per-epoch lines, 2 also a progress bar per epoch.
        weights: Start from pretrained weights: "imagenet", a run directory or a `.keras`
            file (see `zoo.training.finetune`); the family's fine-tuning recipe replaces the
            model's recipe. None: random initialisation.
        freeze: Train the head only (the copied layers frozen, batch norm in inference mode).
        unfreeze_after: Two-phase fine-tuning: the head only for this many epochs, then the
            whole network at the learning rate times `finetune_lr_factor`.
        finetune_lr_factor: Phase 2's learning-rate factor; None: the family recipe's.
        diagnostics: Per-layer update/weight ratios, gradient norms and dead ReLUs each epoch
            (`zoo.training.tuning.diagnostics`); off, the training step is unchanged.
        evaluate_test: Evaluate the test split at the end (`zoo tune`'s trials do not: they
            are scored on validation only).
    """

    model: str | None = None
    dataset: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    reference_batch: int | None = None
    lr_scaling: str = "linear"
    warmup_epochs: float | None = None
    schedule: str | None = None
    milestones: tuple | None = None
    decay_factor: float | None = None
    optimizer: str | None = None
    momentum: float | None = None
    nesterov: bool | None = None
    weight_decay: float | None = None
    label_smoothing: float | None = None
    augment: bool | None = None
    clip_norm: float | None = None
    mixed_precision: bool | str | None = False
    steps_per_execution: int | None = None
    sync_batchnorm: bool = False
    jit_compile: bool = False
    devices: object = "auto"
    cpu_replicas: int | None = None
    crop_border: int = 0
    batch_size_ramp: int | None = None
    seed: int = 0
    out: str | None = None
    early_stopping: int | None = None
    save_best: bool = True
    terminate_on_nan: bool = True
    checkpoint_every: int | None = None
    small: bool = False
    model_kwargs: dict = dataclasses.field(default_factory=dict)
    dataset_kwargs: dict = dataclasses.field(default_factory=dict)
    restart: bool = False
    verbose: int = 2
    weights: str | None = None
    freeze: bool = False
    unfreeze_after: int | None = None
    finetune_lr_factor: float | None = None
    diagnostics: bool = False
    evaluate_test: bool = True


@dataclasses.dataclass
class TrainResult:
    """What `train` returns.

    Attributes:
        model: The trained model (the last finite checkpoint's weights if the run diverged).
        history: One dict per epoch; the last also holds the `test_*` metrics.
        run_dir: The run directory.
        test_metrics: The final model's metrics on the test split (evaluated once, at the end).
        seconds: Wall time of this call.
        stopped_early: Early stopping (or a callback) ended the run before its last epoch.
        diverged: The loss became NaN/inf (only with `terminate_on_nan=False`).
        diverged_at: (epoch, step), both 1-based, where it did; None otherwise.
    """

    model: object
    history: list
    run_dir: str
    test_metrics: dict
    seconds: float
    stopped_early: bool = False
    diverged: bool = False
    diverged_at: tuple | None = None


class TrainingDiverged(RuntimeError):
    """The loss (or a weight) became NaN or infinite; the run directory keeps the last finite
    checkpoint. Raised when `terminate_on_nan` is set; the `zoo` command exits with 1."""


def check_config(config):
    """Argument checks for the fields that no recipe covers (recipe fields: `resolve_recipe`)."""
    if not isinstance(config, TrainConfig):
        raise TypeError(f"Argument `config` must be a TrainConfig. Received: config={config!r}")
    check_choice("lr_scaling", config.lr_scaling, LR_SCALING_RULES)
    check_int("crop_border", config.crop_border, minimum=0)
    check_int("batch_size_ramp", config.batch_size_ramp, minimum=0, allow_none=True)
    check_int("early_stopping", config.early_stopping, allow_none=True)
    check_int("checkpoint_every", config.checkpoint_every, allow_none=True)
    check_int("seed", config.seed, minimum=0)
    check_int("steps_per_execution", config.steps_per_execution, allow_none=True)
    check_bool("sync_batchnorm", config.sync_batchnorm)
    check_int("verbose", config.verbose, minimum=0, maximum=2)
    check_bool("diagnostics", config.diagnostics)
    check_bool("evaluate_test", config.evaluate_test)
    check_number("clip_norm", config.clip_norm, low=0, allow_none=True)
    check_finetune_config(config)
    for name in ("model_kwargs", "dataset_kwargs"):
        if not isinstance(getattr(config, name), dict):
            raise TypeError(
                f"Argument `{name}` must be a dict. Received: {name}={getattr(config, name)!r}"
            )


@dataclasses.dataclass(frozen=True)
class ResolvedRun:
    """A run's settings, resolved once by `resolve`; the rest of the engine only reads them.

    Attributes:
        config: The `TrainConfig`, its model and dataset names made canonical.
        info: The model's `ModelInfo` (with the family's fine-tuning recipe under --weights).
        entry: The dataset's `DatasetEntry`.
        settings: Every recipe field's value (`resolve_recipe`).
        sources: Where each came from ("set", "recipe", ...).
        precision: None, "bfloat16" or "float16" (`normalize_precision`).
        run_dir: The absolute run directory.
    """

    config: TrainConfig
    info: object
    entry: object
    settings: dict
    sources: dict
    precision: str | None
    run_dir: str


def resolve(config=None, **overrides):
    """Check a run's options and take every decision that follows from them, once.

    Args:
        config: A `TrainConfig` (None: the defaults).
        **overrides: Fields of `TrainConfig` to replace.

    Returns:
        `ResolvedRun`.

    Raises:
        ValueError: for bad options, unknown names, or a model and dataset of different tasks.
    """
    from zoo.training import build, finetune  # they import TensorFlow

    config = dataclasses.replace(config or TrainConfig(), **overrides)
    check_config(config)
    policy = normalize_precision(config.mixed_precision)  # also its argument check
    info, entry = build.resolve_names(config.model, config.dataset)
    config.model, config.dataset = info.name, entry.name
    info = finetune.adjust_info(info, config)  # --weights: the family's fine-tuning recipe
    settings, sources = resolve_recipe(config, info)
    run_dir = os.path.abspath(config.out or os.path.join("runs", f"{info.name}-{entry.name}"))
    return ResolvedRun(config=config, info=info, entry=entry, settings=settings,
                       sources=sources, precision=policy,
                       run_dir=run_dir)


def resolve_recipe(config, info):
    """The recipe a run uses: the model's, overridden by the fields set in `config`.

    Returns:
        `(settings, sources)`: a dict of every `RECIPE_FIELDS` value (validated by
        `registry.Recipe`), and for each field where it came from: "set", "recipe", or
        "OPTIMIZER default" when the optimizer was changed from the recipe's.
    """
    recipe = info.recipe.fields()
    settings, sources = {}, {}
    for name in RECIPE_FIELDS:
        value = getattr(config, name)
        if value is not None:
            settings[name], sources[name] = value, "set"
        else:
            settings[name], sources[name] = recipe[name], "recipe"
    if sources["optimizer"] == "set" and settings["optimizer"] != recipe["optimizer"]:
        defaults = OPTIMIZER_DEFAULTS.get(settings["optimizer"], {})
        for name, value in defaults.items():
            if sources[name] == "recipe":
                settings[name], sources[name] = value, f"{settings['optimizer']} default"
    if isinstance(settings["milestones"], list):
        settings["milestones"] = tuple(settings["milestones"])
    if settings["clip_norm"] is None and info.task in SEQUENCE_TASKS:
        settings["clip_norm"], sources["clip_norm"] = SEQUENCE_CLIP_NORM, "sequence default"
    if settings["clip_norm"] == 0:  # set to 0: off, also where a default would clip
        settings["clip_norm"] = None
    # The Recipe's own checks give the messages ("Argument `lr` must be ...").
    registry.Recipe(**settings)
    if settings["optimizer"] in ("adam", "adamw") and settings["momentum"]:
        raise ValueError(
            f"Argument `momentum` applies to sgd and rmsprop, not {settings['optimizer']}. "
            f"Received: momentum={settings['momentum']}"
        )
    # Settings the run would otherwise silently ignore.
    if settings["nesterov"] and settings["optimizer"] != "sgd":
        raise ValueError(
            f"Argument `nesterov` applies to sgd, not {settings['optimizer']}. "
            "Received: nesterov=True"
        )
    for name in ("milestones", "decay_factor"):
        if sources[name] == "set" and settings["schedule"] != "step":
            raise ValueError(
                f"Argument `{name}` applies to the step schedule, not "
                f"{settings['schedule']}. Received: {name}={settings[name]}"
            )
    return settings, sources


def describe_recipe(info, settings, sources):
    """One line for the log: the resolved settings, marking those not from the recipe."""
    shown = []
    for name, value in settings.items():
        source = sources[name]
        mark = "" if source == "recipe" else " [set]" if source == "set" else f" [{source}]"
        shown.append(f"{name}={value}{mark}")
    return f"settings (from the recipe of {info.name} unless marked): " + " ".join(shown)


def _plain(value):
    """JSON-normal form (tuples -> lists), so that a saved record compares with a new one."""
    return json.loads(json.dumps(value, default=repr))


def run_record(**fields):
    """The run record: the given fields in JSON-normal form, plus the format version."""
    return _plain({"record_version": RECORD_VERSION, **fields})


def save_record(path, record):
    write_text_atomic(path, json.dumps(record, indent=1, sort_keys=False) + "\n")


def load_record(path):
    """The saved record, or None when there is none; arguments saved under their old names
    (`zoo.validation.RENAMED_ARGUMENTS`) are read with the new ones."""
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return upgrade_record(json.load(f))
    except ValueError as error:  # not JSON, or not UTF-8: a damaged file, named
        raise ValueError(
            f"The run record {path} is damaged ({type(error).__name__}: {error}). Pass "
            "--restart to start the run again, or a new --out DIR."
        ) from None


def differences_from_saved(path, current):
    """`record_differences` against the record saved at `path`; a missing file is one."""
    saved = load_record(path)
    if saved is None:
        return [f"{os.path.basename(path)}: missing"]
    return record_differences(saved, current)


def record_differences(saved, current):
    """`["lr: saved 0.001, now 0.01", ...]` for every trajectory field that differs."""
    keys = [k for k in current if k not in NOT_COMPARED]
    keys += [k for k in saved if k not in current and k not in NOT_COMPARED]
    return [
        f"{k}: saved {saved.get(k, '(absent)')!r}, now {current.get(k, '(absent)')!r}"
        for k in keys
        if saved.get(k, "(absent)") != current.get(k, "(absent)")
    ]
