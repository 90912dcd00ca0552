"""The run: `train()`, from a `TrainConfig` to a run directory, resumable at any point.

    runs/lenet5-digits/
      config.json      the run record (zoo.training.config), written when the run starts
      checkpoints/     the run checkpoint (zoo.training.checkpoint), every epoch (and every
                       `checkpoint_every` steps)
      history.csv      one row per epoch: training metrics, `val_*` (validation), and on the
                       last row `test_*` (the test split, evaluated once at the end)
      best.keras       the model of the epoch with the lowest validation loss
      model.keras      the final model
      history.png, logs/ (TensorBoard)

The same command again resumes from the newest checkpoint and ends with the weights of the
uninterrupted run; see `zoo.training.records` for the order of writes that keeps the files in
agreement with the checkpoint through a crash. Under `MultiWorkerMirroredStrategy` only the
chief writes these shared files; worker N keeps its checkpoints, its copy of the record and its
final model in `worker-N/`.
"""

import math
import os
import time

import keras
import tensorflow as tf

from zoo.training import build, checkpoint, finetune, precision, records
from zoo.training.caption_metrics import CaptionMetrics
from zoo.training.config import (
    DEFAULT_STEPS_PER_EXECUTION,
    TrainingDiverged,
    TrainResult,
    describe_recipe,
    differences_from_saved,
    load_record,
    resolve,
    run_record,
    save_record,
)
from zoo.training.epochs import Callbacks, train_epochs
from zoo.training.lock import RunDirectoryLock
from zoo.training.pipeline import (
    augmentation,
    evaluation_batches,
    maybe_cache,
    shuffle_buffer,
    training_batches,
    training_stream,
)
from zoo.training.replicas import synchronize_batch_norm
from zoo.training.saved_runs import check_data_record, save_data_record
from zoo.training.strategy import (
    LearningRatePlan,
    batch_size_for_epoch,
    count_workers,
    describe_strategy,
    get_strategy,
    is_chief,
    worker_dir,
)
from zoo.training.task import declared_outputs, metrics_from_sums
from zoo.training.trainer import EXPLOSION_FACTOR, SKIPPED, DistributedTrainer


def train(config=None, strategy=None, callbacks=None, **overrides):
    """Train a registry model on a registered dataset; resume if the run directory has a
    checkpoint of the same run.

    Args:
        config: A `TrainConfig` (defaults: LeNet-5 on the bundled digits, its recipe).
        strategy: A `tf.distribute.Strategy`; None builds one from `config.devices` and
            `config.cpu_replicas` with `get_strategy`.
        callbacks: `keras.callbacks.Callback`s. They get `set_model`, `on_train_begin/end`,
            `on_epoch_begin/end` (the epoch's logs: training metrics, `val_*`, `lr`, ...; keys
            a callback adds in `on_epoch_end` land in `history.csv`), and the batch hooks when
            they implement them. `model.stop_training = True` ends the run after the epoch.
        **overrides: Fields of `TrainConfig` to replace, e.g. `train(epochs=2)`.

    Returns:
        `TrainResult`: the trained model, the history, the run directory, the test metrics.

    Raises:
        ValueError: for bad options, unknown names, a model that does not fit the data, an
            unwritable run directory, a run directory holding another run or no usable
            checkpoint, or one another process is using (`zoo.training.lock`).
        TrainingDiverged: if the loss becomes NaN/inf and `terminate_on_nan` is set.
    """
    started = time.perf_counter()
    resolved = resolve(config, **overrides)
    config = resolved.config
    if strategy is None:
        strategy = get_strategy(config.devices, config.cpu_replicas)
    replicas = strategy.num_replicas_in_sync
    if config.jit_compile and config.sync_batchnorm and replicas > 1:
        # Synchronised batch norm all-reduces its statistics in the forward pass; inside the
        # XLA-compiled function that is a merge_call, which TensorFlow cannot compile.
        raise ValueError(
            f"Arguments `jit_compile` and `sync_batchnorm` (--jit-compile, --sync-batchnorm) "
            f"cannot be combined on {replicas} replicas: XLA cannot compile synchronised batch "
            "norm's all-reduce. Drop one of them (or train on one device)."
        )
    records.check_out_dir(worker_dir(resolved.run_dir, strategy))
    keras.utils.set_random_seed(config.seed)
    with precision.precision_policy(resolved.precision):
        run = _Run(resolved, strategy)
        try:
            return run.execute(callbacks, started)
        finally:
            if run.lock is not None:  # taken in `resume`, held for the whole run
                run.lock.release()


class _Run:
    """One call of `train`: the parts, the resume, the epochs, the final files."""

    def __init__(self, resolved, strategy):
        self.resolved = resolved
        self.config, self.info, self.entry = resolved.config, resolved.info, resolved.entry
        self.settings, self.sources = resolved.settings, resolved.sources
        self.run_dir, self.precision = resolved.run_dir, resolved.precision
        self.strategy = strategy
        self.chief = is_chief(strategy)
        self.own_dir = worker_dir(self.run_dir, strategy)
        self.replicas = strategy.num_replicas_in_sync
        self.steps_per_execution = (self.config.steps_per_execution
                                    or DEFAULT_STEPS_PER_EXECUTION)
        # --weights: what is copied, frozen and unfrozen (zoo.training.finetune)
        self.tuning = (finetune.FineTuning(self.config, self.info, self.settings)
                       if self.config.weights is not None else None)
        self.lock = None  # the run directory's lock (zoo.training.lock), taken in `resume`

    def say(self, *parts):
        if self.config.verbose and self.chief:
            print(*parts, flush=True)

    def path(self, name, own=False):
        return os.path.join(self.own_dir if own else self.run_dir, name)

    # ---------------------------------------------------------------------------- set-up
    def prepare(self):
        config, info, settings = self.config, self.info, self.settings
        devices = [d.name for d in tf.config.list_logical_devices()
                   if d.device_type in ("CPU", "GPU")]
        self.say(f"devices: {devices}")
        self.say(f"strategy: {describe_strategy(self.strategy)}")
        kwargs = build.loader_kwargs(info, self.entry, config)
        raw = build.load_splits(self.entry, kwargs)
        if self.tuning:  # the inputs the pretrained layers expect
            raw = self.tuning.prepare_data(raw)
        saved = None if config.restart else load_record(self.path(records.RECORD_FILE, own=True))
        counted = saved.get("num_train") if saved and raw.num_train is None else None
        splits, how = build.with_validation(raw, counted)
        self.splits, self.augment = splits, augmentation(settings["augment"], splits.extras)
        self.global_batch = settings["batch_size"] * self.replicas
        if splits.num_train < self.global_batch:
            raise ValueError(
                f"The global batch ({settings['batch_size']} per replica x {self.replicas} "
                f"replicas = {self.global_batch}) is larger than {self.entry.name!r}'s "
                f"{splits.num_train} training examples. Use a smaller --batch-size."
            )
        model_kwargs = build.model_kwargs(info, splits, config)
        self.plan = LearningRatePlan(
            base_lr=settings["lr"], reference_batch=settings["reference_batch"],
            scaling=config.lr_scaling, warmup_epochs=settings["warmup_epochs"],
            schedule=settings["schedule"], epochs=settings["epochs"],
            milestones=tuple(settings["milestones"]), decay_factor=settings["decay_factor"],
        )
        with self.strategy.scope():
            self.model = build.build_model(info, splits, model_kwargs)
            self.optimizer = precision.with_loss_scaling(
                build.make_optimizer(settings, self.plan.scaled_lr(self.global_batch)),
                self.precision)
        self.checkpointed_optimizer = self.optimizer
        tuned = self.tuning.setup(self, model_kwargs) if self.tuning else None
        synchronized = synchronize_batch_norm(self.model) if config.sync_batchnorm else 0
        outputs = declared_outputs(info, model_kwargs, self.model)
        clip = settings["clip_norm"]  # resolved by resolve_recipe (0: off -> None)
        self.trainer = DistributedTrainer(
            self.model, self.optimizer, self.strategy, info.task, clip_norm=clip,
            jit_compile=config.jit_compile, outputs=outputs,
            label_smoothing=settings["label_smoothing"],
        )
        self.record = run_record(
            model=info.name, small=config.small, model_kwargs=model_kwargs, outputs=outputs,
            dataset=self.entry.name, dataset_kwargs=kwargs, crop_border=config.crop_border,
            validation=how, num_train=splits.num_train, num_validation=splits.num_validation,
            **{**settings, "clip_norm": clip}, lr_scaling=config.lr_scaling,
            replicas=self.replicas, workers=count_workers(self.strategy),
            global_batch=self.global_batch, batch_size_ramp=config.batch_size_ramp,
            mixed_precision=self.precision or False, jit_compile=config.jit_compile,
            # Only when set: the records of runs from before the option stay comparable.
            **({"sync_batchnorm": True} if config.sync_batchnorm else {}),
            seed=config.seed, early_stopping=config.early_stopping, sources=self.sources,
            **(self.tuning.record() if self.tuning else {}),
        )
        self.say(
            f"model: {info.name} ({self.model.count_params():,} parameters, returns {outputs}), "
            f"dataset: {self.entry.name} ({splits.num_train} train / "
            f"{splits.num_validation if splits.num_validation is not None else '?'} validation"
            f" / {splits.num_test if splits.num_test is not None else '?'} test), input "
            f"{splits.model_kwargs}\nvalidation: {how}"
        )
        self.say(describe_recipe(info, settings, self.sources))
        if tuned:
            self.say(tuned)
        ramp = config.batch_size_ramp
        self.say(
            f"batch: {settings['batch_size']} per replica x {self.replicas} replica(s) = "
            f"{self.global_batch} global"
            + (f"; ramp from {batch_size_for_epoch(0, settings['batch_size'], ramp)}"
               if ramp is not None else "")
        )
        self.say(self.plan.describe(self.global_batch) + f"; optimizer {settings['optimizer']}"
                 + (f"; gradients clipped to global norm {clip}" if clip else ""))
        self.say(f"{self.steps_per_execution} step(s) per call" + (
            f"; mixed precision mixed_{self.precision}" if self.precision else "") + (
            " with a dynamic loss scale" if self.precision == "float16" else "") + (
            f"; {synchronized} batch norm layer(s) over the global batch" if synchronized else ""))

    # ---------------------------------------------------------------------------- resume
    def _clear_files(self):
        """Remove what a previous run left (a restart, or files without a checkpoint)."""
        removed = records.clear_run_files(self.own_dir, self.chief, self.config.restart)
        if removed:
            why = ("--restart" if self.config.restart else
                   "no checkpoint to resume from, so the run starts afresh")
            self.say(f"{why}: removed {', '.join(removed)} from {self.own_dir}")

    def resume(self):
        """Restore the newest checkpoint every worker holds, or start afresh; the progress."""
        config = self.config
        records.create_out_dir(self.own_dir)
        # Held until `execute` ends: one process per run directory (zoo.training.lock).
        self.lock = RunDirectoryLock(self.own_dir).acquire()
        for path in records.remove_temporaries(self.own_dir):
            self.say(f"removed {path}, left by a process that was killed while writing it")
        directory = self.path("checkpoints", own=True)
        self.checkpoint = checkpoint.RunCheckpoint(directory, self.model,
                                                   self.checkpointed_optimizer)
        for note in self.checkpoint.notes:
            self.say(note)
        if config.restart:
            self.checkpoint.clear()
        status, usable, differences = self.checkpoint.resumable(
            lambda: differences_from_saved(self.path(records.RECORD_FILE, own=True), self.record),
            count_workers(self.strategy))
        number, worst = checkpoint.agree(self.strategy, status, usable)
        where = f"The run directory {self.own_dir!r}"
        if worst == checkpoint.DIFFERENT_RUN:
            raise ValueError(
                f"{where} holds a checkpoint of a different run"
                + (f" ({'; '.join(differences)})" if differences else " (on another worker)")
                + ". Pass --restart to start it again (its checkpoints are deleted), or a new "
                "--out DIR."
            )
        if worst == checkpoint.NONE_USABLE:
            raise ValueError(
                f"{where} has checkpoints ({directory}) but none can be read (on this or "
                "another worker). Pass --restart to start the run again, or a new --out DIR."
            )
        if number is None:
            self._clear_files()
            save_record(self.path(records.RECORD_FILE, own=True), self.record)
            if self.chief:  # what prediction needs: class names, normalisation, input shape
                save_data_record(self.run_dir, self.splits)
            progress = checkpoint.initial_progress()
            # The initial state: a finite checkpoint to fall back on if the loss diverges.
            self.checkpoint.save(0, progress)
            return progress
        progress = self.checkpoint.restore(number)
        if self.chief:
            records.settle_staged_best(self.run_dir, number)
            if progress["history"]:
                records.write_history_csv(self.path(records.HISTORY_FILE), progress["history"])
            records.rewrite_tensorboard(self.path(records.LOG_DIR), progress["history"])
            for note in (records.check_best(self.run_dir, self.model, progress, config.save_best),
                         check_data_record(self.run_dir, self.splits)):
                if note:
                    self.say(note)
        if not progress["finished"] and os.path.exists(self.path(records.MODEL_FILE, own=True)):
            os.remove(self.path(records.MODEL_FILE, own=True))  # from a later, lost epoch
            self.say(f"removed {self.path(records.MODEL_FILE, own=True)}: the run is not "
                     "finished at the checkpoint resumed from")
        epochs = self.settings["epochs"]
        where = (f"after epoch {progress['epoch']}" if not progress["step"] else
                 f"at epoch {progress['epoch'] + 1}, step {progress['step']}")
        self.say(f"resuming from the checkpoint {where} in {directory}"
                 + (" (the run is complete; pass --restart to train again)"
                    if progress["finished"] or progress["epoch"] >= epochs else ""))
        return progress

    # ---------------------------------------------------------------------------- the run
    def execute(self, callbacks, started):
        self.prepare()
        progress = self.resume()
        self.model.stop_training = False
        callbacks = list(callbacks or [])
        if self.info.task == "image-captioning" and self.splits.validation is not None:
            # What captioning users watch: BLEU-4 and CIDEr-D of greedy captions on (up to
            # 500 of) the validation images, next to the validation loss in history.csv.
            callbacks.insert(0, CaptionMetrics(
                self.splits.validation,
                references=self.splits.extras.get("validation_references"),
                max_examples=500,
            ))
        if self.config.diagnostics:  # per-layer update ratios, gradient norms, dead ReLUs
            from zoo.training.tuning.diagnostics import run_diagnostics

            callbacks.append(run_diagnostics(self))
        callback_list = Callbacks(
            callbacks, self.model, epochs=self.settings["epochs"], verbose=0,
            steps=self.splits.num_train // self.global_batch,
        )
        callback_list.on_train_begin({})
        outcome = train_epochs(self, progress, callback_list)
        if outcome["diverged_at"] is not None:
            epoch, step = outcome["diverged_at"]
            value = outcome["value"]
            what = (f"exploded to {value:.3g} (over {EXPLOSION_FACTOR:g} times the first "
                    "step's loss)" if isinstance(value, float) and math.isfinite(value)
                    else f"became {value}")
            message = (
                f"The loss {what} at epoch {epoch}, step {step}. Try a "
                "smaller --lr, a longer --warmup-epochs or gradient clipping. The run directory "
                "keeps the last finite checkpoint."
            )
            self.say(f"\n{message}")
            if self.config.terminate_on_nan:
                raise TrainingDiverged(message)
            number = max(self.checkpoint.numbers())
            progress = self.checkpoint.restore(number)
            self.say(f"continuing with the last finite checkpoint (global step {number})")
        return self.finish(progress, outcome, callback_list, started)

    def finish(self, progress, outcome, callback_list, started):
        history = [dict(row) for row in progress["history"]]
        records.save_model_atomic(self.model, self.path(records.MODEL_FILE, own=True))
        test = {}
        if self.config.evaluate_test:  # off for tuning trials: they never read the test split
            test = self.trainer.evaluate(self.strategy.experimental_distribute_dataset(
                evaluation_batches(self.splits.test, self.global_batch)))
        if history:
            history[-1].update({f"test_{k}": v for k, v in test.items()})
        if self.chief and history:
            records.write_history_csv(self.path(records.HISTORY_FILE), history)
            records.TensorBoardWriter(self.path(records.LOG_DIR)).write(
                {"epoch": history[-1]["epoch"], **{f"test_{k}": v for k, v in test.items()}}
            )
            records.plot_history(self.path(records.PLOT_FILE), history)
        callback_list.on_train_end({f"test_{k}": v for k, v in test.items()})
        seconds = time.perf_counter() - started
        self.say(
            f"done in {seconds:.1f} s: {len(history)} epoch(s); test "
            + (", ".join(f"{k} {v:.4f}" for k, v in test.items()) or "not evaluated")
            + f"\nrun directory: {self.run_dir} ({records.MODEL_FILE}, {records.BEST_FILE}, "
            f"{records.HISTORY_FILE}, {records.PLOT_FILE}, {records.LOG_DIR}/, checkpoints/)"
        )
        return TrainResult(
            self.model, history, self.run_dir, test, seconds,
            stopped_early=outcome["stopped"], diverged=outcome["diverged_at"] is not None,
            diverged_at=outcome["diverged_at"],
        )

    # ---------------------------------------------------------------------------- data
    def enter_epoch(self, epoch):
        """Fine-tuning: switch to the phase `epoch` belongs to; True when the trainer changed."""
        return bool(self.tuning) and self.tuning.enter_epoch(self, epoch)

    def training_data(self):
        """The cached training and validation data and the shuffle buffer."""
        splits = self.splits
        train_data = maybe_cache(splits.train, splits.num_train)
        validation = maybe_cache(splits.validation, splits.num_validation)
        return train_data, validation, shuffle_buffer(train_data, splits.num_train)

    def epoch_feed(self, train_data, buffer, epoch, skip_steps, per_replica_batch):
        """The steps of one epoch of a batch-size ramp (a new iterator per epoch):
        `run(learning_rates, totals)` -> `CallResult`."""
        dataset = self.strategy.experimental_distribute_dataset(training_batches(
            train_data, per_replica_batch * self.replicas, self.config.seed, epoch,
            self.splits.num_train, self.augment, skip_steps, buffer))
        return self.trainer.bind_steps(iter(dataset))

    def stream_feed(self, train_data, buffer, first_epoch, skip_steps):
        """The steps with the whole run's iterator built in (fixed batch)."""
        stream = training_stream(
            train_data, self.global_batch, self.config.seed, first_epoch,
            self.settings["epochs"], self.splits.num_train, self.augment, skip_steps, buffer)
        return self.trainer.bind_steps(
            iter(self.strategy.experimental_distribute_dataset(stream)))

    def epoch_metrics(self, totals, validation_batches):
        row = metrics_from_sums(self.info.task, totals)
        if self.precision == "float16":
            row.update(skipped_steps=int(totals.get(SKIPPED, 0)),
                       loss_scale=precision.loss_scale(self.optimizer))
        row.update({f"val_{k}": v for k, v in self.trainer.evaluate(validation_batches).items()})
        return row
