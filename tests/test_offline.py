"""Without network a download fails at once, in one line (tfds' retries took 215 s), and
`--no-download` on a dataset that never downloads is a no-op, not an error."""

import socket
import time

import pytest
import tensorflow_datasets as tfds

from zoo import registry
from zoo.data import base as data_base
from zoo.data import downloads
from zoo.training import build
from zoo.training.config import TrainConfig


class _Downloaded(TypeError):  # load_tfds passes a TypeError on unwrapped
    pass


@pytest.fixture
def unprepared(monkeypatch):
    monkeypatch.setattr(downloads, "_is_prepared", lambda name, data_dir: False)

    def load(*args, **kwargs):
        raise _Downloaded

    monkeypatch.setattr(tfds, "load", load)
    for variable in downloads.PROXY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
        monkeypatch.delenv(variable.upper(), raising=False)


def test_no_network_fails_at_once_naming_the_dataset(unprepared, monkeypatch, tmp_path):
    def unreachable(address, timeout=None):
        assert timeout == downloads.NETWORK_TIMEOUT
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    started = time.perf_counter()
    with pytest.raises(ValueError) as error:
        downloads.load_tfds("cifar10", split="train", data_dir=str(tmp_path))
    assert time.perf_counter() - started < 1.0
    message = str(error.value)
    assert message.startswith(f"Dataset 'cifar10' is not prepared in {tmp_path} and there is "
                              "no network (could not reach storage.googleapis.com")
    assert "tfds build cifar10" in message and "\n" not in message


def test_with_a_proxy_or_a_network_the_download_goes_ahead(unprepared, monkeypatch, tmp_path):
    class _Connection:
        def close(self):
            pass

    monkeypatch.setattr(socket, "create_connection", lambda address, timeout=None: _Connection())
    with pytest.raises(_Downloaded):
        downloads.load_tfds("cifar10", split="train", data_dir=str(tmp_path))

    def never(address, timeout=None):
        raise AssertionError("no probe behind a proxy: only the download can tell")

    monkeypatch.setattr(socket, "create_connection", never)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    with pytest.raises(_Downloaded):
        downloads.load_tfds("cifar10", split="train", data_dir=str(tmp_path))


def test_no_download_on_an_offline_dataset_is_a_no_op():
    entry = data_base.dataset_entry("digits")
    assert entry.offline
    kwargs = build.loader_kwargs(registry.model_info("lenet5"), entry,
                                 TrainConfig(dataset_kwargs={"download": False}))
    assert "download" not in kwargs
    # A dataset that downloads still gets it.
    entry = data_base.dataset_entry("cifar10")
    kwargs = build.loader_kwargs(registry.model_info("resnet18"), entry,
                                 TrainConfig(dataset_kwargs={"download": False}))
    assert kwargs["download"] is False
