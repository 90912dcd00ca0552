"""What the tuning tools share: a run's parts built as `train()` builds them, without a run
directory, and the model's state saved and put back."""

import os

import keras
import numpy as np

from zoo.training import precision
from zoo.training.config import resolve
from zoo.training.strategy import get_strategy


def prepared_run(config=None, strategy=None, **overrides):
    """The `zoo.training.run._Run` that `train(config, **overrides)` would build: data loaded
    and split, model, optimizer and trainer under the strategy (nothing written to disk).

    Returns:
        `(run, policy)`: the prepared run and the mixed-precision policy context it was built
        under (enter it again around anything that calls the model).
    """
    from zoo.training.run import _Run  # the engine's own run: the same data, model and steps

    resolved = resolve(config, **overrides)
    if strategy is None:
        strategy = get_strategy(resolved.config.devices, resolved.config.cpu_replicas)
    keras.utils.set_random_seed(resolved.config.seed)
    policy = resolved.precision
    with precision.precision_policy(policy):
        run = _Run(resolved, strategy)
        run.prepare()
    return run, policy


def save_state(model, optimizer):
    """Copies of every variable of the model and the optimizer (weights, slots, step count,
    random-generator states)."""
    return [np.array(v.numpy()) for v in [*model.variables, *optimizer.variables]]


def restore_state(model, optimizer, state):
    for variable, value in zip([*model.variables, *optimizer.variables], state):
        variable.assign(value)


def save_figure(figure, path):
    """Save a matplotlib `Figure` as PNG under a temporary name, then rename it into place."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    temporary = f"{path}.{os.getpid()}.tmp.png"
    figure.savefig(temporary, dpi=100)
    os.replace(temporary, path)
    return path
