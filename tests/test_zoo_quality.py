"""The quality table's machinery: the baselines' split, the record's merge and rendering, and
the tuning data that never holds a test example (no training here: seconds)."""

import math

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from benchmarks import quality_record, tuning
from zoo.data import load_dataset


def test_the_baselines_use_exactly_the_loaders_digits_split():
    # Independent reference: scikit-learn's split with the loader's documented arguments.
    digits = load_digits()
    _, x_test, _, y_test = train_test_split(digits.data / 16.0, digits.target, test_size=0.2,
                                            stratify=digits.target, random_state=0)
    x_train_b, x_test_b, y_train_b, y_test_b = quality_record.digits_arrays()
    np.testing.assert_allclose(x_test_b, x_test, atol=1e-6)
    np.testing.assert_array_equal(y_test_b, y_test)
    assert (len(y_train_b), len(y_test_b)) == (1437, 360)
    # ... and the loader's test examples are those, standardised.
    splits = load_dataset("digits")
    images, labels = (np.stack(a) for a in zip(*splits.test.as_numpy_iterator()))
    mean, std = splits.extras["mean"][0], splits.extras["std"][0]
    np.testing.assert_array_equal(labels, y_test)
    np.testing.assert_allclose(images.reshape(360, -1), (x_test - mean) / std, atol=1e-4)


def test_unigram_perplexity_closed_form():
    # Train "aab": add-one counts a 3, b 2, c 1 over 3 + 3 = 6; test "abc".
    expected = math.exp(-(math.log(3 / 6) + math.log(2 / 6) + math.log(1 / 6)) / 3)
    assert quality_record.unigram_perplexity("aab", "abc") == pytest.approx(expected)


def _row(values, kind="model", **extra):
    mean, std = quality_record.summary(values)
    row = {"kind": kind, "dataset": "digits", "epochs": 10, "unit": "test accuracy",
           "seeds": list(range(len(values))), "values": values, "mean": mean, "std": std,
           "seconds": [1.0] * len(values), "reference": ">= RBF SVM 0.98", "target": 0.98,
           "higher_is_better": True, "date": "2026-12-04", "machine": "test machine",
           "commit": "abc"}
    row.update(extra)
    return row


def test_merge_replaces_the_measured_rows_and_keeps_the_others(tmp_path):
    path = str(tmp_path / "record.json")
    quality_record.merge({"a": _row([0.9]), "b": _row([0.8])}, path)
    record = quality_record.merge({"b": _row([0.97, 0.98, 0.99])}, path)
    assert sorted(record["rows"]) == ["a", "b"]
    assert record["rows"]["a"]["values"] == [0.9]
    assert quality_record.load(path)["rows"]["b"]["mean"] == pytest.approx(0.98)


def test_the_table_marks_single_seed_rows_and_shows_mean_and_std():
    record = {"rows": {"new": _row([0.97, 0.98, 0.99], target=0.95), "old": _row([0.9]),
                       "SVM": _row([0.983], kind="baseline")}}
    table = quality_record.markdown(record, ["new", "old"])
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split("|")[1].strip() for row in rows[1:]] == ["`new`", "SVM (baseline)",
                                                               "`old`"]
    assert "0.98 ± 0.01" in rows[1] and "| 0, 1, 2 |" in rows[1] and "| yes |" in rows[1]
    assert "not re-measured" in rows[3] and "±" not in rows[3]
    assert "| **no** |" in quality_record.markdown({"rows": {"x": _row([0.5, 0.6, 0.7])}})


def test_tuning_data_holds_no_test_example():
    splits = tuning.validation_dataset("digits")
    test = {x.tobytes() for x, _ in load_dataset("digits").test.as_numpy_iterator()}
    scored = [x.tobytes() for x, _ in splits.test.as_numpy_iterator()]
    trained = [x.tobytes() for x, _ in splits.train.as_numpy_iterator()]
    assert splits.num_test == len(scored) == 144 and len(trained) == 1437 - 144
    assert not test & set(scored) and not test & set(trained) and not set(scored) & set(trained)


def test_tuning_candidates_start_with_the_recipe_and_are_reproducible(monkeypatch):
    import zoo

    first = tuning.candidates("lenet5", 5, search_seed=0)
    assert first == tuning.candidates("lenet5", 5, search_seed=0)
    recipe = zoo.model_info("lenet5").recipe
    assert first[0] == {key: getattr(recipe, key) for key in tuning.SPACES["lenet5"]}
    # Then the anchors (the recipe with fields changed) unless the recipe already is one,
    # then the draws: all distinct.
    monkeypatch.setitem(tuning.ANCHORS, "lenet5",
                        [{"augment": not recipe.augment}, {"augment": recipe.augment}])
    anchored = tuning.candidates("lenet5", 5, search_seed=0)
    assert anchored[1] == {**anchored[0], "augment": not recipe.augment}
    assert len({str(c) for c in anchored}) == len(anchored) == 7  # recipe, 1 anchor, 5 draws


def test_a_search_with_more_seeds_adds_them_and_chooses_among_its_own_candidates(
        tmp_path, monkeypatch):
    drawn = [{"lr": 1.0}, {"lr": 2.0}]
    scores = {(1.0, 0): 0.90, (1.0, 1): 0.92, (1.0, 2): 0.91,
              (2.0, 0): 0.95, (2.0, 1): 0.80, (2.0, 2): 0.80}
    calls = []

    def score(model, candidate, seed, small=False):
        calls.append((candidate["lr"], seed))
        return scores[(candidate["lr"], seed)], "val_accuracy"

    monkeypatch.setattr(tuning, "RESULTS_DIR", str(tmp_path))
    monkeypatch.setattr(tuning, "score", score)
    monkeypatch.setattr(tuning, "candidates", lambda model, count, search_seed=0: drawn)
    # An earlier search's candidate with a better mean over fewer seeds is not chosen.
    tuning.save("m", {"candidates": [{"candidate": {"lr": 9.0}, "seeds": [0], "values": [1.0],
                                      "mean": 1.0, "std": 0.0}]})
    record = tuning.search("m", 1, seeds=(0,), label=2)
    assert record["chosen"] == {"lr": 2.0}  # 0.95 against 0.90
    record = tuning.search("m", 1, seeds=(0, 1, 2), label=3)
    assert calls == [(1.0, 0), (2.0, 0), (1.0, 1), (1.0, 2), (2.0, 1), (2.0, 2)]
    entry = next(e for e in record["candidates"] if e["candidate"] == {"lr": 1.0})
    assert entry["seeds"] == [0, 1, 2] and entry["values"] == [0.90, 0.92, 0.91]
    assert entry["search"] == 2  # the search that measured it first, not the one extending it
    assert record["chosen"] == {"lr": 1.0}  # 0.91 against 0.85 over three seeds
    assert len(record["candidates"]) == 3


def test_a_confirmation_rescores_only_the_leaders_and_chooses_on_all_their_seeds(
        tmp_path, monkeypatch):
    def entry(lr, values, search=1):
        return {"candidate": {"lr": lr}, "seeds": [0, 1], "values": values, "search": search,
                "mean": sum(values) / 2, "std": 0.0, "current_recipe": lr == 3.0}

    monkeypatch.setattr(tuning, "RESULTS_DIR", str(tmp_path))
    # lr 1.0 leads search 1 by a hair; lr 9.0 (search 2) is better but not this search's.
    tuning.save("m", {"seeds": [0, 1], "candidates": [
        entry(1.0, [0.96, 0.96]), entry(2.0, [0.95, 0.96]), entry(3.0, [0.50, 0.50]),
        entry(9.0, [0.99, 0.99], search=2)]})
    later = {1.0: 0.90, 2.0: 0.97}
    calls = []

    def score(model, candidate, seed, small=False):
        calls.append((candidate["lr"], seed))
        return later[candidate["lr"]], "val_accuracy"

    monkeypatch.setattr(tuning, "score", score)
    monkeypatch.setattr(tuning, "candidates", lambda *a, **k: pytest.fail("nothing is drawn"))
    record = tuning.search("m", 16, seeds=(2, 3), label=1, confirm=2)
    assert calls == [(1.0, 2), (1.0, 3), (2.0, 2), (2.0, 3)]  # the two leaders, new seeds only
    assert record["chosen"] == {"lr": 2.0}  # 0.9625 against 0.93 over four seeds
    assert record["seeds"] == [0, 1, 2, 3]
    confirmed = next(e for e in record["candidates"] if e["candidate"] == {"lr": 2.0})
    assert confirmed["seeds"] == [0, 1, 2, 3] and confirmed["search"] == 1
    assert confirmed["current_recipe"] is False
    with pytest.raises(SystemExit, match="search 5 of m has no candidates"):
        tuning.search("m", 16, seeds=(2,), label=5, confirm=2)
