"""`image_folder` finds a class's images in its subfolders, as Keras'
`image_dataset_from_directory` does (the reference here), and says truthfully where the
validation images came from."""

import os

import keras
import numpy as np
from image_files import make_folder, write_image  # tests/ is on sys.path

from zoo.data import load_dataset
from zoo.training import build


def test_images_in_subfolders_of_a_class_are_included_as_keras_does(tmp_path):
    written = make_folder(str(tmp_path), {"red": 3, "blue": 3})
    rng = np.random.default_rng(1)
    for path in ("red/indoor/a.png", "red/indoor/deeper/b.png", "blue/night/c.jpg"):
        write_image(str(tmp_path / path), rng.integers(0, 255, (12, 10, 3)))
        written[str(tmp_path / path)] = None
    reference = keras.utils.image_dataset_from_directory(
        str(tmp_path), image_size=(12, 10), batch_size=None, shuffle=False, verbose=False)
    assert len(reference.file_paths) == len(written) == 9
    splits = load_dataset("image_folder", path=str(tmp_path), validation_fraction=0.2,
                          test_fraction=0.2)
    assert splits.num_train + splits.num_validation + splits.num_test == 9
    assert splits.extras["class_names"] == reference.class_names


def test_a_hidden_subfolder_is_skipped(tmp_path):
    make_folder(str(tmp_path), {"red": 3, "blue": 3})
    write_image(str(tmp_path / "red" / ".ipynb_checkpoints" / "x.png"), np.zeros((12, 10, 3)))
    splits = load_dataset("image_folder", path=str(tmp_path), test_fraction=0.2,
                          validation_fraction=0)
    assert splits.num_train + splits.num_test == 6


def test_the_log_says_where_the_validation_images_came_from(tmp_path):
    make_folder(str(tmp_path / "flat"), {"red": 5, "blue": 5})
    splits = load_dataset("image_folder", path=str(tmp_path / "flat"), validation_fraction=0.2)
    _, how = build.with_validation(splits)
    assert how == "0.2 of each class's training images held out (validation_fraction, seed 1)"
    make_folder(str(tmp_path / "own" / "train"), {"red": 3, "blue": 3})
    make_folder(str(tmp_path / "own" / "val"), {"red": 1, "blue": 1}, seed=2)
    splits = load_dataset("image_folder", path=str(tmp_path / "own"))
    _, how = build.with_validation(splits)
    assert how == f"the folder {os.path.join(str(tmp_path / 'own'), 'val')!r}"
