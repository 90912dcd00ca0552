"""Captioning datasets: the synthetic shapes set, COCO through mocked tfds, the folder format."""

import io

import numpy as np
import pytest
import tensorflow as tf

import zoo
from zoo import text
from zoo.data import list_datasets, load_dataset
from zoo.data.captions import read_captions_file, shapes_examples


def check_elements(splits, image_shape, steps):
    for split in (splits.train, splits.test):
        (image, caption_in), caption_out, mask = next(iter(split))
        assert image.shape == image_shape and image.dtype == tf.float32
        assert caption_in.shape == caption_out.shape == mask.shape == (steps,)
        assert caption_in.dtype == caption_out.dtype == tf.int32 and mask.dtype == tf.float32
        assert caption_in[0] == text.START_ID
        np.testing.assert_array_equal(caption_in[1:], caption_out[:-1])  # shifted by one
        n = int(mask.numpy().sum())
        assert caption_out[n - 1] == text.END_ID  # the last real target is <end>
        np.testing.assert_array_equal(mask[:n], 1.0)
        np.testing.assert_array_equal(caption_out[n:], text.PAD_ID)
        assert 0.0 <= float(tf.reduce_min(image)) and float(tf.reduce_max(image)) <= 1.0


def test_registered():
    names = list_datasets(task="image-captioning")
    assert {"shapes_captions", "coco_captions", "caption_folder"} <= set(names)
    assert zoo.model_info("show_and_tell").default_dataset == "shapes_captions"


def test_shapes_captions_structure_and_model_fit():
    splits = load_dataset(
        "shapes_captions", num_train=20, num_validation=4, num_test=5, image_size=16
    )
    assert splits.num_train == 40 and splits.num_test == 5  # two references per image
    # Validation is by image (one element each, all references kept), and no validation
    # image is a training image.
    assert splits.num_validation == 4 and len(list(splits.validation)) == 4
    assert all(len(r) == 2 for r in splits.extras["validation_references"])
    train_images = np.stack([x[0][0] for x in splits.train.as_numpy_iterator()])
    for (image, _), _, _ in splits.validation.as_numpy_iterator():
        assert not np.any(np.all(np.isclose(train_images, image), axis=(1, 2, 3)))
    check_elements(splits, (16, 16, 3), steps=11)
    references = splits.extras["test_references"]
    tokenizer = splits.extras["tokenizer"]
    decoded = [tokenizer.decode(e[1][None])[0] for e in splits.test.as_numpy_iterator()]
    assert decoded == [refs[0] for refs in references]
    model = zoo.create_model("show_and_tell", **{**splits.model_kwargs, "conv_filters": (4,)})
    (image, caption_in), _, _ = next(iter(splits.train.batch(2)))
    assert model([image, caption_in]).shape == (2, 11, len(text.SHAPES_VOCABULARY) + 4)


def test_shapes_images_show_what_the_captions_say():
    """The first-named object's colour sits above (or left of) the second's."""
    images, references = shapes_examples(40, image_size=32, seed=3)
    rgb = {"red": (0.9, 0.1, 0.1), "green": (0.1, 0.8, 0.2), "blue": (0.15, 0.25, 0.95),
           "yellow": (0.95, 0.9, 0.1)}  # fmt: skip
    checked = 0
    for image, refs in zip(images, references):
        words = refs[0].split()
        first, second = words[1], words[-2]
        axis = 0 if "above" in words else 1
        if first == second:  # same colour, different shapes: nothing to locate by colour
            continue

        def centre(colour, image=image, axis=axis):
            close = np.linalg.norm(image - np.array(rgb[colour]), axis=-1) < 0.2
            assert close.sum() > 5
            return np.nonzero(close)[axis].mean()

        assert centre(first) < centre(second)
        checked += 1
        assert refs[1].split()[1] == second  # the other reference starts from the other object
    assert checked > 20
    again, _ = shapes_examples(40, image_size=32, seed=3)
    np.testing.assert_array_equal(images, again)


def _fake_coco_as_dataset(self, split, decoders=None, read_config=None, shuffle_files=False):
    """Examples shaped like tfds' coco_captions with the image left encoded (SkipDecoding).

    tfds' random mock generator cannot fill the `captions` Sequence of dicts (it raises "The
    length of all elements of one sequence should be the same"), so the test gives
    `mock_data` this function instead.
    """
    del decoders, read_config, shuffle_files
    seed = {"train": 0, "val": 1, "test": 2}[split]
    rng = np.random.default_rng(seed)
    images, captions = [], []
    for i in range(3 + seed):
        pixels = rng.integers(0, 255, size=(20 + i, 24, 3), dtype=np.uint8)
        images.append(tf.io.encode_png(pixels).numpy())
        captions.append([f"A dog number {i} runs.", "Two cats sleep", "a dog and a cat"][: i + 1])
    ragged = tf.ragged.constant(captions)
    return tf.data.Dataset.from_tensor_slices({"image": images, "captions": {"text": ragged}}).map(
        lambda e: {"image": e["image"], "captions": {"text": e["captions"]["text"]}}
    )


def test_coco_captions_through_mocked_tfds(monkeypatch):
    import tensorflow_datasets as tfds

    calls, original = [], tfds.load
    monkeypatch.setattr(tfds, "load", lambda name, **kw: calls.append(kw) or original(name, **kw))
    with tfds.testing.mock_data(as_dataset_fn=_fake_coco_as_dataset):
        splits = load_dataset("coco_captions", image_size=16, max_length=5, max_words=6)
        check_elements(splits, (16, 16, 3), steps=6)
        vocabulary = splits.model_kwargs["vocabulary"]
        assert vocabulary[:2] == ["a", "dog"] and len(vocabulary) == 6  # most frequent first
        assert len(list(splits.train)) == 1 + 2 + 3  # one element per (image, caption)
        # tfds' own splits: validation "val" (4 images here), test "test" (5 images).
        assert calls[0]["split"] == ["train", "val", "test"] and calls[0]["download"] is True
        assert splits.num_validation == 4 and len(list(splits.validation)) == 4
        assert splits.num_test == 5 and len(list(splits.test)) == 5
        assert len(splits.extras["validation_references"]) == 4
        assert splits.extras["test_references"][2] == [
            "A dog number 2 runs.", "Two cats sleep", "a dog and a cat"
        ]  # fmt: skip
        validation_images = np.stack([x[0][0] for x in splits.validation.as_numpy_iterator()])
        test_images = np.stack([x[0][0] for x in splits.test.as_numpy_iterator()])
        assert not np.allclose(validation_images[0], test_images[0])
        assert splits.model_kwargs["input_shape"] == (16, 16, 3)


def _write_png(path, seed):
    pixels = np.random.default_rng(seed).integers(0, 255, size=(12, 10, 3), dtype=np.uint8)
    path.write_bytes(tf.io.encode_png(pixels).numpy())


@pytest.mark.parametrize("layout", ["flickr_token", "kaggle_csv"])
def test_caption_folder(layout, tmp_path):
    (tmp_path / "Images").mkdir()
    names = [f"{i}.png" for i in range(5)]
    for i, name in enumerate(names):
        _write_png(tmp_path / "Images" / name, i)
    if layout == "flickr_token":
        lines = [f"{n}#{k}\tA picture {i} , caption {k} ." for i, n in enumerate(names)
                 for k in range(2)]  # fmt: skip
        lines.append("missing.png#0\tnot on disk")
        (tmp_path / "Flickr8k.token.txt").write_text("\n".join(lines))
    else:
        out = io.StringIO()
        out.write("image,caption\n")
        for i, n in enumerate(names):
            out.write(f'{n},"A picture {i}, caption 0"\n{n},A picture {i} caption 1\n')
        (tmp_path / "captions.txt").write_text(out.getvalue())
    splits = load_dataset("caption_folder", path=str(tmp_path), image_size=8, test_fraction=0.4)
    check_elements(splits, (8, 8, 3), steps=21)
    oblong = load_dataset("caption_folder", path=str(tmp_path), image_size=(6, 9))
    check_elements(oblong, (6, 9, 3), steps=21)
    # 5 images: 2 test, 1 validation (10% rounds up to one image), 2 training x 2 captions.
    assert splits.num_test == 2 and splits.num_validation == 1 and splits.num_train == 4
    assert len(splits.extras["test_references"]) == 2
    assert len(splits.extras["validation_references"]) == 1
    # By image: no image has captions in two splits.
    test_files = set(splits.extras["test_files"])
    validation_refs = splits.extras["validation_references"][0]
    assert not any(validation_refs == refs for refs in splits.extras["test_references"])
    assert len(test_files) == 2
    assert all(len(r) == 2 for r in splits.extras["test_references"])
    assert set(splits.model_kwargs["vocabulary"]) >= {"a", "picture", "caption"}
    model = zoo.create_model(
        "show_and_tell", **splits.model_kwargs, conv_filters=(4,), units=8, image_units=8
    )
    (image, caption_in), _, _ = next(iter(splits.train.batch(3)))
    assert model([image, caption_in]).shape[:2] == (3, 21)


def test_caption_folder_bad_input(tmp_path):
    with pytest.raises(ValueError, match="path"):
        load_dataset("caption_folder", path=str(tmp_path / "nope"))
    (tmp_path / "captions.txt").write_text("")
    with pytest.raises(ValueError, match="no caption"):
        load_dataset("caption_folder", path=str(tmp_path))
    (tmp_path / "captions.txt").write_text("x.png\ta caption\n")
    with pytest.raises(ValueError, match="No image named"):
        load_dataset("caption_folder", path=str(tmp_path))
    (tmp_path / "x.png").write_text("not a picture")
    with pytest.raises(ValueError, match="x.png' is not an image"):
        load_dataset("caption_folder", path=str(tmp_path))
    assert read_captions_file(tmp_path / "captions.txt") == {"x.png": ["a caption"]}
