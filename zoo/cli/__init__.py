"""The `zoo` command: list, info, train, evaluate, predict, generate, caption, export, and the
tuning tools lr-find and tune.

    zoo train                                   # LeNet-5 on the bundled digits, every device
    zoo train --model vgg11 --dataset cifar10 --small --epochs 5
    zoo train --dataset image_folder --data-path my_photos
    zoo predict photo.jpg --model runs/lenet5-image_folder
    zoo evaluate runs/lenet5-digits
    python -m zoo list

The package only parses arguments and calls `zoo.training`. `zoo --help` and `zoo --version`
answer without importing TensorFlow; every other command imports it quietly
(`zoo.cli.quiet`) after the arguments are read, so that `--cpu-replicas` can split the CPU
before TensorFlow initialises. Mistakes are one line on stderr and exit status 2, never a
traceback (`ZOO_DEBUG=1` shows tracebacks of unexpected errors).
"""

import os
import sys

from zoo.cli.parser import build_parser
from zoo.validation import first_line

__all__ = ["build_parser", "main"]


def _error(message, status):
    print(f"zoo: error: {message}", file=sys.stderr)
    return status


def one_line(error):
    """An error's message; for one raised inside a `tf.function`, which starts with the traced
    code ("in user code: ..."), only its last line, the error itself."""
    text = str(error).strip()
    if "in user code:" in text:
        text = text.splitlines()[-1].strip()
    return text


# Libraries whose own ValueErrors are not the zoo's checks of the user's input.
LIBRARIES = ("keras", "tensorflow", "numpy", "sklearn", "tensorflow_datasets", "PIL")


def raised_in_library(error):
    """The library where `error` was raised, or None when the zoo raised it (its own checks,
    which name the user's input). An error raised while TensorFlow traced zoo code ("in user
    code:") counts as the zoo's."""
    frame, tb = None, error.__traceback__
    while tb is not None:
        frame, tb = tb.tb_frame, tb.tb_next
    module = (frame.f_globals.get("__name__") or "") if frame is not None else ""
    top = module.split(".")[0]
    if top in LIBRARIES and "in user code:" not in str(error):
        return top
    return None


def _unexpected(error):
    """A one-line report of an error nobody anticipated (a TensorFlow op failing on data it
    did not expect, ...), or None to let it propagate (`ZOO_DEBUG=1`)."""
    if os.environ.get("ZOO_DEBUG"):
        return None
    tensorflow = sys.modules.get("tensorflow")
    if tensorflow is not None and isinstance(error, tensorflow.errors.OpError):
        # TensorFlow's messages go on with the whole graph; the first line says what failed.
        first = first_line(error.message)
        return _error(f"TensorFlow failed: {first} (ZOO_DEBUG=1 shows the traceback)", 1)
    return None


def main(argv=None):
    """Entry point of the `zoo` command. Returns the exit status (0 on success)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return _run(args)
    except BrokenPipeError:  # `zoo list | head`: the reader is gone, nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:  # also while TensorFlow loads: one line, no traceback
        resume = (" rerun the same command to resume from its last checkpoint (written at the "
                  "end of each epoch, and every N steps with --checkpoint-every N)."
                  if args.command == "train" else "")
        print(f"zoo: interrupted;{resume}" if resume else "zoo: interrupted.", file=sys.stderr)
        return 130


def _run(args):
    from zoo.cli import quiet

    if args.command != "list":  # `zoo list` reads zoo/listing.json: no TensorFlow
        quiet.import_tensorflow()
    if getattr(args, "cpu_replicas", None):  # train, lr-find, tune
        # Before anything touches TensorFlow's runtime: logical devices cannot be added later.
        from zoo.training.strategy import configure_cpu_replicas

        try:
            configure_cpu_replicas(args.cpu_replicas)
        except ValueError as error:
            return _error(error, 2)

    from zoo.cli import commands

    try:
        with quiet.filtered_stderr_live():  # TensorFlow's notes while the command runs
            return commands.COMMANDS[args.command](args)
    except ValueError as error:
        library = raised_in_library(error)
        if library is None:
            return _error(one_line(error), 2)
        if os.environ.get("ZOO_DEBUG"):
            raise
        # Not a usage error: a bug, or a case the zoo's checks did not foresee.
        return _error(f"{library} failed: {one_line(error)[:300]} (ValueError raised inside "
                      f"{library}, not a check of your input; ZOO_DEBUG=1 shows the "
                      "traceback)", 1)
    except BrokenPipeError:
        raise  # the reader left (`zoo list | head`): `main` ends quietly
    except Exception as error:
        # Only a command that trained can have diverged, and it has loaded zoo.training;
        # importing it here would load TensorFlow into `zoo list`.
        training = sys.modules.get("zoo.training")
        if training is not None and isinstance(error, training.TrainingDiverged):
            return _error(error, 1)
        status = _unexpected(error)
        if status is None:
            raise
        return status
