"""CIFAR-10 (https://www.cs.toronto.edu/~kriz/cifar.html): the python batches and the binary files.

Python version (cifar-10-batches-py/): data_batch_1..5 and test_batch are pickles of a dict with
b'data', a uint8 array (10000, 3072) holding each image's red, green then blue plane in row-major
order, and b'labels', a list of ints; batches.meta holds b'label_names'. They are read with an
unpickler that allows only the globals that rebuild a NumPy array, so a file can never run code.
Binary version (cifar-10-batches-bin/): data_batch_1.bin..5 and test_batch.bin, records of one
label byte followed by the same 3072 pixel bytes.
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
from pathlib import Path

import numpy as np

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
_SIDE = 32
_PIXELS = 3 * _SIDE * _SIDE  # 3072: three 32x32 planes per record
_BATCHES = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}


def _latin1_encode(text, encoding="utf-8"):
    """_codecs.encode as Python 3 pickles of bytes use it (protocol < 3), latin-1 only."""
    if encoding != "latin1":
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return codecs.encode(text, encoding)


def _array_globals() -> dict[tuple[str, str], object]:
    """The globals a pickled ndarray refers to, under the module names NumPy 1 and 2 write.

    The functions are taken from ndarray's own reduction rather than imported by name, so this
    works whatever private module NumPy keeps them in.
    """
    probe = np.zeros(1, np.uint8)
    reconstruct = probe.__reduce__()[0]
    frombuffer = probe.__reduce_ex__(5)[0]  # protocol 5 pickles contiguous arrays this way
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
               ("_codecs", "encode"): _latin1_encode}
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer
    return allowed


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that resolves only NumPy array reconstruction; any other global is refused."""

    allowed = _array_globals()

    def find_class(self, module, name):
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed") from None


def _unpickle(path: Path, op: str) -> dict:
    """Load a CIFAR pickle safely; keys and strings come back as bytes, as Python 2 wrote them."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{op}: no such file '{path}'") from None
    try:
        obj = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as e:  # a corrupt pickle can raise almost anything; report them all alike
        raise ValueError(f"{op}: '{path}' is not a readable CIFAR pickle ({e})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{op}: '{path}' holds a {type(obj).__name__}, expected a dict")
    # Python 2 files give bytes keys; batches re-pickled from Python 3 may give str keys
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _to_images(data: np.ndarray) -> np.ndarray:
    """(N, 3072) planar R, G, B rows -> (N, 32, 32, 3) channels-last."""
    return np.ascontiguousarray(data.reshape(-1, 3, _SIDE, _SIDE).transpose(0, 2, 3, 1))


def read_cifar_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch (data_batch_1, ..., test_batch) without running code.

    Returns images uint8 (N, 32, 32, 3) channels-last and labels uint8 (N,), N = 10000 for the
    original files. Raises ValueError naming the file when it is corrupt, truncated, refers to
    anything but a NumPy array, or lacks b'data' (N, 3072) uint8 and N b'labels'.

    >>> import pickle, tempfile
    >>> path = tempfile.mkdtemp() + "/data_batch_1"
    >>> batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [3, 5]}
    >>> with open(path, "wb") as f:
    ...     pickle.dump(batch, f, protocol=2)
    >>> read_cifar_batch(path)[0].shape
    (2, 32, 32, 3)
    """
    path = Path(path)
    batch = _unpickle(path, "read_cifar_batch")
    data, labels = batch.get("data"), batch.get("labels")
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == _PIXELS):
        described = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else repr(data)
        raise ValueError(
            f"read_cifar_batch: '{path}' must hold b'data' as uint8 (N, {_PIXELS}), got "
            f"{described[:80]}"
        )
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        raise ValueError(f"read_cifar_batch: '{path}' has non-integer b'labels'") from None
    if labels.shape != (len(data),):
        raise ValueError(
            f"read_cifar_batch: '{path}' holds {len(data)} images but labels of shape "
            f"{labels.shape}"
        )
    if labels.size and not 0 <= labels.min() <= labels.max() <= 255:
        raise ValueError(f"read_cifar_batch: '{path}' has labels outside 0..255")
    return _to_images(data), labels.astype(np.uint8)


def read_cifar_meta(path: str | os.PathLike) -> tuple[str, ...]:
    """The class names stored in a CIFAR-10 python batches.meta file (b'label_names').

    >>> read_cifar_meta("cifar-10-batches-py/batches.meta")  # doctest: +SKIP
    ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck')
    """
    path = Path(path)
    names = _unpickle(path, "read_cifar_meta").get("label_names")
    if not isinstance(names, list) or not all(isinstance(n, (bytes, str)) for n in names):
        raise ValueError(f"read_cifar_meta: '{path}' has no list of b'label_names'")
    return tuple(n.decode("latin1") if isinstance(n, bytes) else n for n in names)


def read_cifar_bin(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 binary batch (data_batch_1.bin, ..., test_batch.bin).

    Each record is 1 label byte then 3072 pixel bytes (R, G, B planes, row-major).
    Returns images uint8 (N, 32, 32, 3) channels-last and labels uint8 (N,).

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "test_batch.bin"
    >>> _ = path.write_bytes(bytes(2 * 3073))
    >>> read_cifar_bin(path)[0].shape
    (2, 32, 32, 3)
    """
    path = Path(path)
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise FileNotFoundError(f"read_cifar_bin: no such file '{path}'") from None
    record = 1 + _PIXELS
    if raw.size == 0 or raw.size % record:
        raise ValueError(
            f"read_cifar_bin: '{path}' has {raw.size} bytes, not a whole number of "
            f"{record}-byte records (truncated or not a CIFAR-10 binary batch)"
        )
    records = raw.reshape(-1, record)
    return _to_images(records[:, 1:]), records[:, 0].copy()


def _batch_folder(directory: Path) -> tuple[Path, bool]:
    """Where the batches are and whether they are the python (True) or binary (False) ones.

    Accepts the folder holding the batches or the one the archive was extracted into.
    """
    for folder in (directory, *(directory / f"cifar-10-batches-{v}" for v in ("py", "bin"))):
        if (folder / "data_batch_1").is_file() or (folder / "test_batch").is_file():
            return folder, True
        if (folder / "data_batch_1.bin").is_file() or (folder / "test_batch.bin").is_file():
            return folder, False
    raise FileNotFoundError(
        f"load_cifar10: no CIFAR-10 batches in '{directory}' (looked for data_batch_1 and "
        f"test_batch, with or without .bin, there and in cifar-10-batches-py/-bin)"
    )


def load_cifar10(
    directory: str | os.PathLike, split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """Load CIFAR-10's training (50,000) or test (10,000) split from the python or binary batches.

    directory: the extracted cifar-10-batches-py (or -bin) folder, or the folder containing it.
    Returns images uint8 (N, 32, 32, 3) channels-last and labels uint8 (N,), indices into
    CIFAR10_CLASSES.

    >>> load_cifar10("data/cifar-10-batches-py", "test")[0].shape  # doctest: +SKIP
    (10000, 32, 32, 3)
    """
    if split not in _BATCHES:
        raise ValueError(f"load_cifar10: split must be 'train' or 'test', got {split!r}")
    folder, python = _batch_folder(Path(directory))
    names = _BATCHES[split]
    parts = [read_cifar_batch(folder / n) if python else read_cifar_bin(folder / f"{n}.bin")
             for n in names]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
