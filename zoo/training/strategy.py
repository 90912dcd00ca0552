"""Devices, the distribution strategy, and how batch size and learning rate scale with them.

* `get_strategy`: MultiWorkerMirroredStrategy when `TF_CONFIG` is set; MirroredStrategy over
  all GPUs; on a CPU-only machine one device, or N logical CPU replicas when asked.
* `LearningRatePlan`: the linear (or square-root) scaling rule with gradual warm-up of Goyal et
  al. (2017), "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour"
  (https://arxiv.org/abs/1706.02677), followed by a step, cosine or constant schedule.
* `batch_size_for_epoch`: a batch-size ramp that doubles each epoch up to the target, in the
  spirit of Smith et al. (2018), "Don't Decay the Learning Rate, Increase the Batch Size"
  (https://arxiv.org/abs/1711.00489).
* `is_chief`, `worker_dir`: which worker of a multi-worker run writes the run directory.
"""

import dataclasses
import json
import math
import os

import tensorflow as tf

from zoo.validation import (
    LR_SCALING_RULES,
    check_choice,
    check_int,
    check_learning_rate_plan,
)

# The step schedule's defaults: the learning rate is multiplied by STEP_DECAY at these
# fractions of training (after warm-up).
STEP_MILESTONES = (0.5, 0.75)
STEP_DECAY = 0.1


def configure_cpu_replicas(count):
    """Split the (first) physical CPU into `count` logical devices.

    Must run before TensorFlow initialises its runtime (before any op or device query that
    creates a context); the `zoo` command does it first thing.

    Args:
        count: Number of logical CPU devices, >= 1.

    Raises:
        ValueError: if `count` is not a positive int, or TensorFlow is already initialised with
            a different number of logical CPUs.
    """
    check_int("cpu_replicas", count)
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError as error:
        existing = len(tf.config.list_logical_devices("CPU"))
        if existing != count:
            raise ValueError(
                f"Cannot split the CPU into {count} logical devices: TensorFlow is already "
                f"initialised with {existing}. Call configure_cpu_replicas({count}) (or pass "
                f"cpu_replicas) before TensorFlow runs anything. Received: cpu_replicas={count}"
            ) from error


def _device_type(name):
    return tf.DeviceSpec.from_string(name).device_type


def get_strategy(devices="auto", cpu_replicas=None):
    """The `tf.distribute.Strategy` for the devices asked for.

    Args:
        devices: "auto" (every GPU, else the CPU), an int N (the first N GPUs, or the first N
            logical CPUs on a CPU-only machine), or a list of device names such as
            `["/gpu:0", "/gpu:1"]`. Ignored under `TF_CONFIG` (multi-worker).
        cpu_replicas: On a machine without GPUs, split the CPU into this many logical devices
            and mirror over them (to try multi-device training on a laptop).

    Returns:
        `MultiWorkerMirroredStrategy` if the `TF_CONFIG` environment variable describes a
        cluster; otherwise `MirroredStrategy` over several devices, or `OneDeviceStrategy`.

    Raises:
        ValueError: for more devices than exist, an unknown device name, or a bad argument.
    """
    if os.environ.get("TF_CONFIG"):
        try:
            json.loads(os.environ["TF_CONFIG"])
        except json.JSONDecodeError as error:
            raise ValueError(f"TF_CONFIG is not valid JSON: {os.environ['TF_CONFIG']!r}") from error
        if cpu_replicas:
            configure_cpu_replicas(cpu_replicas)
        return tf.distribute.MultiWorkerMirroredStrategy()

    gpus = tf.config.list_physical_devices("GPU")
    if cpu_replicas is not None and cpu_replicas > 1 and not gpus:
        configure_cpu_replicas(cpu_replicas)
    elif cpu_replicas is not None:
        check_int("cpu_replicas", cpu_replicas)
    logical_gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    logical_cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    if cpu_replicas and cpu_replicas > 1 and not gpus:
        available = logical_cpus[:cpu_replicas]
    else:
        available = logical_gpus or logical_cpus[:1]

    if devices == "auto" or devices is None:
        names = available
    elif isinstance(devices, int) and not isinstance(devices, bool):
        pool = logical_gpus or logical_cpus
        if devices < 1 or devices > len(pool):
            kind = "GPU" if logical_gpus else "CPU"
            raise ValueError(
                f"Argument `devices` asks for {devices} devices but this machine has "
                f"{len(pool)} {kind} device(s): {pool}. Use a number from 1 to {len(pool)}"
                + ("" if logical_gpus else ", or --cpu-replicas N to split the CPU")
                + f". Received: devices={devices}"
            )
        names = pool[:devices]
    elif isinstance(devices, (list, tuple)) and devices:
        known = {tf.DeviceSpec.from_string(d).to_string(): d for d in logical_gpus + logical_cpus}
        names = []
        for device in devices:
            spec = tf.DeviceSpec.from_string(device if "/" in device else f"/{device}")
            matches = [
                name
                for name in logical_gpus + logical_cpus
                if _device_type(name) == (spec.device_type or "").upper()
                and tf.DeviceSpec.from_string(name).device_index == spec.device_index
            ]
            if not matches:
                raise ValueError(
                    f"Unknown device {device!r}. Available devices: {sorted(known.values())}. "
                    f"Received: devices={devices!r}"
                )
            names.append(matches[0])
    else:
        raise ValueError(
            "Argument `devices` must be 'auto', a positive int or a non-empty list of device "
            f"names. Received: devices={devices!r}"
        )
    if len(names) == 1:
        return tf.distribute.OneDeviceStrategy(names[0])
    if all(_device_type(name) == "CPU" for name in names):
        # MirroredStrategy's default (collective ops) numbers its collectives from the same
        # keys in every instance, so two CPU strategies in one process (tests, notebooks) clash
        # ("Shape mismatch in the collective instance 100"); reducing on one device does not.
        return tf.distribute.MirroredStrategy(
            names, cross_device_ops=tf.distribute.ReductionToOneDevice(reduce_to_device=names[0])
        )
    return tf.distribute.MirroredStrategy(names)


def count_workers(strategy):
    """Number of workers (machines or processes) taking part: 1 outside multi-worker."""
    if not is_multi_worker(strategy):
        return 1
    jobs = strategy.cluster_resolver.cluster_spec().as_dict()
    return (len(jobs.get("worker", [])) + len(jobs.get("chief", []))) or 1


def describe_strategy(strategy):
    """One line: the strategy's class, its replicas and workers, and the devices."""
    extended = strategy.extended
    devices = getattr(extended, "worker_devices", None) or getattr(
        extended, "_device", "default"
    )
    if isinstance(devices, str):
        devices = [devices]
    workers = count_workers(strategy)
    name = type(strategy).__name__
    if is_multi_worker(strategy):
        name = "MultiWorkerMirroredStrategy"  # its class is CollectiveAllReduceStrategy
    return (
        f"{name}: {strategy.num_replicas_in_sync} replica(s) on "
        f"{workers} worker(s); devices {list(devices)}"
    )


def is_multi_worker(strategy):
    """True under `MultiWorkerMirroredStrategy` (a cluster described by `TF_CONFIG`)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy):
    """True on the worker that writes the run directory (always, outside multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not is_multi_worker(strategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type in (None, "chief") or (
        task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().jobs
    )


def worker_dir(run_dir, strategy):
    """Where this worker keeps its own files: the run directory for the chief, `worker-N/` for
    the others (their checkpoints, their copy of the run record and their final model)."""
    if is_chief(strategy):
        return run_dir
    return os.path.join(run_dir, f"worker-{strategy.cluster_resolver.task_id}")


def batch_size_for_epoch(epoch, target, ramp_start=None):
    """Per-replica batch size of an epoch under the batch-size ramp.

    Starts at `ramp_start` and doubles every epoch until it reaches `target`.

    Args:
        epoch: 0-based epoch.
        target: The final per-replica batch size (`--batch-size`).
        ramp_start: First epoch's per-replica batch size; None means no ramp (always `target`),
            0 means `max(1, target // 8)`.

    Returns:
        The per-replica batch size, an int in [1, target].
    """
    if ramp_start is None:
        return target
    start = max(1, target // 8) if ramp_start == 0 else min(ramp_start, target)
    return int(min(target, start * 2**epoch))


@dataclasses.dataclass(frozen=True)
class LearningRatePlan:
    """The learning rate at any point of training.

    With `k = global_batch / reference_batch`, the target rate is `base_lr * k` (linear rule),
    `base_lr * sqrt(k)` (sqrt) or `base_lr` (none). Gradual warm-up (Goyal et al. 2017, section
    2.2) moves linearly from `base_lr` to the target over `warmup_epochs`, per step, when the
    target is at least ten times `base_lr`; otherwise (small `k`, or `k <= 1`, where Goyal's start
    would be above the target or barely below it) it starts from a tenth of the target, so the
    rate always rises, monotonically, at least tenfold, and never runs backwards. After warm-up,
    the schedule is applied over the remaining epochs: constant; step (times `decay_factor` at
    each of the `milestones`, fractions of the post-warm-up epochs); or cosine (to 0; Loshchilov
    & Hutter 2017).

    Call it with a fractional epoch (`epoch + step / steps_per_epoch`): the rate changes every
    step, not once per epoch.

    Attributes:
        base_lr: Learning rate for a global batch of `reference_batch` examples.
        reference_batch: The global batch `base_lr` is stated for (a model's recipe says which).
        scaling: One of `LR_SCALING_RULES`.
        warmup_epochs: Length of the warm-up, may be fractional.
        schedule: One of `SCHEDULES`.
        epochs: Total number of epochs.
        milestones: Step schedule: fractions of training (in (0, 1)) where the rate drops.
        decay_factor: Step schedule: the multiplier at each milestone, in (0, 1].
    """

    base_lr: float
    reference_batch: int
    scaling: str = "linear"
    warmup_epochs: float = 0.0
    schedule: str = "constant"
    epochs: int = 1
    milestones: tuple = STEP_MILESTONES
    decay_factor: float = STEP_DECAY

    def __post_init__(self):
        check_choice("lr_scaling", self.scaling, LR_SCALING_RULES)
        check_learning_rate_plan(self.base_lr, self.reference_batch, self.epochs,
                                 self.schedule, self.warmup_epochs, self.milestones,
                                 self.decay_factor)

    def scale_factor(self, global_batch):
        """The multiplier the scaling rule gives for a global batch."""
        k = global_batch / self.reference_batch
        return {"linear": k, "sqrt": math.sqrt(k), "none": 1.0}[self.scaling]

    def scaled_lr(self, global_batch):
        """The peak learning rate for a global batch (after warm-up, before the schedule)."""
        return self.base_lr * self.scale_factor(global_batch)

    def __call__(self, epoch, global_batch):
        """Learning rate at fractional epoch `epoch` (e.g. 2.5 = half-way through the third)."""
        peak = self.scaled_lr(global_batch)
        if epoch < self.warmup_epochs:
            # min(): Goyal's start for k >= 10, a tenth of the target below (the same at k = 10).
            start = min(self.base_lr, peak / 10)
            return start + (peak - start) * epoch / self.warmup_epochs
        remaining = max(self.epochs - self.warmup_epochs, 1e-12)
        progress = min(max((epoch - self.warmup_epochs) / remaining, 0.0), 1.0)
        if self.schedule == "constant":
            return peak
        if self.schedule == "step":
            return peak * self.decay_factor ** sum(progress >= m for m in self.milestones)
        return peak * 0.5 * (1.0 + math.cos(math.pi * progress))

    def describe(self, global_batch):
        """What the CLI prints: the rule, the factor and the resulting learning rate."""
        factor = self.scale_factor(global_batch)
        text = (
            f"learning rate {self.base_lr:g} x {factor:.4g} ({self.scaling} scaling, global batch "
            f"{global_batch} / reference {self.reference_batch}) = {self.scaled_lr(global_batch):.4g}"
        )
        if self.warmup_epochs:
            text += f"; {self.warmup_epochs:g} warm-up epoch(s)"
        schedule = self.schedule
        if schedule == "step":
            schedule += (f" (x{self.decay_factor:g} at "
                         + ", ".join(f"{m:g}" for m in self.milestones) + " of training)")
        return text + f"; {schedule} schedule over {self.epochs} epoch(s)"
