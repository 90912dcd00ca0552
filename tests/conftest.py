"""Test set-up: quiet TensorFlow and split the CPU into logical devices before it initialises.

MirroredStrategy tests need at least 2 replicas; on a CPU-only machine that means logical CPU
devices, which can only be configured before TensorFlow creates its runtime.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("MPLBACKEND", "Agg")

import tensorflow as tf  # noqa: E402

NUM_LOGICAL_CPUS = 2

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(NUM_LOGICAL_CPUS)]
)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def two_replica_strategy():
    """MirroredStrategy over the two logical CPUs.

    ReductionToOneDevice: the default collective all-reduce keys its instances per process, and
    a second strategy in the same process then fails with "Shape mismatch in the collective
    instance". zoo.training.get_strategy makes the same choice for CPU replicas.
    """
    devices = [d.name for d in tf.config.list_logical_devices("CPU")][:NUM_LOGICAL_CPUS]
    return tf.distribute.MirroredStrategy(
        devices, cross_device_ops=tf.distribute.ReductionToOneDevice()
    )


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts from default Keras globals (dtype policy, names, seeds)."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """No test reaches outside this machine: a connection to another host fails at once, as on
    a machine without network (the multi-worker tests' loopback connections still work)."""
    import socket

    connect = socket.create_connection

    def local_only(address, *args, **kwargs):
        if address[0] not in _LOCAL_HOSTS:
            raise OSError(f"tests do not use the network (connection to {address[0]} refused)")
        return connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", local_only)
