"""Data sets by name (load_dataset), their test part again from a record (load_test_part) and
labelled images from npz files (read_npz), on small files written by the tests."""

import numpy as np
import pytest
from PIL import Image

from striate.data import (
    CIFAR10_CLASSES,
    Dataset,
    load_dataset,
    load_sample,
    load_test_part,
    read_npz,
    write_idx,
)
from striate.errors import UserError


def _mnist_folder(folder, rng, n_train=6, n_test=4):
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz",
                  rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz",
                  rng.integers(0, 10, n, dtype=np.uint8))
    return folder


def _cifar_bin_folder(folder, rng, per_batch=2):
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        records = rng.integers(0, 256, (per_batch, 3073), dtype=np.uint8)
        records[:, 0] %= 10
        (folder / f"{name}.bin").write_bytes(records.tobytes())
    return folder


def _image_folder(root, classes=("cat", "dog"), per_class=5, size=(6, 4)):
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", size, (40 * k, 10 * i, 0)).save(root / name / f"{i}.png")
    return root


def test_bundled():
    dataset = load_dataset("bundled")
    assert isinstance(dataset, Dataset)
    x, y = load_sample("test")
    np.testing.assert_array_equal(dataset.test_images, x)
    np.testing.assert_array_equal(dataset.test_labels, y)
    assert dataset.train_images.shape == (4000, 28, 28)
    assert dataset.train_labels.dtype == dataset.test_labels.dtype == np.int64
    assert dataset.class_names == [str(i) for i in range(10)]
    assert dataset.record == {"name": "bundled"}
    images, labels = load_test_part(dataset.record)
    np.testing.assert_array_equal(images, x)
    assert labels.dtype == np.int64


def test_mnist_files_and_their_record(tmp_path, rng):
    folder = _mnist_folder(tmp_path / "mnist", rng)
    dataset = load_dataset("mnist", str(folder))
    assert dataset.train_images.shape == (6, 28, 28) and dataset.test_images.shape == (4, 28, 28)
    assert dataset.record == {"name": "mnist", "data_dir": str(folder.resolve())}
    images, labels = load_test_part(dataset.record)
    np.testing.assert_array_equal(images, dataset.test_images)
    np.testing.assert_array_equal(labels, dataset.test_labels)
    # the files moved: data_dir overrides the recorded folder
    moved = folder.rename(tmp_path / "elsewhere")
    images, _ = load_test_part(dataset.record, str(moved))
    np.testing.assert_array_equal(images, dataset.test_images)


def test_cifar10_binary_batches(tmp_path, rng):
    folder = _cifar_bin_folder(tmp_path / "cifar", rng)
    dataset = load_dataset("cifar10", str(folder))
    assert dataset.train_images.shape == (10, 32, 32, 3)
    assert dataset.test_images.shape == (2, 32, 32, 3)
    assert dataset.class_names == list(CIFAR10_CLASSES)
    assert dataset.record["name"] == "cifar10"


def test_one_image_folder_keeps_a_fixed_fifth_for_testing(tmp_path):
    root = _image_folder(tmp_path / "set")
    rgb = load_dataset(f"folder:{root}", channels=3)
    assert len(rgb.train_labels) == 8 and len(rgb.test_labels) == 2
    assert rgb.train_images.shape[1:] == (4, 6, 3)
    assert rgb.class_names == ["cat", "dog"]
    assert rgb.record == {"name": "folder", "path": str(root.resolve()), "grayscale": False,
                          "test_part": "a fifth, seed 0"}
    gray = load_dataset(f"folder:{root}", channels=1)
    assert gray.train_images.shape[1:] == (4, 6, 1) and gray.record["grayscale"]
    # the same split every time, and the record finds it again
    np.testing.assert_array_equal(gray.test_labels, rgb.test_labels)
    images, labels = load_test_part(rgb.record)
    np.testing.assert_array_equal(images, rgb.test_images)
    np.testing.assert_array_equal(labels, rgb.test_labels)


def test_train_and_test_folders(tmp_path):
    root = tmp_path / "set"
    _image_folder(root / "train", per_class=3)
    _image_folder(root / "test", per_class=2)
    dataset = load_dataset(f"folder:{root}", channels=3)
    assert len(dataset.train_labels) == 6 and len(dataset.test_labels) == 4
    assert "test_part" not in dataset.record
    _image_folder(tmp_path / "bad" / "train", classes=("cat", "dog"))
    _image_folder(tmp_path / "bad" / "test", classes=("cat", "emu"))
    with pytest.raises(UserError, match=r"--dataset: '.*test' has classes \['cat', 'emu'\]"):
        load_dataset(f"folder:{tmp_path / 'bad'}")


def test_dataset_errors(tmp_path):
    with pytest.raises(UserError, match="--dataset: expected bundled, mnist, cifar10 or "
                                        "folder:PATH, got 'imagenet'"):
        load_dataset("imagenet")
    with pytest.raises(UserError, match="--dataset: no such folder"):
        load_dataset(f"folder:{tmp_path / 'none'}")
    with pytest.raises(UserError, match="--data-dir: no such folder"):
        load_dataset("cifar10", str(tmp_path / "none"))
    with pytest.raises(UserError, match="--download: striate downloads MNIST only"):
        load_dataset("cifar10", str(tmp_path), download=True)
    with pytest.raises(UserError, match=r"does not say which data set it was trained on .* "
                                        r"pass --data FILE.npz"):
        load_test_part({"name": "imagenet"})


def test_read_npz(tmp_path, rng):
    path = tmp_path / "d.npz"
    images = rng.integers(0, 256, (3, 5, 4, 3), dtype=np.uint8)
    np.savez(path, images=images, labels=np.array([0, 2, 1], np.uint8))
    x, y = read_npz(str(path))
    np.testing.assert_array_equal(x, images)
    assert y.dtype == np.int64 and y.tolist() == [0, 2, 1]


@pytest.mark.parametrize("arrays, message", [
    ({"images": np.zeros((2, 4, 4), np.uint8)}, r"lacks \['labels'\]"),
    ({"images": np.zeros((2, 4, 4), np.float32), "labels": np.zeros(2, np.int64)},
     "images must be uint8 N x H x W or N x H x W x C, got float32"),
    ({"images": np.zeros((4, 4), np.uint8), "labels": np.zeros(4, np.int64)},
     "images must be uint8 N x H x W or N x H x W x C, got uint8 \\(4, 4\\)"),
    ({"images": np.zeros((2, 4, 4), np.uint8), "labels": np.zeros(3, np.int64)},
     "labels must be 2 integers, got int64 \\(3,\\)"),
    ({"images": np.zeros((2, 4, 4), np.uint8), "labels": np.zeros(2, np.float64)},
     "labels must be 2 integers, got float64"),
    ({"images": np.zeros((0, 4, 4), np.uint8), "labels": np.zeros(0, np.int64)},
     "holds no images"),
])
def test_read_npz_errors(tmp_path, arrays, message):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    with pytest.raises(UserError, match=message):
        read_npz(str(path))


def test_read_npz_missing_or_unreadable(tmp_path):
    with pytest.raises(UserError, match="--data: no such file"):
        read_npz(str(tmp_path / "none.npz"))
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(UserError, match=r"is not an npz file \(not a zip archive\)"):
        read_npz(str(junk))
    broken = tmp_path / "broken.npz"
    np.savez(broken, images=np.zeros((2, 4, 4), np.uint8), labels=np.zeros(2, np.int64))
    broken.write_bytes(broken.read_bytes()[:-30])  # the zip's directory cut short
    with pytest.raises(UserError, match="is not"):
        read_npz(str(broken))
