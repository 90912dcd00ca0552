"""The `zoo` command: list, info, train, evaluate (and caption, when the captioner is installed).

    zoo train                                   # LeNet-5 on the bundled digits, every device
    zoo train --model vgg11 --dataset cifar10 --small --epochs 5
    zoo train --cpu-replicas 2                  # try MirroredStrategy on a laptop CPU
    zoo evaluate runs/lenet5-digits
    python -m zoo list

This module only parses arguments and calls `zoo.training`; TensorFlow is imported after the
arguments are read so that `--cpu-replicas` can split the CPU before TensorFlow initialises.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EXAMPLES = """examples:
  zoo train                                       LeNet-5 on the bundled digits (offline)
  zoo train --model resnet18 --dataset cifar10 --small --epochs 5 --schedule cosine
  zoo train --cpu-replicas 2 --lr-scaling linear --warmup-epochs 1
  zoo evaluate runs/lenet5-digits
multi-worker: set TF_CONFIG on every machine and run the same `zoo train` command.
"""


def _int_at_least(minimum):
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


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _devices(text):
    if text == "auto":
        return "auto"
    if text.isdigit():
        value = int(text)
        if value < 1:
            raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
        return value
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected 'auto', a number or device names, got {text!r}")
    return names


def build_parser():
    parser = argparse.ArgumentParser(
        prog="zoo",
        description="Train and inspect the models of the zoo.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    listing = commands.add_parser("list", help="the registered models and datasets")
    listing.add_argument("pattern", nargs="?", help="wildcard filter, e.g. 'resnet*'")
    listing.add_argument("--task", help="only models and datasets of this task")

    info = commands.add_parser("info", help="what the registry knows about a model or dataset")
    info.add_argument("name")

    train = commands.add_parser(
        "train",
        help="train a model (default: LeNet-5 on the bundled digits)",
        description="Train a registry model on a dataset with tf.distribute; a rerun of the same "
        "command resumes from the last completed epoch.",
    )
    train.add_argument("--model", help="registry name (default: lenet5)")
    train.add_argument("--dataset", help="dataset name (default: the model's default dataset)")
    train.add_argument("--epochs", type=_positive_int, default=15)
    train.add_argument("--batch-size", type=int, default=32, help="per replica (default 32)")
    train.add_argument("--lr", type=_positive_float, help="base learning rate for one replica's "
                       "batch (default: the optimizer's, Adam 1e-3, SGD 0.01)")
    train.add_argument("--lr-scaling", choices=("linear", "sqrt", "none"), default="linear",
                       help="how the learning rate grows with the global batch (Goyal et al. 2017)")
    train.add_argument("--warmup-epochs", type=float, default=0.0,
                       help="gradual warm-up to the scaled learning rate")
    train.add_argument("--schedule", choices=("cosine", "step", "constant"), default="cosine")
    train.add_argument("--optimizer", choices=("adam", "adamw", "sgd", "rmsprop"), default="adam")
    train.add_argument("--mixed-precision", action="store_true", help="bfloat16 compute")
    train.add_argument("--jit-compile", action="store_true", help="XLA-compile the step")
    train.add_argument("--devices", type=_devices, default="auto",
                       help="'auto' (every GPU, else the CPU), a number, or names like gpu:0,gpu:1")
    train.add_argument("--cpu-replicas", type=_positive_int,
                       help="split the CPU into N logical devices (CPU-only machines)")
    train.add_argument("--crop-border", type=_non_negative_int, default=0,
                       help="drop an N-pixel border from each image")
    train.add_argument("--batch-size-ramp", type=_non_negative_int, nargs="?", const=0,
                       metavar="START", help="start at START per replica (default batch/8) and "
                       "double every epoch up to --batch-size")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", help="run directory (default: runs/MODEL-DATASET)")
    train.add_argument("--clip-norm", type=float,
                       help="global-norm gradient clipping (default 1.0 for sequence tasks, else "
                       "off; 0 turns it off)")
    train.add_argument("--early-stopping", type=_positive_int, metavar="PATIENCE",
                       help="stop after PATIENCE epochs without a better test loss")
    train.add_argument("--no-best", action="store_true", help="do not keep best.keras")
    train.add_argument("--keep-going-on-nan", action="store_true",
                       help="stop quietly instead of failing when the loss becomes NaN")
    train.add_argument("--small", action="store_true",
                       help="build the model with its small registry configuration")
    train.add_argument("--restart", action="store_true",
                       help="start from scratch even if the run directory has a checkpoint")
    train.add_argument("--quiet", action="store_true", help="no progress bars (epoch lines only)")

    evaluate = commands.add_parser("evaluate", help="evaluate a saved model on a test split")
    evaluate.add_argument("path", help="a .keras file or a run directory")
    evaluate.add_argument("--dataset", help="default: the run directory's dataset")
    evaluate.add_argument("--batch-size", type=_positive_int, default=128)
    evaluate.add_argument("--crop-border", type=_non_negative_int, default=0)

    caption = commands.add_parser("caption", help="caption image files with a trained captioner")
    caption.add_argument("images", nargs="+", metavar="IMAGE")
    caption.add_argument("--model", help="a saved captioner (.keras) or run directory")
    caption.add_argument("--beam-size", type=_positive_int, default=3)
    return parser


def _print_table(rows):
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))


def _list(args):
    from zoo import registry
    from zoo.data import base as data_base

    names = registry.list_models(args.pattern, task=args.task)
    rows = [("model", "task", "paper", "input", "params", "default dataset")]
    for name in names:
        info = registry.model_info(name)
        shape = "x".join(map(str, info.default_input_shape)) if info.default_input_shape else "-"
        params = f"{info.params:,}" if info.params is not None else "-"
        rows.append((name, info.task, f"{info.paper.authors} {info.paper.year}", shape, params,
                     info.default_dataset or "-"))
    _print_table(rows)
    print()
    rows = [("dataset", "task", "offline", "summary")]
    for name in data_base.list_datasets(task=args.task):
        entry = data_base.dataset_entry(name)
        rows.append((name, entry.task, "yes" if entry.offline else "no", entry.summary))
    _print_table(rows)
    return 0


def _info(args):
    from zoo import registry
    from zoo.data import base as data_base

    if args.name in data_base.list_datasets():
        entry = data_base.dataset_entry(args.name)
        print(f"{entry.name}: {entry.summary}\n  task: {entry.task}\n  offline: {entry.offline}")
        return 0
    info = registry.model_info(args.name)
    print(f"{info.name}: {info.summary}")
    for label, value in (
        ("task", info.task),
        ("family", info.family),
        ("paper", f"{info.paper} {info.paper.url}"),
        ("default input", info.default_input_shape),
        ("minimum input", info.min_input_shape),
        ("parameters", f"{info.params:,}" if info.params is not None else "-"),
        ("default dataset", info.default_dataset),
        ("small config", info.small_config),
    ):
        print(f"  {label}: {value}")
    doc = (info.builder.__doc__ or "").strip().splitlines()
    if doc:
        print(f"  {doc[0]}")
    return 0


def _train(args):
    from zoo.training.loop import TrainConfig, train

    config = TrainConfig(
        model=args.model,
        dataset=args.dataset,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_scaling=args.lr_scaling,
        warmup_epochs=args.warmup_epochs,
        schedule=args.schedule,
        optimizer=args.optimizer,
        mixed_precision=args.mixed_precision,
        jit_compile=args.jit_compile,
        devices=args.devices,
        cpu_replicas=args.cpu_replicas,
        crop_border=args.crop_border,
        batch_size_ramp=args.batch_size_ramp,
        seed=args.seed,
        out=args.out,
        clip_norm=args.clip_norm,
        early_stopping=args.early_stopping,
        save_best=not args.no_best,
        terminate_on_nan=not args.keep_going_on_nan,
        small=args.small,
        restart=args.restart,
        verbose=1 if args.quiet else 2,
    )
    train(config)
    return 0


def _evaluate(args):
    from zoo.training.loop import evaluate_saved_model

    metrics, dataset = evaluate_saved_model(
        args.path, args.dataset, batch_size=args.batch_size, crop_border=args.crop_border
    )
    print(f"{dataset} test: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    return 0


def _caption(args):
    try:
        from zoo.captioning import caption_images
    except ImportError:
        print("zoo: error: the captioner is not part of this installation yet "
              "(zoo.captioning.caption_images is missing).", file=sys.stderr)
        return 2
    for path, text in zip(args.images, caption_images(args.images, model=args.model,
                                                      beam_size=args.beam_size)):
        print(f"{path}: {text}")
    return 0


def main(argv=None):
    """Entry point of the `zoo` command. Returns the exit status (0 on success)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "train" and args.batch_size < 1:
        parser.error(f"argument --batch-size: must be >= 1, got {args.batch_size}")
    if args.command == "train" and args.cpu_replicas:
        # Before anything touches TensorFlow's runtime: logical devices cannot be added later.
        from zoo.training.strategy import configure_cpu_replicas

        try:
            configure_cpu_replicas(args.cpu_replicas)
        except ValueError as error:
            print(f"zoo: error: {error}", file=sys.stderr)
            return 2
    handlers = {"list": _list, "info": _info, "train": _train, "evaluate": _evaluate,
                "caption": _caption}
    try:
        return handlers[args.command](args)
    except ValueError as error:
        print(f"zoo: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zoo: interrupted; rerun the same command to resume from the last epoch.",
              file=sys.stderr)
        return 130
    except RuntimeError as error:  # TrainingDiverged and friends: say it, no traceback
        from zoo.training.loop import TrainingDiverged

        if isinstance(error, TrainingDiverged):
            print(f"zoo: error: {error}", file=sys.stderr)
            return 1
        raise
