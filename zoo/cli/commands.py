"""What each `zoo` command does. The commands only parse what they were given and call
`zoo.training` (and the registries); TensorFlow is imported by `zoo.cli.main` first."""

import inspect
import os
import sys

from zoo.cli.parser import data_kwargs
from zoo.cli.tuning_commands import (
    apply_recipe_file,
    lr_find_command,
    overfit_command,
    tune_command,
)


def _print_table(rows):
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))


def format_shape(shape):
    """An input shape for people: (None, 2) -> "Tx2" (T: any sequence length), None -> "-"."""
    if not shape:
        return "-"
    return "x".join("T" if d is None else str(d) for d in shape)


def list_command(args):
    # The committed listing, not the registries: listing models this way loads no TensorFlow.
    from zoo import listing

    pretrained = getattr(args, "pretrained", False)
    last = "weights (top-1)" if pretrained else "default dataset"
    rows = [("model", "task", "paper", "input", "params", last)]
    models = listing.models(args.pattern, task=args.task, pretrained=pretrained)
    if not models and args.pattern is not None:
        from zoo.validation import did_you_mean

        known = [row["name"] for row in listing.models(task=args.task, pretrained=pretrained)]
        raise ValueError(
            f"PATTERN {args.pattern!r} matches no model"
            + (f" of task {args.task!r}" if args.task else "")
            + f".{did_you_mean(args.pattern.strip('*?'), known)} Wildcards: 'resnet*', "
            "'*lstm*'; `zoo list` shows every model."
        )
    for row in models:
        params = f"{row['params']:,}" if row["params"] is not None else "-"
        if pretrained:
            entry = row["weights"]["imagenet"]
            column = f"imagenet: {entry['source']} ({entry['top1']:g}%)"
        else:
            column = row["default_dataset"] or "-"
        rows.append((row["name"], row["task"], row["paper"], format_shape(row["input"]),
                     params, column))
    _print_table(rows)
    if pretrained:
        return 0
    print()
    rows = [("dataset", "task", "offline", "summary")]
    for row in listing.datasets(task=args.task):
        rows.append((row["name"], row["task"], "yes" if row["offline"] else "no",
                     row["summary"]))
    _print_table(rows)
    return 0


def describe_recipe(recipe):
    """One line: how `zoo train` trains a model by default."""
    parts = [f"{recipe.optimizer}, lr {recipe.lr:g} per batch of {recipe.reference_batch}",
             f"batch {recipe.batch_size} per replica", f"{recipe.schedule} schedule",
             f"{recipe.epochs} epochs"]
    if recipe.momentum:
        parts.append(f"momentum {recipe.momentum:g}" + (" (Nesterov)" if recipe.nesterov else ""))
    for label, value in (("weight decay", recipe.weight_decay),
                         ("warm-up epochs", recipe.warmup_epochs),
                         ("label smoothing", recipe.label_smoothing),
                         ("gradient clipping at norm", recipe.clip_norm)):
        if value:
            parts.append(f"{label} {value:g}")
    if recipe.schedule == "step":
        parts.append(f"x{recipe.decay_factor:g} at {', '.join(f'{m:g}' for m in recipe.milestones)}"
                     " of training")
    if recipe.augment is False:
        parts.append("no augmentation")
    elif recipe.augment:
        parts.append("the dataset's augmentation (also opt-in ones: the digits' shifts)")
    return ", ".join(parts)


def _loader_options(loader):
    options = []
    for name, parameter in inspect.signature(loader).parameters.items():
        if parameter.default is inspect.Parameter.empty:
            options.append(f"{name} (required)")
        else:
            options.append(f"{name}={parameter.default!r}")
    return ", ".join(options) or "none"


def _finetune_line(info):
    """How `zoo train --weights` trains an image classifier ("" for other tasks)."""
    if info.task != "image-classification":
        return ""
    from zoo.training.finetune import finetune_recipe

    recipe = finetune_recipe(info.name)
    return (f"{recipe.optimizer}, lr {recipe.lr:g} per batch of {recipe.batch_size} for the "
            f"head, x{recipe.lr_factor:g} after --unfreeze-after, {recipe.epochs} epochs")


def info_command(args):
    from zoo import registry
    from zoo.data import base as data_base

    if args.name in data_base.list_datasets():
        entry = data_base.dataset_entry(args.name)
        print(f"{entry.name}: {entry.summary}\n  task: {entry.task}\n  offline: {entry.offline}\n"
              f"  options (--data-option KEY=VALUE): {_loader_options(entry.loader)}")
        return 0
    info = registry.model_info(args.name)
    print(f"{info.name}: {info.summary}")
    for label, value in (
        ("task", info.task),
        ("family", info.family),
        ("paper", f"{info.paper} {info.paper.url}"),
        ("default input", format_shape(info.default_input_shape)),
        ("minimum input", info.min_input_shape),
        ("parameters", f"{info.params:,}" if info.params is not None else "-"),
        ("default dataset", info.default_dataset),
        ("small config", info.small_config),
        ("pretrained weights", ", ".join(info.weights) or "none"),
        ("recipe", describe_recipe(info.recipe)),
        ("fine-tuning recipe (--weights)", _finetune_line(info)),
        ("paper's setting", info.recipe.paper_setting),
        ("adaptation", info.recipe.adaptation),
    ):
        if value not in ("", None):
            print(f"  {label}: {value}")
    doc = (info.builder.__doc__ or "").strip().splitlines()
    if doc:
        print(f"  {doc[0]}")
    for weights_name, entry in info.weights.items():
        print(f"  weights={weights_name!r}:")
        prefix = " (prefix)" if entry.hash_is_prefix else ""
        for label, value in (
            ("source", f"{entry.source}" + (f" {entry.source_name}" if entry.source_name else "")),
            ("url", entry.url),
            ("file", entry.file_name),
            (f"{entry.hash_algorithm}{prefix}", entry.file_hash),
            ("without top", entry.url_without_top),
            ("licence", entry.license),
            ("preprocessing", entry.preprocessing.describe()),
            ("top-1", f"{entry.top1:g}% ({entry.top1_reference})"),
        ):
            if value:
                print(f"    {label}: {value}")
    return 0


def train_command(args):
    from zoo.training import TrainConfig, train
    from zoo.training.config import RECIPE_FIELDS

    apply_recipe_file(args)  # --recipe FILE fills the recipe flags not given
    loader_options = data_kwargs(args)
    missing = _missing_loader_options(args.dataset, loader_options) if args.dataset else []
    if missing:
        flag = "--data-path PATH" if missing[0] == "path" else f"--data-option {missing[0]}=..."
        raise ValueError(f"Dataset {args.dataset!r} needs {missing[0]}: pass {flag}.")
    # Every recipe field has a flag of its name; None (not given) takes the model's recipe.
    recipe = {name: getattr(args, name) for name in RECIPE_FIELDS}
    config = TrainConfig(
        model=args.model,
        dataset=args.dataset,
        **recipe,
        lr_scaling=args.lr_scaling,
        mixed_precision=args.mixed_precision,
        steps_per_execution=args.steps_per_execution,
        sync_batchnorm=args.sync_batchnorm,
        jit_compile=args.jit_compile,
        devices=args.devices,
        cpu_replicas=args.cpu_replicas,
        crop_border=args.crop_border,
        batch_size_ramp=args.batch_size_ramp,
        seed=args.seed,
        out=args.out,
        checkpoint_every=args.checkpoint_every,
        early_stopping=args.early_stopping,
        save_best=not args.no_best,
        evaluate_test=not args.no_test,
        terminate_on_nan=not args.keep_going_on_nan,
        small=args.small,
        restart=args.restart,
        verbose=1 if args.quiet else 2,
        dataset_kwargs=loader_options,
        weights=args.weights,
        freeze=args.freeze,
        unfreeze_after=args.unfreeze_after,
        finetune_lr_factor=args.finetune_lr_factor,
        diagnostics=args.diagnostics,
    )
    if args.overfit_batch:
        return overfit_command(config, args)
    result = train(config)
    # --keep-going-on-nan saves and evaluates the last finite model; the run still failed.
    return 1 if result.diverged else 0


def _check_dataset_fits(saved, dataset):
    """A one-line error when the run's model is for another task than `dataset`."""
    from zoo import registry
    from zoo.data import base as data_base

    entry = data_base.dataset_entry(dataset)
    model_name = saved.record.get("model")
    task = saved.record.get("data", {}).get("task")
    if task is None and model_name:
        task = registry.model_info(model_name).task
    if task is not None and task != entry.task:
        options = ", ".join(data_base.list_datasets(task=task))
        raise ValueError(
            f"The model of {saved.run_dir!r} ({model_name or 'a'} {task} model) cannot be "
            f"evaluated on {dataset!r}, a {entry.task} dataset. Use one of the {task} datasets "
            f"({options})."
        )


def _missing_loader_options(dataset, options):
    """The loader arguments of `dataset` without a default that `options` does not give."""
    from zoo.data import base as data_base

    loader = data_base.dataset_entry(dataset).loader
    return [name for name, parameter in inspect.signature(loader).parameters.items()
            if parameter.default is inspect.Parameter.empty and name not in (options or {})]


def _check_loader_options(dataset, options, path):
    """A one-line error when the dataset's loader needs an argument nobody gives it."""
    missing = _missing_loader_options(dataset, options)
    if missing:
        raise ValueError(
            f"Dataset {dataset!r} needs {missing[0]}=..., which only a run's record gives: "
            f"evaluate the run directory that holds {path!r} (zoo evaluate RUN)."
        )


def evaluate_command(args):
    import zoo
    from zoo.training import evaluate_saved_model
    from zoo.training.saved_runs import find_saved_model

    zoo.load_families()  # registers the zoo's model classes before Keras deserialises one
    saved = find_saved_model(args.path, argument="PATH")
    dataset = args.dataset or saved.record.get("dataset")
    if dataset is None:
        raise ValueError(
            f"PATH {args.path!r} has no run record beside it (config.json): pass --dataset, the "
            "dataset the model was trained on."
        )
    _check_dataset_fits(saved, dataset)
    # (Compared by name: a run without model.keras yet has only best.keras.)
    if saved.run_dir and os.path.realpath(saved.model_file) == os.path.join(
            os.path.realpath(saved.run_dir), "model.keras"):
        # The run's own model: the engine reads everything else from the run's record.
        target, options = saved.run_dir, {}
    else:  # best.keras, or a file without a run: what the record says, passed explicitly
        target, options = saved.model_file, {"outputs": saved.record.get("outputs")}
        loader_options = saved.record.get("dataset_kwargs") if dataset == saved.record.get(
            "dataset") else None
        options["dataset_kwargs"] = loader_options
        _check_loader_options(dataset, loader_options, args.path)
    if args.outputs:
        options["outputs"] = args.outputs
    crop_border = args.crop_border or saved.record.get("crop_border", 0)
    try:
        metrics, name = evaluate_saved_model(target, dataset, batch_size=args.batch_size,
                                             crop_border=crop_border, split=args.split,
                                             beam_width=args.beam_width, **options)
    except ValueError as error:
        if "in user code:" not in str(error):
            raise
        # Raised while tracing the model on the data: they do not fit (e.g. an image model on
        # sequences); the last line of TensorFlow's report says how.
        reason = str(error).strip().splitlines()[-1].strip()
        raise ValueError(f"The model {args.path!r} does not fit the data of {dataset!r}: "
                         f"{reason}") from None
    print(f"{name} {args.split}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    return 0


def predict_command(args):
    from zoo.training.predict import predict_images
    from zoo.training.predict_output import format_predictions, image_paths

    paths = image_paths(args.images)
    results = predict_images(paths, args.model, top=args.top, dataset=args.dataset,
                             data_kwargs=data_kwargs(args) or None, batch_size=args.batch_size)
    sys.stdout.write(format_predictions(paths, results, args.format))
    return 0


def generate_command(args):
    from zoo.training.predict import generate_text

    text = generate_text(args.model, args.prompt, length=args.length,
                         temperature=args.temperature, seed=args.seed)
    sys.stdout.write(args.prompt + text + "\n")
    return 0


def caption_command(args):
    from zoo.training.predict import caption_images

    captions = caption_images(args.images, args.model, beam_width=args.beam_width,
                              batch_size=args.batch_size)
    for path, text in zip(args.images, captions):
        print(f"{path}: {text}")
    return 0


def export_command(args):
    from zoo.training.export import export_model

    notes = []
    path = export_model(args.path, args.format, out=args.out, say=notes.append)
    print(f"exported {args.path} as {args.format}: {path}")
    for note in notes:
        print(f"note: {note}")
    return 0


COMMANDS = {
    "list": list_command,
    "info": info_command,
    "train": train_command,
    "evaluate": evaluate_command,
    "predict": predict_command,
    "generate": generate_command,
    "caption": caption_command,
    "export": export_command,
    "lr-find": lr_find_command,
    "tune": tune_command,
}
