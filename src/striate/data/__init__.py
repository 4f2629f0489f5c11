"""Data sets, transforms and loaders: MNIST (IDX files and a bundled sample), CIFAR-10, folders
of images, data sets by name (catalog), batch transforms and a reproducible DataLoader. Knows
nothing about models."""

from . import transforms
from .catalog import Dataset, load_dataset, load_test_part, read_npz
from .cifar import CIFAR10_CLASSES, load_cifar10, read_cifar_batch, read_cifar_bin, read_cifar_meta
from .folder import load_image, load_image_folder
from .images import mnist_style, prepare_image
from .loader import DataLoader
from .mnist import (
    MNIST_MD5,
    MNIST_MIRRORS,
    DownloadError,
    download_mnist,
    load_mnist,
    load_sample,
    read_idx,
    write_idx,
)

__all__ = [
    "CIFAR10_CLASSES",
    "MNIST_MD5",
    "MNIST_MIRRORS",
    "DataLoader",
    "Dataset",
    "DownloadError",
    "download_mnist",
    "load_cifar10",
    "load_dataset",
    "load_image",
    "load_image_folder",
    "load_mnist",
    "load_sample",
    "load_test_part",
    "mnist_style",
    "prepare_image",
    "read_cifar_batch",
    "read_cifar_bin",
    "read_cifar_meta",
    "read_idx",
    "read_npz",
    "transforms",
    "write_idx",
]
