"""The task: what a model returns, and the loss and metrics of each registry task.

What a model's output is, "probabilities", "log_probabilities", "logits" or "values"
(regression), is stated, never guessed: `declared_outputs` reads it from the
`classifier_activation` the model was built with (every classifier of the zoo has that
argument), or from the task's contract (language models and captioners of the zoo return
logits; regressors return values). The run record keeps it, so `zoo evaluate` of a run
directory reads it back. Only a bare `.keras` file with no record is inspected
(`inspect_outputs`), and only when its output layer leaves no doubt.

Losses are sums over the (per-replica) batch together with their denominator (examples, or
real tokens), so that the training step can all-reduce both and divide once: see
`zoo.training.trainer`. Cross-entropy is computed in float32 from logits or
log-probabilities, never from clipped probabilities.
"""

import inspect
import math

import keras
import tensorflow as tf

from zoo.training import keras_internals

OUTPUT_KINDS = ("probabilities", "log_probabilities", "logits", "values")
# What the zoo's models of these tasks return when they have no `classifier_activation`.
TASK_OUTPUTS = {
    "sequence-regression": "values",
    "language-modeling": "logits",
    "image-captioning": "logits",
}
TOKEN_TASKS = ("language-modeling", "image-captioning")
# GoogLeNet's auxiliary classifiers: their losses are added with this weight during training
# (Szegedy et al. 2015, "Going Deeper with Convolutions", section 5).
AUXILIARY_LOSS_WEIGHT = 0.3
_ACTIVATION_OUTPUTS = {
    "softmax": "probabilities",
    "sigmoid": "probabilities",
    "log_softmax": "log_probabilities",
    None: "logits",
    "linear": "logits",
}


def _from_activation(activation, where):
    if activation in _ACTIVATION_OUTPUTS:
        return _ACTIVATION_OUTPUTS[activation]
    raise ValueError(
        f"{where} ends in the activation {activation!r}: no classification loss is defined for "
        "it. Build it with classifier_activation='softmax' (probabilities) or None (logits)."
    )


def inspect_outputs(model):
    """What a model returns, read from its output layer; None when that is not clear.

    Clear cases: a `classifier_activation` attribute (subclassed zoo models), or a functional
    or sequential model whose (first) output comes from `zoo.layers.StableSoftmax`, `keras.layers.Softmax`, or a
    layer whose activation is softmax, sigmoid or linear.
    """
    from zoo.layers import StableSoftmax

    if hasattr(model, "classifier_activation"):
        return _from_activation(model.classifier_activation, f"Model {model.name!r}")
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):  # an unbuilt Sequential model
        outputs = None
    if outputs:
        layer = getattr(getattr(outputs[0], "_keras_history", None), "operation", None)
    elif isinstance(model, keras.Sequential) and model.layers:
        layer = model.layers[-1]
    else:
        return None
    if isinstance(layer, StableSoftmax):
        return "log_probabilities" if layer.log else "probabilities"
    if isinstance(layer, keras.layers.Softmax):
        return "probabilities"
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    name = getattr(activation, "__name__", None)
    return _ACTIVATION_OUTPUTS.get(name) if name in ("softmax", "sigmoid", "linear") else None


def declared_outputs(info, model_kwargs, model=None):
    """What a registry model built with `model_kwargs` returns (one of `OUTPUT_KINDS`).

    From its `classifier_activation` (the argument, else the function's default), else from
    the task's contract (`TASK_OUTPUTS`). When `model` is given and its output layer says
    otherwise, that is an error, not a guess.

    Raises:
        ValueError: if the model does not state it, or its output layer contradicts it.
    """
    parameters = inspect.signature(info.builder).parameters
    if "classifier_activation" in parameters:
        activation = model_kwargs.get(
            "classifier_activation", parameters["classifier_activation"].default
        )
        declared = _from_activation(activation, f"Model {info.name!r}")
    elif info.task in TASK_OUTPUTS:
        declared = TASK_OUTPUTS[info.task]
    else:
        raise ValueError(
            f"Model {info.name!r} ({info.task}) has no `classifier_activation` argument, so "
            "the training engine cannot know whether it returns probabilities or logits. Give "
            "its function a classifier_activation argument."
        )
    seen = inspect_outputs(model) if model is not None and declared != "values" else None
    if seen is not None and seen != declared:
        raise ValueError(
            f"Model {info.name!r} is declared to return {declared} but its output layer "
            f"returns {seen}."
        )
    return declared


def infer_outputs(model, task):
    """What a model without a record returns: its output layer, else the task's contract.

    Raises:
        ValueError: if neither says.
    """
    seen = inspect_outputs(model)
    if seen is not None:
        return seen
    if task in TASK_OUTPUTS:
        return TASK_OUTPUTS[task]
    raise ValueError(
        f"Cannot tell whether model {getattr(model, 'name', model)!r} returns probabilities, "
        "log-probabilities or logits: its output layer does not say. Pass outputs="
        f"one of {OUTPUT_KINDS[:3]}."
    )


def _attached_logits(outputs):
    """The logits Keras' softmax/sigmoid and StableSoftmax attach to probabilities (see
    layers.softmax). Losses never fall back to clipped probabilities: without them, an error."""
    logits = keras_internals.attached_logits(outputs)
    if logits is None:
        keras_internals.check_softmax_attaches_logits()  # a Keras that stopped attaching them
        raise ValueError(
            "The model's outputs are probabilities without the logits Keras' softmax, sigmoid "
            "and layers.StableSoftmax attach to them (_keras_logits; an op after the softmax, "
            "a cast, drops them), so the loss could only use clipped probabilities. End the "
            "model in one of those, or return logits and pass outputs='logits'."
        )
    return logits


def _logits_like(outputs, kind):
    """float32 scores whose log-softmax over the last axis is the log-probabilities."""
    if kind == "probabilities":
        # Read before any cast, which would drop the attribute.
        return tf.cast(_attached_logits(outputs), tf.float32)
    return tf.cast(outputs, tf.float32)  # logits, or log-probabilities (their own log-softmax)


def _binary_logits(outputs, kind):
    if kind == "logits":
        return tf.cast(outputs[..., 0], tf.float32)
    return tf.cast(_attached_logits(outputs)[..., 0], tf.float32)


def _classification(targets, outputs, kind, label_smoothing):
    """Per-example (or per-position) loss and correctness for class outputs."""
    targets = tf.cast(targets, tf.int32)
    if outputs.shape[-1] == 1:  # binary classifier with one output unit
        labels = tf.cast(tf.reshape(targets, tf.shape(outputs)[:-1]), tf.float32)
        logits = _binary_logits(outputs, kind)
        smoothed = labels * (1.0 - label_smoothing) + 0.5 * label_smoothing
        loss = tf.nn.sigmoid_cross_entropy_with_logits(smoothed, logits)
        correct = tf.cast(tf.equal(tf.cast(logits > 0, tf.float32), labels), tf.float32)
        return loss, correct
    logits = _logits_like(outputs, kind)
    targets = tf.reshape(targets, tf.shape(logits)[:-1])
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits)
    if label_smoothing:
        # (1 - e) * CE + e * mean_k(-log p_k): the cross-entropy against the smoothed labels
        # (Szegedy et al. 2016, "Rethinking the Inception Architecture", section 7).
        uniform = -tf.reduce_mean(tf.nn.log_softmax(logits, axis=-1), axis=-1)
        loss = (1.0 - label_smoothing) * loss + label_smoothing * uniform
    predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
    correct = tf.cast(tf.equal(predictions, targets), tf.float32)
    return loss, correct


def _weights(sample_weight, like):
    if sample_weight is None:
        return tf.ones_like(like)
    return tf.cast(tf.reshape(sample_weight, tf.shape(like)), tf.float32)


def batch_statistics(task, targets, outputs, sample_weight, kind, label_smoothing=0.0):
    """Sums over a (per-replica) batch: loss, denominator and metric numerators.

    Args:
        task: Registry task.
        targets: Labels (sparse class ids / token ids) or regression targets.
        outputs: Model outputs (see `kind`); a list for models with auxiliary classifiers
            (the first is the main output).
        sample_weight: Optional weights; for token tasks the mask of real tokens.
        kind: What `outputs` are, one of `OUTPUT_KINDS`.
        label_smoothing: Label smoothing of the classification loss, in [0, 1).

    Returns:
        dict of float32 scalars: "loss" (sum), "count" (the denominator: examples, or real tokens
        for token tasks and per-time-step classifiers) and metric sums ("accuracy" or
        "absolute_error"); "auxiliary_loss" (already weighted) for auxiliary classifiers.
    """
    if isinstance(outputs, (list, tuple)):
        stats = batch_statistics(task, targets, outputs[0], sample_weight, kind, label_smoothing)
        if len(outputs) > 1:
            stats["auxiliary_loss"] = AUXILIARY_LOSS_WEIGHT * tf.add_n([
                batch_statistics(task, targets, aux, sample_weight, kind, label_smoothing)["loss"]
                for aux in outputs[1:]
            ])
        return stats
    if task == "sequence-regression":
        outputs = tf.cast(outputs, tf.float32)
        targets = tf.cast(tf.reshape(targets, tf.shape(outputs)), tf.float32)
        axes = list(range(1, len(outputs.shape)))
        squared, absolute = tf.square(outputs - targets), tf.abs(outputs - targets)
        if axes:
            squared, absolute = tf.reduce_mean(squared, axes), tf.reduce_mean(absolute, axes)
        return {
            "loss": tf.reduce_sum(squared * _weights(sample_weight, squared)),
            "count": tf.cast(tf.shape(squared)[0], tf.float32),
            "absolute_error": tf.reduce_sum(absolute),
        }

    per_example, correct = _classification(targets, outputs, kind, label_smoothing)
    weight = _weights(sample_weight, per_example)
    if task in TOKEN_TASKS or len(per_example.shape) > 1:
        # Token-level (or per-time-step) predictions: every real position counts once.
        return {
            "loss": tf.reduce_sum(per_example * weight),
            "count": tf.reduce_sum(weight),
            "accuracy": tf.reduce_sum(correct * weight),
        }
    return {
        "loss": tf.reduce_sum(per_example * weight),
        "count": tf.cast(tf.shape(per_example)[0], tf.float32),
        "accuracy": tf.reduce_sum(correct),
    }


def statistic_names(task):
    """The keys of `batch_statistics` for a task, in a fixed order (the trainer packs them)."""
    metric = "absolute_error" if task == "sequence-regression" else "accuracy"
    return ("loss", "count", metric)


def metrics_from_sums(task, sums):
    """Means from summed statistics: {"loss", "accuracy" | "mae", "perplexity" (tokens)}."""
    count = max(float(sums["count"]), 1e-12)
    metrics = {"loss": float(sums["loss"]) / count}
    if "accuracy" in sums:
        metrics["accuracy"] = float(sums["accuracy"]) / count
    if "absolute_error" in sums:
        metrics["mae"] = float(sums["absolute_error"]) / count
    if task in TOKEN_TASKS:
        metrics["perplexity"] = math.exp(min(metrics["loss"], 50.0))
    return metrics
