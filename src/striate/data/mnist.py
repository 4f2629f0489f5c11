"""MNIST: the IDX file format, a verified downloader, and the small sample bundled with striate.

IDX (http://yann.lecun.com/exdb/mnist/) is a 4-byte magic number (two zero bytes, a data-type
byte, the number of dimensions), one big-endian uint32 per dimension, then the values in C order.
MNIST's images are magic 0x00000803 (unsigned bytes, 3 dimensions: N, 28, 28) and its labels
0x00000801 (unsigned bytes, 1 dimension: N). The files are usually gzipped; readers detect that
from the gzip magic bytes (1f 8b), not from the file name.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import struct
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .._files import atomic_open

IDX_UBYTE = 0x08
GZIP_MAGIC = b"\x1f\x8b"

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
SAMPLE_PATH = Path(__file__).with_name("mnist_sample.npz")

_CHUNK = 1 << 16


class DownloadError(OSError):
    """No mirror delivered a file with the expected checksum."""


def _check_split(split: str, op: str) -> None:
    if split not in ("train", "test"):
        raise ValueError(f"{op}: split must be 'train' or 'test', got {split!r}")


def read_idx(path: str | os.PathLike, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzipped or raw) into a uint8 array.

    ndim: the number of dimensions the magic number must declare (3 for MNIST images, magic
    0x00000803; 1 for labels, 0x00000801), or None to accept any.
    Returns uint8 with the shape the header declares, e.g. (N, 28, 28) or (N,).
    Raises FileNotFoundError for a missing file and ValueError for a bad gzip stream, a wrong
    magic number or data type, or a data section whose length differs from the declared shape.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "x-idx3-ubyte.gz"
    >>> write_idx(path, np.zeros((2, 28, 28), np.uint8))
    >>> read_idx(path, ndim=3).shape
    (2, 28, 28)
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"read_idx: no such file '{path}'") from None
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"read_idx: '{path}' is not a valid gzip file ({e})") from None
    if len(data) < 4:
        raise ValueError(
            f"read_idx: '{path}' is too short to be an IDX file ({len(data)} bytes, the magic "
            f"number alone takes 4)"
        )
    magic = int.from_bytes(data[:4], "big")
    dims_count = data[3]
    if data[:2] != b"\0\0" or dims_count == 0 or (ndim is not None and dims_count != ndim):
        expected = f"0x{IDX_UBYTE << 8 | ndim:08X}" if ndim is not None else "0x000008NN"
        raise ValueError(
            f"read_idx: '{path}' has magic number 0x{magic:08X} where an IDX file of "
            f"{ndim if ndim is not None else 'N'}-D unsigned bytes has {expected}"
        )
    if data[2] != IDX_UBYTE:
        raise ValueError(
            f"read_idx: '{path}' holds IDX data type 0x{data[2]:02X}, but only unsigned bytes "
            f"(0x{IDX_UBYTE:02X}) are supported"
        )
    header = 4 + 4 * dims_count
    if len(data) < header:
        raise ValueError(
            f"read_idx: '{path}' is truncated inside its header ({len(data)} bytes where "
            f"{dims_count} dimensions need {header})"
        )
    shape = struct.unpack(f">{dims_count}I", data[4:header])
    declared = math.prod(shape)
    actual = len(data) - header
    if actual != declared:
        problem = "is truncated" if actual < declared else "has trailing bytes"
        raise ValueError(
            f"read_idx: '{path}' {problem}: its header declares shape {shape} "
            f"({declared} bytes of data) but {actual} bytes follow"
        )
    # frombuffer over immutable bytes is read-only; copy so callers may write into the result
    return np.frombuffer(data, np.uint8, count=declared, offset=header).reshape(shape).copy()


def write_idx(path: str | os.PathLike, array, compress: bool | None = None) -> None:
    """Write a uint8 array as an IDX file (magic 0x000008NN, NN = ndim), atomically.

    array: uint8 of any shape with 1 to 255 dimensions. compress: gzip the file; None means
    gzip exactly when the name ends in '.gz'. The written file reads back with read_idx.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels-idx1-ubyte"
    >>> write_idx(path, np.arange(10, dtype=np.uint8))
    >>> read_idx(path).shape
    (10,)
    """
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise TypeError(
            f"write_idx: array must have dtype uint8, got {array.dtype}; convert it with "
            f".astype(np.uint8) once its values are known to lie in 0..255"
        )
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx: array must have 1 to 255 dimensions, got {array.ndim}")
    header = bytes((0, 0, IDX_UBYTE, array.ndim)) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array).tobytes()
    if compress is None:
        compress = str(path).endswith(".gz")
    if compress:
        payload = gzip.compress(payload, mtime=0)
    with atomic_open(path) as f:
        f.write(payload)


def _find_mnist_file(directory: Path, name: str) -> Path:
    """The file `name` in `directory`, gzipped or not; Kaggle's copies write '.idx' for '-idx'."""
    stem = name.removesuffix(".gz")
    candidates = (name, stem, stem.replace("-idx", ".idx"))
    for candidate in candidates:
        if (directory / candidate).is_file():
            return directory / candidate
    raise FileNotFoundError(
        f"load_mnist: no {stem} file in '{directory}' (looked for {', '.join(candidates)}); "
        f"download_mnist('{directory}') fetches the MNIST files"
    )


def load_mnist(directory: str | os.PathLike, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST's training (60,000) or test (10,000) split from its IDX files in `directory`.

    Looks for train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz (t10k-... for 'test'),
    gzipped or not. Any data set stored in these files (Fashion-MNIST, KMNIST) loads too.
    Returns images uint8 (N, 28, 28), 0 = background, and labels uint8 (N,).

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> write_idx(f"{folder}/t10k-images-idx3-ubyte.gz", np.zeros((3, 28, 28), np.uint8))
    >>> write_idx(f"{folder}/t10k-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    >>> load_mnist(folder, "test")[0].shape
    (3, 28, 28)
    """
    _check_split(split, "load_mnist")
    directory = Path(directory)
    images_path, labels_path = (_find_mnist_file(directory, n) for n in MNIST_FILES[split])
    images = read_idx(images_path, ndim=3)
    labels = read_idx(labels_path, ndim=1)
    if len(images) != len(labels):
        raise ValueError(
            f"load_mnist: '{images_path}' holds {len(images)} images but '{labels_path}' "
            f"holds {len(labels)} labels"
        )
    return images, labels


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(url: str, target: Path, md5: str, progress: bool, timeout: float) -> None:
    """Stream `url` into a temporary file beside `target`, check length and MD5, then rename."""
    from tqdm import tqdm

    with urllib.request.urlopen(url, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        digest = hashlib.md5(usedforsecurity=False)
        received = 0
        with (
            atomic_open(target) as f,
            tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=target.name,
                 disable=not progress) as bar,
        ):
            while chunk := response.read(_CHUNK):
                f.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
            # http.client returns b"" when a server closes early instead of raising, so the
            # length is checked here
            if total is not None and received != total:
                raise ValueError(f"transfer ended after {received} of {total} bytes")
            if digest.hexdigest() != md5:
                raise ValueError(f"MD5 {digest.hexdigest()} differs from the expected {md5}")


def _reason(error: Exception) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    return str(error) or type(error).__name__


def download_mnist(
    directory: str | os.PathLike,
    mirrors: Sequence[str] = MNIST_MIRRORS,
    progress: bool = True,
    checksums: Mapping[str, str] = MNIST_MD5,
    timeout: float = 60.0,
) -> Path:
    """Download the MNIST files into `directory`, verifying each one's MD5; return the directory.

    Each file named in `checksums` (file name -> MD5 hex digest; by default the four MNIST files)
    is fetched from the first mirror that delivers it intact (URL = mirror + file name). A file
    already present with the right checksum is not fetched again. Transfers go to a temporary
    file in `directory` that is renamed into place only after its length and checksum check out,
    so an interrupted or corrupt download leaves nothing behind. Raises DownloadError, listing
    what each mirror gave, when no mirror delivers a file.

    Afterwards load_mnist(directory, split) reads the files:

    >>> download_mnist("~/data/mnist")  # doctest: +SKIP
    PosixPath('/home/me/data/mnist')
    """
    directory = Path(directory).expanduser()
    if isinstance(mirrors, str):
        raise TypeError(f"download_mnist: mirrors must be a sequence of URLs, got {mirrors!r}")
    if not mirrors:
        raise ValueError("download_mnist: mirrors is empty; give at least one base URL")
    for name in checksums:
        if Path(name).name != name:
            raise ValueError(f"download_mnist: checksum table names {name!r}, not a file name")
    directory.mkdir(parents=True, exist_ok=True)
    for name, md5 in checksums.items():
        target = directory / name
        if target.is_file() and _md5(target) == md5.lower():
            continue
        failures = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + name
            try:
                _fetch(url, target, md5.lower(), progress, timeout)
                break
            except (OSError, ValueError, http.client.HTTPException) as e:
                failures.append(f"{url}: {_reason(e)}")
        else:
            raise DownloadError(
                f"download_mnist: no mirror delivered {name} ({'; '.join(failures)})"
            )
    return directory


def load_sample(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 real MNIST digits bundled with striate, split 4,000 train / 1,000 test.

    500 digits per class, split 400/100 per class with a fixed seed (see MNIST_SAMPLE.md for
    provenance, licence and the split rule). Runs offline.
    Returns images uint8 (N, 28, 28), 0 = background, and labels uint8 (N,).

    >>> load_sample("test")[0].shape
    (1000, 28, 28)
    """
    _check_split(split, "load_sample")
    with np.load(SAMPLE_PATH) as archive:
        return archive[f"{split}_images"], archive[f"{split}_labels"]
