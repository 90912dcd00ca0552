"""The training engine: `train()` a registry model on a registered dataset, under any
`tf.distribute` strategy, resumable bit for bit.

One job per module, in the manner of TF Model Garden's `base_task` / `base_trainer` /
`train_lib`:

    config      TrainConfig, the model's recipe resolved, the run record (config.json)
    task        what a model returns; loss and metrics per registry task
    trainer     DistributedTrainer: the train and evaluation steps, several steps per call
    replicas    per-replica dropout seeds, synchronised batch norm, gradients reduced once
    precision   mixed precision policies, float16 loss scaling
    pipeline    tf.data: validation hold-out, caching, shuffling, epochs, mid-epoch resume
    checkpoint  the run checkpoint (weights, optimizer, random states, progress)
    records     atomic writes, history.csv, plot, TensorBoard
    build       names, data, model and optimizer of a run
    run         train(): run directory, resume, finish; epochs: the epoch loop, callbacks
    evaluate    evaluate_saved_model (zoo evaluate)
    strategy    devices, strategy, learning-rate scaling, batch-size ramp
    tuning      range test, diagnostics, overfit check, random search, recipe files
"""

from zoo.training.checkpoint import EarlyStopping, RunCheckpoint
from zoo.training.config import TrainConfig, TrainingDiverged, TrainResult
from zoo.training.evaluate import evaluate_saved_model
from zoo.training.run import train
from zoo.training.strategy import (
    LearningRatePlan,
    batch_size_for_epoch,
    configure_cpu_replicas,
    describe_strategy,
    get_strategy,
)
from zoo.training.task import batch_statistics
from zoo.training.trainer import DistributedTrainer
from zoo.training.tuning import find_learning_rate, overfit_batch, random_search

__all__ = [
    "DistributedTrainer",
    "EarlyStopping",
    "LearningRatePlan",
    "RunCheckpoint",
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "batch_size_for_epoch",
    "batch_statistics",
    "configure_cpu_replicas",
    "describe_strategy",
    "evaluate_saved_model",
    "get_strategy",
    "find_learning_rate",
    "overfit_batch",
    "random_search",
    "train",
]
