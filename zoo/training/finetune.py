"""Fine-tuning: start a run from pretrained weights (`zoo train --weights imagenet|RUN|FILE`).

* **Where the weights come from** (`resolve_source`): "imagenet" (the registry's weights,
  loaded by `zoo.weights.load_imagenet`), a run directory or a `.keras` file. The run record
  keeps the source and its sha256 (the registry's for ImageNet, else the model file's), so a
  resumed run refuses another source.
* **What is copied** (`transfer_weights`): the task model is built for the dataset (its classes
  and input shape), then every layer of the pretrained model whose name and weight shapes fit
  is copied into it. ImageNet: the pretrained model is the `include_top=False` one, so the
  backbone is copied and the classifier (and VGG/AlexNet's fully connected layers) start from
  their initialisers: the *head*. A run or file: every layer fits; its classifier is copied
  only when the classes are the same (continue on new data), else it is the new head.
* **The inputs** (`zoo.training.finetune_inputs`): the weights' normalisation instead of
  the dataset's, grey images in RGB, small images resized up to the model's minimum input.
* **Freezing and phases** (`Phases`): `freeze` trains the head only. Frozen layers have
  `trainable=False`; for BatchNormalization that also means inference mode in Keras 3 (its
  moving statistics stay the pretrained ones; Keras' transfer-learning guide). Two-phase
  (`unfreeze_after=N`): the head alone for N epochs, then the whole network at the learning
  rate times `lr_factor`. The backbone's BatchNormalization layers stay in inference mode in
  the second phase too, as the guide advises (a small batch's statistics would wreck the
  pretrained ones).
* **The optimizer across the switch**: phase 2 has a second optimizer of its own, built at the
  start over the whole network's trainable variables, as the guide recompiles with a fresh
  optimizer: the head's moment estimates from phase 1 (taken at another learning rate, with
  the backbone fixed) do not carry over, and Adam's bias correction starts afresh. Both
  optimizers are in the run checkpoint, so a run resumes exactly in either phase.
"""

import dataclasses
import os

from zoo import registry
from zoo.training.finetune_inputs import (
    IMAGENET,
    prepare_data,
    resolve_source,
    source_channels,
)
from zoo.validation import check_bool, check_int, check_number
from zoo.weights.transplanting import weight_shapes, weighted_layers


@dataclasses.dataclass(frozen=True)
class FinetuneRecipe:
    """How `zoo train --weights ...` trains a family unless a flag overrides a field.

    Attributes:
        optimizer: Adam: the head starts from random weights next to a trained backbone; an
            adaptive rate needs no per-family tuning of momentum (Keras' guide uses Adam).
        lr: The head's learning rate (phase 1, and the whole run without phases).
        lr_factor: Phase 2's learning rate is `lr * lr_factor`.
        epochs: Epochs of the whole run (both phases).
        batch_size: Per-replica batch (the learning rate is stated for it).
        note: Why these values.
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    lr_factor: float = 0.1
    epochs: int = 10
    batch_size: int = 32
    note: str = ""

    def recipe(self, base):
        """The model's `registry.Recipe` with this recipe's fields (constant schedule parts
        that suit a short fine-tuning: cosine, no warm-up, no weight decay or smoothing)."""
        return dataclasses.replace(
            base, optimizer=self.optimizer, lr=self.lr, reference_batch=self.batch_size,
            batch_size=self.batch_size, momentum=0.0, nesterov=False, weight_decay=0.0,
            schedule="cosine", warmup_epochs=0.0, label_smoothing=0.0, epochs=self.epochs,
            clip_norm=None, adaptation=self.note or base.adaptation,
        )


# Family (the registry name's prefix) -> recipe. The batch-norm families take the head's
# 1e-3; VGG and AlexNet, without batch norm and with large fully connected layers re-initialised
# in the head, take 1e-4 (at 1e-3 their first phase-2 steps undo the copied features).
# `lr_factor` 0.1: phase 2 moves the whole network 10x slower than the head did (the guide
# goes 100x lower with Adam 1e-5; 0.1 did better on the digits transfer benchmark).
FINETUNE_RECIPES = {
    "default": FinetuneRecipe(note="fine-tuning recipe: Adam 1e-3 for the head, x0.1 after "
                              "--unfreeze-after (Keras' transfer-learning guide)"),
    "vgg": FinetuneRecipe(lr=1e-4, note="fine-tuning recipe: Adam 1e-4 (no batch norm, large "
                          "re-initialised FC layers), x0.1 after --unfreeze-after"),
    "alexnet": FinetuneRecipe(lr=1e-4, note="fine-tuning recipe: Adam 1e-4 (no batch norm, "
                              "large re-initialised FC layers), x0.1 after --unfreeze-after"),
}


def finetune_recipe(model_name):
    """The `FinetuneRecipe` of a model: its family's (the longest matching name prefix)."""
    matches = [family for family in FINETUNE_RECIPES if model_name.startswith(family)]
    return FINETUNE_RECIPES[max(matches, key=len)] if matches else FINETUNE_RECIPES["default"]


def check_finetune_config(config):
    """Argument checks for `weights`, `freeze`, `unfreeze_after`, `finetune_lr_factor`."""
    weights = config.weights
    if weights is not None and (not isinstance(weights, (str, os.PathLike)) or not str(weights)):
        raise TypeError(
            "Argument `weights` must be None, 'imagenet', a run directory or a .keras file. "
            f"Received: weights={weights!r}"
        )
    check_bool("freeze", config.freeze)
    check_int("unfreeze_after", config.unfreeze_after, allow_none=True)
    check_number("finetune_lr_factor", config.finetune_lr_factor, low=0, high=1,
                 low_inclusive=False, high_inclusive=True, allow_none=True)
    if weights is None:
        for name in ("freeze", "unfreeze_after", "finetune_lr_factor"):
            value = getattr(config, name)
            if value not in (None, False):
                raise ValueError(
                    f"Argument `{name}` applies to fine-tuning; pass --weights imagenet, a run "
                    f"directory or a .keras file. Received: {name}={value!r}, weights=None"
                )


def adjust_info(info, config):
    """The model's info with the fine-tuning recipe in place of its from-scratch recipe, when
    `config.weights` is set (flags still override it, as any recipe)."""
    if config.weights is None:
        return info
    return dataclasses.replace(info, recipe=finetune_recipe(info.name).recipe(info.recipe))


def lr_factor(config, info):
    """Phase 2's learning-rate factor: the flag's, else the family recipe's."""
    if config.finetune_lr_factor is not None:
        return config.finetune_lr_factor
    return finetune_recipe(info.name).lr_factor


# ----------------------------------------------------------------------- the weights


def pretrained_model(source, info, kwargs):
    """The model holding the weights: the include_top=False ImageNet model for the task
    model's input shape, or the loaded run/file."""
    if source.kind == IMAGENET:
        return registry.create_model(info.name, weights=IMAGENET, include_top=False,
                                     input_shape=tuple(kwargs["input_shape"]))
    from zoo.training.saved_runs import load_model

    return load_model(source.model_file, argument="--weights")


def same_classes(source, splits, model):
    """Whether the source's classes are the dataset's: by name when both have names, else
    by the number of outputs."""
    names = splits.extras.get("class_names")
    if source.class_names is not None and names is not None:
        return list(source.class_names) == list(names)
    return int(model.outputs[0].shape[-1]) == int(splits.model_kwargs.get("classes", -1))


def transfer_weights(model, pretrained, source, splits):
    """Copy every layer of `pretrained` that fits into `model`.

    Returns:
        `(copied, head)`: names of the layers copied, and of the layers that form the head
        (not copied, or the source run's classifier): what `--freeze` trains.

    Raises:
        ValueError: when no layer fits (another architecture, or a `--small` model).
    """
    by_name = {layer.name: layer for layer in weighted_layers(pretrained)}
    targets = weighted_layers(model)
    classifier = targets[-1].name if source.kind != IMAGENET else None
    keep_classifier = classifier is not None and same_classes(source, splits, pretrained)
    copied = []
    for layer in targets:
        match = by_name.get(layer.name)
        if match is None or weight_shapes(match) != weight_shapes(layer):
            continue
        if layer.name == classifier and not keep_classifier:
            continue
        layer.set_weights(match.get_weights())
        copied.append(layer.name)
    if not copied:
        raise ValueError(
            f"No layer of --weights {source.source!r} fits model {model.name!r} (another "
            "architecture, or a model built with other options such as --small)."
        )
    head = [layer.name for layer in targets if layer.name not in copied or layer.name ==
            classifier]
    return copied, head


def describe_transfer(copied, head, model):
    names = [layer.name for layer in weighted_layers(model)]
    kept = [n for n in head if n in copied]
    return (f"weights: {len(copied)} of {len(names)} weighted layers copied "
            f"({copied[0]} ... {copied[-1]}); head: {', '.join(head)}"
            + (f" ({', '.join(kept)} copied: the same classes)" if kept else
               " (initialised afresh)"))


# ----------------------------------------------------------------------- freezing and phases


class Phases:
    """Which layers train in which epoch.

    Args:
        model: The task model.
        head: Names of the head's layers.
        freeze: Train the head only (phase 1).
        unfreeze_after: Epochs of phase 1 before the whole network trains (phase 2); None:
            phase 1 throughout (with `freeze`) or phase 2 throughout (without).
        factor: Phase 2's learning-rate factor when there are two phases.
    """

    def __init__(self, model, head, freeze, unfreeze_after, factor):
        self.model, self.head = model, set(head)
        self.freeze = freeze or unfreeze_after is not None
        self.unfreeze_after = unfreeze_after
        self.factor = factor
        self.current = None

    @property
    def two_phases(self):
        return self.unfreeze_after is not None

    def phase_of(self, epoch):
        if not self.freeze:
            return 2
        return 2 if self.two_phases and epoch >= self.unfreeze_after else 1

    def set_phase(self, phase):
        """Phase 1: only the head's layers train (the others `trainable=False`, batch norm
        in inference mode). Phase 2: every layer but the backbone's batch norm (kept in
        inference mode when the run started frozen; a plain fine-tuning trains it all)."""
        import keras

        for layer in weighted_layers(self.model):
            if layer.name in self.head:
                layer.trainable = True
            elif phase == 1:
                layer.trainable = False
            else:
                frozen_statistics = self.freeze and isinstance(
                    layer, keras.layers.BatchNormalization)
                layer.trainable = not frozen_statistics
        self.current = phase

    def learning_rate_factor(self, epoch):
        return self.factor if self.two_phases and self.phase_of(epoch) == 2 else 1.0


class ScaledPlan:
    """A `LearningRatePlan` times a constant (phase 2's rate)."""

    def __init__(self, plan, factor):
        self.plan, self.factor = plan, factor

    def __call__(self, *args, **kwargs):
        return self.plan(*args, **kwargs) * self.factor

    def __getattr__(self, name):
        return getattr(self.plan, name)


# ----------------------------------------------------------------------- the run's side


class FineTuning:
    """A run's fine-tuning: the source, the data, the copied weights, the phases.

    `zoo.training.run` calls `prepare_data` on the loaded splits, `setup` once the model and
    its first optimizer exist (under the strategy's scope), `record` for the run record and
    `enter_epoch` at the start of each epoch.
    """

    def __init__(self, config, info, settings):
        self.config, self.info = config, info
        self.source = resolve_source(config.weights, info)
        epochs = settings["epochs"]
        if config.unfreeze_after is not None and config.unfreeze_after >= epochs:
            raise ValueError(
                f"Argument `unfreeze_after` must be below the run's {epochs} epochs (the "
                f"whole network trains after it). Received: unfreeze_after="
                f"{config.unfreeze_after}"
            )
        self.factor = lr_factor(config, info)
        self.phases = self.second_optimizer = self.base_plan = None

    def prepare_data(self, splits):
        return prepare_data(splits, self.source, source_channels(self.source))

    def setup(self, run, model_kwargs):
        """Copy the weights, set the first epoch's phase and, for two phases, build phase 2's
        optimizer over the whole network's variables (so that the run checkpoint holds both
        from the start). Returns the log line."""
        from zoo.training import build, precision

        pretrained = pretrained_model(self.source, self.info, model_kwargs)
        copied, head = transfer_weights(run.model, pretrained, self.source, run.splits)
        del pretrained
        self.phases = Phases(run.model, head, self.config.freeze, self.config.unfreeze_after,
                             self.factor)
        self.base_plan = run.plan
        run.checkpointed_optimizer = run.optimizer
        if self.phases.two_phases:
            self.phases.set_phase(2)
            with run.strategy.scope():
                self.second_optimizer = precision.with_loss_scaling(
                    build.make_optimizer(run.settings,
                                         run.plan.scaled_lr(run.global_batch) * self.factor),
                    run.precision)
                self.second_optimizer.build(run.model.trainable_variables)
            run.checkpointed_optimizer = [run.optimizer, self.second_optimizer]
        self.phases.set_phase(self.phases.phase_of(0))
        trainable = sum(int(w.shape.num_elements() or 0) for w in run.model.trainable_weights)
        plan = ("head only" if self.phases.freeze and not self.phases.two_phases else
                f"head only for {self.config.unfreeze_after} epoch(s), then the whole network "
                f"at the learning rate x {self.factor:g} (a fresh optimizer)"
                if self.phases.two_phases else "the whole network")
        return (f"fine-tuning from {self.source.source} ({self.source.kind}"
                + (f", sha256 {self.source.sha256[:12]}..." if self.source.sha256 else "")
                + f"): {describe_transfer(copied, head, run.model)}\ntraining: {plan}; "
                f"{trainable:,} trainable parameters in the first epoch")

    def record(self):
        """The run record's fine-tuning fields (they decide the trajectory)."""
        return {"weights": self.source.to_record(), "freeze": self.config.freeze,
                "unfreeze_after": self.config.unfreeze_after,
                "finetune_lr_factor": self.factor if self.phases.two_phases else None,
                "input_normalization": (self.source.normalization.to_json()
                                        if self.source.normalization else None)}

    def enter_epoch(self, run, epoch):
        """Switch to the phase of `epoch`; True when the phase changed (the caller rebinds its
        data stream to the new trainer)."""
        from zoo.training.trainer import DistributedTrainer

        phase = self.phases.phase_of(epoch)
        if phase == self.phases.current or not self.phases.two_phases:
            return False
        self.phases.set_phase(phase)
        old = run.trainer
        run.optimizer = self.second_optimizer
        run.plan = ScaledPlan(self.base_plan, self.factor)
        run.trainer = DistributedTrainer(
            run.model, self.second_optimizer, run.strategy, self.info.task,
            clip_norm=old.clip_norm, jit_compile=self.config.jit_compile, outputs=old.outputs,
            label_smoothing=old.label_smoothing)
        run.say(f"epoch {epoch + 1}: the whole network trains now (learning rate x "
                f"{self.factor:g}, {len(run.model.trainable_weights)} trainable weights)")
        return True
