"""The `zoo` command end to end: the default run, evaluate, resume, and clear errors for bad
input. (Kill-and-resume and two workers: tests/test_resume.py, tests/test_multiworker.py.)"""

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest
from cli_helpers import run_cli

import zoo
from zoo.training.strategy import LearningRatePlan

PYTHON = sys.executable
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _history(run_dir):
    with open(os.path.join(run_dir, "history.csv"), encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def test_default_train_writes_the_run_directory_evaluates_and_resumes(tmp_path, capsys):
    out = str(tmp_path / "run")
    # The README's `zoo train` with a shorter budget (the full default is measured in the report).
    status, stdout, _ = run_cli(["train", "--epochs", "3", "--out", out], capsys)
    assert status == 0
    batch = zoo.model_info("lenet5").recipe.batch_size
    for expected in ("strategy: OneDeviceStrategy",
                     f"{batch} per replica x 1 replica(s) = {batch} global",
                     "linear scaling", "epoch 3/3", "done in"):
        assert expected in stdout
    for name in ("model.keras", "best.keras", "history.csv", "history.png", "config.json"):
        assert os.path.getsize(os.path.join(out, name)) > 0
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(out, "logs", "train")))
    rows = _history(out)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[-1]["val_accuracy"]) >= 0.8  # chance: 0.1

    status, stdout, _ = run_cli(["evaluate", out], capsys)
    assert status == 0
    reported = float(stdout.split("accuracy ")[1].split(",")[0])
    assert reported == pytest.approx(float(rows[-1]["test_accuracy"]), abs=1e-4)

    # The same command again: the run is complete, nothing is retrained.
    status, stdout, _ = run_cli(["train", "--epochs", "3", "--out", out], capsys)
    assert status == 0 and "resuming from the checkpoint after epoch 3" in stdout
    assert "epoch 1/3" not in stdout and len(_history(out)) == 3

    # A different run into the same directory is refused, not mixed in.
    status, _, err = run_cli(["train", "--epochs", "3", "--seed", "5", "--out", out], capsys)
    assert status == 2 and "--restart" in err and "Traceback" not in err


def test_batch_size_ramp_doubles_the_batch_and_scales_the_learning_rate(tmp_path, capsys):
    out = str(tmp_path / "ramp")
    status, stdout, _ = run_cli(
        ["train", "--epochs", "2", "--batch-size", "32", "--batch-size-ramp", "16",
         "--crop-border", "1", "--quiet", "--out", out], capsys)
    assert status == 0
    rows = _history(out)
    assert [int(r["global_batch"]) for r in rows] == [16, 32]
    with open(os.path.join(out, "config.json"), encoding="utf-8") as f:
        record = json.load(f)  # the recipe's learning rate, the examples left for training
    plan = LearningRatePlan(record["lr"], record["reference_batch"], "linear",
                            record["warmup_epochs"], record["schedule"], 2,
                            tuple(record["milestones"]), record["decay_factor"])
    steps = record["num_train"] // 16
    # The last step of epoch 1 runs at the linearly scaled rate for a batch of 16.
    assert float(rows[0]["lr"]) == pytest.approx(plan((steps - 1) / steps, 16), rel=1e-6)
    assert float(rows[0]["lr"]) < plan(0.99, 32)


def test_list_and_info(capsys):
    status, stdout, _ = run_cli(["list"], capsys)
    assert status == 0 and "lenet5" in stdout and "digits" in stdout
    status, stdout, _ = run_cli(["info", "lenet5"], capsys)
    assert status == 0 and "LeCun" in stdout and "minimum input: (28, 28, 1)" in stdout
    status, stdout, _ = run_cli(["info", "digits"], capsys)
    assert status == 0 and "offline: True" in stdout
    # Sequence inputs of any length: T steps (of 2 features for the adding problem).
    status, stdout, _ = run_cli(["list", "*_regressor"], capsys)
    row = next(line for line in stdout.splitlines() if line.startswith("lstm_regressor "))
    assert " 1997  Tx2  " in row and "None" not in stdout
    status, stdout, _ = run_cli(["info", "char_lm"], capsys)
    assert "default input: T\n" in stdout and "recipe: " in stdout
    status, stdout, _ = run_cli(["info", "image_folder"], capsys)
    assert "options (--data-option KEY=VALUE): path (required), image_size=None" in stdout


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--model", "lenet"], "Did you mean 'lenet5'"),
        (["train", "--dataset", "digitz"], "Did you mean 'digits'"),
        (["train", "--batch-size", "0"], "--batch-size: must be >= 1"),
        (["train", "--devices", "3"], "has 2 CPU device(s)"),
        (["train", "--model", "lenet5", "--dataset", "adding_problem"],
         "Use one of the image-classification datasets (cifar10, cifar100, digits"),
        (["train", "--crop-border", "4"], "crop_border` is too large"),
        (["evaluate", "/nonexistent/run"], "PATH '/nonexistent/run' does not exist"),
        (["caption", "/nonexistent/image.png"], "the following arguments are required: --model"),
        (["train", "--data-option", "oops"], "expected KEY=VALUE"),
        (["train", "--image-size", "3x"], "expected a size like 64 or 48x64"),
        (["train", "--dataset", "image_folder"], "'image_folder' needs path: pass --data-path"),
        (["train", "--dataset", "digits", "--data-path", "x"], "takes no argument 'path'"),
    ],
)
def test_bad_input_gets_a_clear_message_and_a_non_zero_exit(argv, message, tmp_path, capsys):
    status, _, err = run_cli([*argv, "--out", str(tmp_path)] if argv[0] == "train" else argv, capsys)
    assert status != 0
    assert message in err
    assert "Traceback" not in err


def test_unwritable_out_directory(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    status, _, err = run_cli(["train", "--out", str(blocker / "run")], capsys)
    assert status == 2 and "Cannot write to the run directory" in err and "--out" in err


# ------------------------------------------------------------------ a quiet, quick command line


def _heavy_imports_after(calls, modules):
    """Run `calls` (lines using `main`) in a fresh interpreter; (its stdout, which of
    `modules` it imported)."""
    script = "import sys\nfrom zoo.cli import main\n" + calls + (
        f"print('imported:', [m for m in {modules!r} if m in sys.modules])\n")
    result = subprocess.run([PYTHON, "-c", script], cwd=ROOT, env=_env(), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    stdout, _, imported = result.stdout.strip().rpartition("imported: ")
    return stdout, imported


def test_help_and_version_answer_without_tensorflow():
    from importlib.metadata import version

    stdout, imported = _heavy_imports_after(
        "for argv in (['--help'], ['--version'], ['train', '--help'], []):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n", ("tensorflow", "keras", "numpy", "zoo.cnn"))
    assert f"zoo {version('zoo')}" in stdout and "--data-path" in stdout
    assert imported == "[]"


def test_list_answers_without_tensorflow():
    stdout, imported = _heavy_imports_after(
        "assert main(['list', 'resnet1*', '--task', 'image-classification']) == 0\n",
        ("tensorflow", "keras", "zoo.cnn", "zoo.data"))
    assert "resnet18 " in stdout and "resnet50 " not in stdout
    assert imported == "[]"


def test_output_into_a_closed_pipe_is_not_an_error():
    # `zoo list | head -1`: the reader leaves early; no BrokenPipeError traceback, and no
    # TensorFlow loaded by the error handling (its start-up lines were the symptom). `true`
    # exits before Python starts, so every write meets a closed pipe.
    result = subprocess.run(["bash", "-c", f"{PYTHON} -m zoo list | true; "
                             "echo ${PIPESTATUS[0]}"], cwd=ROOT, env=_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.stderr == "" and result.stdout.strip() == "141"
    result = subprocess.run(f"{PYTHON} -m zoo list | head -1", shell=True, cwd=ROOT,
                            env=_env(), capture_output=True, text=True, timeout=60)
    assert result.stdout.startswith("model ") and result.stderr == ""


@pytest.mark.skipif(os.path.exists("/dev/nvidiactl"), reason="the CUDA notes are kept on GPUs")
def test_a_command_prints_no_tensorflow_start_up_lines():
    env = _env()
    env.pop("TF_CPP_MIN_LOG_LEVEL")  # the command's own default, as for a user
    result = subprocess.run([PYTHON, "-m", "zoo", "info", "digits"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("digits: ")
    assert result.stderr == ""


def test_the_start_up_filter_keeps_real_messages(capfd):
    from zoo.cli.quiet import filtered_stderr

    with filtered_stderr(cpu_only=True):
        for line in ("WARNING: All log messages before absl::InitializeLog() is called are "
                     "written to STDERR", "I0000 port.cc:153] oneDNN custom operations are on.",
                     "E0000 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)",
                     "W0000 something.cc:1] a real warning", "a plain line from C++"):
            os.write(2, (line + "\n").encode())  # below sys.stderr, as C++ writes
        sys.stderr.write("a Python warning\n")
    # (Under pytest sys.stderr is not file descriptor 2, so its line may come first.)
    assert sorted(capfd.readouterr().err.splitlines()) == [
        "W0000 something.cc:1] a real warning", "a Python warning", "a plain line from C++"]
    with filtered_stderr(cpu_only=False):  # with an NVIDIA driver a failed cuInit is news
        os.write(2, b"E0000 failed call to cuInit: CUDA_ERROR_NO_DEVICE\n")
    assert "cuInit" in capfd.readouterr().err


# ------------------------------------------------------------------ data from the command line


def test_data_flags_become_loader_arguments():
    from zoo.cli.parser import build_parser, data_kwargs

    args = build_parser().parse_args([
        "train", "--data-path", "photos", "--data-dir", "/data/tfds", "--no-download",
        "--image-size", "48x64", "--data-option", "test_fraction=0.2",
        "--data-option", "captions_file=my captions.txt",
    ])
    assert data_kwargs(args) == {"path": "photos", "data_dir": "/data/tfds", "download": False,
                                 "image_size": (48, 64), "test_fraction": 0.2,
                                 "captions_file": "my captions.txt"}
    assert data_kwargs(build_parser().parse_args(["train", "--image-size", "32"])) == {
        "image_size": (32, 32)}
    assert data_kwargs(build_parser().parse_args(["train"])) == {}


def test_tfds_flags_reach_tfds_load(tmp_path, monkeypatch, capsys):
    import tensorflow_datasets as tfds

    calls, original = [], tfds.load

    def load(name, **kwargs):
        calls.append((name, kwargs))
        if kwargs["data_dir"] is not None:  # enough seen: stop before training
            raise FileNotFoundError(kwargs["data_dir"])
        return original(name, **kwargs)

    monkeypatch.setattr(tfds, "load", load)
    base = ["train", "--dataset", "mnist", "--epochs", "1", "--batch-size", "4", "--quiet"]
    with tfds.testing.mock_data(num_examples=12):
        status, _, err = run_cli([*base, "--out", str(tmp_path / "a")], capsys)
        assert status == 0, err
    status, _, err = run_cli([*base, "--data-dir", str(tmp_path / "tfds"), "--no-download",
                           "--out", str(tmp_path / "b")], capsys)
    assert status == 2 and "not prepared in" in err
    assert [(name, kw["data_dir"], kw["download"]) for name, kw in calls] == [
        ("mnist", None, True), ("mnist", str(tmp_path / "tfds"), False)]


def test_an_offline_machine_is_told_how_to_prepare_the_data(tmp_path, capsys):
    status, _, err = run_cli(["train", "--dataset", "cifar10", "--no-download", "--data-dir",
                           str(tmp_path / "tfds"), "--out", str(tmp_path / "run")], capsys)
    assert status == 2 and "Traceback" not in err
    for part in ("not prepared in", "tfds build cifar10 --data_dir DIR", "--data-dir DIR"):
        assert part in err


def test_no_run_directory_is_left_after_a_failure_before_training(tmp_path, capsys):
    status, _, _ = run_cli(["train", "--dataset", "cifar10", "--no-download", "--data-dir",
                         str(tmp_path / "tfds"), "--out", str(tmp_path / "run")], capsys)
    assert status == 2
    assert not os.path.exists(tmp_path / "run")


def test_your_own_image_folder_trains_predicts_and_evaluates(tmp_path, capsys):
    from image_files import make_folder

    photos = tmp_path / "photos"
    make_folder(str(photos), {"red": 6, "green": 6, "blue": 6}, size=(20, 20))
    run = str(tmp_path / "run")
    status, out, err = run_cli(["train", "--dataset", "image_folder", "--data-path", str(photos),
                             "--model", "lenet5", "--epochs", "2", "--batch-size", "4",
                             "--quiet", "--out", run], capsys)
    assert status == 0, err
    assert "'input_shape': (28, 28, 3), 'classes': 3" in out  # resized up to LeNet-5's minimum

    images = [str(photos / "red" / "000.png"), str(photos / "green" / "001.png")]
    status, out, err = run_cli(["predict", *images, "--model", run, "--top", "3"], capsys)
    assert status == 0, err
    for line, image in zip(out.splitlines(), images):
        path, _, rest = line.partition(": ")
        names = [item.rsplit(" ", 1)[0] for item in rest.split(", ")]
        probabilities = [float(item.rsplit(" ", 1)[1]) for item in rest.split(", ")]
        assert path == image and sorted(names) == ["blue", "green", "red"]
        assert sum(probabilities) == pytest.approx(1.0, abs=2e-3)
        assert probabilities == sorted(probabilities, reverse=True)

    status, from_dir, err = run_cli(["evaluate", run], capsys)
    assert status == 0 and from_dir.startswith("image_folder test: loss "), err
    status, from_file, _ = run_cli(["evaluate", os.path.join(run, "model.keras")], capsys)
    assert status == 0 and from_file == from_dir  # the record beside the file says it all
    status, _, err = run_cli(["evaluate", run, "--dataset", "adding_problem"], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "lenet5 image-classification model) cannot be evaluated on 'adding_problem'" in err
    bare = str(tmp_path / "bare.keras")  # no record to consult: the shapes find the misfit
    shutil.copy(os.path.join(run, "model.keras"), bare)
    status, _, err = run_cli(["evaluate", bare, "--dataset", "adding_problem"], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert (f"The model at '{bare}' expects inputs of shape (28, 28, 3) but "
            "'adding_problem' gives (100, 2)") in err


def test_the_lazy_package_still_offers_every_model():
    script = (
        "import sys\n"
        "import zoo\n"
        "assert 'zoo.cnn' not in sys.modules and 'tensorflow' not in sys.modules\n"
        "from zoo import registry\n"
        "assert registry.model_info('lenet5').task == 'image-classification'  # registers all\n"
        "from zoo import vgg16, char_lm, show_and_tell, list_models\n"
        "names = set(zoo.__all__)\n"
        "for family in (zoo.cnn, zoo.rnn, zoo.captioning):\n"
        "    assert set(family.__all__) <= names and set(family.__all__) <= set(dir(zoo))\n"
        "    assert all(getattr(zoo, n) is getattr(family, n) for n in family.__all__)\n"
        "assert {'create_model', 'list_models', 'model_info', 'Recipe'} <= names\n"
        "assert zoo.list_models() == registry.list_models() and 'vgg16' in list_models()\n"
        "namespace = {}\n"
        "exec('from zoo import *', namespace)\n"
        "assert namespace['vgg16'] is vgg16\n"
        "try:\n"
        "    zoo.no_such_model\n"
        "except AttributeError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([PYTHON, "-c", script], cwd=ROOT, env=_env(), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "module 'zoo' has no attribute 'no_such_model'"
