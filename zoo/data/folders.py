"""Your own images: `image_folder`, a classification dataset in Keras' `image_dataset_from_directory`
layout, and the image-file checks that `zoo predict` shares.

Layout (one subfolder per class; class names are the folder names, in sorted order, as in
Keras)::

    my_photos/                      or, with your own splits:   my_photos/
      cats/  001.jpg 002.png ...                                  train/       cats/ dogs/
      dogs/  001.jpg ...                                          validation/  cats/ dogs/  (or val/)
                                                                  test/        cats/ dogs/

A class folder's images are found at any depth (`cats/indoor/001.jpg` is a cat), as Keras'
`image_dataset_from_directory` finds them; files and folders whose names start with "." are
skipped. Files with other suffixes than `IMAGE_SUFFIXES` are ignored (Keras does the same). Without
`validation/` or `test/` folders, those splits are held out of the training images per class:
`ceil(fraction * n)` images of a class of `n` (so every class is in every split), chosen by a
seeded shuffle: the same folder and seed give the same split.

Images are decoded in the input pipeline (RGB, or greyscale when every image is greyscale),
scaled to [0, 1], resized (bilinear) to `image_size` or up to the model's minimum input, and
normalised with the per-channel mean and standard deviation of the training images.
"""

import math
import os

import numpy as np
import tensorflow as tf

from zoo.data.base import DatasetSplits, register_dataset
from zoo.validation import check_int, check_number

# The formats tf.io.decode_image reads (Keras' image_dataset_from_directory list).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
GREYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
SPLIT_FOLDERS = {"validation": ("validation", "val"), "test": ("test",)}
# The normalisation statistics are estimated from at most this many training images.
STATISTICS_IMAGES = 1000


def check_image_file(path, argument="IMAGE"):
    """Open an image file's header with Pillow; a clear ValueError when it is not an image.

    Args:
        path: The file.
        argument: How the error names the file (a flag, or "image").

    Returns:
        `(height, width, mode)` with Pillow's mode ("L", "RGB", ...).

    Raises:
        ValueError: for a missing file, a directory, or a file Pillow cannot read as an image.
    """
    from PIL import Image, UnidentifiedImageError

    if os.path.isdir(path):
        raise ValueError(f"{argument} {path!r} is a folder; expected an image file.")
    if not os.path.exists(path):
        raise ValueError(f"{argument} {path!r} does not exist.")
    try:
        with Image.open(path) as image:
            image.verify()  # reads the whole file for PNG: catches truncated files too
            width, height = image.size
            return height, width, image.mode
    except UnidentifiedImageError:
        raise ValueError(
            f"{argument} {path!r} is not an image (Pillow cannot identify it); expected a PNG, "
            "JPEG, BMP or GIF file."
        ) from None
    except (OSError, SyntaxError, ValueError) as error:  # truncated or corrupt
        raise ValueError(f"{argument} {path!r} is not a readable image ({error}).") from None


def as_pair(name, size):
    """`size` as `(height, width)`: an int N means N x N."""
    if isinstance(size, (tuple, list)) and len(size) == 2:
        return (check_int(name, size[0]), check_int(name, size[1]))
    value = check_int(name, size)
    return (value, value)


def _images_in(folder, recursive=False):
    """The image files in `folder` (and, if `recursive`, its subfolders at any depth)."""
    found = []
    for root, folders, names in os.walk(folder, followlinks=True):
        folders[:] = [name for name in folders if not name.startswith(".")] if recursive else []
        found += [
            os.path.join(root, name) for name in names
            if not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES)
            and os.path.isfile(os.path.join(root, name))
        ]
    return sorted(found)


def _class_folders(folder):
    return sorted(
        name for name in os.listdir(folder)
        if not name.startswith(".") and os.path.isdir(os.path.join(folder, name))
    )


def scan_classes(folder):
    """`{class name: [image paths]}` for a folder of class subfolders, with clear errors.

    Raises:
        ValueError: if the folder has no class subfolders, only one, or one without images.
    """
    classes = _class_folders(folder)
    if not classes:
        loose = _images_in(folder)
        raise ValueError(
            f"The image folder {folder!r} has no class subfolders"
            + (f" ({len(loose)} images lie in it directly)" if loose else "")
            + f": expected {os.path.join(folder, '<class>', '<image>.png')}, one subfolder per "
            "class (Keras' image_dataset_from_directory layout)."
        )
    if len(classes) < 2:
        raise ValueError(
            f"The image folder {folder!r} has one class subfolder ({classes[0]!r}): a "
            "classifier needs at least 2 classes, one subfolder each."
        )
    files = {name: _images_in(os.path.join(folder, name), recursive=True) for name in classes}
    for name, paths in files.items():
        if not paths:
            raise ValueError(
                f"The class folder {os.path.join(folder, name)!r} holds no images "
                f"({', '.join(IMAGE_SUFFIXES)})."
            )
    return files


def _split_folder(path, split):
    for name in SPLIT_FOLDERS[split]:
        candidate = os.path.join(path, name)
        if os.path.isdir(candidate):
            return candidate
    return None


def _hold_out(files, fraction, seed, split):
    """Move `ceil(fraction * n)` seeded-random images of each class out of `files`."""
    rng = np.random.default_rng(seed)
    kept, held = {}, {}
    for name, paths in files.items():
        count = math.ceil(fraction * len(paths))
        if len(paths) - count < 1:
            raise ValueError(
                f"The class {name!r} has {len(paths)} image(s): too few to hold out "
                f"{count} for the {split} split and keep one for training. Add images, or "
                f"lower the {split} fraction."
            )
        order = rng.permutation(len(paths))
        held[name] = sorted(paths[i] for i in order[:count])
        kept[name] = sorted(paths[i] for i in order[count:])
    return kept, held


def _splits(path, validation_fraction, test_fraction, seed):
    """`{split: {class: [paths]}}` for "train", "validation" (may be empty) and "test"."""
    train_folder = os.path.join(path, "train")
    if os.path.isdir(train_folder) and _class_folders(train_folder):
        splits = {"train": scan_classes(train_folder)}
        for split in ("validation", "test"):
            folder = _split_folder(path, split)
            if folder is not None:
                splits[split] = scan_classes(folder)
                if sorted(splits[split]) != sorted(splits["train"]):
                    raise ValueError(
                        f"The class folders of {folder!r} ({sorted(splits[split])}) differ from "
                        f"those of {train_folder!r} ({sorted(splits['train'])})."
                    )
    else:
        splits = {"train": scan_classes(path)}
    if "test" not in splits:
        if not test_fraction:
            raise ValueError(
                f"The image folder {path!r} has no test/ folder and test_fraction is 0: a test "
                "split is needed. Received: test_fraction=0"
            )
        splits["train"], splits["test"] = _hold_out(splits["train"], test_fraction, seed, "test")
    if "validation" in splits:
        how = f"the folder {_split_folder(path, 'validation')!r}"
    elif validation_fraction:
        splits["train"], splits["validation"] = _hold_out(
            splits["train"], validation_fraction, seed + 1, "validation"
        )
        how = (f"{validation_fraction:g} of each class's training images held out "
               f"(validation_fraction, seed {seed + 1})")
    else:
        splits["validation"], how = {}, None
    return splits, how


def _image_format(files, image_size):
    """(height, width) shared by every image (None when `image_size` resizes them) and the
    channel count; a ValueError naming two files when sizes differ and no size was given."""
    first_size, first_path, greyscale = None, None, True
    for path in files:
        height, width, mode = check_image_file(path, argument="image")
        greyscale = greyscale and mode in GREYSCALE_MODES
        if image_size is None:
            if first_size is None:
                first_size, first_path = (height, width), path
            elif (height, width) != first_size:
                raise ValueError(
                    f"The images have different sizes: {first_path!r} is "
                    f"{first_size[0]}x{first_size[1]} but {path!r} is {height}x{width} (height x "
                    "width). Pass image_size (zoo train --image-size HxW) to resize them all."
                )
    return first_size, (1 if greyscale else 3)


def decode_image_file(path, channels, size=None):
    """A TensorFlow image from a file: float32 in [0, 1], `channels` 1 or 3, resized
    (bilinear) to `size` when given. Works inside `tf.data` maps."""
    data = tf.io.read_file(path)
    image = tf.io.decode_image(data, channels=3, expand_animations=False)  # any format -> RGB
    image = tf.image.convert_image_dtype(image, tf.float32)  # 8- or 16-bit -> [0, 1]
    if channels == 1:
        image = tf.image.rgb_to_grayscale(image)
    if size is not None:
        image = tf.image.resize(image, size, method="bilinear")
    return image


def read_image_files(paths, height, width, channels, argument="IMAGE"):
    """Image files as one float32 batch `[N, height, width, channels]` in [0, 1], for
    prediction: the pixels `decode_image_file` gives in training, for any format Pillow reads.

    Raises:
        ValueError: naming the first path that is missing, a folder or not an image.
    """
    from PIL import Image

    if channels not in (1, 3):
        raise ValueError(
            f"Only 1- or 3-channel image models are supported. Received: channels={channels}"
        )
    batch = []
    for path in paths:
        check_image_file(path, argument=argument)
        with Image.open(path) as image:  # the first frame of an animation, as in training
            pixels = tf.constant(np.asarray(image.convert("RGB"), dtype="float32") / 255.0)
        if channels == 1:
            pixels = tf.image.rgb_to_grayscale(pixels)
        if tuple(pixels.shape[:2]) != (height, width):
            pixels = tf.image.resize(pixels, (height, width), method="bilinear")
        batch.append(pixels.numpy())
    return np.stack(batch)


def _statistics(paths, decode, channels, seed):
    rng = np.random.default_rng(seed)
    if len(paths) > STATISTICS_IMAGES:
        paths = [paths[i] for i in sorted(rng.choice(len(paths), STATISTICS_IMAGES, replace=False))]
    total = np.zeros(channels)
    total_squares = np.zeros(channels)
    count = 0
    for image in tf.data.Dataset.from_tensor_slices(paths).map(decode).as_numpy_iterator():
        pixels = image.reshape(-1, channels).astype("float64")
        total += pixels.sum(axis=0)
        total_squares += np.square(pixels).sum(axis=0)
        count += len(pixels)
    mean = total / count
    std = np.sqrt(np.maximum(total_squares / count - np.square(mean), 0.0))
    return tuple(float(m) for m in mean), tuple(float(max(s, 1e-3)) for s in std)


@register_dataset(
    "image_folder",
    task="image-classification",
    summary="your own images, one subfolder per class (Keras' image_dataset_from_directory "
    "layout); needs path=...",
    offline=True,
)
def image_folder(
    path,
    image_size=None,
    min_image_size=None,
    validation_fraction=0.1,
    test_fraction=0.1,
    seed=0,
):
    """Images in class subfolders (see the module docstring for the layout and the splits).

    Args:
        path: The folder.
        image_size: `(height, width)` or N: resize every image to it. Needed when the images
            have different sizes.
        min_image_size: `(height, width)` the images are resized up to when smaller (the
            model's minimum input; `zoo train` passes it).
        validation_fraction: Per class, `ceil(fraction * n)` training images held out for
            validation (when there is no `validation/` folder); 0 leaves the hold-out to
            training.
        test_fraction: The same for the test split (when there is no `test/` folder).
        seed: Seed of the held-out selection.

    Returns:
        `DatasetSplits` of `(image float32 (H, W, C), label int32)` with
        `model_kwargs={"input_shape": (H, W, C), "classes": number of classes}` and
        `extras["class_names"]` (label i is `class_names[i]`), `"mean"`, `"std"`.

    Raises:
        ValueError: for a missing or empty folder, one class only, a class without images, a
            file that is not a readable image, or images of different sizes without
            `image_size`, naming the folder or file.
    """
    if not os.path.isdir(path):
        raise ValueError(
            f"Argument `path` must be a folder of class subfolders. Received: path={path!r}"
            + (" (a file)" if os.path.exists(path) else " (does not exist)")
        )
    check_number("validation_fraction", validation_fraction, low=0, high=1, high_inclusive=False)
    check_number("test_fraction", test_fraction, low=0, high=1, high_inclusive=False)
    target = None if image_size is None else as_pair("image_size", image_size)
    splits, validation_how = _splits(path, validation_fraction, test_fraction, seed)
    class_names = sorted(splits["train"])
    every_file = [p for split in splits.values() for paths in split.values() for p in paths]
    native, channels = _image_format(every_file, target)
    size = target or native
    if min_image_size is not None:
        size = (max(size[0], int(min_image_size[0])), max(size[1], int(min_image_size[1])))
    resize = None if size == native else size

    def decode(file_path):
        image = decode_image_file(file_path, channels, resize)
        return tf.ensure_shape(image, (*size, channels))

    def listing(split):
        files = splits[split]
        paths = [p for name in class_names for p in files.get(name, [])]
        labels = [i for i, name in enumerate(class_names) for _ in files.get(name, [])]
        return paths, np.array(labels, dtype="int32")

    train_paths, _ = listing("train")
    mean, std = _statistics(train_paths, decode, channels, seed)
    mean_tensor, std_tensor = tf.constant(mean), tf.constant(std)

    def dataset(split):
        paths, labels = listing(split)
        if not paths:
            return None, 0
        options = tf.data.Options()
        options.deterministic = True
        data = tf.data.Dataset.from_tensor_slices((paths, labels)).map(
            lambda p, y: ((decode(p) - mean_tensor) / std_tensor, y),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        return data.with_options(options), len(paths)

    train, num_train = dataset("train")
    validation, num_validation = dataset("validation")
    test, num_test = dataset("test")
    return DatasetSplits(
        name="image_folder",
        train=train,
        test=test,
        task="image-classification",
        model_kwargs={"input_shape": (*size, channels), "classes": len(class_names)},
        num_train=num_train,
        num_test=num_test,
        validation=validation,
        num_validation=num_validation or None,
        extras={"class_names": class_names, "mean": mean, "std": std, "path": path,
                **({"validation_how": validation_how} if validation_how else {})},
    )
