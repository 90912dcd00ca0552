"""`image_folder`: your own images in class subfolders, built here from generated PNGs and checked
against NumPy; and the clear errors for folders that cannot work."""

import math
import os

import numpy as np
import pytest
from image_files import make_folder, write_image  # tests/ is on sys.path

from zoo.data import list_datasets, load_dataset
from zoo.data.folders import read_image_files


def elements(dataset):
    images, labels = zip(*dataset.as_numpy_iterator())
    return np.stack(images), np.array(labels)


def test_image_folder_splits_labels_and_normalisation(tmp_path):
    counts = {"red": 7, "green": 5, "blue": 4}
    written = make_folder(str(tmp_path), counts)
    (tmp_path / "red" / "notes.txt").write_text("not an image suffix: ignored, as Keras does")
    splits = load_dataset("image_folder", path=str(tmp_path), validation_fraction=0.2,
                          test_fraction=0.25, seed=3)
    assert "image_folder" in list_datasets(task="image-classification")
    names = splits.extras["class_names"]
    assert names == ["blue", "green", "red"]  # sorted folder names, as Keras orders them
    assert splits.model_kwargs == {"input_shape": (12, 10, 3), "classes": 3}
    # Per class: ceil(fraction * n) held out, first the test images, then validation.
    tests = {c: math.ceil(0.25 * n) for c, n in counts.items()}
    validations = {c: math.ceil(0.2 * (n - tests[c])) for c, n in counts.items()}
    assert splits.num_test == sum(tests.values())
    assert splits.num_validation == sum(validations.values())
    assert splits.num_train == sum(counts.values()) - splits.num_test - splits.num_validation

    mean, std = np.array(splits.extras["mean"]), np.array(splits.extras["std"])
    seen = []
    for split, expected in (("train", None), ("validation", validations), ("test", tests)):
        images, labels = elements(getattr(splits, split))
        raw = images * std + mean
        # Each image is one of the files, with its folder's label.
        for image, label in zip(raw, labels):
            matches = [p for p, px in written.items() if np.allclose(image, px / 255.0, atol=1e-5)]
            assert len(matches) == 1 and os.path.basename(os.path.dirname(matches[0])) == names[
                label]
            seen.append(matches[0])
        if expected:
            assert {names[k]: v for k, v in zip(*np.unique(labels, return_counts=True))} == expected
        if split == "train":  # normalised with the training images' own statistics (float64)
            reference = raw.reshape(-1, 3).astype("float64")
            np.testing.assert_allclose(mean, reference.mean(axis=0), atol=1e-5)
            np.testing.assert_allclose(std, reference.std(axis=0), atol=1e-5)
    assert sorted(seen) == sorted(written)  # every file in exactly one split

    again = load_dataset("image_folder", path=str(tmp_path), validation_fraction=0.2,
                         test_fraction=0.25, seed=3)
    np.testing.assert_array_equal(elements(again.test)[0], elements(splits.test)[0])
    other = load_dataset("image_folder", path=str(tmp_path), validation_fraction=0.2,
                         test_fraction=0.25, seed=4)
    assert not np.array_equal(elements(other.test)[0], elements(splits.test)[0])


def test_image_folder_with_its_own_splits_greyscale_and_resizing(tmp_path):
    make_folder(str(tmp_path / "train"), {"red": 4, "blue": 3}, grey=True)
    make_folder(str(tmp_path / "test"), {"red": 2, "blue": 1}, grey=True, seed=1)
    splits = load_dataset("image_folder", path=str(tmp_path), validation_fraction=0,
                          min_image_size=(16, 8))
    assert (splits.num_train, splits.num_test, splits.validation) == (7, 3, None)
    # Greyscale files give one channel; resized up (bilinear) to the model's minimum.
    assert splits.model_kwargs == {"input_shape": (16, 10, 1), "classes": 2}
    images, _ = elements(splits.test)
    assert images.shape == (3, 16, 10, 1)
    resized = load_dataset("image_folder", path=str(tmp_path), image_size=6, validation_fraction=0)
    assert resized.model_kwargs["input_shape"] == (6, 6, 1)


def test_prediction_reads_a_file_as_training_does(tmp_path):
    written = make_folder(str(tmp_path), {"red": 3, "blue": 3}, size=(9, 7))
    splits = load_dataset("image_folder", path=str(tmp_path), image_size=(5, 11),
                          test_fraction=0.5, validation_fraction=0)
    mean, std = np.array(splits.extras["mean"]), np.array(splits.extras["std"])
    images, labels = elements(splits.test)
    names = splits.extras["class_names"]
    for image, label in zip(images, labels):
        candidates = [p for p in written if os.path.basename(os.path.dirname(p)) == names[label]]
        read = read_image_files(candidates, 5, 11, 3)
        assert np.min(np.abs(read - (image * std + mean)).max(axis=(1, 2, 3))) < 1e-5


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda root: None, "does not exist"),
        (lambda root: os.makedirs(root), "has no class subfolders"),
        (lambda root: write_image(os.path.join(root, "a.png"), np.zeros((4, 4))),
         "1 images lie in it directly"),
        (lambda root: make_folder(root, {"red": 3}), "one class subfolder ('red')"),
        (lambda root: (make_folder(root, {"red": 3}), os.makedirs(os.path.join(root, "blue"))),
         "blue' holds no images"),
        (lambda root: (make_folder(root, {"red": 3, "blue": 3}),
                       open(os.path.join(root, "blue", "000.png"), "w").write("text")),
         "000.png' is not an image"),
        (lambda root: (make_folder(root, {"red": 3}, size=(8, 8)),
                       make_folder(root, {"blue": 3}, size=(8, 9))),
         "have different sizes"),
        (lambda root: make_folder(root, {"red": 1, "blue": 3}), "class 'red' has 1 image"),
    ],
    ids=["missing", "empty", "loose-images", "one-class", "empty-class", "not-an-image",
         "mixed-sizes", "too-few"],
)
def test_bad_folders_name_the_folder_or_file(build, message, tmp_path):
    root = str(tmp_path / "photos")
    build(root)
    with pytest.raises(ValueError) as error:
        load_dataset("image_folder", path=root)
    assert message in str(error.value)
    if message == "have different sizes":  # names both files, their sizes and the way out
        for part in ("red", "blue", "is 8x8", "is 8x9"):
            assert part in str(error.value)
        assert "--image-size" in str(error.value)
        load_dataset("image_folder", path=root, image_size=8)
