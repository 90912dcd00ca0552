"""Image datasets: the bundled digits and the tfds loaders (through tfds.testing.mock_data)."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from sklearn.datasets import load_digits

from zoo.data import downloads, list_datasets, load_dataset
from zoo.data.images import IMAGE_DATASETS, cifar_augment


def _arrays(dataset):
    images, labels = zip(*dataset.as_numpy_iterator())
    return np.stack(images), np.array(labels)


def test_digits_is_offline_stratified_and_normalised():
    splits = load_dataset("digits")
    assert splits.task == "image-classification" and (splits.num_train, splits.num_test) == (1437, 360)
    assert splits.model_kwargs == {"input_shape": (8, 8, 1), "classes": 10}
    train_x, train_y = _arrays(splits.train)
    test_x, test_y = _arrays(splits.test)
    assert train_x.dtype == np.float32 and train_y.dtype == np.int32
    # Every image of sklearn's set appears once, with its label, in exactly one split.
    digits = load_digits()
    (mean,), (std,) = splits.extras["mean"], splits.extras["std"]
    raw = np.concatenate([train_x, test_x])[..., 0] * std + mean
    order = np.lexsort(raw.reshape(len(raw), -1).T)
    reference = digits.images / 16.0
    reference_order = np.lexsort(reference.reshape(len(reference), -1).T)
    np.testing.assert_allclose(raw[order], reference[reference_order], atol=1e-5)
    # Normalised with the training split's statistics; stratified 80/20.
    assert abs(train_x.mean()) < 1e-4 and train_x.std() == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_array_equal(np.bincount(test_y), np.bincount(digits.target) - np.bincount(train_y))
    assert np.bincount(test_y).min() >= 35


def test_digits_resized_up_to_the_model_minimum_and_cropped():
    splits = load_dataset("digits", min_image_size=(28, 28))
    assert splits.model_kwargs["input_shape"] == (28, 28, 1)
    x, _ = next(iter(splits.train.batch(4)))
    assert x.shape == (4, 28, 28, 1)
    cropped = load_dataset("digits", crop_border=1)
    assert cropped.model_kwargs["input_shape"] == (6, 6, 1)
    full = load_dataset("digits")
    a, _ = _arrays(cropped.train)
    b, _ = _arrays(full.train)
    # Same normalisation statistics, so the crop is exactly the centre of the full image.
    np.testing.assert_allclose(a, b[:, 1:-1, 1:-1], atol=1e-6)
    with pytest.raises(ValueError, match="crop_border"):
        load_dataset("digits", crop_border=4)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10", "cifar100"])
def test_tfds_loaders_normalise_and_crop(name):
    shape, classes, mean, std = IMAGE_DATASETS[name]
    with tfds.testing.mock_data(num_examples=6):
        raw = tfds.load(name, split="train", as_supervised=True)
        raw_images, raw_labels = _arrays(raw)
        splits = load_dataset(name)
        cropped = load_dataset(name, crop_border=2)
        images, labels = _arrays(splits.train)
        cropped_images, _ = _arrays(cropped.train)
    assert name in list_datasets(task="image-classification")
    assert splits.model_kwargs == {"input_shape": shape, "classes": classes}
    assert splits.num_train == 6 and images.shape == (6, *shape)
    expected = (raw_images.astype("float64") / 255.0 - np.array(mean)) / np.array(std)
    np.testing.assert_allclose(images, expected, atol=1e-5)
    np.testing.assert_array_equal(labels, raw_labels)
    assert cropped.model_kwargs["input_shape"] == (shape[0] - 4, shape[1] - 4, shape[2])
    np.testing.assert_allclose(cropped_images, images[:, 2:-2, 2:-2], atol=1e-6)
    assert ("augment" in splits.extras) == name.startswith("cifar")


def _record_tfds_load(monkeypatch, error=None):
    """Replace tfds.load by a recorder of its arguments (that raises `error` if given)."""
    calls = []
    original = tfds.load

    def load(name, **kwargs):
        calls.append({"name": name, **kwargs})
        if error is not None:
            raise error
        return original(name, **kwargs)

    monkeypatch.setattr(tfds, "load", load)
    return calls


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10", "cifar100"])
def test_tfds_image_sets_download_on_first_use_or_read_a_data_dir(name, monkeypatch, tmp_path):
    calls = _record_tfds_load(monkeypatch)
    with tfds.testing.mock_data(num_examples=4):
        splits = load_dataset(name)
        load_dataset(name, data_dir=str(tmp_path), download=False)
    assert [(c["name"], c["download"], c["data_dir"]) for c in calls] == [
        (name, True, None), (name, False, str(tmp_path))
    ]
    assert calls[0]["split"] == ["train", "test"] and calls[0]["as_supervised"]
    classes = IMAGE_DATASETS[name][1]
    expected = {  # tfds' names where its code has them; CIFAR-10's come with the download
        "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                          "Shirt", "Sneaker", "Bag", "Ankle boot"],
        "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                    "ship", "truck"],
    }.get(name, [str(i) for i in range(classes)])
    assert splits.extras["class_names"] == expected


def test_tfds_set_not_prepared_and_no_download_says_how_to_prepare_it(tmp_path):
    with pytest.raises(ValueError) as error:
        load_dataset("mnist", data_dir=str(tmp_path), download=False)
    message = str(error.value)
    for part in (f"'mnist' is not prepared in {tmp_path}", "--no-download",
                 "tfds build mnist --data_dir DIR", "--data-dir DIR"):
        assert part in message


def test_a_failed_download_says_what_failed_and_how_to_work_offline(monkeypatch, tmp_path, capsys):
    failure = ConnectionError("Failed to resolve 'storage.googleapis.com'")
    # The network answers the zoo's reachability check and the download itself then fails (the
    # check's own refusal is tests/test_offline.py's); no test opens a connection.
    monkeypatch.setattr(downloads, "_no_network", lambda: "")
    calls = _record_tfds_load(monkeypatch, error=failure)
    with pytest.raises(ValueError) as error:
        load_dataset("cifar10", data_dir=str(tmp_path))
    assert calls[0]["download"] is True
    message = str(error.value)
    for part in ("Could not download or prepare dataset 'cifar10'",
                 "ConnectionError: Failed to resolve", "tfds build cifar10", "--no-download"):
        assert part in message
    assert f"downloading and preparing 'cifar10' into {tmp_path}" in capsys.readouterr().err


def test_cifar_augmentation_is_a_seeded_crop_of_the_padded_or_flipped_image(rng):
    image = rng.normal(size=(32, 32, 3)).astype("float32")
    a = cifar_augment(tf.constant(image), tf.constant([1, 2])).numpy()
    assert a.shape == image.shape
    np.testing.assert_array_equal(a, cifar_augment(tf.constant(image), tf.constant([1, 2])).numpy())
    outputs = [cifar_augment(tf.constant(image), tf.constant([s, 0])).numpy() for s in range(8)]
    assert any(not np.array_equal(outputs[0], o) for o in outputs[1:])
    for out in outputs:
        found = False
        for candidate in (image, image[:, ::-1]):
            padded = np.pad(candidate, ((4, 4), (4, 4), (0, 0)))
            for dy in range(9):
                for dx in range(9):
                    if np.array_equal(padded[dy : dy + 32, dx : dx + 32], out):
                        found = True
        assert found


def test_digits_augmentation_shifts_by_at_most_one_native_pixel_over_the_background():
    splits = load_dataset("digits", min_image_size=(32, 32))
    augment = splits.extras["augment"]
    (mean,), (std,) = splits.extras["mean"], splits.extras["std"]
    background = -mean / std  # pixel value 0, normalised
    image = next(splits.train.as_numpy_iterator())[0]
    assert image.min() == pytest.approx(background, abs=1e-5)  # digits always have 0 pixels
    np.testing.assert_array_equal(augment(tf.constant(image), tf.constant([3, 4])).numpy(),
                                  augment(tf.constant(image), tf.constant([3, 4])).numpy())
    shifts = set()
    for seed in range(40):
        out = augment(tf.constant(image), tf.constant([seed, 7])).numpy()
        # Independent reference: every shift of at most 4 pixels (one 8x8 pixel at 32x32),
        # the uncovered pixels set to the background; the output is exactly one of them.
        padded = np.pad(image, ((4, 4), (4, 4), (0, 0)), constant_values=background)
        matches = [(dy - 4, dx - 4) for dy in range(9) for dx in range(9)
                   if np.allclose(padded[dy:dy + 32, dx:dx + 32], out, atol=1e-6)]
        assert len(matches) == 1, matches
        shifts.add(matches[0])
    assert len(shifts) > 10  # many different shifts, in both directions
    assert {dy for dy, _ in shifts} >= {-4, 4} or len({dy for dy, _ in shifts}) > 5
    # At the native 8x8 size the shift is one pixel.
    native = load_dataset("digits")
    small = next(native.train.as_numpy_iterator())[0]
    outs = [native.extras["augment"](tf.constant(small), tf.constant([s, 1])).numpy()
            for s in range(20)]
    padded = np.pad(small, ((1, 1), (1, 1), (0, 0)), constant_values=small.min())
    for out in outs:
        assert any(np.allclose(padded[dy:dy + 8, dx:dx + 8], out, atol=1e-6)
                   for dy in range(3) for dx in range(3))
    # Re-normalised to 3 channels (fine-tuning): each channel's background stays its own.
    rgb = np.concatenate([small * 2.0 + 1.0, small * 0.5 - 3.0, small], axis=-1)
    out = native.extras["augment"](tf.constant(rgb), tf.constant([5, 1])).numpy()
    for channel, scale, offset in ((0, 2.0, 1.0), (1, 0.5, -3.0), (2, 1.0, 0.0)):
        np.testing.assert_allclose(out[..., 2], (out[..., channel] - offset) / scale,
                                   atol=1e-5)


def test_the_digits_shifts_are_opt_in_and_cifars_crops_are_on_by_default():
    import zoo
    from zoo.training.pipeline import augmentation

    digits = load_dataset("digits").extras
    cifar_like = {"augment": cifar_augment}  # the tfds loaders' extras: on by default
    assert augmentation(None, digits) is None and augmentation(False, digits) is None
    assert augmentation(True, digits) is digits["augment"]
    assert augmentation(None, cifar_like) is cifar_augment
    assert augmentation(True, cifar_like) is cifar_augment
    assert augmentation(False, cifar_like) is None
    assert augmentation(True, {}) is None  # no augmentation to use
    # LeNet-5's recipe opts in (chosen on validation); the other CNNs' recipes were chosen
    # without the shifts and keep the dataset's default.
    assert zoo.model_info("lenet5").recipe.augment is True
    for name in ("googlenet", "resnet18", "vgg11_bn", "alexnet"):
        assert zoo.model_info(name).recipe.augment is None
    with pytest.raises(ValueError, match="augment"):
        zoo.registry.Recipe(augment="yes")
