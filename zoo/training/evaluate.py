"""Evaluation of a saved model: `zoo evaluate RUN_DIR` or `zoo evaluate model.keras --dataset D`.

A run directory says everything: its record (`config.json`) names the dataset, the loader's
arguments and what the model returns. A bare `.keras` file needs `--dataset`, and its output
layer must leave no doubt whether it returns probabilities or logits (or `outputs` says so).
"""

import inspect
import os

import keras
import tensorflow as tf

import zoo
from zoo.captioning import metrics as caption_metrics
from zoo.data import base as data_base
from zoo.training.pipeline import evaluation_batches
from zoo.training.saved_runs import MODEL_FILES, find_saved_model
from zoo.training.task import OUTPUT_KINDS
from zoo.training.trainer import DistributedTrainer
from zoo.validation import check_choice, check_int

SPLITS = ("test", "validation")


def evaluate_saved_model(path, dataset=None, batch_size=128, crop_border=0, strategy=None,
                         outputs=None, split="test", dataset_kwargs=None, beam_width=1):
    """Evaluate a saved `.keras` model (or a run directory) on a dataset's test split.

    Captioners also get COCO's caption metrics (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D; see
    `zoo.captioning.metrics.caption_scores`) of the captions they generate for the split's
    images, against every reference of each image.

    Args:
        path: A run directory (its `model.keras`, else its `best.keras`, and its record for the
            dataset, the loader's arguments and what the model returns), or a `.keras` file (a
            run's own file uses the record of its run directory).
        dataset: Dataset name; None means the run directory's dataset.
        batch_size: Per-replica evaluation batch size.
        crop_border: Pixels dropped from each image side (as in training); 0 means the run
            record's value.
        strategy: Optional `tf.distribute.Strategy` (default: the default strategy).
        outputs: What the model returns ("probabilities", "log_probabilities", "logits",
            "values"); None: the run record's, else read from the model's output layer.
        split: "test", or "validation" when the loader has its own validation split.
        dataset_kwargs: The loader's arguments; None: the run record's when it is the run's
            dataset, else just the image size the model takes.
        beam_width: Captioners: 1 for greedy search, more for beam search.

    Returns:
        (metrics dict, dataset name).

    Raises:
        ValueError: for a missing file, an unknown dataset, a model that does not fit it, or a
            model whose outputs cannot be told.
    """
    check_int("batch_size", batch_size)
    check_int("crop_border", crop_border, minimum=0)
    check_choice("split", split, SPLITS)
    check_int("beam_width", beam_width)
    if outputs is not None:
        check_choice("outputs", outputs, OUTPUT_KINDS)
    # The one lookup `zoo predict` and `zoo evaluate` share: a run directory's model.keras,
    # else its best.keras (a run in progress, interrupted or diverged), with its record.
    found = find_saved_model(path, argument="path")
    own = os.path.isdir(path) or os.path.basename(path) in MODEL_FILES
    path = found.model_file
    saved = {k: v for k, v in found.record.items() if k != "data"} if own else {}
    same_data = dataset is None or dataset == saved.get("dataset")
    dataset = dataset or saved.get("dataset")
    if dataset is None:
        raise ValueError("Pass --dataset: the model file alone does not say which data it fits.")
    entry = data_base.dataset_entry(dataset)
    strategy = strategy or tf.distribute.get_strategy()
    zoo.load_families()  # the zoo's registered classes, before Keras deserialises the file
    with strategy.scope():
        model = keras.models.load_model(path)
    input_shape = tuple(model.inputs[0].shape[1:]) if getattr(model, "inputs", None) else None
    if dataset_kwargs is not None:
        kwargs = dict(dataset_kwargs)
    elif same_data and "dataset_kwargs" in saved:
        kwargs = dict(saved["dataset_kwargs"])  # exactly the training run's data
        if "min_image_size" in kwargs:
            kwargs["min_image_size"] = tuple(kwargs["min_image_size"])
    else:
        parameters = inspect.signature(entry.loader).parameters
        kwargs = {}
        if "min_image_size" in parameters and input_shape and len(input_shape) == 3:
            kwargs["min_image_size"] = input_shape[:2]
    if crop_border:
        kwargs["crop_border"] = crop_border
    splits = entry.loader(**kwargs)
    data = splits.test if split == "test" else splits.validation
    if data is None:
        raise ValueError(
            f"Dataset {dataset!r} has no validation split of its own (training holds one out of "
            "its training examples). Use split='test'."
        )
    got = tuple(tf.nest.flatten(data.element_spec)[0].shape)
    if input_shape and (len(got) != len(input_shape) or any(
        e is not None and e != g for e, g in zip(input_shape, got)
    )):
        raise ValueError(
            f"The model at {path!r} expects inputs of shape {input_shape} but {dataset!r} gives "
            f"{got}. Evaluate on the dataset it was trained on, with the same --crop-border."
        )
    trainer = DistributedTrainer(model, None, strategy, entry.task,
                                 outputs=outputs or saved.get("outputs"))
    global_batch = batch_size * strategy.num_replicas_in_sync
    batches = strategy.experimental_distribute_dataset(evaluation_batches(data, global_batch))
    metrics = trainer.evaluate(batches)
    if entry.task == "image-captioning":
        scores = caption_metrics.evaluate_captions(
            model, data, references=splits.extras.get(f"{split}_references"),
            beam_width=beam_width,
        )
        metrics.update({k: v for k, v in scores.items() if k != "captions"})
    return metrics, entry.name
