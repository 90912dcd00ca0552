"""The epoch loop of a run: steps, progress, callbacks, and the end-of-epoch writes.

Steps run several to a call (`steps_per_execution`, see `zoo.training.trainer`); the host
reads the running sums once per call and updates the progress bar (and the batch hooks of
callbacks, as Keras' `fit` does) per call. The learning rate of every step comes from the plan
at the fractional epoch `epoch + step / steps_per_epoch` (the steps per epoch are known: from
the loader, or counted once, see `zoo.training.build.with_validation`), passed into the call.

A step whose loss is NaN or infinite ends its call and the loop at once, before anything is
saved: the newest checkpoint stays the last finite one. Before every checkpoint the weights
themselves are checked too.

End of an epoch, in this order (see `zoo.training.records` for why): the epoch's logs ->
`on_epoch_end` (callbacks may add entries) -> early stopping / best decision -> staged
`best.keras` -> checkpoint (the commit point) -> `best.keras` into place, `history.csv`,
TensorBoard.
"""

import sys
import time

import keras

from zoo.training import records
from zoo.training.checkpoint import EarlyStopping
from zoo.training.pipeline import evaluation_batches
from zoo.training.strategy import batch_size_for_epoch


class Callbacks:
    """Calls a list of `keras.callbacks.Callback`s with one shared logs dict.

    Keras' `CallbackList` gives each callback a copy of the logs; here every callback gets the
    epoch's row itself, so an entry one adds (e.g. `val_bleu4`) reaches the history. Batch
    hooks are called only when a callback implements them (they cost a Python call per step).
    """

    def __init__(self, callbacks, model, **params):
        self.callbacks = list(callbacks or [])
        for callback in self.callbacks:
            if not isinstance(callback, keras.callbacks.Callback):
                raise TypeError(
                    "Argument `callbacks` must be a list of keras.callbacks.Callback. "
                    f"Received: {callback!r}"
                )
            callback.set_model(model)
            callback.set_params(params)
        names = ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end")
        self.batch_hooks = any(
            getattr(type(c), n) is not getattr(keras.callbacks.Callback, n)
            for c in self.callbacks for n in names
        )

    def __getattr__(self, hook):
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args):
            for callback in self.callbacks:
                getattr(callback, hook)(*args)

        return call


def _row_text(row):
    return "  " + "  ".join(
        f"{k} {v:.4g}" if isinstance(v, (int, float)) else f"{k} {v}"
        for k, v in row.items() if k != "epoch"
    )


def call_length(step, steps, global_step, steps_per_execution, checkpoint_every=None):
    """Steps of the next call: up to `steps_per_execution`, never past the epoch's end nor past
    the next checkpoint (a checkpoint falls between calls, so a resumed run, which starts at
    one, takes the same steps as the uninterrupted run).

    Args:
        step: Steps of the epoch already taken.
        steps: Steps in the epoch.
        global_step: Steps of the run already taken.
        steps_per_execution: The most steps one call takes.
        checkpoint_every: Checkpoint every this many global steps, or None.
    """
    count = min(steps_per_execution, steps - step)
    if checkpoint_every:
        count = min(count, checkpoint_every - global_step % checkpoint_every)
    return count


def train_epochs(run, progress, callbacks):
    """Train `run` (a `zoo.training.run._Run`) from `progress` to the last epoch.

    Updates `progress` in place as checkpoints are written.

    Returns:
        dict: "diverged_at" ((epoch, step), 1-based, or None), "value" (the non-finite loss),
        "stopped" (early stopping or a callback ended the run before its last epoch).
    """
    config, settings, strategy = run.config, run.settings, run.strategy
    epochs, replicas = settings["epochs"], run.replicas
    outcome = {"diverged_at": None, "value": None, "stopped": False}
    first_epoch, skip = progress["epoch"], progress["step"]
    if progress["finished"] or first_epoch >= epochs:
        return outcome
    early = EarlyStopping(config.early_stopping)
    early.load(progress["early_stopping"])
    history = progress["history"]
    train_data, validation, buffer = run.training_data()
    validation_batches = strategy.experimental_distribute_dataset(
        evaluation_batches(validation, run.global_batch)
    )
    run.enter_epoch(first_epoch)  # fine-tuning: the phase the run resumes in
    # Without a ramp one iterator serves every epoch, built into the step's graph.
    stream = (run.stream_feed(train_data, buffer, first_epoch, skip)
              if config.batch_size_ramp is None else None)
    batch_hooks = callbacks.batch_hooks
    tensorboard = records.TensorBoardWriter(run.path(records.LOG_DIR)) if run.chief else None
    num_train = run.splits.num_train
    for epoch in range(first_epoch, epochs):
        epoch_started = time.perf_counter()
        start = skip if epoch == first_epoch else 0
        if epoch > first_epoch and run.enter_epoch(epoch) and stream is not None:
            stream = run.stream_feed(train_data, buffer, epoch, 0)  # the new phase's trainer
        per_replica = batch_size_for_epoch(epoch, settings["batch_size"], config.batch_size_ramp)
        batch = per_replica * replicas
        steps = num_train // batch
        step_fn = stream or run.epoch_feed(train_data, buffer, epoch, start, per_replica)
        run.say(f"epoch {epoch + 1}/{epochs}" + (
            f" (batch {per_replica} x {replicas} = {batch})"
            if config.batch_size_ramp is not None else ""))
        callbacks.on_epoch_begin(epoch, {})
        # A live bar on a terminal or in a notebook; in a log file (CI, a batch job) it would
        # repeat itself once per update, and the per-epoch summary line says the same.
        live = sys.stdout.isatty() or "ipykernel" in sys.modules
        progbar = keras.utils.Progbar(
            steps, verbose=1 if (config.verbose > 1 and run.chief and live) else 0,
            stateful_metrics=["loss", "lr"],
        )
        totals = dict(progress["totals"]) if epoch == first_epoch else {}
        lr = run.plan(epoch + start / steps, batch)
        step = start
        while step < steps:
            count = call_length(step, steps, progress["global_step"], run.steps_per_execution,
                                config.checkpoint_every)
            if batch_hooks:
                callbacks.on_train_batch_begin(step, {})
            # Every step's own rate, as one tensor: the plan is exact per step.
            rates = [run.plan(epoch + (step + i) / steps, batch) for i in range(count)]
            result = step_fn(rates, totals)
            if result.diverged:
                outcome.update(diverged_at=(epoch + 1, step + result.steps), value=result.value)
                return outcome
            before, totals = totals, result.totals
            step += count
            progress["global_step"] += count
            lr = rates[-1]
            progbar.update(step, [("loss", totals["loss"] / max(totals["count"], 1e-12)),
                                  ("lr", lr)])
            if batch_hooks:  # once per call, with the call's mean loss (as Keras' fit does)
                added = totals["count"] - before.get("count", 0.0)
                callbacks.on_train_batch_end(step - 1, {
                    "loss": (totals["loss"] - before.get("loss", 0.0)) / max(added, 1e-12)})
            every = config.checkpoint_every
            if every and progress["global_step"] % every == 0 and step < steps:
                if not run.trainer.weights_finite():
                    outcome.update(diverged_at=(epoch + 1, step), value="a non-finite weight")
                    return outcome
                progress.update(epoch=epoch, step=step, totals=totals)
                run.checkpoint.save(progress["global_step"], progress)

        row = {"epoch": epoch + 1, **run.epoch_metrics(totals, validation_batches),
               "lr": lr, "global_batch": batch}
        # Keras' logs carry no "epoch" (CSVLogger writes its own column): the callbacks get the
        # row without it, and what they add lands in the history.
        logs = {k: v for k, v in row.items() if k != "epoch"}
        callbacks.on_epoch_end(epoch, logs)
        row.update(logs)
        row = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}  # JSON-able
        row["seconds"] = round(time.perf_counter() - epoch_started, 3)
        if not run.trainer.weights_finite():
            outcome.update(diverged_at=(epoch + 1, steps), value="a non-finite weight")
            return outcome
        improved, stop = early.update(row["val_loss"])
        stopped_by_callback = bool(getattr(run.model, "stop_training", False))
        history.append(row)
        progress.update(
            epoch=epoch + 1, step=0, totals={}, history=history,
            early_stopping=early.state(),
            best_epoch=epoch + 1 if improved else progress["best_epoch"],
            finished=stop or stopped_by_callback or epoch + 1 == epochs,
        )
        number = progress["global_step"]
        if run.chief and config.save_best and improved:
            records.stage_best(run.model, run.run_dir, number)
        run.checkpoint.save(number, progress)
        if run.chief:
            records.settle_staged_best(run.run_dir, number)
            records.write_history_csv(run.path(records.HISTORY_FILE), history)
            tensorboard.write(row)
        run.say(_row_text(row))
        if stop or stopped_by_callback:
            run.say(f"early stopping: no improvement of the validation loss for "
                    f"{config.early_stopping} epoch(s)" if stop else
                    "stopping: a callback set model.stop_training")
            outcome["stopped"] = epoch + 1 < epochs
            break
    return outcome
