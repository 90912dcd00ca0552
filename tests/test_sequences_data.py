"""Sequence datasets: the adding problem, the copy task, IMDB (mocked) and text corpora."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

import zoo
from zoo.data import dataset_entry, list_datasets, load_dataset
from zoo.data.sequences import adding_problem_arrays, copy_task_arrays


def test_datasets_are_registered_with_tasks():
    for name, task, offline in [
        ("adding_problem", "sequence-regression", True),
        ("copy_task", "sequence-classification", True),
        ("imdb_reviews", "sequence-classification", False),
        ("tiny_corpus", "language-modeling", True),
    ]:
        assert name in list_datasets()
        entry = dataset_entry(name)
        assert (entry.task, entry.offline) == (task, offline)
    for model in ["rnn_classifier", "lstm_classifier", "gru_classifier", "bilstm_classifier"]:
        assert zoo.model_info(model).default_dataset in list_datasets()
    for model in ["rnn_regressor", "lstm_regressor", "gru_regressor"]:
        assert zoo.model_info(model).default_dataset == "adding_problem"
        assert dataset_entry("adding_problem").task == zoo.model_info(model).task
    assert zoo.model_info("char_lm").default_dataset == "tiny_corpus"


def test_adding_problem_structure_and_target():
    x, y = adding_problem_arrays(500, 20, seed=3)
    assert x.shape == (500, 20, 2) and y.shape == (500, 1)
    assert x.dtype == np.float32 and y.dtype == np.float32
    markers = x[..., 1]
    np.testing.assert_array_equal(markers.sum(1), 2.0)
    np.testing.assert_array_equal(markers[:, :10].sum(1), 1.0)  # one marker per half
    np.testing.assert_array_equal(markers[:, 10:].sum(1), 1.0)
    assert set(np.unique(markers)) == {0.0, 1.0}
    assert np.all((x[..., 0] >= 0) & (x[..., 0] < 1))
    # The target, computed independently from the loop over examples.
    for i in range(0, 500, 37):
        assert y[i, 0] == pytest.approx(float(sum(x[i, t, 0] for t in range(20) if x[i, t, 1])))
    np.testing.assert_array_equal(adding_problem_arrays(500, 20, seed=3)[0], x)
    assert not np.array_equal(adding_problem_arrays(500, 20, seed=4)[0], x)


def test_adding_problem_baseline_is_one_sixth():
    # Var(U1 + U2) = 2 / 12 for independent U(0, 1): the MSE of always predicting the mean 1.
    _, y = adding_problem_arrays(40000, 50, seed=0)
    assert np.mean((y - 1.0) ** 2) == pytest.approx(1 / 6, abs=0.005)


def test_adding_problem_splits_fit_the_models():
    splits = load_dataset("adding_problem", sequence_length=12, num_train=40, num_test=8)
    assert splits.model_kwargs == {"input_dim": 2, "classes": None}
    assert (splits.num_train, splits.num_test) == (40, 8)
    x, y = next(iter(splits.train.batch(8)))
    assert x.shape == (8, 12, 2) and y.shape == (8, 1)
    test_x = next(iter(splits.test.batch(8)))[0].numpy()
    assert not np.array_equal(test_x, x.numpy())  # train and test differ
    for name in ["gru_classifier", "gru_regressor"]:
        model = zoo.create_model(name, **splits.model_kwargs, units=4, embedding_dim=4)
        assert model.predict(x, verbose=0).shape == (8, 1)


def test_copy_task_structure():
    x, y = copy_task_arrays(50, delay=6, copy_length=4, num_symbols=5, seed=1)
    assert x.shape == y.shape == (50, 14)
    blank, delimiter = 6, 7
    assert np.all((x[:, :4] >= 1) & (x[:, :4] <= 5))
    np.testing.assert_array_equal(x[:, 4:9], blank)
    np.testing.assert_array_equal(x[:, 9], delimiter)
    np.testing.assert_array_equal(x[:, 10:], blank)
    np.testing.assert_array_equal(y[:, :10], blank)
    np.testing.assert_array_equal(y[:, 10:], x[:, :4])  # recall the symbols after the delay
    assert not np.any(x == 0)  # id 0 is reserved for padding


def test_copy_task_splits_fit_a_per_step_model():
    splits = load_dataset("copy_task", delay=5, copy_length=3, num_train=16, num_test=4)
    assert splits.model_kwargs == {"vocabulary_size": 11, "classes": 11, "return_sequences": True}
    assert splits.extras["baseline_cross_entropy"] == pytest.approx(3 * np.log(8) / 11)
    x, y = next(iter(splits.train.batch(4)))
    model = zoo.create_model("lstm_classifier", **splits.model_kwargs, units=4, embedding_dim=4)
    assert model.predict(x, verbose=0).shape == (4, 11, 11)
    assert y.shape == (4, 11)


def test_imdb_reviews_with_mocked_tfds(monkeypatch, tmp_path):
    calls, original = [], tfds.load
    monkeypatch.setattr(tfds, "load", lambda name, **kw: calls.append(kw) or original(name, **kw))
    with tfds.testing.mock_data(num_examples=24):
        splits = load_dataset("imdb_reviews", vocabulary_size=50, sequence_length=16)
        load_dataset("imdb_reviews", vocabulary_size=50, data_dir=str(tmp_path), download=False)
    assert [(c["download"], c["data_dir"]) for c in calls] == [(True, None), (False, str(tmp_path))]
    vocabulary = splits.extras["vocabulary"]
    assert vocabulary[:2] == ["", "[UNK]"]  # 0 = padding, 1 = out of vocabulary
    assert splits.model_kwargs == {"vocabulary_size": len(vocabulary), "classes": 2}
    assert len(vocabulary) <= 50
    ids, labels = next(iter(splits.train.batch(24)))
    assert ids.shape == (24, 16) and ids.dtype.name == "int32"
    assert np.all((ids.numpy() >= 0) & (ids.numpy() < len(vocabulary)))
    assert set(np.unique(labels.numpy())) <= {0, 1}
    model = zoo.create_model("bilstm_classifier", **splits.model_kwargs, units=4, embedding_dim=4)
    assert model.predict(ids, verbose=0).shape == (24, 2)


def test_bad_dataset_arguments():
    with pytest.raises(ValueError, match="sequence_length=1"):
        adding_problem_arrays(4, 1)
    with pytest.raises(ValueError, match="num_examples=0"):
        copy_task_arrays(0)
    with pytest.raises(ValueError, match="test_fraction"):
        load_dataset("tiny_corpus", test_fraction=1.5)
    with pytest.raises(FileNotFoundError):
        load_dataset("tiny_corpus", path="/nonexistent/corpus.txt")
