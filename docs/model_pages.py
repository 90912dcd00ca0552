"""The site's model pages, generated from the registry: one page per family (the module that
defines the models: vgg, resnet, ...), each model with its paper, parameters, recipe, weights
and the measured quality rows of the README's quality table."""

import inspect
import re
import sys
from collections import defaultdict

QUALITY_START = "<!-- quality:start -->"
QUALITY_END = "<!-- quality:end -->"


def _registry():
    import zoo

    return [zoo.model_info(name) for name in zoo.list_models()]


def _shape(shape):
    return "x".join("T" if d is None else str(d) for d in shape) if shape else "-"


def _family(info):
    """The page a model is on: its defining module's last name (`zoo.cnn.vgg` -> `vgg`)."""
    return info.builder.__module__.rsplit(".", 1)[-1]


def _cell(value):
    return str(value).replace("|", "\\|").replace("\n", " ")


def models_table():
    """The landing page's table: the README's model table, each name linked to its page."""
    rows = [
        "| model | task | paper | default input | parameters | summary |",
        "| --- | --- | --- | --- | ---: | --- |",
    ]
    for info in _registry():
        params = f"{info.params:,}" if info.params is not None else "-"
        paper = f"[{info.paper.authors} {info.paper.year}]({info.paper.url})"
        rows.append(
            f"| {{ref}}`{info.name} <model-{info.name}>` | {info.task} | {paper} | "
            f"{_shape(info.default_input_shape)} | {params} | {_cell(info.summary)} |"
        )
    return "\n".join(rows) + "\n"


def quality_rows(readme):
    """README's measured quality table: (the line saying how it was measured, header lines,
    {model: row})."""
    if QUALITY_START not in readme:
        return "", [], {}
    block = readme.split(QUALITY_START, 1)[1].split(QUALITY_END, 1)[0].strip().splitlines()
    note = " ".join(line for line in block if line and not line.startswith("|"))
    table = [line for line in block if line.startswith("|")]
    rows = {}
    for line in table[2:]:
        match = re.match(r"\|\s*`([^`]+)`", line)
        if match:
            rows.setdefault(match.group(1), []).append(line)
    return note, table[:2], rows


def _recipe(recipe):
    lines = ["| field | value |", "| --- | --- |"]
    lines += [f"| `{name}` | `{value!r}` |" for name, value in recipe.fields().items()]
    text = "\n".join(lines) + "\n"
    if recipe.paper_setting:
        text += f"\n**The paper's setting:** {recipe.paper_setting}\n"
    text += f"\n**The zoo's adaptation:** {recipe.adaptation or 'none: the paper setting as is.'}\n"
    return text


def _weights(info):
    """A table of the registry's weight entries ({name: WeightsEntry}), or one line."""
    entries = getattr(info, "weights", None)
    if not isinstance(entries, dict) or not entries:
        if info.imagenet_weights:
            return '`weights="imagenet"` (`zoo.model_info(name).imagenet_weights`).\n'
        return "Random initialisation only (no pretrained weights).\n"
    rows = [
        "| `weights=` | source | ImageNet top-1 (published) | preprocessing | licence | file |",
        "| --- | --- | ---: | --- | --- | --- |",
    ]
    for name, entry in entries.items():
        source = getattr(entry, "source", "-")
        if getattr(entry, "source_name", ""):
            source += f" `{entry.source_name}`"
        top1 = getattr(entry, "top1", None)
        reference = getattr(entry, "top1_reference", "")
        top1 = f"{top1}% ({reference})" if top1 is not None else "-"
        preprocessing = getattr(entry, "preprocessing", None)
        preprocessing = (preprocessing.describe() if hasattr(preprocessing, "describe")
                         else str(preprocessing or "-"))
        url = getattr(entry, "url", "")
        link = f"[{getattr(entry, 'file_name', '') or 'file'}]({url})" if url else "-"
        rows.append(f"| `\"{name}\"` | {_cell(source)} | {_cell(top1)} | {_cell(preprocessing)}"
                    f" | {_cell(getattr(entry, 'license', '-'))} | {link} |")
    return "\n".join(rows) + "\n"


def _model(info, quality):
    note, header, rows = quality
    paper = info.paper
    facts = [
        f"- **Paper:** {paper.authors} ({paper.year}), [{paper.title}]({paper.url})",
        f"- **Task:** {info.task}",
        f"- **Parameters:** {info.params:,}" if info.params is not None else "",
        f"- **Default input:** {_shape(info.default_input_shape)}; "
        f"smallest: {_shape(info.min_input_shape)}",
        f"- **Default dataset** (`zoo train --model {info.name}`): `{info.default_dataset}`",
        f"- **Small configuration** (tests, `--small`): `{info.small_config}`",
        f"- **Build it:** `zoo.create_model(\"{info.name}\")` or "
        f"`{info.builder.__module__.rsplit('.', 1)[0]}.{info.name}(...)`",
    ]
    measured = rows.get(info.name)
    quality_text = (
        "\n".join(header + measured) + f"\n\n{note}\n" if measured
        else "Not in the README's quality table.\n"
    )
    return f"""({"model-" + info.name})=
## `{info.name}`

{info.summary}

{chr(10).join(f for f in facts if f)}

### Recipe

{_recipe(info.recipe)}
### Weights

{_weights(info)}
### Measured quality

{quality_text}
"""


def _title(module_name, infos):
    doc = inspect.getdoc(sys.modules[module_name]) or ""
    first = doc.split("\n\n", 1)[0].replace("\n", " ").strip()
    return first, ", ".join(f"`{info.name}`" for info in infos)


def family_pages(readme):
    """{relative path: page text}: models/index.md and one page per family."""
    quality = quality_rows(readme)
    families = defaultdict(list)
    for info in _registry():
        families[_family(info)].append(info)
    pages = {}
    index_rows = ["| family | module | models |", "| --- | --- | --- |"]
    for family, infos in sorted(families.items()):
        module = infos[0].builder.__module__
        description, names = _title(module, infos)
        body = "\n".join(_model(info, quality) for info in infos)
        pages[f"models/{family}.md"] = (
            f"# {infos[0].family}: {family}\n\n{names}: {description}\n\nGenerated from the "
            f"registry (`zoo.model_info(name)`) and `{module}`'s docstrings; the measured rows "
            f"are the README's quality table.\n\n{body}"
        )
        index_rows.append(f"| [{family}]({family}.md) | `{module}` | {names} |")
    toc = "\n".join(sorted(families))
    pages["models/index.md"] = (
        "# Models\n\nOne page per family, generated from the registry.\n\n"
        + "\n".join(index_rows)
        + f"\n\n```{{toctree}}\n:hidden:\n:maxdepth: 1\n\n{toc}\n```\n"
    )
    return pages
