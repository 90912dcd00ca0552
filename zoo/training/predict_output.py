"""What `zoo predict` reads and prints: image files from files and folders, and the answers as
text, JSON or CSV (for scripts)."""

import csv
import io
import json
import os

FORMATS = ("text", "json", "csv")


def image_paths(arguments, argument="IMAGE"):
    """Files as given; folders replaced by the image files under them, recursively, in sorted
    order (the suffixes `image_folder` reads; hidden files and folders skipped).

    Raises:
        ValueError: for a folder without any image file.
    """
    from zoo.data.folders import IMAGE_SUFFIXES

    paths = []
    for given in arguments:
        if not os.path.isdir(given):
            paths.append(given)
            continue
        found = []
        for folder, subfolders, files in os.walk(given):
            subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
            found += [os.path.join(folder, name) for name in files
                      if not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES)]
        if not found:
            raise ValueError(
                f"{argument} {given!r} is a folder without image files ({', '.join(IMAGE_SUFFIXES)}"
                ", searched recursively)."
            )
        paths += sorted(found)
    return paths


def format_predictions(paths, results, fmt="text"):
    """The predictions as `zoo predict` prints them.

    Args:
        paths: The image files.
        results: One list of `(class name, probability)` per file, most probable first.
        fmt: "text" (one line per image), "json" (a list of {"path", "classes":
            [{"name", "probability"}]}) or "csv" (a header, then one row per image: path, then
            class and probability of each rank).

    Returns:
        The text to print (ending in a newline).
    """
    if fmt == "json":
        return json.dumps([
            {"path": path, "classes": [{"name": name, "probability": probability}
                                       for name, probability in classes]}
            for path, classes in zip(paths, results)
        ], indent=1) + "\n"
    if fmt == "csv":
        top = max((len(classes) for classes in results), default=0)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["path"] + [f"{field}_{rank}" for rank in range(1, top + 1)
                                    for field in ("class", "probability")])
        for path, classes in zip(paths, results):
            writer.writerow([path] + [value for name, probability in classes
                                      for value in (name, repr(probability))])
        return buffer.getvalue()
    if fmt != "text":
        raise ValueError(f"Argument `format` must be one of {FORMATS}. Received: format={fmt!r}")
    return "".join(f"{path}: " + ", ".join(f"{name} {probability:.3f}"
                                           for name, probability in classes) + "\n"
                   for path, classes in zip(paths, results))
