"""Transfer, measured offline: does a network pretrained on the digits 0-5 help on the digits
6-9 when only 10 images per class are labelled?

LeNet-5 is pretrained on the digits 0-5 (all of scikit-learn's training images of them), then
trained on 6-9 from 10 images per class in four ways, with the same budget (epochs, batch,
steps) each:

    head only      --weights PRETRAINED --freeze (the convolutions and F6 copied and frozen)
    two-phase      --weights PRETRAINED --unfreeze-after EPOCHS/2 (then everything at lr x 0.1)
    whole network  --weights PRETRAINED (everything trains from the copied start)
    from scratch   random initialisation (the peer)

Every run: Adam, cosine schedule, no weight decay, label smoothing or warm-up (pretraining:
10 epochs at 3e-3, batch 32). Each way takes its learning rate from a small grid by the
validation accuracy (20 other images
per class); the test accuracy (the 6-9 images of the digits' test split) of the chosen run is
the one reported: mean +- std over 3 seeds, each seed drawing its own 10 images per class and
initialising its own head. Writes `benchmarks/results/transfer.json`.
"""

import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

from benchmarks.harness import Result

PRETRAIN_CLASSES = (0, 1, 2, 3, 4, 5)
TRANSFER_CLASSES = (6, 7, 8, 9)
SHOTS = 10  # training images per class
VALIDATION_SHOTS = 20
SEEDS = (0, 1, 2)
EPOCHS = 10  # 10 steps of batch 4 each (40 images): 100 steps
BATCH = 4
LEARNING_RATES = (1e-3, 1e-2)
PRETRAIN_EPOCHS = 10
METHODS = {
    "head only": {"freeze": True},
    "two-phase": {"unfreeze_after": EPOCHS // 2},
    "whole network": {},
    "from scratch": None,
}
RESULTS_FILE = os.path.join(os.path.dirname(__file__), "results", "transfer.json")


def _digits_arrays(min_image_size):
    """The preprocessed digits (the registered loader's images), as NumPy arrays."""
    from zoo.data.images import load_digits_dataset

    splits = load_digits_dataset(min_image_size=min_image_size)

    def arrays(dataset):
        pairs = list(dataset.as_numpy_iterator())
        return np.stack([x for x, _ in pairs]), np.array([y for _, y in pairs], "int32")

    return splits, arrays(splits.train), arrays(splits.test)


def _splits(name, classes, train, test, extras, validation=None):
    import tensorflow as tf

    from zoo.data.base import DatasetSplits

    def dataset(pair):
        return tf.data.Dataset.from_tensor_slices(pair)

    return DatasetSplits(
        name=name, train=dataset(train), test=dataset(test), task="image-classification",
        model_kwargs={"input_shape": train[0].shape[1:], "classes": len(classes)},
        num_train=len(train[1]), num_test=len(test[1]),
        extras={**extras, "class_names": [str(c) for c in classes]},
        validation=None if validation is None else dataset(validation),
        num_validation=None if validation is None else len(validation[1]),
    )


def _select(images, labels, classes):
    keep = np.isin(labels, classes)
    relabel = {c: i for i, c in enumerate(classes)}
    return images[keep], np.array([relabel[int(y)] for y in labels[keep]], "int32")


def register_datasets():
    """`digits_0_5` (pretraining) and `digits_6_9_few` (10 images per class, `subset_seed`)."""
    from zoo.data import base

    if "digits_0_5" in base.list_datasets():
        return

    @base.register_dataset("digits_0_5", task="image-classification", offline=True,
                           summary="the digits 0-5 (transfer benchmark)")
    def digits_0_5(min_image_size=None):
        splits, train, test = _digits_arrays(min_image_size)
        return _splits("digits_0_5", PRETRAIN_CLASSES, _select(*train, PRETRAIN_CLASSES),
                       _select(*test, PRETRAIN_CLASSES), splits.extras)

    @base.register_dataset("digits_6_9_few", task="image-classification", offline=True,
                           summary="the digits 6-9, 10 training images per class")
    def digits_6_9_few(min_image_size=None, subset_seed=0):
        splits, train, test = _digits_arrays(min_image_size)
        images, labels = _select(*train, TRANSFER_CLASSES)
        rng = np.random.default_rng(subset_seed)
        chosen, held = [], []
        for label in range(len(TRANSFER_CLASSES)):
            order = rng.permutation(np.flatnonzero(labels == label))
            chosen += list(order[:SHOTS])
            held += list(order[SHOTS:SHOTS + VALIDATION_SHOTS])
        return _splits("digits_6_9_few", TRANSFER_CLASSES, (images[chosen], labels[chosen]),
                       _select(*test, TRANSFER_CLASSES), splits.extras,
                       validation=(images[held], labels[held]))


def _run(out, seed, lr, epochs, weights=None, **options):
    from zoo.training import train

    # Every setting given: the from-scratch run must not take lenet5's own recipe (weight decay,
    # label smoothing) where the fine-tuning runs take the fine-tuning recipe's.
    result = train(model="lenet5", dataset="digits_6_9_few", epochs=epochs, batch_size=BATCH,
                   lr=lr, optimizer="adam", schedule="cosine", weight_decay=0.0,
                   label_smoothing=0.0, warmup_epochs=0.0, seed=seed, out=out, verbose=0,
                   weights=weights, dataset_kwargs={"subset_seed": seed}, save_best=False,
                   **options)
    return result.history[-1]["val_accuracy"], result.test_metrics["accuracy"]


def measure(quick=False):
    """{method: [test accuracy per seed]} and the chosen learning rates."""
    from zoo.training import train

    register_datasets()
    seeds = SEEDS[:1] if quick else SEEDS
    epochs = 4 if quick else EPOCHS
    work = tempfile.mkdtemp(prefix="zoo-transfer-")
    pretrained = os.path.join(work, "pretrained")
    started = time.perf_counter()
    base = train(model="lenet5", dataset="digits_0_5", epochs=PRETRAIN_EPOCHS, out=pretrained,
                 optimizer="adam", lr=3e-3, batch_size=32, schedule="cosine", weight_decay=0.0,
                 label_smoothing=0.0, warmup_epochs=0.0, verbose=0)
    accuracies, chosen = {}, {}
    for method, options in METHODS.items():
        for seed in seeds:
            runs = []
            for lr in LEARNING_RATES:
                out = os.path.join(work, f"{method.replace(' ', '_')}-{seed}-{lr:g}")
                settings = dict(options or {})
                if settings.get("unfreeze_after"):
                    settings["unfreeze_after"] = epochs // 2
                weights = None if options is None else pretrained
                runs.append((*_run(out, seed, lr, epochs, weights, **settings), lr))
            validation, test, lr = max(runs, key=lambda r: (r[0], -r[2]))  # on validation
            print(f"{method}, seed {seed}: validation {validation:.3f} at lr {lr:g}",
                  file=sys.stderr, flush=True)
            accuracies.setdefault(method, []).append(test)
            chosen.setdefault(method, []).append(lr)
    return {"pretrain_test_accuracy": base.test_metrics["accuracy"], "accuracies": accuracies,
            "chosen_lr": chosen, "seconds": round(time.perf_counter() - started, 1),
            "epochs": epochs, "batch": BATCH, "shots": SHOTS, "seeds": list(seeds)}


def _mean_std(values):
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def markdown(measured):
    rows = ["| training on 6-9 (10 images per class) | test accuracy (mean +- std, "
            f"{len(measured['seeds'])} seeds) | learning rates chosen |", "| --- | ---: | --- |"]
    for method, values in measured["accuracies"].items():
        mean, std = _mean_std(values)
        rates = ", ".join(f"{lr:g}" for lr in measured["chosen_lr"][method])
        rows.append(f"| {method} | {mean:.3f} +- {std:.3f} | {rates} |")
    return "\n".join(rows)


def run(quick=False):
    measured = measure(quick)
    if not quick:
        os.makedirs(os.path.dirname(RESULTS_FILE), exist_ok=True)
        with open(RESULTS_FILE, "w", encoding="utf-8") as f:
            json.dump(measured, f, indent=1)
            f.write("\n")
    print(markdown(measured))
    scratch, _ = _mean_std(measured["accuracies"]["from scratch"])
    return [Result("transfer", f"{method} vs from scratch", _mean_std(values)[0], scratch,
                   "test accuracy", "from scratch", higher_is_better=True)
            for method, values in measured["accuracies"].items() if method != "from scratch"]
