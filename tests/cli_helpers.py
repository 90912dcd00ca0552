"""Running the `zoo` command in-process, for the command-line tests."""

from zoo.cli import main


def run_cli(argv, capsys):
    """main(argv) in-process: (exit status, stdout, stderr)."""
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse errors
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err
