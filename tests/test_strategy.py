"""Strategy selection, the learning-rate scaling rules with warm-up, and the batch-size ramp."""

import math

import numpy as np
import pytest
import tensorflow as tf

from zoo.training.strategy import (
    LearningRatePlan,
    batch_size_for_epoch,
    configure_cpu_replicas,
    describe_strategy,
    get_strategy,
)


@pytest.mark.parametrize(
    "scaling, factor", [("linear", 8.0), ("sqrt", math.sqrt(8.0)), ("none", 1.0)]
)
def test_scaling_rules(scaling, factor):
    plan = LearningRatePlan(0.1, reference_batch=32, scaling=scaling, epochs=10)
    assert plan.scaled_lr(256) == pytest.approx(0.1 * factor)
    assert plan(5.0, 256) == pytest.approx(0.1 * factor)  # constant schedule, no warm-up
    assert f"{scaling} scaling" in plan.describe(256)


def test_gradual_warmup_goes_linearly_from_the_base_to_the_scaled_rate():
    # Goyal et al. 2017, section 2.2: start at eta, reach k * eta after the warm-up epochs.
    plan = LearningRatePlan(0.1, reference_batch=256, warmup_epochs=5, epochs=90)
    k = 8192 / 256
    assert plan(0.0, 8192) == pytest.approx(0.1)
    assert plan(2.5, 8192) == pytest.approx(0.1 + (k * 0.1 - 0.1) / 2)
    assert plan(5.0, 8192) == pytest.approx(k * 0.1)
    assert plan(4.999, 8192) < plan(5.0, 8192)
    # With nothing to scale (k = 1) the warm-up starts from a tenth of the rate instead.
    single = LearningRatePlan(0.1, reference_batch=256, warmup_epochs=2, epochs=10)
    assert single(0.0, 256) == pytest.approx(0.01)
    assert single(1.0, 256) == pytest.approx(0.055)


@pytest.mark.parametrize("ratio", [1 / 32, 1 / 16, 1 / 8, 1 / 2, 1, 8])
@pytest.mark.parametrize("scaling", ["linear", "sqrt"])
def test_warmup_rises_monotonically_to_the_scaled_target(ratio, scaling):
    # ResNet's recipe (0.1 per 256 images): at ratio 1/16 the old start (base_lr / 10 = 0.01)
    # sat above the target 0.00625 and the warm-up ran backwards.
    reference, warmup, steps = 256, 2.0, 200
    plan = LearningRatePlan(0.1, reference_batch=reference, scaling=scaling,
                            warmup_epochs=warmup, epochs=10)
    global_batch = int(reference * ratio)
    target = 0.1 * (ratio if scaling == "linear" else math.sqrt(ratio))
    rates = np.array([plan(warmup * s / steps, global_batch) for s in range(steps + 1)])
    assert rates[-1] == pytest.approx(target)  # the end of warm-up is the scaled target
    assert np.all(np.diff(rates) > 0), rates  # strictly rising, every step
    assert rates[0] <= target / 8 + 1e-12  # a real ramp, not a no-op (Goyal's start at k=8)
    # Linear in the step count (Goyal et al. 2017, section 2.2): constant increments.
    np.testing.assert_allclose(np.diff(rates), np.diff(rates)[0], rtol=1e-9)


def test_schedules_after_warmup():
    step = LearningRatePlan(1.0, 1, warmup_epochs=2, schedule="step", epochs=10)
    # Milestones at 50% and 75% of the 8 post-warm-up epochs: epochs 6 and 8.
    assert [step(e, 1) for e in (2, 5.9, 6, 7.9, 8, 9.9)] == pytest.approx(
        [1.0, 1.0, 0.1, 0.1, 0.01, 0.01]
    )
    cosine = LearningRatePlan(1.0, 1, schedule="cosine", epochs=4)
    assert cosine(0, 1) == pytest.approx(1.0)
    assert cosine(1, 1) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert cosine(2, 1) == pytest.approx(0.5)
    assert cosine(4, 1) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"scaling": "cubic"}, "lr_scaling"),
        ({"schedule": "exponential"}, "schedule"),
        ({"base_lr": 0.0}, "lr"),
        ({"warmup_epochs": -1}, "warmup_epochs"),
    ],
)
def test_plan_rejects_bad_arguments(kwargs, message):
    arguments = {"base_lr": 0.1, "reference_batch": 32, **kwargs}
    with pytest.raises(ValueError, match=message):
        LearningRatePlan(**arguments)


def test_batch_size_ramp():
    assert [batch_size_for_epoch(e, 64, 8) for e in range(6)] == [8, 16, 32, 64, 64, 64]
    assert [batch_size_for_epoch(e, 64, 0) for e in range(4)] == [8, 16, 32, 64]
    assert [batch_size_for_epoch(e, 64, None) for e in range(3)] == [64, 64, 64]
    assert [batch_size_for_epoch(e, 5, 0) for e in range(4)] == [1, 2, 4, 5]


def test_strategies_on_the_two_logical_cpus():
    # conftest splits the CPU in two; "auto" on a CPU-only machine uses one device.
    assert not tf.config.list_physical_devices("GPU")
    single = get_strategy()
    assert isinstance(single, tf.distribute.OneDeviceStrategy)
    assert single.num_replicas_in_sync == 1
    mirrored = get_strategy(devices=2)
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    assert mirrored.num_replicas_in_sync == 2
    assert "2 replica(s) on 1 worker(s)" in describe_strategy(mirrored)
    named = get_strategy(devices=["cpu:1", "/cpu:0"])
    assert named.num_replicas_in_sync == 2
    assert get_strategy(cpu_replicas=2).num_replicas_in_sync == 2  # already split: accepted


@pytest.mark.parametrize(
    "devices, message",
    [(3, "has 2 CPU device"), (["gpu:7"], "Unknown device 'gpu:7'"), ("many", "devices")],
)
def test_bad_devices(devices, message):
    with pytest.raises(ValueError, match=message):
        get_strategy(devices=devices)


def test_cpu_replicas_cannot_change_after_tensorflow_started():
    with pytest.raises(ValueError, match="already initialised with 2"):
        configure_cpu_replicas(4)
    with pytest.raises(ValueError, match="cpu_replicas"):
        configure_cpu_replicas(0)


def test_step_schedule_milestones_and_decay_factor():
    plan = LearningRatePlan(1.0, 1, schedule="step", epochs=10, milestones=(0.3, 0.6, 0.9),
                            decay_factor=0.5)
    assert [plan(e, 1) for e in (0, 2.9, 3, 5.9, 6, 8.9, 9)] == pytest.approx(
        [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.125]
    )
    assert "x0.5 at 0.3, 0.6, 0.9" in plan.describe(1)
    with pytest.raises(ValueError, match="milestones"):
        LearningRatePlan(1.0, 1, schedule="step", milestones=(1.5,))
    with pytest.raises(ValueError, match="decay_factor"):
        LearningRatePlan(1.0, 1, schedule="step", decay_factor=0.0)


def test_learning_rate_changes_every_step_of_an_epoch():
    # The run calls the plan at epoch + step / steps: warm-up and cosine are smooth within an
    # epoch, whatever the dataset's size (counted once when the loader does not know it).
    plan = LearningRatePlan(1.0, 1, warmup_epochs=1, schedule="cosine", epochs=3)
    steps = 7
    rates = [plan(0 + s / steps, 1) for s in range(steps)] + [plan(1 + s / steps, 1)
                                                              for s in range(steps)]
    assert len(set(rates)) == len(rates)
    assert rates[:steps] == sorted(rates[:steps]) and rates[steps:] == sorted(rates[steps:])[::-1]
