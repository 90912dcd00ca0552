"""Image files for the tests: folders of generated PNGs, one subfolder per colour class."""

import os

import numpy as np
from PIL import Image

COLOURS = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}


def write_image(path, pixels):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.asarray(pixels, dtype="uint8")).save(path)


def make_folder(root, counts, size=(12, 10), seed=0, grey=False):
    """One subfolder per colour class; `counts[name]` noisy images of that colour.

    Returns:
        {path: uint8 pixels} of every image written.
    """
    rng = np.random.default_rng(seed)
    written = {}
    for name, count in counts.items():
        for i in range(count):
            pixels = np.clip(np.array(COLOURS[name]) + rng.normal(0, 25, (*size, 3)), 0, 255)
            pixels = pixels.astype("uint8")
            if grey:
                pixels = pixels[..., 0]
            path = os.path.join(root, name, f"{i:03d}.png")
            write_image(path, pixels)
            written[path] = pixels
    return written
