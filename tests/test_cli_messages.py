"""The command's messages: `zoo list` with a pattern that matches nothing is an error, and
TensorFlow's oneDNN note, printed from C++ while recurrent models run, is dropped while real
error lines pass, as they come."""

import os
import re

import pytest
from cli_helpers import run_cli

from zoo.cli import quiet

ONEDNN = (b"E0000 00:00:1796428470.863915   30329 util.cc:131] oneDNN supports DT_BOOL only on "
          b"platforms with AVX-512. Falling back to the default Eigen-based implementation if "
          b"present.\n")


def test_a_pattern_that_matches_no_model_is_an_error(capsys):
    status, out, err = run_cli(["list", "foo*"], capsys)
    assert status == 2 and out == ""
    assert err == ("zoo: error: PATTERN 'foo*' matches no model. Wildcards: 'resnet*', "
                   "'*lstm*'; `zoo list` shows every model.\n")
    status, _, err = run_cli(["list", "resnt*"], capsys)
    assert status == 2 and "Did you mean 'resnet" in err
    status, out, _ = run_cli(["list", "resnet1*"], capsys)
    assert status == 0 and "resnet18" in out


def test_the_onednn_note_is_dropped_and_other_lines_pass_live(capfd):
    with quiet.filtered_stderr_live(cpu_only=True):
        os.write(2, ONEDNN)
        os.write(2, b"E0000 a real TensorFlow error\n")
        os.write(2, b"progress 1/2\r")  # no newline yet: passed on at once
    err = capfd.readouterr().err
    assert err == "E0000 a real TensorFlow error\nprogress 1/2\r"


def test_ctrl_c_while_tensorflow_loads_is_one_line(monkeypatch, capsys):
    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(quiet, "import_tensorflow", interrupted)
    status, _, err = run_cli(["train", "--epochs", "1"], capsys)
    assert status == 130
    assert err == ("zoo: interrupted; rerun the same command to resume from its last checkpoint "
                   "(written at the end of each epoch, and every N steps with "
                   "--checkpoint-every N).\n")
    status, _, err = run_cli(["evaluate", "runs/x"], capsys)
    assert (status, err) == (130, "zoo: interrupted.\n")


def test_a_bad_flag_value_is_one_line_without_the_usage_block(capsys):
    status, _, err = run_cli(["train", "--lr", "-1"], capsys)
    assert (status, err) == (2, "zoo train: error: argument --lr: must be > 0, got -1\n")


def test_unknown_model_arguments_name_the_model_and_suggest(tmp_path, capsys):
    import zoo
    from zoo.registry import UnknownArgumentError

    with pytest.raises(UnknownArgumentError, match=re.escape(
            "Model 'lstm_classifier' takes no argument 'num_classes'. Did you mean 'classes'")):
        zoo.create_model("lstm_classifier", num_classes=3)
    assert issubclass(UnknownArgumentError, TypeError)  # as Python's own


def test_data_errors_name_the_users_input(tmp_path, capsys):
    from zoo.data import load_dataset

    corpus = tmp_path / "photo.txt"
    corpus.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(ValueError, match=re.escape(
            f"The corpus at {str(corpus)!r} is not UTF-8 text (byte 0x89 at offset 0")):
        load_dataset("tiny_corpus", path=str(corpus))
    with pytest.raises(ValueError, match=re.escape(
            "Argument `split_seed` must be an int in [0, 4294967295]. Received: split_seed='a'")):
        load_dataset("digits", split_seed="a")


def test_a_value_error_raised_inside_a_library_is_not_a_usage_error(monkeypatch, capsys):
    import keras

    from zoo.cli import commands

    monkeypatch.setitem(commands.COMMANDS, "list", lambda args: keras.layers.Dense(-1))
    monkeypatch.delenv("ZOO_DEBUG", raising=False)
    status, _, err = run_cli(["list"], capsys)
    assert status == 1 and len(err.strip().splitlines()) == 1
    assert err.startswith("zoo: error: keras failed: Received an invalid value for `units`")
    assert "not a check of your input; ZOO_DEBUG=1 shows the traceback" in err
    # The zoo's own checks stay usage errors.
    monkeypatch.undo()
    status, _, err = run_cli(["list", "foo*"], capsys)
    assert status == 2
