"""Random search over a recipe (`zoo tune`), with KerasTuner's `RandomSearch` oracle.

Bergstra & Bengio 2012, "Random Search for Hyper-Parameter Optimization" (JMLR 13): with a few
important settings among many, random trials cover each one's range far better than a grid of
the same size. The notes' procedure: sample the learning rate on a log scale, score every
trial on one validation split, never on test.

Each trial is a zoo run (`train()`, its own run directory `trials/trial_ID/`) with the test
split never evaluated (`evaluate_test=False`), scored by its lowest validation loss (the epoch
`best.keras` keeps). KerasTuner keeps the search's state in `keras_tuner/`: a killed search
rerun with the same command keeps its finished trials and hands the interrupted one back with
the same settings, whose run then resumes from its own checkpoint exactly. The seed fixes the
trials: the same seed, the same settings in the same order. The best trial's settings are
written as a recipe file (`best_recipe.json`) for `zoo train --recipe FILE`.
"""

import dataclasses
import json
import math
import os

from zoo import registry
from zoo.training.config import TrainConfig, load_record, record_differences, save_record
from zoo.training.tuning.recipe_file import write_recipe_file
from zoo.validation import check_int, did_you_mean

RECIPE_FILE = "best_recipe.json"
SEARCH_RECORD = "search.json"
# The ranges per model family. "lr" is log-uniform over multiples of the recipe's rate (the
# recipes differ by optimizer: SGD 0.1, Adam 1e-3); "weight_decay" is decoupled (w -= lr * wd
# * w each step); tuples of two numbers are uniform ranges, lists are choices.
SPACES = {
    "cnn": {"lr": ("log_factor", 0.1, 10.0), "weight_decay": (0.0, 5e-4),
            "batch_size": [16, 32, 64], "warmup_epochs": (0.0, 2.0),
            "label_smoothing": (0.0, 0.2)},
    "rnn": {"lr": ("log_factor", 0.1, 10.0), "weight_decay": (0.0, 1e-4),
            "batch_size": [16, 32, 64], "warmup_epochs": (0.0, 1.0),
            "label_smoothing": (0.0, 0.1)},
    "captioning": {"lr": ("log_factor", 0.2, 5.0), "weight_decay": (0.0, 1e-4),
                   "batch_size": [16, 32, 64], "warmup_epochs": (0.0, 1.0),
                   "label_smoothing": (0.0, 0.1)},
}
TUNABLE = ("lr", "weight_decay", "batch_size", "warmup_epochs", "label_smoothing")


@dataclasses.dataclass
class SearchResult:
    """What `random_search` returns.

    Attributes:
        trials: One dict per trial, in order: "trial", "settings", "val_loss", and the other
            validation metrics of its best epoch, "run_dir".
        best: The best trial's dict.
        recipe_file: The path of the best trial's recipe file.
    """

    trials: list
    best: dict
    recipe_file: str


def search_space(info, overrides=None, epochs=None):
    """The resolved ranges for a model: its family's, the recipe's lr, then `overrides`. The
    family's warm-up range is capped at half the epochs (`epochs`, else the recipe's).

    Returns:
        {field: ("log", low, high) | ("uniform", low, high) | ("choice", [values])}.
    """
    space = {}
    family = SPACES.get(info.family, SPACES["cnn"])
    for name, spec in {**family, **(overrides or {})}.items():
        if name not in TUNABLE:
            raise ValueError(f"Cannot search over {name!r}.{did_you_mean(name, TUNABLE)} "
                             f"Searchable: {', '.join(TUNABLE)}. Received: space={overrides!r}")
        space[name] = _resolve(name, spec, info.recipe.lr)
    warmup = space.get("warmup_epochs")
    half = (epochs or info.recipe.epochs) / 2
    if warmup and warmup[0] == "uniform" and "warmup_epochs" not in (overrides or {}):
        space["warmup_epochs"] = ("uniform", warmup[1], min(warmup[2], half))
    return space


def _resolve(name, spec, recipe_lr):
    if isinstance(spec, list):
        if not spec:
            raise ValueError(f"The choices for {name!r} are empty. Received: {name}={spec!r}")
        return ("choice", list(spec))
    if isinstance(spec, tuple) and len(spec) == 3 and spec[0] == "log_factor":
        return ("log", _rounded(recipe_lr * spec[1]), _rounded(recipe_lr * spec[2]))
    if isinstance(spec, tuple) and len(spec) == 3 and spec[0] in ("log", "uniform"):
        kind, low, high = spec
    elif isinstance(spec, tuple) and len(spec) == 2:
        kind, (low, high) = ("log" if name == "lr" else "uniform"), spec
    else:
        raise ValueError(f"A range for {name!r} is (low, high), ('log', low, high) or a list "
                         f"of choices. Received: {name}={spec!r}")
    if not (math.isfinite(low) and math.isfinite(high) and 0 <= low < high) or (
            kind == "log" and low <= 0):
        raise ValueError(f"The range for {name!r} must have 0 <= low < high (low > 0 on a log "
                         f"scale). Received: {name}={spec!r}")
    return (kind, float(low), float(high))


def _keras_tuner():
    try:
        import keras_tuner
    except ImportError:
        raise ValueError("zoo tune needs KerasTuner: pip install 'zoo[tune]' (or keras-tuner).") \
            from None
    return keras_tuner


def _hyperparameters(space):
    keras_tuner = _keras_tuner()

    hp = keras_tuner.HyperParameters()
    for name, (kind, *bounds) in space.items():
        if kind == "choice":
            hp.Choice(name, bounds[0])
        else:
            hp.Float(name, bounds[0], bounds[1], sampling="log" if kind == "log" else "linear")
    return hp


def _rounded(value):
    """Three significant digits: what a recipe file shows (and the trial then uses)."""
    return float(f"{value:.3g}") if isinstance(value, float) else value


def _tuner_class():
    keras_tuner = _keras_tuner()

    from zoo.training.config import TrainingDiverged
    from zoo.training.run import train

    class ZooTuner(keras_tuner.RandomSearch):
        """RandomSearch whose trials are zoo runs: `run_trial` calls `train()`."""

        def __init__(self, base_config, trials_dir, strategy=None, **kwargs):
            super().__init__(**kwargs)
            self.base_config, self.trials_dir, self.strategy = base_config, trials_dir, strategy

        def run_trial(self, trial, *args, **kwargs):
            settings = {k: _rounded(v) for k, v in trial.hyperparameters.values.items()}
            config = dataclasses.replace(
                self.base_config, **settings, evaluate_test=False, terminate_on_nan=False,
                out=os.path.join(self.trials_dir, f"trial_{trial.trial_id}"))
            print(f"trial {trial.trial_id}: " + ", ".join(f"{k} {v:g}" for k, v in
                                                      settings.items()), flush=True)
            try:
                result = train(config, strategy=self.strategy)
            except (ValueError, TypeError, TrainingDiverged) as error:
                raise keras_tuner.errors.FatalValueError(str(error)) from error
            rows = [row for row in result.history if math.isfinite(row.get("val_loss", math.nan))]
            if not rows:  # diverged in its first epoch: the worst score, not an error
                return {"val_loss": float("inf")}
            best = min(rows, key=lambda row: row["val_loss"])
            return {k: v for k, v in best.items() if k.startswith("val_")}

    return ZooTuner


def random_search(config=None, trials=10, space=None, out=None, strategy=None, restart=False,
                  **overrides):
    """Random search over the recipe of `config`'s model on its dataset's validation split.

    Args:
        config: The `TrainConfig` every trial starts from (model, dataset, epochs, seed...);
            `**overrides` replace its fields. Its `seed` seeds both the sampling of the trials
            and each trial's run.
        trials: Number of trials.
        space: Ranges replacing the family's (see `SPACES`): {"lr": (1e-4, 1e-1), ...}.
        out: The search directory (default `runs/tune-MODEL-DATASET`).
        strategy: A `tf.distribute.Strategy` for the trials.
        restart: Delete an earlier search in `out` and start again.

    Returns:
        `SearchResult`.
    """
    import shutil

    from zoo.training import build

    check_int("trials", trials)
    _keras_tuner()  # before anything is written: a missing extra is one clear line
    config = dataclasses.replace(config or TrainConfig(), **overrides)
    info, entry = build.resolve_names(config.model, config.dataset)
    config = dataclasses.replace(config, model=info.name, dataset=entry.name, restart=False)
    resolved = search_space(registry.model_info(info.name), space, config.epochs)
    out = os.path.abspath(out or os.path.join("runs", f"tune-{info.name}-{entry.name}"))
    if restart:
        shutil.rmtree(out, ignore_errors=True)
    _check_same_search(out, config, resolved, trials)
    tuner = _tuner_class()(
        config, os.path.join(out, "trials"), strategy, hyperparameters=_hyperparameters(resolved),
        tune_new_entries=False, objective="val_loss", max_trials=trials, seed=config.seed,
        directory=out, project_name="keras_tuner", overwrite=False, max_consecutive_failed_trials=1,
    )
    try:
        tuner.search(verbose=0)  # each trial prints its own line
    except Exception as error:  # KerasTuner re-raises a trial's error wrapped; one line
        cause = error.__cause__ or error
        raise ValueError(f"zoo tune: a trial failed: {str(cause).strip().splitlines()[-1]}") \
            from error
    return _summarise(tuner, out, config, resolved)


def _check_same_search(out, config, space, trials):
    record = json.loads(json.dumps({
        "config": {k: v for k, v in dataclasses.asdict(config).items() if k != "verbose"},
        "space": space, "trials": trials}, default=repr))
    path = os.path.join(out, SEARCH_RECORD)
    saved = load_record(path)
    if saved is not None:
        differences = record_differences(saved, record)
        if differences:
            raise ValueError(
                f"The search directory {out!r} holds another search ({'; '.join(differences)}). "
                "Pass --restart to start it again, or a new --out DIR.")
    else:
        os.makedirs(out, exist_ok=True)
        save_record(path, record)


def _summarise(tuner, out, config, space):
    import keras_tuner

    done = keras_tuner.engine.trial.TrialStatus.COMPLETED
    trials = []
    for trial_id, trial in sorted(tuner.oracle.trials.items(), key=lambda item: int(item[0])):
        if trial.status != done:
            continue
        metrics = {name: float(trial.metrics.get_best_value(name))
                   for name in trial.metrics.metrics}
        trials.append({"trial": trial_id, "settings": {
            k: _rounded(v) for k, v in trial.hyperparameters.values.items()},
            **metrics, "run_dir": os.path.join(out, "trials", f"trial_{trial_id}")})
    if not trials:
        raise ValueError(f"zoo tune: no trial of {out!r} finished.")
    best = min(trials, key=lambda t: t["val_loss"])
    base = {k: getattr(config, k) for k in ("epochs", "optimizer") if getattr(config, k)}
    path = write_recipe_file(
        os.path.join(out, RECIPE_FILE), {**base, **best["settings"]}, model=config.model,
        dataset=config.dataset, trial=best["trial"],
        validation={k: v for k, v in best.items() if k.startswith("val_")},
        search={"trials": len(trials), "seed": config.seed,
                "space": {k: list(v) for k, v in space.items()}},
        note="chosen by random search on the validation split (the test split was not read)")
    for trial in trials:
        shown = ", ".join(f"{k} {v:g}" for k, v in trial["settings"].items())
        print(f"trial {trial['trial']}: val_loss {trial['val_loss']:.4f}"
              + (f", val_accuracy {trial['val_accuracy']:.4f}" if "val_accuracy" in trial else "")
              + f"  ({shown})")
    print(f"best: trial {best['trial']} (val_loss {best['val_loss']:.4f}); its recipe: {path}\n"
          f"train it: zoo train --recipe {path}")
    return SearchResult(trials, best, path)
