"""Read PyTorch `.pth` files (`torch.save` of a state dict) with NumPy only: no torch at run time.

Two formats exist and torchvision's published files use both:

- the zip format (torch >= 1.6): `<archive>/data.pkl` is a pickle whose tensors refer, through
  pickle's persistent ids, to raw little-endian storages `<archive>/data/<key>`;
- the legacy format (earlier files, e.g. 2017's VGG weights): a magic number, a protocol
  version and system information, the pickled object, the list of storage keys, then each
  storage as an int64 element count followed by its raw bytes.

Pickle can run arbitrary code, so the unpickler is restricted (as `torch.load(weights_only=True)`
is): it resolves only the handful of globals a state dict needs (`collections.OrderedDict`,
torch's tensor rebuild functions and storage types) and refuses anything else with a one-line
`ValueError`. Tensors come back as NumPy arrays in torch's layout (e.g. conv kernels
(out, in, height, width)); `zoo.weights.torchvision` converts them.

    >>> from zoo.weights.torch_files import load_state_dict
    >>> state = load_state_dict("resnet18-f37072fd.pth")   # {"conv1.weight": ndarray, ...}
"""

import collections
import os
import pickle
import struct
import zipfile

import numpy as np

# torch storage type -> NumPy dtype (bfloat16 is read as uint16 and widened to float32).
STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "BFloat16Storage": np.uint16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001


class _StorageType:
    """What the pickle names as e.g. `torch.FloatStorage`: only its dtype matters here."""

    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(STORAGE_DTYPES[name])


class _Storage:
    """One flat storage; `data` is filled when its bytes are read (at once in the zip format,
    after the pickle in the legacy one)."""

    def __init__(self, storage_type, view=None):
        self.dtype = storage_type.dtype
        self.bfloat16 = storage_type.name == "BFloat16Storage"
        self.view = view  # legacy storage views: (view_key, offset, size)
        self.data = None

    def array(self):
        data = self.data.data if isinstance(self.data, _Storage) else self.data
        if self.view is not None:
            _, offset, size = self.view
            data = data[offset : offset + size]
        return data


class _Tensor:
    """torch._utils._rebuild_tensor_v2's arguments, materialised once the storage is read."""

    def __init__(self, storage, offset, size, stride, *unused):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def numpy(self):
        array = self.storage.array()
        itemsize = array.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            array[self.offset :],
            shape=tuple(self.size),
            strides=tuple(s * itemsize for s in self.stride),
        )
        view = np.array(view)  # copy out of the (read-only) file buffer
        if self.storage.bfloat16:
            view = (view.astype(np.uint32) << 16).view(np.float32)
        return view


def _rebuild_parameter(data, *unused):
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _Tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
    """Resolves only what a state dict needs; collects the storages it refers to."""

    def __init__(self, file, path):
        super().__init__(file)
        self._path = path
        self.storages = {}

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[module, name]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise ValueError(
            f"{self._path} is not a plain PyTorch state dict: its pickle refers to "
            f"{module}.{name}, which is not loaded (allowed: tensors, storages, OrderedDict)"
        )

    def persistent_load(self, saved_id):
        if not (isinstance(saved_id, tuple) and saved_id and saved_id[0] == "storage"):
            raise ValueError(f"{self._path}: unexpected persistent id {saved_id!r}")
        storage_type, key = saved_id[1], str(saved_id[2])
        view = saved_id[5] if len(saved_id) > 5 else None
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type)
        if view is None:
            return self.storages[key]
        storage = _Storage(storage_type, view)
        storage.data = self.storages[key]  # resolved through the base storage
        return storage


def _materialise(value):
    if isinstance(value, _Tensor):
        return value.numpy()
    if isinstance(value, dict):
        return {key: _materialise(item) for key, item in value.items()}
    return value


def _load_zip(path):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise ValueError(f"{path} is a zip file but not a PyTorch file (no data.pkl)")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = prefix + "byteorder"
        if byteorder in names and archive.read(byteorder).decode().strip() != "little":
            raise ValueError(f"{path} stores big-endian tensors, which are not supported")
        with archive.open(pickles[0]) as file:
            unpickler = _Unpickler(file, path)
            state = unpickler.load()
        for key, storage in unpickler.storages.items():
            storage.data = np.frombuffer(archive.read(f"{prefix}data/{key}"), storage.dtype)
    return _materialise(state)


def _load_legacy(path):
    with open(path, "rb") as file:
        header = [_Unpickler(file, path).load() for _ in range(3)]
        if header[0] != LEGACY_MAGIC or header[1] != LEGACY_PROTOCOL:
            raise ValueError(f"{path} is not a PyTorch file (unknown header)")
        unpickler = _Unpickler(file, path)
        state = unpickler.load()
        keys = pickle.load(file)  # a list of strings: nothing to resolve
        for key in keys:
            storage = unpickler.storages[str(key)]
            (count,) = struct.unpack("<q", file.read(8))
            storage.data = np.frombuffer(file.read(count * storage.dtype.itemsize), storage.dtype)
    return _materialise(state)


def load_state_dict(path):
    """The tensors of a `.pth` file saved by `torch.save(state_dict, path)`, as NumPy arrays.

    Args:
        path: A zip-format or legacy-format PyTorch file.

    Returns:
        A dict name -> `np.ndarray` (torch's layout and dtype; bfloat16 becomes float32). A
        checkpoint that wraps the state dict (`{"state_dict": ...}` or `{"model": ...}`) is
        unwrapped.

    Raises:
        ValueError: one line, for a file that is not a PyTorch file or whose pickle refers to
            anything but tensors.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"No such PyTorch file: {path}")
    try:
        if zipfile.is_zipfile(path):
            state = _load_zip(path)
        else:
            state = _load_legacy(path)
    except ValueError:
        raise
    except Exception as error:  # truncated files, foreign pickles, ...
        raise ValueError(
            f"Could not read {path} as a PyTorch file ({type(error).__name__}: "
            f"{(str(error).splitlines() or [''])[0][:200]})"
        ) from None
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict (a dict of tensors)")
    return dict(state)
