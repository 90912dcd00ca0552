"""The NumPy-only reader of PyTorch files, against files written by the real `torch.save`."""

import io
import pickle
import zipfile

import numpy as np
import pytest

from zoo.weights.torch_files import load_state_dict

torch = pytest.importorskip("torch")


def _state():
    generator = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(5, 6)
    )
    state = dict(model.state_dict())  # incl. num_batches_tracked (int64, 0-d)
    base = torch.randn(10, 4, generator=generator)
    state.update(
        transposed=base.t(),  # non-contiguous strides
        sliced=base[2:5, 1],  # an offset into a shared storage
        shared=base,
        half=torch.randn(5, generator=generator).half(),
        bfloat16=torch.randn(7, generator=generator).bfloat16(),
        double=torch.randn(2, 2, generator=generator).double(),
        flags=torch.tensor([True, False]),
        bytes=torch.arange(4, dtype=torch.uint8),
    )
    return state


def _expected(tensor):
    return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_reads_what_torch_save_writes(tmp_path, zip_format):
    state = _state()
    path = tmp_path / "state.pth"
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    assert zipfile.is_zipfile(path) == zip_format
    loaded = load_state_dict(path)
    assert list(loaded) == list(state)
    for name, tensor in state.items():
        expected = _expected(tensor)
        assert loaded[name].dtype == expected.dtype and loaded[name].shape == expected.shape, name
        np.testing.assert_array_equal(loaded[name], expected, err_msg=name)
        assert loaded[name].flags.writeable  # a copy, not a view of the file buffer


def test_unwraps_checkpoints_and_reads_parameters(tmp_path):
    layer = torch.nn.Linear(3, 2)
    path = tmp_path / "checkpoint.pth"
    torch.save({"state_dict": layer.state_dict(), "epoch": 3}, path)
    np.testing.assert_array_equal(load_state_dict(path)["weight"], layer.weight.detach().numpy())
    torch.save({"weight": layer.weight}, path)  # a Parameter, not a plain tensor
    np.testing.assert_array_equal(load_state_dict(path)["weight"], layer.weight.detach().numpy())


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_refuses_pickles_that_refer_to_anything_but_tensors(tmp_path):
    path = tmp_path / "evil.pth"
    buffer = io.BytesIO()
    pickle.dump({"weight": _Exploit()}, buffer, protocol=2)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", buffer.getvalue())
    with pytest.raises(ValueError, match=r"refers to (posix|os|nt)\.system") as error:
        load_state_dict(path)
    assert len(str(error.value).splitlines()) == 1


@pytest.mark.parametrize(
    "content, match",
    [(b"plain text", "Could not read"), (None, "No such PyTorch file")],
)
def test_bad_files_are_one_line_errors(tmp_path, content, match):
    path = tmp_path / "bad.pth"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as error:
        load_state_dict(path)
    assert len(str(error.value).splitlines()) == 1


def test_a_pickled_object_that_is_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(ValueError, match="does not hold a state dict"):
        load_state_dict(path)
