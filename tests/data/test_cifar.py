"""CIFAR-10 readers: python batches (safely unpickled) and binary batches, written by the tests."""

import io
import os
import pickle
import re
import struct

import numpy as np
import pytest

from striate.data import (
    CIFAR10_CLASSES,
    load_cifar10,
    read_cifar_batch,
    read_cifar_bin,
    read_cifar_meta,
)


class _Python2Pickler(pickle._Pickler):
    """Writes str and bytes as Python 2's cPickle wrote its str (BINSTRING opcodes), the way the
    original CIFAR-10 batches were written; with encoding='bytes' they load back as bytes."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str


def _python2_pickle(obj) -> bytes:
    """Protocol 2, Python 2 strings, and NumPy 1's module name for the array reconstructor."""
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


WRITERS = {
    "python2": _python2_pickle,
    "protocol2": lambda obj: pickle.dumps(obj, protocol=2),
    "protocol4": lambda obj: pickle.dumps(obj, protocol=4),
    "protocol5": lambda obj: pickle.dumps(obj, protocol=5),
}


def _batch(rng, n, key=str.encode):
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, n)]
    batch = {key(k): v for k, v in (("batch_label", b"training batch 1 of 5"), ("data", data),
                                    ("labels", labels), ("filenames", [b"x.png"] * n))}
    return batch, data, labels


def _reference_images(data):
    """Channels-last images from CIFAR's planar rows, one pixel at a time."""
    n = len(data)
    images = np.empty((n, 32, 32, 3), np.uint8)
    for k in range(n):
        for c in range(3):
            for i in range(32):
                for j in range(32):
                    images[k, i, j, c] = data[k, c * 1024 + i * 32 + j]
    return images


def test_layout_reference():
    """The first 1024 bytes are the red plane, row-major: pixel (0, 1) red is byte 1."""
    data = np.zeros((1, 3072), np.uint8)
    data[0, 1], data[0, 1024 + 32], data[0, 2048 + 33] = 10, 20, 30
    images = _reference_images(data)
    assert images[0, 0, 1, 0] == 10 and images[0, 1, 0, 1] == 20 and images[0, 1, 1, 2] == 30


@pytest.mark.parametrize("writer", sorted(WRITERS))
@pytest.mark.parametrize("n", [1, 3])
def test_python_batch_round_trip(tmp_path, rng, writer, n):
    batch, data, labels = _batch(rng, n)
    path = tmp_path / "data_batch_1"
    path.write_bytes(WRITERS[writer](batch))
    images, got_labels = read_cifar_batch(path)
    assert images.shape == (n, 32, 32, 3) and images.dtype == np.uint8
    assert images.flags.c_contiguous
    assert got_labels.dtype == np.uint8
    np.testing.assert_array_equal(images, _reference_images(data))
    np.testing.assert_array_equal(got_labels, labels)


def test_python_batch_with_str_keys(tmp_path, rng):
    batch, data, labels = _batch(rng, 2, key=str)
    (tmp_path / "b").write_bytes(pickle.dumps(batch))
    images, got_labels = read_cifar_batch(tmp_path / "b")
    np.testing.assert_array_equal(images, _reference_images(data))
    np.testing.assert_array_equal(got_labels, labels)


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_meta(tmp_path, writer):
    meta = {b"label_names": [n.encode() for n in CIFAR10_CLASSES], b"num_cases_per_batch": 10000,
            b"num_vis": 3072}
    (tmp_path / "batches.meta").write_bytes(WRITERS[writer](meta))
    assert read_cifar_meta(tmp_path / "batches.meta") == CIFAR10_CLASSES


def test_classes():
    assert CIFAR10_CLASSES == ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                               "horse", "ship", "truck")


def _malicious_pickles(marker):
    command = f"touch {marker}"

    class Exploit:
        def __reduce__(self):
            return os.system, (command,)

    crafted = f"cos\nsystem\n(S'{command}'\ntR.".encode()  # protocol 0: GLOBAL 'os system'
    return {
        "os.system": crafted,
        "posix.system": pickle.dumps({b"data": Exploit()}, protocol=2),
        "builtins.eval": pickle.dumps(eval),
        "numpy.load": pickle.dumps(np.load),
    }


@pytest.mark.parametrize("name", ["os.system", "posix.system", "builtins.eval", "numpy.load"])
def test_malicious_pickle_is_refused_without_running(tmp_path, name):
    marker = tmp_path / "pwned"
    path = tmp_path / "data_batch_1"
    path.write_bytes(_malicious_pickles(marker)[name])
    with pytest.raises(ValueError, match=re.escape(f"'{path}' is not a readable CIFAR pickle "
                                                   f"(global '{name}' is not allowed)")):
        read_cifar_batch(path)
    assert not marker.exists()


def test_codecs_global_is_limited_to_latin1(tmp_path):
    path = tmp_path / "b"
    # _codecs.encode('x', 'rot13'): the latin-1 form protocol 2 uses for bytes is the only one
    path.write_bytes(b"c_codecs\nencode\n(Vx\nVrot13\ntR.")
    with pytest.raises(ValueError, match="encoding 'rot13' is not allowed"):
        read_cifar_batch(path)


@pytest.mark.parametrize("corrupt, problem", [
    (lambda b: b[: len(b) // 2], "is not a readable CIFAR pickle"),
    (lambda b: b"\x80\x02garbage that is not a pickle", "is not a readable CIFAR pickle"),
    (lambda b: b"", "is not a readable CIFAR pickle"),
    (lambda b: pickle.dumps([1, 2]), "holds a list, expected a dict"),
    (lambda b: pickle.dumps({b"labels": [1]}),
     "must hold b'data' as uint8 \\(N, 3072\\), got None"),
    (lambda b: pickle.dumps({b"data": np.zeros((2, 3072)), b"labels": [1, 2]}),
     "must hold b'data' as uint8 \\(N, 3072\\), got float64 \\(2, 3072\\)"),
    (lambda b: pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [1, 2]}),
     "got uint8 \\(2, 100\\)"),
    (lambda b: pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}),
     "holds 2 images but labels of shape \\(1,\\)"),
    (lambda b: pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [b"x"]}),
     "non-integer b'labels'"),
    (lambda b: pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [300]}),
     "labels outside 0..255"),
])
def test_corrupt_python_batch(tmp_path, rng, corrupt, problem):
    path = tmp_path / "test_batch"
    path.write_bytes(corrupt(pickle.dumps(_batch(rng, 2)[0], protocol=2)))
    with pytest.raises(ValueError, match=re.escape(f"read_cifar_batch: '{path}'") + ".*" + problem):
        read_cifar_batch(path)


def test_corrupt_meta(tmp_path):
    path = tmp_path / "batches.meta"
    path.write_bytes(pickle.dumps({b"label_names": "cat"}))
    with pytest.raises(ValueError, match=re.escape(f"read_cifar_meta: '{path}' has no list")):
        read_cifar_meta(path)


def _bin_records(data, labels):
    return np.concatenate([np.asarray(labels, np.uint8)[:, None], data], axis=1).tobytes()


def test_binary_round_trip(tmp_path, rng):
    _, data, labels = _batch(rng, 3)
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(_bin_records(data, labels))
    images, got_labels = read_cifar_bin(path)
    assert images.dtype == got_labels.dtype == np.uint8 and images.flags.c_contiguous
    np.testing.assert_array_equal(images, _reference_images(data))
    np.testing.assert_array_equal(got_labels, labels)


@pytest.mark.parametrize("size", [0, 3072, 3074, 2 * 3073 - 1])
def test_truncated_binary_batch(tmp_path, size):
    path = tmp_path / "test_batch.bin"
    path.write_bytes(bytes(size))
    with pytest.raises(ValueError, match=re.escape(f"read_cifar_bin: '{path}' has {size} bytes, "
                                                   f"not a whole number of 3073-byte records")):
        read_cifar_bin(path)


def _write_dataset(folder, rng, binary):
    """Five training batches of 2 images and a test batch of 3; returns the expected arrays."""
    folder.mkdir(parents=True)
    expected = {"train": ([], []), "test": ([], [])}
    for name, n in [(f"data_batch_{i}", 2) for i in range(1, 6)] + [("test_batch", 3)]:
        batch, data, labels = _batch(rng, n)
        if binary:
            (folder / f"{name}.bin").write_bytes(_bin_records(data, labels))
        else:
            (folder / name).write_bytes(_python2_pickle(batch))
        part = expected["test" if name == "test_batch" else "train"]
        part[0].append(_reference_images(data))
        part[1].extend(labels)
    return {k: (np.concatenate(v[0]), np.asarray(v[1])) for k, v in expected.items()}


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("nested", [False, True])
def test_load_cifar10(tmp_path, rng, binary, nested):
    folder = tmp_path / ("cifar-10-batches-bin" if binary else "cifar-10-batches-py")
    expected = _write_dataset(folder, rng, binary)
    for split, (images, labels) in expected.items():
        got_images, got_labels = load_cifar10(tmp_path if nested else folder, split)
        assert got_images.shape == (len(labels), 32, 32, 3)
        np.testing.assert_array_equal(got_images, images)
        np.testing.assert_array_equal(got_labels, labels)


def test_load_cifar10_errors(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match="load_cifar10: no CIFAR-10 batches in"):
        load_cifar10(tmp_path)
    with pytest.raises(ValueError, match="load_cifar10: split must be 'train' or 'test', got 'x'"):
        load_cifar10(tmp_path, "x")
    _write_dataset(tmp_path / "d", rng, binary=False)
    (tmp_path / "d" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(f"'{tmp_path / 'd' / 'data_batch_3'}'")):
        load_cifar10(tmp_path / "d")
