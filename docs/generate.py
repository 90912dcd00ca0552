"""Write the site's sources into docs/_build/source: every page is generated here, at build
time, from the code and the repository's files (README, tutorials/, the registry, the CLI
parser, the docstrings), so that no page is a hand-kept copy that can drift.

    python docs/generate.py [--full 01,05 | --full all | --full none]

A file is rewritten only when its text changed, so Sphinx rereads (and jupyter-cache reruns)
only what changed; files no longer generated are removed.
"""

import argparse
import copy
import importlib.util
import json
import os
import re
import sys

import nbformat

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SOURCE = os.path.join(ROOT, "docs", "_build", "source")
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from model_pages import family_pages, models_table  # noqa: E402

# The notebooks whose full mode fits the build (measured on 2 CPU cores); the others run in
# quick mode (ZOO_TUTORIAL_QUICK=1), as the test suite runs them. `--full` overrides.
FULL_MODE = ("01", "05")

MODE_TEXT = {
    "quick": (
        "This page was executed in **quick mode** (`ZOO_TUTORIAL_QUICK=1`) when the site was "
        "built: the same code and checks as the full run, on smaller experiments (fewer "
        "epochs, steps and examples). Run the notebook in Jupyter without the variable for "
        "the full mode and the longer curves the text discusses."
    ),
    "full": (
        "This page was executed in **full mode** (without `ZOO_TUTORIAL_QUICK`) when the site "
        "was built: the outputs are those a reader gets in Jupyter."
    ),
}

_written = set()


def write(relative, text):
    """Write `text` to SOURCE/relative unless the file already holds it."""
    path = os.path.join(SOURCE, relative)
    _written.add(os.path.normpath(path))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def remove_stale():
    for folder, _, files in os.walk(SOURCE):
        for name in files:
            path = os.path.normpath(os.path.join(folder, name))
            if path not in _written:
                os.remove(path)


def read(relative):
    with open(os.path.join(ROOT, relative), encoding="utf-8") as f:
        return f.read()


def notebooks():
    folder = os.path.join(ROOT, "tutorials")
    return sorted(name[:-6] for name in os.listdir(folder) if re.match(r"\d\d_.*\.ipynb$", name))


def tutorial(name, mode):
    """The notebook as the site executes it: a hidden first cell that sets the mode (so the
    cache keys quick and full runs apart) and a note after the title saying which ran."""
    nb = nbformat.read(os.path.join(ROOT, "tutorials", f"{name}.ipynb"), as_version=4)
    value = "1" if mode == "quick" else "0"
    setter = nbformat.v4.new_code_cell(
        f'import os\n\nos.environ["ZOO_TUTORIAL_QUICK"] = "{value}"  # set by docs/generate.py',
        metadata={"tags": ["remove-cell"]},
    )
    note = nbformat.v4.new_markdown_cell(f"```{{note}}\n{MODE_TEXT[mode]}\n```")
    cells = [copy.deepcopy(cell) for cell in nb.cells]
    title_at = 1 if cells and cells[0].cell_type == "markdown" else 0
    nb.cells = [setter] + cells[:title_at] + [note] + cells[title_at:]
    for cell in nb.cells:
        cell.pop("id", None)  # nbformat adds fresh ids; keep the file stable between builds
    nb.nbformat_minor = 4
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def readme_intro():
    """README's opening (the two commands, what zoo is, the Python example), up to its
    contents line."""
    text = read("README.md")
    body = text.split("\n", 1)[1]  # drop "# zoo"
    intro = body.split("\nContents:", 1)[0].strip() + "\n"
    # Links into the README itself (#section) or the repository's files have no page here.
    return re.sub(r"\[([^\]]+)\]\((?!https?:)[^)]*\)", r"\1", intro)


def landing(tutorial_names):
    tutorial_list = "\n".join(f"tutorials/{name}" for name in tutorial_names)
    return f"""# zoo

{readme_intro()}
This site is built from the repository by `bash docs/build.sh`: the {len(tutorial_names)}
tutorials are executed with their outputs and figures, and the model, command-line and API
pages are generated from the registry, the parser and the docstrings.

## Models

Generated from the registry (`zoo.list_models()`, `zoo.model_info(name)`); each model links to
its family's page (paper, recipe, weights and measured quality).

{models_table()}
```{{toctree}}
:hidden:
:caption: Tutorials
:maxdepth: 1

tutorials/index
{tutorial_list}
```

```{{toctree}}
:hidden:
:caption: Reference
:maxdepth: 1

models/index
cli
api/index
```
"""


def tutorials_index():
    text = read("tutorials/README.md")
    # The table's links name the notebooks, which are pages of this site; its pointer to the
    # repository's README (if any) has no page here.
    text = text.replace("](../README.md)", "](../index.md)")
    text += "\n## Execution times of this build\n\n```{nb-exec-table}\n```\n"
    return text


CLI = """# Command line: `zoo`

Generated from the parser (`zoo.cli.parser.build_parser()`), so it lists exactly what
`zoo COMMAND --help` prints.

```{argparse}
:module: zoo.cli.parser
:func: build_parser
:prog: zoo
```
"""


def layers_module():
    """The custom layers' package: `zoo.layers` once it moved there, else `layers`."""
    return "zoo.layers" if importlib.util.find_spec("zoo.layers") else "layers"


def api_pages():
    layers = layers_module()
    pages = {
        "layers": (f"Layers: `{layers}`", [layers]),
        "models": ("Models: `zoo.cnn`, `zoo.rnn`, `zoo.captioning`",
                   ["zoo.cnn", "zoo.rnn", "zoo.captioning"]),
        "registry": ("Registry: `zoo.registry`", ["zoo.registry"]),
        "training": ("Training: `zoo.training`", ["zoo.training"]),
        "samplers": ("Samplers: `zoo.samplers`", ["zoo.samplers"]),
        "data": ("Datasets: `zoo.data`", ["zoo.data"]),
    }
    for name, (title, modules) in pages.items():
        blocks = "\n".join(
            f"## `{module}`\n\n```{{eval-rst}}\n.. automodule:: {module}\n   :members:\n```\n"
            for module in modules
        )
        write(f"api/{name}.md", f"# {title}\n\nGenerated from the docstrings.\n\n{blocks}")
    toc = "\n".join(pages)
    write("api/index.md", f"""# API reference

Generated from the docstrings (Google style) by Sphinx autodoc. The package's entry points:
`zoo.create_model(name, **kwargs)` and the model functions, `zoo.training.train(...)` and its
`TrainResult`, the samplers of `zoo.samplers`, the datasets of `zoo.data`, and the custom
layers of `{layers}`.

```{{toctree}}
:maxdepth: 1

{toc}
```
""")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", default=",".join(FULL_MODE),
                        help="notebooks run in full mode: numbers (01,05), 'all' or 'none'")
    args = parser.parse_args(argv)
    names = notebooks()
    full = {"all": [n[:2] for n in names], "none": []}.get(args.full)
    if full is None:
        full = [part.strip() for part in args.full.split(",") if part.strip()]
        unknown = sorted(set(full) - {n[:2] for n in names})
        if unknown:
            parser.error(f"argument --full: unknown notebook numbers {unknown}; "
                         f"allowed: {[n[:2] for n in names]}, 'all' or 'none'")
    for name in names:
        write(f"tutorials/{name}.ipynb", tutorial(name, "full" if name[:2] in full else "quick"))
    write("tutorials/index.md", tutorials_index())
    write("index.md", landing(names))
    write("cli.md", CLI)
    api_pages()
    for relative, text in family_pages(read("README.md")).items():
        write(relative, text)
    remove_stale()
    print(f"docs/generate.py: {len(_written)} pages in {os.path.relpath(SOURCE, ROOT)} "
          f"(full mode: {', '.join(full) or 'none'})")


if __name__ == "__main__":
    main()
