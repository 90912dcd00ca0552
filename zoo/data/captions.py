"""Image-captioning datasets: synthetic coloured shapes (offline), COCO (tfds), your own folder.

Every loader returns `DatasetSplits` whose unbatched elements are

    ((image [H, W, C] float32 in [0, 1], caption_in [T] int32), caption_out [T] int32,
     mask [T] float32)

for teacher forcing: `caption_in` is `<start> w_1 ... w_n` padded, `caption_out` is
`w_1 ... w_n <end>` padded and `mask` is 1 on its real tokens. Training sets hold one element
per (image, reference caption) pair; test sets one element per image with its first reference.
`extras` holds:

* "tokenizer": the `CaptionTokenizer` that encoded them;
* "test_references": a list, one entry per test image in the test set's order, of all its
  reference captions (strings) -- for corpus BLEU (`zoo.captioning.evaluate_bleu`).

`model_kwargs` (`vocabulary`, `input_shape`, `max_length`) make
`zoo.create_model("show_and_tell", **model_kwargs)` fit the data.
"""

import csv
import os

import numpy as np
import tensorflow as tf

from zoo import text
from zoo.data.base import DatasetSplits, register_dataset
from zoo.data.downloads import load_tfds
from zoo.data.folders import as_pair, check_image_file
from zoo.validation import check_int, check_number

TASK = "image-captioning"

_RGB = {
    "red": (0.9, 0.1, 0.1),
    "green": (0.1, 0.8, 0.2),
    "blue": (0.15, 0.25, 0.95),
    "yellow": (0.95, 0.9, 0.1),
}


def _shape_mask(kind, dy, dx, radius):
    if kind == "circle":
        return dy**2 + dx**2 <= radius**2
    if kind == "square":
        return np.maximum(np.abs(dy), np.abs(dx)) <= 0.85 * radius
    # an upward triangle: apex at the top, base at the bottom
    return (dy <= 0.8 * radius) & (np.abs(dx) <= 0.5 * (dy + radius))


def shapes_examples(num_images, image_size=32, seed=0):
    """Generate the synthetic coloured-shapes captions in NumPy.

    Each image holds two different objects (colour x shape) on a dark noisy background, one
    above the other or side by side, with jittered positions and sizes. Its two references
    describe the layout from either object: "a red circle above a blue square" and "a blue
    square below a red circle", or "a red circle to the left of a blue square" and "a blue
    square to the right of a red circle".

    Args:
        num_images: Number of images.
        image_size: Side of the square RGB images (>= 16).
        seed: Random seed (the same seed gives the same images).

    Returns:
        `(images [N, S, S, 3] float32 in [0, 1], references: list of N lists of strings)`.
    """
    if not isinstance(image_size, int) or image_size < 16:
        raise ValueError(f"Argument `image_size` must be an int >= 16. Received: {image_size!r}")
    if not isinstance(num_images, int) or num_images < 1:
        raise ValueError(f"Argument `num_images` must be a positive int. Received: {num_images!r}")
    rng = np.random.default_rng(seed)
    objects = [(c, k) for c in text.SHAPES_COLOURS for k in text.SHAPES_KINDS]
    s = image_size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) + 0.5
    images = rng.uniform(0.0, 0.12, size=(num_images, s, s, 3)).astype(np.float32)
    references = []
    for n in range(num_images):
        first, second = rng.choice(len(objects), size=2, replace=False)
        (colour_a, kind_a), (colour_b, kind_b) = objects[first], objects[second]
        vertical = rng.random() < 0.5
        along = rng.uniform(0.22, 0.3, size=2) * s * np.array([1, -1]) + np.array([0, s])
        across = rng.uniform(0.3, 0.7, size=2) * s
        for (colour, kind), main, cross in (
            ((colour_a, kind_a), along[0], across[0]),
            ((colour_b, kind_b), along[1], across[1]),
        ):
            cy, cx = (main, cross) if vertical else (cross, main)
            radius = rng.uniform(0.13, 0.18) * s
            mask = _shape_mask(kind, yy - cy, xx - cx, radius)
            shade = np.clip(np.array(_RGB[colour]) + rng.normal(0, 0.04, 3), 0, 1)
            images[n][mask] = shade
        a, b = f"a {colour_a} {kind_a}", f"a {colour_b} {kind_b}"
        if vertical:
            references.append([f"{a} above {b}", f"{b} below {a}"])
        else:
            references.append([f"{a} to the left of {b}", f"{b} to the right of {a}"])
    return images, references


def _teacher_forcing_dataset(tokenizer, images, captions):
    """Elements ((image, caption_in), caption_out, mask) from aligned images and captions."""
    caption_in, caption_out, mask = tokenizer.teacher_forcing(list(captions))
    return tf.data.Dataset.from_tensor_slices(((images, caption_in), caption_out, mask))


def _from_arrays(name, splits, vocabulary, max_length):
    """DatasetSplits from `{"train"|"validation"|"test": (images, references)}`.

    Training gives one example per reference; validation and test one per image (its first
    reference), with every reference in `extras["validation_references"]` and
    `extras["test_references"]` for the caption metrics.
    """
    tokenizer = text.CaptionTokenizer(vocabulary, max_length=max_length)
    train_images, train_refs = splits["train"]
    pair_images = np.repeat(np.arange(len(train_refs)), [len(r) for r in train_refs])
    pair_captions = [c for refs in train_refs for c in refs]
    train = _teacher_forcing_dataset(tokenizer, train_images[pair_images], pair_captions)

    def per_image(images, references):
        return _teacher_forcing_dataset(tokenizer, images, [refs[0] for refs in references])

    return DatasetSplits(
        name=name,
        train=train,
        test=per_image(*splits["test"]),
        task=TASK,
        model_kwargs={
            "vocabulary": list(vocabulary),
            "input_shape": tuple(int(d) for d in train_images.shape[1:]),
            "max_length": max_length,
        },
        num_train=len(pair_captions),
        num_test=len(splits["test"][1]),
        validation=per_image(*splits["validation"]),
        num_validation=len(splits["validation"][1]),
        extras={
            "tokenizer": tokenizer,
            "validation_references": [list(r) for r in splits["validation"][1]],
            "test_references": [list(r) for r in splits["test"][1]],
        },
    )


@register_dataset(
    "shapes_captions",
    task=TASK,
    summary="synthetic coloured shapes in two layouts with templated captions (generated)",
    offline=True,
)
def shapes_captions(num_train=3000, num_validation=300, num_test=300, image_size=32, seed=0):
    """The offline synthetic captioning set (see `shapes_examples`).

    Training and validation images come from one random stream of the seed (the last
    `num_validation` images are validation), test images from another, so no image is in two
    splits: the validation split is by image, never one caption of an image in training and
    the other in validation. Each training image gives two examples (one per reference). The
    vocabulary is `zoo.text.SHAPES_VOCABULARY`, the captioners' default, and `max_length` is
    10 words, the longest caption.
    """
    check_int("num_train", num_train)
    check_int("num_validation", num_validation)
    check_int("num_test", num_test)
    images, references = shapes_examples(num_train + num_validation, image_size, seed=2 * seed)
    test = shapes_examples(num_test, image_size, seed=2 * seed + 1)
    return _from_arrays(
        "shapes_captions",
        {
            "train": (images[:num_train], references[:num_train]),
            "validation": (images[num_train:], references[num_train:]),
            "test": test,
        },
        text.SHAPES_VOCABULARY,
        max_length=10,
    )


# ------------------------------------------------------------------------------------ COCO


def _coco_vocabulary(train, max_words):
    captions = train.map(lambda e: e["captions"]["text"]).unbatch()
    return text.build_vocabulary(
        (t.decode("utf-8") for t in captions.as_numpy_iterator()), max_words=max_words
    )


@register_dataset(
    "coco_captions",
    task=TASK,
    summary="MS-COCO 2014 captions, Karpathy splits (tfds, downloads ~38 GB)",
    offline=False,
)
def coco_captions(
    image_size=224,
    max_length=20,
    max_words=10000,
    vocabulary=None,
    train_split="train",
    validation_split="val",
    test_split="test",
    data_dir=None,
    download=True,
):
    """MS-COCO captions from tfds (`coco_captions/2014`, Karpathy and Li's splits).

    tfds' own splits serve as training ("train", 82,783 images; "restval" holds 30,504 more),
    validation ("val", 5,000: model selection) and test ("test", 5,000). Downloaded (about 38 GB)
    into `data_dir` on first use (see `zoo.data.downloads`).

    Args:
        image_size: Images are resized (bilinear, aspect ratio not kept) to this square size
            and scaled to [0, 1].
        max_length: Most words per caption.
        max_words: Vocabulary size (most frequent training words); the rest become "[UNK]".
        vocabulary: A word list to use instead of counting the training captions (saves one
            pass over them).
        train_split, validation_split, test_split: tfds split names ("train", "restval",
            "val", "test", or expressions like "train+restval").
        data_dir: tfds data directory.
        download: Download the data into `data_dir` if it is not there; False reads prepared
            data only.

    Returns:
        `DatasetSplits` whose `validation` and `test` hold one element per image (its first
        reference), with all references in `extras["validation_references"]` and
        `extras["test_references"]`.
    """
    import tensorflow_datasets as tfds

    skip = {"image": tfds.decode.SkipDecoding()}
    (train_raw, validation_raw, test_raw), _ = load_tfds(
        "coco_captions", split=[train_split, validation_split, test_split], data_dir=data_dir,
        download=download, decoders=skip,
    )
    if vocabulary is None:
        vocabulary = _coco_vocabulary(train_raw, max_words)
    tokenizer = text.CaptionTokenizer(vocabulary, max_length=max_length)

    def image(encoded):
        decoded = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        resized = tf.image.resize(tf.cast(decoded, tf.float32) / 255.0, (image_size, image_size))
        return tf.clip_by_value(resized, 0.0, 1.0)

    def captioned(split):
        return split.filter(lambda e: tf.size(e["captions"]["text"]) > 0)

    def pairs(example):
        captions = example["captions"]["text"]
        caption_in, caption_out, mask = tokenizer.teacher_forcing(captions)
        images = tf.repeat(image(example["image"])[None], tf.shape(captions)[0], axis=0)
        return tf.data.Dataset.from_tensor_slices(((images, caption_in), caption_out, mask))

    def first(example):
        caption_in, caption_out, mask = tokenizer.teacher_forcing(example["captions"]["text"][:1])
        return (image(example["image"]), caption_in[0]), caption_out[0], mask[0]

    def references(split):
        return [
            [t.decode("utf-8") for t in refs]
            for refs in captioned(split).map(lambda e: e["captions"]["text"]).as_numpy_iterator()
        ]

    validation_references = references(validation_raw)
    test_references = references(test_raw)
    return DatasetSplits(
        name="coco_captions",
        train=captioned(train_raw).flat_map(pairs),
        test=captioned(test_raw).map(first),
        task=TASK,
        model_kwargs={
            "vocabulary": list(vocabulary),
            "input_shape": (image_size, image_size, 3),
            "max_length": max_length,
        },
        num_train=None,
        num_test=len(test_references),
        validation=captioned(validation_raw).map(first),
        num_validation=len(validation_references),
        extras={
            "tokenizer": tokenizer,
            "test_references": test_references,
            "validation_references": validation_references,
        },
    )


# ------------------------------------------------------------------------- directory format


def read_captions_file(path):
    """Captions per image file name from a Flickr8k-style captions file.

    Accepted formats, one caption per line:

    * Flickr8k's `Flickr8k.token.txt`: `image.jpg#0<TAB>A dog runs .`
    * a tab-separated `image.jpg<TAB>caption`
    * a CSV with a header `image,caption` (the Kaggle Flickr8k `captions.txt`)

    Returns:
        A dict {file name: [captions]} in file order.

    Raises:
        ValueError: if the file holds no caption.
    """
    captions = {}
    with open(path, encoding="utf-8", newline="") as f:
        lines = f.read().splitlines()
    if lines and lines[0].replace(" ", "").lower().startswith("image,caption"):
        rows = ((row[0], ",".join(row[1:])) for row in csv.reader(lines[1:]) if len(row) >= 2)
    else:
        rows = (line.split("\t", 1) for line in lines if "\t" in line)
    for file_name, caption in rows:
        file_name = file_name.strip().split("#", 1)[0]
        if caption.strip():
            captions.setdefault(file_name, []).append(caption.strip())
    if not captions:
        raise ValueError(
            f"Argument `captions_file` holds no caption: expected lines 'image.jpg#0<TAB>caption',"
            f" 'image.jpg<TAB>caption' or a CSV with header 'image,caption'. Received: {path!r}"
        )
    return captions


def _find_captions_file(directory):
    for candidate in ("captions.txt", "Flickr8k.token.txt", "captions.csv", "captions.tsv"):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    raise ValueError(
        "Argument `captions_file` was not given and none of captions.txt, Flickr8k.token.txt, "
        f"captions.csv, captions.tsv is in {directory!r}."
    )


def _find_images_dir(directory):
    for candidate in ("Images", "images", "Flicker8k_Dataset", "Flickr8k_Dataset"):
        path = os.path.join(directory, candidate)
        if os.path.isdir(path):
            return path
    return directory


@register_dataset(
    "caption_folder",
    task=TASK,
    summary="your own images + captions file (Flickr8k layout); needs path=...",
    offline=True,
)
def caption_folder(
    path,
    captions_file=None,
    images_dir=None,
    image_size=64,
    test_fraction=0.1,
    validation_fraction=0.1,
    max_length=20,
    max_words=None,
    min_count=1,
    seed=0,
):
    """Images in a folder and a captions file, Flickr8k style.

    Layout (names looked for when not given)::

        path/
          captions.txt          (or Flickr8k.token.txt, captions.csv, captions.tsv)
          Images/               (or images/, Flicker8k_Dataset/; else path itself)
            1000268201.jpg ...

    Args:
        path: The folder.
        captions_file: Captions file (see `read_captions_file`); default: found in `path`.
        images_dir: Image folder; default: found in `path`.
        image_size: Images are resized to this size (N for N x N, or (height, width); RGB,
            [0, 1]).
        test_fraction: Fraction of the images (not captions) held out for testing, in (0, 1).
        validation_fraction: Fraction of the images held out for validation (model
            selection), in (0, 1); by image, so no image has captions in two splits.
        max_length: Most words per caption.
        max_words, min_count: Vocabulary limits (see `build_vocabulary`), from training
            captions only.
        seed: Seed of the train/validation/test split.

    Raises:
        ValueError: if the folder is missing, no caption names an existing image, or an
            argument is out of range.
    """
    if not os.path.isdir(path):
        raise ValueError(f"Argument `path` must be a directory. Received: path={path!r}")
    check_number("test_fraction", test_fraction, low=0, high=1, low_inclusive=False,
                 high_inclusive=False)
    check_number("validation_fraction", validation_fraction, low=0, high=1,
                 low_inclusive=False, high_inclusive=False)
    size = as_pair("image_size", image_size)
    captions_file = captions_file or _find_captions_file(path)
    images_dir = images_dir or _find_images_dir(path)
    captions = read_captions_file(captions_file)
    present = [f for f in captions if os.path.isfile(os.path.join(images_dir, f))]
    if not present:
        raise ValueError(
            f"No image named in {captions_file!r} is in {images_dir!r} (first names: "
            f"{list(captions)[:3]})."
        )
    for file_name in present:  # a clear error naming the file, not one from inside tf.data
        check_image_file(os.path.join(images_dir, file_name), argument="image")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(present))
    if len(present) < 3:
        raise ValueError(
            f"Need at least 3 captioned images (training, validation and test) in {images_dir!r};"
            f" found {len(present)}."
        )
    num_test = min(max(1, round(test_fraction * len(present))), len(present) - 2)
    num_validation = min(max(1, round(validation_fraction * len(present))),
                         len(present) - num_test - 1)
    test_files = [present[i] for i in sorted(order[:num_test])]
    validation_files = [present[i] for i in sorted(order[num_test:num_test + num_validation])]
    train_files = [present[i] for i in sorted(order[num_test + num_validation:])]
    vocabulary = text.build_vocabulary(
        (c for f in train_files for c in captions[f]), max_words=max_words, min_count=min_count
    )
    tokenizer = text.CaptionTokenizer(vocabulary, max_length=max_length)

    def load(file_path):
        data = tf.io.read_file(file_path)
        decoded = tf.io.decode_image(data, channels=3, expand_animations=False)
        resized = tf.image.resize(tf.cast(decoded, tf.float32) / 255.0, size)
        return tf.clip_by_value(resized, 0.0, 1.0)

    def dataset(files, all_references):
        paths, texts = [], []
        for f in files:
            refs = captions[f] if all_references else captions[f][:1]
            paths += [os.path.join(images_dir, f)] * len(refs)
            texts += refs
        caption_in, caption_out, mask = tokenizer.teacher_forcing(texts)
        ds = tf.data.Dataset.from_tensor_slices((paths, caption_in, caption_out, mask))
        return ds.map(lambda p, i, o, m: ((load(p), i), o, m)), len(texts)

    train, num_train = dataset(train_files, True)
    test, num_test = dataset(test_files, False)
    validation, num_validation = dataset(validation_files, False)
    return DatasetSplits(
        name="caption_folder",
        train=train,
        test=test,
        task=TASK,
        model_kwargs={
            "vocabulary": vocabulary,
            "input_shape": (*size, 3),
            "max_length": max_length,
        },
        num_train=num_train,
        num_test=num_test,
        validation=validation,
        num_validation=num_validation,
        extras={
            "tokenizer": tokenizer,
            "validation_references": [captions[f] for f in validation_files],
            "test_references": [captions[f] for f in test_files],
            "test_files": test_files,
        },
    )
