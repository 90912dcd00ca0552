"""The parts a run is made of: names resolved, data loaded and split, model and optimizer built.

Each step explains itself when the parts do not fit (an unknown name, a model for another
task, a data shape the model does not take) instead of failing deep in TensorFlow.
"""

import dataclasses
import inspect

import keras
import tensorflow as tf

from zoo import registry
from zoo.data import base as data_base
from zoo.training import pipeline

DEFAULT_MODEL = "lenet5"


def resolve_names(model_name, dataset_name):
    """The (model, dataset) a run uses, with helpful errors for unknown or mismatched names."""
    if model_name is None and dataset_name is not None:
        task = data_base.dataset_entry(dataset_name).task
        candidates = [
            m for m in registry.list_models(task=task)
            if registry.model_info(m).default_dataset == dataset_name
        ] or registry.list_models(task=task)
        if DEFAULT_MODEL in candidates:
            model_name = DEFAULT_MODEL
        elif candidates:
            model_name = candidates[0]
        else:
            raise ValueError(
                f"No registered model serves the task {task!r} of dataset {dataset_name!r}. "
                "Pass --model."
            )
    model_name = model_name or DEFAULT_MODEL
    info = registry.model_info(model_name)
    dataset_name = dataset_name or info.default_dataset
    if dataset_name is None:
        options = data_base.list_datasets(task=info.task)
        raise ValueError(
            f"Model {model_name!r} has no default dataset; pass --dataset (one of {options})."
        )
    entry = data_base.dataset_entry(dataset_name)
    if entry.task != info.task:
        options = data_base.list_datasets(task=info.task)
        raise ValueError(
            f"Model {model_name!r} is for {info.task} but dataset {dataset_name!r} is for "
            f"{entry.task}. Use one of the {info.task} datasets ({', '.join(options) or 'none'})"
            f" or one of the {entry.task} models "
            f"({', '.join(registry.list_models(task=entry.task)) or 'none'})."
        )
    return info, entry


def loader_kwargs(info, entry, config):
    """The loader's keyword arguments for this run: image size, border, seed, and the user's."""
    parameters = inspect.signature(entry.loader).parameters
    kwargs = {}
    if "min_image_size" in parameters and info.min_input_shape:
        kwargs["min_image_size"] = tuple(info.min_input_shape[:2])
    if config.crop_border:
        if "crop_border" not in parameters:
            raise ValueError(
                f"Option --crop-border applies to image datasets only; {entry.name!r} is a "
                f"{entry.task} dataset. Received: crop_border={config.crop_border}"
            )
        kwargs["crop_border"] = config.crop_border
    if "seed" in parameters:
        kwargs["seed"] = config.seed
    given = dict(config.dataset_kwargs)
    if given.get("download") is False and "download" not in parameters:
        del given["download"]  # --no-download: a dataset that never downloads already obeys
    unknown = [k for k in given if k not in parameters]
    if unknown and not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        raise ValueError(
            f"Dataset {entry.name!r} takes no argument {unknown[0]!r}. Its arguments: "
            f"{', '.join(parameters) or 'none'}. Received: dataset_kwargs={config.dataset_kwargs!r}"
        )
    kwargs.update(given)
    return kwargs


def load_splits(entry, kwargs):
    """Load the dataset; a failure (e.g. a tfds download without network) is a ValueError."""
    try:
        return entry.loader(**kwargs)
    except ValueError:
        raise
    except Exception as error:
        raise ValueError(
            f"Could not load dataset {entry.name!r} ({type(error).__name__}: {error}). "
            + ("It needs a download; the offline datasets are: "
               + ", ".join(n for n in data_base.list_datasets()
                           if data_base.dataset_entry(n).offline) + "."
               if not entry.offline else "")
        ) from error


def with_validation(splits, counted_train=None):
    """The splits with a validation set: the loader's own, else 10% held out of `train`.

    Training examples of unknown number are counted once (a pass over the data), unless the
    count is passed in (`counted_train`, from the record of the run being resumed): the
    learning-rate plan needs the steps per epoch.

    Returns:
        `(splits, how)`: the new `DatasetSplits` (with `num_train` the examples left for
        training) and a phrase saying where the validation examples came from.
    """
    if splits.validation is not None:
        train, num_train = splits.train, splits.num_train
        validation, num_validation = splits.validation, splits.num_validation
        # A loader that made the split itself says how (image_folder: a folder or a fraction).
        how = splits.extras.get("validation_how", "the dataset's own validation split")
    else:
        train, validation, num_train, num_validation = pipeline.hold_out_validation(
            splits.train, splits.num_train
        )
        how = (f"{pipeline.VALIDATION_FRACTION:.0%} of the training examples held out (one of "
               f"every {pipeline.VALIDATION_BLOCK}, seed {pipeline.VALIDATION_SEED})")
    if num_train is None:
        num_train = counted_train if counted_train is not None else pipeline.count_examples(train)
    if num_validation == 0 or (splits.num_train is not None and num_train < 1):
        raise ValueError(
            f"Dataset {splits.name!r} has too few training examples ({splits.num_train}) to hold "
            "out a validation split. Use more examples."
        )
    return dataclasses.replace(splits, train=train, validation=validation, num_train=num_train,
                               num_validation=num_validation), how


def model_kwargs(info, splits, config):
    """The model function's keyword arguments: small config, the data's, then the user's."""
    kwargs = dict(info.small_config) if config.small else {}
    kwargs.update(splits.model_kwargs)
    kwargs.update(config.model_kwargs)
    return kwargs


def build_model(info, splits, kwargs):
    """Create the model for the data; explain what to change when they do not fit."""
    try:
        model = registry.create_model(info.name, **kwargs)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"Model {info.name!r} cannot be built for dataset {splits.name!r} with "
            f"{kwargs}: {error} Choose a dataset whose inputs the model accepts (its minimum "
            f"input is {info.min_input_shape}), or change the options that shape the input "
            "(e.g. a smaller --crop-border)."
        ) from error
    spec = tf.nest.flatten(splits.train.element_spec)[0]
    expected = model.inputs[0].shape[1:] if getattr(model, "inputs", None) else None
    if expected is not None and len(tf.nest.flatten(splits.train.element_spec[0])) == 1:
        got = tuple(spec.shape)
        if len(got) != len(expected) or any(
            e is not None and g is not None and e != g for e, g in zip(expected, got)
        ):
            raise ValueError(
                f"Model {info.name!r} expects inputs of shape {tuple(expected)} but dataset "
                f"{splits.name!r} gives {got}. Build the model for the data's shape (the "
                "dataset's model_kwargs) or pick a matching dataset."
            )
    return model


def make_optimizer(settings, learning_rate):
    """The Keras optimizer the settings name, with momentum, Nesterov and weight decay."""
    decay = settings["weight_decay"] or None
    name = settings["optimizer"]
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=settings["momentum"],
                                    nesterov=settings["nesterov"], weight_decay=decay)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate, momentum=settings["momentum"],
                                        weight_decay=decay)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate, weight_decay=settings["weight_decay"])
    return keras.optimizers.Adam(learning_rate, weight_decay=decay)
