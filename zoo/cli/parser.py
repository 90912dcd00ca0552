"""The `zoo` command's arguments. Imports neither TensorFlow nor the models: `zoo --help` and
`zoo --version` answer without them."""

import argparse
import ast

from zoo.cli.argument_types import (
    _milestone,
    decay_factor,
    fraction,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from zoo.cli.tuning_parser import add_commands as add_tuning_commands
from zoo.cli.tuning_parser import add_train_flags
from zoo.validation import (
    EXPORT_FORMATS,
    LR_SCALING_RULES,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULES,
)

EXAMPLES = """examples:
  zoo train                                       LeNet-5 on the bundled digits (offline)
  zoo train --model resnet18 --dataset cifar10 --small --epochs 5 --schedule cosine
  zoo train --model resnet18 --weights imagenet --dataset image_folder --data-path my_photos --freeze
  zoo train --cpu-replicas 2 --lr-scaling linear --warmup-epochs 1
  zoo train --model resnet18 --dataset cifar10 --mixed-precision float16 --sync-batchnorm
  zoo evaluate runs/lenet5-digits
  zoo train --overfit-batch 32                    can LeNet-5 memorise 32 examples?
  zoo lr-find --model lenet5                      the learning-rate range test
  zoo tune --model lenet5 --trials 20 --epochs 5  random search (pip install 'zoo[tune]')
  zoo predict cat.png --model runs/resnet18-image_folder --top 3
  zoo predict photos/ --model runs/resnet18-image_folder --format csv > predictions.csv
  zoo predict cat.jpg --model resnet50             ImageNet weights, ImageNet class names
  zoo generate --model runs/char_lm-tiny_corpus --prompt "To be" --length 200 --seed 0
  zoo caption a.png --model runs/show_and_tell-shapes_captions --beam-width 3
  zoo export runs/lenet5-digits --format onnx
multi-worker: set TF_CONFIG on every machine and run the same `zoo train` command.
"""




def milestones(text):
    """`--milestones 0.5,0.75` -> (0.5, 0.75): fractions of training in (0, 1)."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"expected fractions like 0.5,0.75, got {text!r}")
    return tuple(_milestone(part) for part in parts)


def devices(text):
    """`--devices`: 'auto', a count, or comma-separated device names."""
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


def image_size(text):
    """`--image-size`: 'N' (square) or 'HxW' -> (height, width)."""
    parts = text.lower().split("x")
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        numbers = []
    if len(numbers) not in (1, 2) or min(numbers) < 1:
        raise argparse.ArgumentTypeError(
            f"expected a size like 64 or 48x64 (height x width), got {text!r}"
        )
    return (numbers[0], numbers[-1])


def data_option(text):
    """`--data-option KEY=VALUE` -> (key, value); VALUE is a Python literal or else a string."""
    key, separator, value = text.partition("=")
    key = key.strip()
    if not separator or not key.isidentifier():
        raise argparse.ArgumentTypeError(
            f"expected KEY=VALUE with KEY an option name, e.g. test_fraction=0.2; got {text!r}"
        )
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value  # a plain word or a path
    return key, parsed


def _add_data_arguments(command):
    group = command.add_argument_group(
        "data", "options of the dataset's loader (see `zoo info DATASET`)"
    )
    group.add_argument("--data-path", metavar="PATH",
                       help="your own data: a folder (image_folder, caption_folder) or a text "
                       "file (tiny_corpus)")
    group.add_argument("--data-dir", metavar="DIR",
                       help="tensorflow-datasets data directory (default: $TFDS_DATA_DIR or "
                       "~/tensorflow_datasets)")
    group.add_argument("--no-download", action="store_true",
                       help="never download: use data already prepared in --data-dir "
                       "(offline clusters)")
    group.add_argument("--data-option", type=data_option, action="append", default=[],
                       metavar="KEY=VALUE",
                       help="any other loader argument, e.g. test_fraction=0.2 (repeatable)")
    return group


def data_kwargs(args):
    """The loader keyword arguments the data flags of `args` ask for."""
    kwargs = dict(args.data_option)
    for flag, key in (("data_path", "path"), ("data_dir", "data_dir"),
                      ("image_size", "image_size")):
        value = getattr(args, flag, None)
        if value is not None:
            kwargs[key] = value
    if getattr(args, "no_download", False):
        kwargs["download"] = False
    return kwargs


def _add_train(commands):
    train = commands.add_parser(
        "train",
        help="train a model (default: LeNet-5 on the bundled digits)",
        description="Train a registry model on a dataset with tf.distribute; a rerun of the same "
        "command resumes from the last completed epoch.",
    )
    train.add_argument("--model", help="registry name (default: lenet5)")
    train.add_argument("--dataset", help="dataset name (default: the model's default dataset)")
    tuning = train.add_argument_group(
        "fine-tuning", "start from pretrained weights; the model family's fine-tuning recipe "
        "replaces its from-scratch recipe (flags still override it)")
    tuning.add_argument("--weights", metavar="imagenet|RUN|FILE",
                        help="'imagenet' (the registry's weights: the backbone is copied, the "
                        "head is new, the inputs get the weights' preprocessing), a run "
                        "directory or a .keras file (same classes: continue; other classes: "
                        "a new head)")
    tuning.add_argument("--freeze", action="store_true",
                        help="train the head only (batch norm of the backbone in inference mode)")
    tuning.add_argument("--unfreeze-after", type=positive_int, metavar="N",
                        help="two phases: the head only for N epochs, then the whole network at "
                        "the learning rate x --finetune-lr-factor")
    tuning.add_argument("--finetune-lr-factor", type=decay_factor, metavar="F",
                        help="the second phase's learning-rate factor, in (0, 1] (default: the "
                        "family's fine-tuning recipe, 0.1)")
    recipe = train.add_argument_group(
        "recipe", "each defaults to the model's recipe (zoo info MODEL); a flag overrides it")
    recipe.add_argument("--epochs", type=positive_int)
    recipe.add_argument("--batch-size", type=positive_int, help="per replica")
    recipe.add_argument("--lr", type=positive_float,
                        help="peak learning rate for a global batch of --reference-batch, "
                        "scaled to the actual global batch by --lr-scaling")
    recipe.add_argument("--reference-batch", type=positive_int, metavar="N",
                        help="the global batch --lr is stated for")
    recipe.add_argument("--optimizer", choices=OPTIMIZERS,
                        help="another optimizer than the recipe's also takes its default "
                        "learning rate, momentum and weight decay unless given")
    recipe.add_argument("--momentum", type=fraction, help="SGD/RMSprop momentum, in [0, 1)")
    recipe.add_argument("--nesterov", action=argparse.BooleanOptionalAction,
                        help="Nesterov momentum (SGD)")
    recipe.add_argument("--weight-decay", type=non_negative_float,
                        help="decoupled weight decay: w -= lr * weight_decay * w each step")
    recipe.add_argument("--schedule", choices=SCHEDULES)
    recipe.add_argument("--milestones", type=milestones, metavar="F,F,...",
                        help="step schedule: fractions of training where the rate drops, "
                        "e.g. 0.5,0.75")
    recipe.add_argument("--decay-factor", type=decay_factor,
                        help="step schedule: the multiplier at each milestone, in (0, 1]")
    recipe.add_argument("--warmup-epochs", type=non_negative_float,
                        help="gradual warm-up to the scaled learning rate")
    recipe.add_argument("--label-smoothing", type=fraction, help="in [0, 1)")
    recipe.add_argument("--no-augment", dest="augment", action="store_const", const=False,
                        help="skip the dataset's training-time augmentation")
    recipe.add_argument("--augment", dest="augment", action="store_const", const=True,
                        help="use the dataset's augmentation also where it is opt-in (the "
                        "digits' random shifts); default: the recipe's choice")
    recipe.add_argument("--clip-norm", type=non_negative_float,
                        help="global-norm gradient clipping (default: the recipe's, else 1.0 "
                        "for sequence tasks; 0 turns it off)")
    train.add_argument("--lr-scaling", choices=LR_SCALING_RULES, default="linear",
                       help="how the learning rate grows with the global batch (Goyal et al. "
                       "2017; default linear)")
    engine = train.add_argument_group("engine")
    engine.add_argument("--mixed-precision", nargs="?", const="bfloat16",
                        choices=PRECISIONS,
                        help="compute in bfloat16 (the default when no value is given) or "
                        "float16 with a dynamic loss scale; weights, losses and softmax stay "
                        "float32")
    engine.add_argument("--steps-per-execution", type=positive_int, metavar="N",
                        help="training steps per call of the compiled step (default 16); the "
                        "progress bar and divergence check see one update per call")
    engine.add_argument("--sync-batchnorm", action="store_true",
                        help="batch normalisation over the global batch, so that N replicas "
                        "train like one device")
    engine.add_argument("--jit-compile", action="store_true", help="XLA-compile the step")
    engine.add_argument("--devices", type=devices, default="auto",
                        help="'auto' (every GPU, else the CPU), a number, or names like "
                        "gpu:0,gpu:1")
    engine.add_argument("--cpu-replicas", type=positive_int,
                        help="split the CPU into N logical devices (CPU-only machines)")
    train.add_argument("--crop-border", type=non_negative_int, default=0,
                       help="drop an N-pixel border from each image")
    train.add_argument("--batch-size-ramp", type=non_negative_int, nargs="?", const=0,
                       metavar="START", help="start at START per replica (default batch/8) and "
                       "double every epoch up to --batch-size")
    train.add_argument("--seed", type=non_negative_int, default=0)
    train.add_argument("--out", help="run directory (default: runs/MODEL-DATASET)")
    train.add_argument("--checkpoint-every", type=positive_int, metavar="N",
                       help="also checkpoint every N steps inside an epoch (long epochs resume "
                       "in their middle)")
    train.add_argument("--early-stopping", type=positive_int, metavar="PATIENCE",
                       help="stop after PATIENCE epochs without a better validation loss")
    train.add_argument("--no-best", action="store_true", help="do not keep best.keras")
    train.add_argument("--no-test", action="store_true",
                       help="skip the end-of-run test evaluation, so that a run made to choose "
                       "settings never reads the test split (zoo evaluate RUN reads it later)")
    train.add_argument("--keep-going-on-nan", action="store_true",
                       help="when the loss becomes NaN, save the last finite checkpoint as "
                       "model.keras and evaluate it (exit status 1 all the same)")
    train.add_argument("--small", action="store_true",
                       help="build the model with its small registry configuration")
    train.add_argument("--restart", action="store_true",
                       help="start from scratch even if the run directory has a checkpoint")
    train.add_argument("--quiet", action="store_true", help="no progress bars (epoch lines only)")
    add_train_flags(train)  # --recipe, --diagnostics, --overfit-batch (zoo.cli.tuning_parser)
    data = _add_data_arguments(train)
    data.add_argument("--image-size", type=image_size, metavar="SIZE",
                      help="resize every image to SIZE (N or HxW; image_folder, caption_folder)")


def _add_evaluate(commands):
    evaluate = commands.add_parser(
        "evaluate", help="evaluate a saved model on a test split",
        description="Evaluate a run directory or a .keras file on a dataset's test split. The "
        "dataset and its options come from the run's record (config.json beside the model) "
        "unless given.")
    evaluate.add_argument("path", help="a run directory or a .keras file")
    evaluate.add_argument("--dataset", help="default: the run's dataset")
    evaluate.add_argument("--batch-size", type=positive_int, default=128)
    evaluate.add_argument("--crop-border", type=non_negative_int, default=0)
    evaluate.add_argument("--split", choices=("test", "validation"), default="test",
                          help="the test split (default) or the dataset's own validation split")
    evaluate.add_argument("--outputs", choices=("probabilities", "log_probabilities", "logits",
                                                "values"),
                          help="what the model returns, for a .keras file without a run record")
    evaluate.add_argument("--beam-width", type=positive_int, default=1,
                          help="captioners: 1 for greedy search (default), more for beam search")


def _add_model_commands(commands):
    predict = commands.add_parser(
        "predict", help="classify image files with a trained classifier",
        description="Print the most likely classes of each image, with probabilities. --model "
        "is a run directory, a .keras file, or the name of a model with ImageNet weights "
        "(vgg16, vgg19, resnet50, resnet101, resnet152; downloaded once).")
    predict.add_argument("images", nargs="+", metavar="IMAGE",
                         help="image files, or folders (searched recursively, sorted)")
    predict.add_argument("--model", required=True, metavar="RUN_OR_FILE")
    predict.add_argument("--top", type=positive_int, default=5, metavar="K",
                         help="classes shown per image (default 5)")
    predict.add_argument("--dataset", help="for a .keras file without its run directory: the "
                         "dataset it was trained on (its normalisation and class names)")
    predict.add_argument("--batch-size", type=positive_int, default=32)
    predict.add_argument("--format", choices=("text", "json", "csv"), default="text",
                         help="text lines (default), a JSON list or CSV rows, for scripts")
    _add_data_arguments(predict)

    generate = commands.add_parser(
        "generate", help="sample text from a trained character language model (char_lm)")
    generate.add_argument("--model", required=True, metavar="RUN_OR_FILE")
    generate.add_argument("--prompt", required=True, help="the text to continue")
    generate.add_argument("--length", type=non_negative_int, default=200,
                          help="characters to generate (default 200)")
    generate.add_argument("--temperature", type=non_negative_float, default=1.0,
                          help="0 = greedy; below 1 sharpens, above 1 flattens (default 1)")
    generate.add_argument("--seed", type=int, help="the same seed gives the same text")

    caption = commands.add_parser("caption", help="caption image files with a trained captioner")
    caption.add_argument("images", nargs="+", metavar="IMAGE")
    caption.add_argument("--model", required=True, metavar="RUN_OR_FILE")
    caption.add_argument("--beam-width", type=positive_int, default=3,
                         help="1 = greedy search (default 3)")
    caption.add_argument("--batch-size", type=positive_int, default=32)

    export = commands.add_parser(
        "export", help="export a trained model for serving (SavedModel, ONNX, LiteRT)",
        description="Export the model's forward pass with Keras' model.export. ONNX needs the "
        "`export` extra: pip install 'zoo[export]'.")
    export.add_argument("path", metavar="RUN_OR_FILE")
    export.add_argument("--format", choices=EXPORT_FORMATS,
                        default="saved_model")
    export.add_argument("--out", help="where to write it (default: in the run directory: "
                        "saved_model/, model.onnx or model.tflite)")


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are the one line that matters (`zoo train: error: argument --lr:
    must be > 0, got -1`), without the usage block of every flag before it (`--help` has it).
    Subcommands' parsers are of the same class."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser():
    """The `zoo` argument parser (no TensorFlow import)."""
    from zoo import __version__

    parser = _Parser(
        prog="zoo",
        description="Train, inspect and use the models of the zoo.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"zoo {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    listing = commands.add_parser("list", help="the registered models and datasets")
    listing.add_argument("pattern", nargs="?", help="wildcard filter, e.g. 'resnet*'")
    listing.add_argument("--task", help="only models and datasets of this task")
    listing.add_argument("--pretrained", action="store_true",
                         help="only models with pretrained (ImageNet) weights, with their source")

    info = commands.add_parser("info", help="what the registry knows about a model or dataset")
    info.add_argument("name")

    _add_train(commands)
    _add_evaluate(commands)
    _add_model_commands(commands)
    add_tuning_commands(commands, _add_data_arguments)  # lr-find, tune
    return parser
