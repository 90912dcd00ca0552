"""The arguments of the tuning tools: `zoo lr-find`, `zoo tune`, and `zoo train`'s
`--diagnostics`, `--overfit-batch N`, `--recipe FILE`. No TensorFlow import."""

import argparse

from zoo.cli.argument_types import int_at_least, positive_float, positive_int
from zoo.validation import OPTIMIZERS

TUNABLE = ("lr", "weight_decay", "batch_size", "warmup_epochs", "label_smoothing")


def space_option(text):
    """`--space lr=1e-4:1e-1` (a range; log-uniform for lr, uniform otherwise) or
    `--space batch_size=16,32,64` (choices) -> (name, spec)."""
    name, separator, value = text.partition("=")
    name = name.strip()
    if not separator or name not in TUNABLE:
        raise argparse.ArgumentTypeError(
            f"expected NAME=LOW:HIGH or NAME=A,B,... with NAME one of {', '.join(TUNABLE)}; "
            f"got {text!r}")
    try:
        if ":" in value:
            low, high = (float(part) for part in value.split(":"))
            return name, (low, high)
        choices = [float(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers in {text!r}, e.g. lr=1e-4:1e-1 or batch_size=16,32") from None
    if not choices:
        raise argparse.ArgumentTypeError(f"no values in {text!r}")
    return name, [int(c) if name == "batch_size" else c for c in choices]


def add_train_flags(train):
    """`zoo train`'s tuning flags."""
    group = train.add_argument_group("tuning tools")
    group.add_argument("--recipe", metavar="FILE",
                       help="recipe fields from a JSON file (e.g. the best_recipe.json of zoo "
                       "tune); flags given here still override them")
    group.add_argument("--diagnostics", action="store_true",
                       help="each epoch, per layer: update/weight ratio, gradient norm, dead "
                       "ReLUs; into history.csv, TensorBoard and diagnostics.png, with warnings")
    group.add_argument("--overfit-batch", type=positive_int, metavar="N",
                       help="the overfit check: train on N training examples (no augmentation "
                       "or regularisation) until 100%% training accuracy, or report why not")
    group.add_argument("--overfit-steps", type=positive_int, default=500, metavar="STEPS",
                       help="the overfit check's step budget (default 500)")


def _add_run_arguments(command, add_data_arguments):
    command.add_argument("--model", help="registry name (default: lenet5)")
    command.add_argument("--dataset", help="dataset name (default: the model's)")
    command.add_argument("--batch-size", type=positive_int, help="per replica")
    command.add_argument("--optimizer", choices=OPTIMIZERS)
    command.add_argument("--small", action="store_true",
                         help="the model's small registry configuration")
    command.add_argument("--seed", type=int, default=0)
    command.add_argument("--devices", default="auto",
                         help="'auto', a number, or names like gpu:0,gpu:1")
    command.add_argument("--cpu-replicas", type=positive_int,
                         help="split the CPU into N logical devices (CPU-only machines)")
    command.add_argument("--quiet", action="store_true", help="fewer lines")
    add_data_arguments(command)


def add_commands(commands, add_data_arguments):
    """`zoo lr-find` and `zoo tune`."""
    finder = commands.add_parser(
        "lr-find", help="the learning-rate range test: suggest a --lr for zoo train",
        description="Train for at most --steps steps while the learning rate grows "
        "exponentially from --start-lr to --end-lr; print the rate where the loss falls "
        "fastest and save the plot (lr_find.png) in the run directory. The model's weights "
        "are put back afterwards; nothing else is written.")
    _add_run_arguments(finder, add_data_arguments)
    finder.add_argument("--start-lr", type=positive_float, default=1e-7)
    finder.add_argument("--end-lr", type=positive_float, default=10.0)
    finder.add_argument("--steps", type=int_at_least(10), default=100)
    finder.add_argument("--out", help="where the plot goes (default: runs/MODEL-DATASET)")

    tune = commands.add_parser(
        "tune", help="random search over the recipe, scored on the validation split",
        description="Random search (KerasTuner's RandomSearch; pip install 'zoo[tune]') over "
        "the learning rate (log-uniform), weight decay, batch size, warm-up and label "
        "smoothing, each trial a zoo run scored by its lowest validation loss; the test split "
        "is never read. The same command again resumes a killed search. The best trial's "
        "settings are written as a recipe file for zoo train --recipe.")
    _add_run_arguments(tune, add_data_arguments)
    tune.add_argument("--trials", type=positive_int, default=10)
    tune.add_argument("--epochs", type=positive_int,
                      help="epochs of each trial (default: the recipe's)")
    tune.add_argument("--space", type=space_option, action="append", default=[],
                      metavar="NAME=LOW:HIGH|A,B",
                      help="replace a range, e.g. lr=1e-4:1e-1 or batch_size=16,32 "
                      "(repeatable; default: the model family's)")
    tune.add_argument("--out", help="the search directory (default: runs/tune-MODEL-DATASET)")
    tune.add_argument("--restart", action="store_true",
                      help="delete an earlier search in --out and start again")
