"""The site's generated sources (docs/generate.py, docs/model_pages.py), checked without
building the site: every registered model has its page, the README's measured rows land on
them, and the executed copy of a tutorial is the notebook plus the mode cell and note."""

import json
import os
import re
import subprocess
import sys

import nbformat
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "docs"))

import generate  # noqa: E402
import model_pages  # noqa: E402


@pytest.fixture(scope="module")
def readme():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return f.read()


def test_every_model_on_one_family_page_with_its_facts(readme):
    import zoo

    pages = model_pages.family_pages(readme)
    for name in zoo.list_models():
        info = zoo.model_info(name)
        holding = [path for path, text in pages.items() if f"(model-{name})=\n" in text]
        assert len(holding) == 1, f"{name} is on {holding}"
        text = pages[holding[0]]
        section = text.split(f"(model-{name})=\n", 1)[1].split("\n(model-", 1)[0]
        assert f"{info.params:,}" in section and info.paper.url in section
        assert info.recipe.optimizer in section and f"`{info.recipe.epochs!r}`" in section
        if info.recipe.adaptation:
            assert info.recipe.adaptation in section
        entries = getattr(info, "weights", None)
        for weights_name, entry in (entries if isinstance(entries, dict) else {}).items():
            assert f'`"{weights_name}"`' in section and entry.url in section, name
        if not entries and not info.imagenet_weights:
            assert "Random initialisation only" in section
    index = pages["models/index.md"]
    for path in pages:
        if path != "models/index.md":
            assert f"({os.path.basename(path)})" in index, f"{path} not in the models index"


def test_quality_rows_are_the_readmes(readme):
    note, header, rows = model_pages.quality_rows(readme)
    block = readme.split(model_pages.QUALITY_START)[1].split(model_pages.QUALITY_END)[0]
    table = [line for line in block.splitlines() if re.match(r"\| `", line)]
    assert table, "the README's quality table has no rows"
    assert sorted(line for lines in rows.values() for line in lines) == sorted(table)
    assert header[0].startswith("| model |") and note.startswith("Measured")


def test_tutorial_copy_is_the_notebook_plus_mode_cell_and_note():
    name = generate.notebooks()[0]
    original = nbformat.read(os.path.join(ROOT, "tutorials", f"{name}.ipynb"), as_version=4)
    for mode, value in (("quick", "1"), ("full", "0")):
        copy = json.loads(generate.tutorial(name, mode))
        setter, title, note = copy["cells"][:3]
        assert setter["metadata"]["tags"] == ["remove-cell"]
        assert f'os.environ["ZOO_TUTORIAL_QUICK"] = "{value}"' in "".join(setter["source"])
        assert f"executed in **{mode} mode**" in "".join(note["source"])
        rest = [title] + copy["cells"][3:]
        assert ["".join(c["source"]) for c in rest] == [c.source for c in original.cells]


def test_unknown_full_mode_notebook_is_one_clear_error():
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "docs", "generate.py"), "--full", "01,99"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "argument --full" in result.stderr and "'99'" in result.stderr
