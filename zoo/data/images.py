"""Image-classification datasets: scikit-learn's bundled digits (offline) and tfds sets
(downloaded on first use, see `zoo.data.downloads`); your own folders are in `zoo.data.folders`.

Every loader returns `DatasetSplits` of unbatched `(image, label)` pairs, images float32
`(height, width, channels)` normalised to zero mean and unit variance per channel, labels
int32. Preprocessing, in order:

1. `crop_border`: drop an N-pixel border (MNIST digits sit in a 20x20 box centred in 28x28;
   cropping the empty border is a known, free speed-up for small convnets).
2. Resize (bilinear) up to `min_image_size` when the image is smaller than the model's minimum
   input (e.g. the 8x8 digits for LeNet-5's 28x28); images are never shrunk.
3. Normalise with the training set's per-channel mean and standard deviation.

Training-time augmentation comes in `extras["augment"]`, a function `(image, seed) -> image` of
a stateless seed, so that the training loop can make it deterministic per epoch (identical after
a resume): CIFAR-10/100 pad 4 pixels, take a random 32x32 crop and flip horizontally at random
(He et al. 2016, "Deep Residual Learning for Image Recognition", section 4.2); the digits shift
by up to one of their 8x8 pixels in each direction, never flip (a flipped 2 is no digit). The
shifts are opt-in (`extras["augment_by_default"]` is False): a recipe with `augment=True`
uses them (LeNet-5's chose them on validation, see benchmarks/TUNING.md); the other recipes
were chosen without them and keep `augment=None`, the dataset's default.
"""

import numpy as np
import tensorflow as tf

from zoo.data.base import DatasetSplits, register_dataset, tfds_num_examples
from zoo.data.downloads import load_tfds
from zoo.validation import check_int

# name -> (native shape, classes, per-channel mean, per-channel std) in [0, 1] pixel units.
# MNIST / Fashion-MNIST / CIFAR statistics are the commonly used training-set values.
IMAGE_DATASETS = {
    "digits": ((8, 8, 1), 10, None, None),  # computed from the training split
    "mnist": ((28, 28, 1), 10, (0.1307,), (0.3081,)),
    "fashion_mnist": ((28, 28, 1), 10, (0.2860,), (0.3530,)),
    "cifar10": ((32, 32, 3), 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((32, 32, 3), 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


# Class names that tfds knows only once the data is prepared (CIFAR's come with the download).
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")


def class_names(name, info=None):
    """The class names of an image dataset, label order: from tfds' `info` when it has real
    names, else the known ones (digits; CIFAR-10), else the label numbers as strings."""
    classes = IMAGE_DATASETS[name][1]
    numbers = [str(i) for i in range(classes)]
    names = list(info.features["label"].names) if info is not None else numbers
    if names != numbers:
        return names
    return list(CIFAR10_CLASSES) if name == "cifar10" else numbers


def output_shape(name, crop_border=0, min_image_size=None):
    """The image shape a loader will produce for these options.

    Args:
        name: A key of `IMAGE_DATASETS`.
        crop_border: Pixels removed from each side.
        min_image_size: `(height, width)` the image is resized up to, if smaller.

    Returns:
        `(height, width, channels)`.

    Raises:
        ValueError: if `crop_border` is negative or leaves no pixels.
    """
    (height, width, channels), *_ = IMAGE_DATASETS[name]
    if not isinstance(crop_border, int) or isinstance(crop_border, bool) or crop_border < 0:
        raise ValueError(
            f"Argument `crop_border` must be an int >= 0. Received: crop_border={crop_border!r}"
        )
    if 2 * crop_border >= min(height, width):
        raise ValueError(
            f"Argument `crop_border` is too large for {name}'s {height}x{width} images: it must "
            f"be below {min(height, width) // 2}. Received: crop_border={crop_border}"
        )
    height, width = height - 2 * crop_border, width - 2 * crop_border
    if min_image_size is not None:
        height, width = max(height, int(min_image_size[0])), max(width, int(min_image_size[1]))
    return (height, width, channels)


def _preprocess_fn(name, crop_border, min_image_size, mean, std):
    """A tf function mapping a uint8/float image in [0, max] pixel units to the model input."""
    native = IMAGE_DATASETS[name][0]
    target = output_shape(name, crop_border, min_image_size)
    mean = tf.constant(mean, tf.float32)
    std = tf.constant(std, tf.float32)

    def preprocess(image, scale):
        image = tf.cast(image, tf.float32) / scale
        if crop_border:
            image = image[
                ..., crop_border : native[0] - crop_border, crop_border : native[1] - crop_border, :
            ]
        if tuple(target[:2]) != (native[0] - 2 * crop_border, native[1] - 2 * crop_border):
            image = tf.image.resize(image, target[:2], method="bilinear")
        return (image - mean) / std

    return preprocess, target


def _digits_arrays(seed):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype("float32")[..., None]  # (1797, 8, 8, 1), values 0..16
    labels = digits.target.astype("int32")
    return train_test_split(images, labels, test_size=0.2, stratify=labels, random_state=seed)


@register_dataset(
    "digits",
    task="image-classification",
    summary="scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes); offline",
    offline=True,
)
def load_digits_dataset(crop_border=0, min_image_size=None, split_seed=0):
    """UCI handwritten digits bundled with scikit-learn: a stratified 80/20 split (1437/360).

    Args:
        crop_border: Pixels removed from each side of the 8x8 images.
        min_image_size: `(height, width)` to resize up to (a model's minimum input).
        split_seed: Seed of the train/test split (fixed by default, so that test accuracies
            of different runs are comparable).

    Returns:
        `DatasetSplits` with `model_kwargs={"input_shape": ..., "classes": 10}`.
    """
    check_int("split_seed", split_seed, minimum=0, maximum=2**32 - 1)  # scikit-learn's range
    x_train, x_test, y_train, y_test = _digits_arrays(split_seed)
    mean, std = float(np.mean(x_train / 16.0)), float(np.std(x_train / 16.0))
    preprocess, shape = _preprocess_fn("digits", crop_border, min_image_size, (mean,), (std,))
    # Small enough to preprocess once, eagerly, as whole arrays.
    x_train = preprocess_batch(preprocess, x_train, 16.0)
    x_test = preprocess_batch(preprocess, x_test, 16.0)
    # One native pixel in the (possibly resized) input.
    native_height = IMAGE_DATASETS["digits"][0][0] - 2 * crop_border
    shift = max(1, round(shape[0] / native_height))
    return DatasetSplits(
        name="digits",
        train=tf.data.Dataset.from_tensor_slices((x_train, y_train)),
        test=tf.data.Dataset.from_tensor_slices((x_test, y_test)),
        task="image-classification",
        model_kwargs={"input_shape": shape, "classes": 10},
        num_train=len(y_train),
        num_test=len(y_test),
        extras={"mean": (mean,), "std": (std,), "class_names": class_names("digits"),
                "augment": shift_augment(shift), "augment_by_default": False},
    )


def preprocess_batch(preprocess, images, scale):
    """Apply the (rank-agnostic) preprocessing function to a NumPy batch at once."""
    return preprocess(tf.constant(images), scale).numpy()


def cifar_augment(image, seed):
    """Pad by 4, random crop back to the original size, random horizontal flip (He et al. 2016).

    Args:
        image: `(height, width, channels)` float tensor.
        seed: Shape-[2] int tensor for the stateless random ops.

    Returns:
        The augmented image, same shape.
    """
    shape = tf.shape(image)
    padded = tf.pad(image, [[4, 4], [4, 4], [0, 0]])
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=2)
    cropped = tf.image.stateless_random_crop(padded, shape, seed=seeds[0])
    return tf.image.stateless_random_flip_left_right(cropped, seed=seeds[1])


def shift_augment(max_shift):
    """A random translation by up to `max_shift` pixels each way over a dark background.

    The pixels shifted in take each channel's smallest value in the image: the digits are
    ink on 0, and the smallest value stays the background under any later normalisation with
    a positive scale (fine-tuning re-normalises the images for ImageNet weights).

    Args:
        max_shift: Largest shift in pixels (int >= 1).

    Returns:
        `(image, seed) -> image`, same shape, deterministic in the stateless `seed`.
    """
    pad = [[max_shift, max_shift], [max_shift, max_shift], [0, 0]]

    def augment(image, seed):
        background = tf.reduce_min(image, axis=(0, 1), keepdims=True)
        padded = tf.pad(image - background, pad) + background
        return tf.image.stateless_random_crop(padded, tf.shape(image),
                                              seed=tf.cast(seed, tf.int64))

    return augment


def _tfds_loader(name, augment=None):
    def load(crop_border=0, min_image_size=None, data_dir=None, download=True):
        _, classes, mean, std = IMAGE_DATASETS[name]
        (train, test), info = load_tfds(
            name, split=["train", "test"], data_dir=data_dir, download=download,
            as_supervised=True,
        )
        preprocess, shape = _preprocess_fn(name, crop_border, min_image_size, mean, std)

        def prepare(image, label):
            return preprocess(image, 255.0), tf.cast(label, tf.int32)

        options = tf.data.Options()
        options.deterministic = True
        train = train.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).with_options(options)
        test = test.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).with_options(options)
        extras = {"mean": mean, "std": std, "class_names": class_names(name, info)}
        if augment is not None:
            extras["augment"] = augment
        return DatasetSplits(
            name=name,
            train=train,
            test=test,
            task="image-classification",
            model_kwargs={"input_shape": shape, "classes": classes},
            num_train=tfds_num_examples(info, "train", train),
            num_test=tfds_num_examples(info, "test", test),
            extras=extras,
        )

    load.__name__ = f"load_{name}"
    load.__doc__ = (
        f"tfds {name!r}: crop the border, resize up to `min_image_size`, normalise.\n\n"
        "Downloaded into `data_dir` on first use; `download=False` reads prepared data only "
        "(see `zoo.data.downloads`)."
    )
    return load


_SUMMARIES = {
    "mnist": "MNIST handwritten digits, 28x28 grey (60k/10k; tfds, downloads once)",
    "fashion_mnist": "Fashion-MNIST clothing, 28x28 grey (60k/10k; tfds, downloads once)",
    "cifar10": "CIFAR-10, 32x32 colour, 10 classes; crop + flip augmentation (tfds, downloads once)",
    "cifar100": "CIFAR-100, 32x32 colour, 100 classes; crop + flip augmentation (tfds, downloads "
    "once)",
}
for _name, _summary in _SUMMARIES.items():
    register_dataset(_name, task="image-classification", summary=_summary, offline=False)(
        _tfds_loader(_name, augment=cifar_augment if _name.startswith("cifar") else None)
    )
