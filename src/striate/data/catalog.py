"""Data sets by name: `load_dataset("bundled" | "mnist" | "cifar10" | "folder:PATH")`, the test
part of a data set again from the record a checkpoint keeps (`load_test_part`), and labelled
images from an npz file (`read_npz`).

These read what a user names on the command line (`--dataset`, `--data-dir`, `--data`), so a
problem the user can fix raises `striate.errors.UserError` with one sentence naming the option.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from .cifar import CIFAR10_CLASSES, load_cifar10
from .folder import load_image_folder
from .mnist import download_mnist, load_mnist, load_sample

DATASETS = ("bundled", "mnist", "cifar10", "folder:PATH")


@dataclass
class Dataset:
    """A data set's two parts as uint8 images (N, H, W[, C]) and integer labels (N,).

    record: what `load_test_part` needs to find the test part again (a JSON-able dict that a
    checkpoint stores as its `dataset` metadata).
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: list[str]
    record: dict


def _default_data_dir(name: str) -> Path:
    return Path("data") / name


def _load_files(spec: str, data_dir: str | None, download: bool):
    """MNIST or CIFAR-10 from their files: ((train), (test), class names, record)."""
    folder = Path(data_dir).expanduser() if data_dir else _default_data_dir(spec)
    if spec == "mnist":
        if download:
            download_mnist(folder)
        try:
            train, test = load_mnist(folder, "train"), load_mnist(folder, "test")
        except FileNotFoundError:
            where = "--data-dir" if data_dir else "the default --data-dir"
            raise UserError(f"--dataset mnist: the MNIST files are not in '{folder}' ({where}); "
                            f"add --download to fetch them there (checksums verified), or "
                            f"point --data-dir at the folder that holds them") from None
        names = [str(i) for i in range(10)]
    else:
        if download:
            raise UserError("--download: striate downloads MNIST only; fetch CIFAR-10's "
                            "python batches from https://www.cs.toronto.edu/~kriz/cifar.html")
        if not folder.is_dir():
            raise UserError(f"--data-dir: no such folder '{folder}' (expected CIFAR-10's "
                            f"python batches there)")
        train, test = load_cifar10(folder, "train"), load_cifar10(folder, "test")
        names = list(CIFAR10_CLASSES)
    return train, test, names, {"name": spec, "data_dir": str(folder.resolve())}


def _read_folder(root: Path, gray: bool, image_size, fit: str):
    """load_image_folder, its errors in the command line's words."""
    try:
        return load_image_folder(root, image_size=image_size, grayscale=gray, fit=fit)
    except ValueError as e:
        text = str(e).replace("load_image_folder: ", "")
        raise UserError(f"--dataset: {text.replace('pass image_size', 'pass --image-size H,W')}"
                        ) from None


def _load_folder(root: Path, channels: int, image_size=None, fit: str = "crop"):
    """An image folder: root/{train,test}/<class>/ or root/<class>/ of which a fixed fifth (seed
    0, independent of any training seed) is the test part. ((train), (test), names, record)."""
    if not root.is_dir():
        raise UserError(f"--dataset: no such folder '{root}'")
    gray = channels == 1
    record = {"name": "folder", "path": str(root.resolve()), "grayscale": gray}
    if image_size is not None:
        record["image_size"], record["fit"] = [int(n) for n in image_size], fit
    if (root / "train").is_dir() and (root / "test").is_dir():
        x, y, names = _read_folder(root / "train", gray, image_size, fit)
        tx, ty, test_names = _read_folder(root / "test", gray, image_size, fit)
        if test_names != names:
            raise UserError(f"--dataset: '{root}/test' has classes {test_names} but "
                            f"'{root}/train' has {names}")
        return (x, y), (tx, ty), names, record
    x, y, names = _read_folder(root, gray, image_size, fit)
    order = np.random.default_rng(0).permutation(len(y))
    cut = len(y) - max(1, len(y) // 5)
    record["test_part"] = "a fifth, seed 0"
    return (x[order[:cut]], y[order[:cut]]), (x[order[cut:]], y[order[cut:]]), names, record


def load_dataset(spec: str, data_dir: str | None = None, download: bool = False,
                 channels: int = 1, image_size=None, fit: str = "crop") -> Dataset:
    """A data set by name: bundled | mnist | cifar10 | folder:PATH -> Dataset.

    bundled: the MNIST sample in the package; mnist, cifar10: their files in data_dir (default
    data/<name>), MNIST downloaded there first if download; folder:PATH: one sub-folder per
    class, decoded with `channels` channels (1: grey scale, else RGB), each resized to
    image_size (H, W) if given, keeping its aspect ratio as `fit` says (see
    `striate.data.images.fit_picture`: crop, pad or stretch); MNIST and CIFAR-10 images are
    resized the same way when image_size is given.
    Images are uint8 (N, H, W) for MNIST, (N, H, W, C) otherwise; labels int64 (N,).
    UserError for an unknown spec or a missing folder.

    >>> load_dataset("bundled").test_images.shape
    (1000, 28, 28)
    """
    if spec == "bundled":
        train, test = load_sample("train"), load_sample("test")
        names, record = [str(i) for i in range(10)], {"name": "bundled"}
    elif spec in ("mnist", "cifar10"):
        train, test, names, record = _load_files(spec, data_dir, download)
    elif spec.startswith("folder:"):
        root = Path(spec[len("folder:"):]).expanduser()
        train, test, names, record = _load_folder(root, channels, image_size, fit)
    else:
        import difflib

        close = difflib.get_close_matches(spec, DATASETS[:-1], n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UserError(f"--dataset: expected {', '.join(DATASETS[:-1])} or {DATASETS[-1]}, "
                        f"got {spec!r}{hint}")
    if image_size is not None and not spec.startswith("folder:"):
        train = (_resize_all(train[0], image_size, fit), train[1])
        test = (_resize_all(test[0], image_size, fit), test[1])
        record = {**record, "image_size": [int(n) for n in image_size], "fit": fit}
    return Dataset(train[0], train[1].astype(np.int64), test[0], test[1].astype(np.int64),
                   names, record)


def _resize_all(images: np.ndarray, size, fit: str) -> np.ndarray:
    """uint8 (N, H, W[, C]) -> (N, *size[, C]), each image fitted by `fit_picture`."""
    from .images import fit_picture

    channels = images.shape[3] if images.ndim == 4 else 1
    out = np.stack([fit_picture(image, size, channels, fit) for image in images])
    return out[..., 0] if images.ndim == 3 else out


def load_test_part(record: dict, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The test part (images uint8 (N, H, W[, C]), labels int64 (N,)) of the data set that a
    `Dataset.record` describes; data_dir overrides the folder recorded for MNIST/CIFAR-10.

    >>> load_test_part({"name": "bundled"})[1].shape
    (1000,)
    """
    name = record.get("name")
    size, fit = record.get("image_size"), record.get("fit", "crop")
    if name == "folder":
        dataset = load_dataset("folder:" + record["path"],
                               channels=1 if record.get("grayscale") else 3, image_size=size,
                               fit=fit)
    elif name in ("bundled", "mnist", "cifar10"):
        dataset = load_dataset(name, data_dir or record.get("data_dir"), image_size=size,
                               fit=fit)
    else:
        raise UserError("the checkpoint does not say which data set it was trained on (it "
                        "was saved without one); pass --data FILE.npz with images and labels")
    return dataset.test_images, dataset.test_labels


def read_npz(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Labelled images from an npz file with arrays 'images' and 'labels'.

    Returns images uint8 (N, H, W) or (N, H, W, C) and labels int64 (N,); UserError for a
    missing or unreadable file, a missing array, or arrays of the wrong dtype or shape.
    """
    if not Path(path).is_file():
        raise UserError(f"--data: no such file '{path}'")
    if not zipfile.is_zipfile(path):
        raise UserError(f"--data: '{path}' is not an npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = {"images", "labels"} - set(archive.files)
            if missing:
                raise UserError(f"--data: '{path}' lacks {sorted(missing)} (it has "
                                f"{archive.files})")
            images, labels = archive["images"], archive["labels"]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise UserError(f"--data: '{path}' is not a readable npz file ({e})") from None
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise UserError(f"--data: '{path}' images must be uint8 N x H x W or N x H x W x C, got "
                        f"{images.dtype} {images.shape}")
    if len(images) == 0:
        raise UserError(f"--data: '{path}' holds no images")
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"--data: '{path}' labels must be {len(images)} integers, got "
                        f"{labels.dtype} {labels.shape}")
    return images, labels.astype(np.int64)
