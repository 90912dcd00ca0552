"""What the package installs: `zoo` and its subpackages only, the custom layers as `zoo.layers`."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_a_users_own_layers_module_does_not_shadow_ours(tmp_path):
    # A layers.py in the working directory is a common name in ML projects; it comes first on
    # sys.path, so a top-level `layers` package of ours would be shadowed by it.
    (tmp_path / "layers.py").write_text("raise ImportError('the user\\'s own layers.py')\n")
    code = (
        "import zoo; model = zoo.lenet5(); print(model.count_params()); "
        "import zoo.layers; print(zoo.layers.StableSoftmax.__module__)"
    )
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=environment, capture_output=True,
        text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    count, module = result.stdout.split()[-2:]
    assert int(count) == 61706  # LeNet-5 on 32x32x1 inputs, 10 classes
    assert module == "zoo.layers.softmax"


def test_the_package_list_names_every_package_folder():
    tomllib = pytest.importorskip("tomllib")
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "zoo").rglob("__init__.py")
        if "__pycache__" not in path.parts
    }
    assert set(settings["packages"]) == folders | {"zoo.layers", "zoo.data.corpus"}
    assert settings["package-dir"] == {"zoo.layers": "layers"}
    assert "layers" not in settings["packages"]
