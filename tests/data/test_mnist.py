"""IDX files, load_mnist, the downloader (against a local HTTP server) and the bundled sample."""

import gzip
import hashlib
import http.server
import re
import threading
from pathlib import Path

import numpy as np
import pytest

from striate.data import (
    MNIST_MD5,
    DownloadError,
    download_mnist,
    load_mnist,
    load_sample,
    read_idx,
    write_idx,
)
from striate.data.mnist import SAMPLE_PATH


def _raises_naming(path, error=ValueError, problem=""):
    """pytest.raises for an error whose message names the file and then the problem."""
    return pytest.raises(error, match=re.escape(str(path)) + ".*" + problem)


# --- IDX ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(5,), (0,), (3, 28, 28), (2, 3, 4, 5), (7, 1), (1, 28, 28)])
@pytest.mark.parametrize("name, compress", [("a-idx-ubyte", False), ("a-idx-ubyte.gz", None)])
def test_idx_round_trip(tmp_path, rng, shape, name, compress):
    array = rng.integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / name
    write_idx(path, array, compress=compress)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    back = read_idx(path, ndim=len(shape))
    assert back.dtype == np.uint8 and back.shape == shape
    np.testing.assert_array_equal(back, array)
    back[...] = 0  # the result is a writable array of its own


def test_idx_header_bytes(tmp_path):
    """The layout of LeCun's page: magic 0x00000803, then big-endian dimensions, then pixels."""
    path = tmp_path / "x"
    write_idx(path, np.arange(6, dtype=np.uint8).reshape(1, 2, 3))
    assert path.read_bytes() == bytes.fromhex("00000803 00000001 00000002 00000003 000102030405")


def test_idx_gzip_detected_by_magic_not_name(tmp_path, rng):
    array = rng.integers(0, 256, (4, 6), dtype=np.uint8)
    gzipped, raw = tmp_path / "looks-raw.idx", tmp_path / "looks-gzipped.gz"
    write_idx(gzipped, array, compress=True)
    write_idx(raw, array, compress=False)
    np.testing.assert_array_equal(read_idx(gzipped), array)
    np.testing.assert_array_equal(read_idx(raw), array)


def test_idx_non_contiguous_input(tmp_path, rng):
    array = rng.integers(0, 256, (6, 8), dtype=np.uint8)[::2, ::-1]
    write_idx(tmp_path / "x", array)
    np.testing.assert_array_equal(read_idx(tmp_path / "x"), array)


def _idx_bytes(array):
    header = bytes((0, 0, 8, array.ndim)) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


@pytest.mark.parametrize("corrupt, problem", [
    (lambda b: b"\x01" + b[1:], "magic number 0x01000803"),
    (lambda b: b[:3] + b"\x01" + b[8:], "magic number 0x00000801 .*0x00000803"),  # labels magic
    (lambda b: b[:2] + b"\x0d" + b[3:], "data type 0x0D"),
    (lambda b: b[:-1], "truncated: its header declares shape \\(2, 3, 4\\) \\(24 bytes"),
    (lambda b: b + b"\0", "trailing bytes"),
    (lambda b: b[:10], "truncated inside its header"),
    (lambda b: b[:3], "too short"),
    (lambda b: b"", "too short"),
])
@pytest.mark.parametrize("gzipped", [False, True])
def test_idx_corrupt(tmp_path, corrupt, problem, gzipped):
    data = corrupt(_idx_bytes(np.zeros((2, 3, 4), np.uint8)))
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(gzip.compress(data) if gzipped else data)
    with _raises_naming(path, problem=problem):
        read_idx(path, ndim=3)


def test_idx_bad_gzip(tmp_path):
    good = gzip.compress(_idx_bytes(np.zeros((50, 28, 28), np.uint8)))
    variants = {
        "garbage.gz": b"\x1f\x8b" + b"this is not deflate data" * 4,
        "cut.gz": good[: len(good) // 2],
        "crc.gz": good[:-8] + bytes(8),  # wrong CRC and length trailer
    }
    for name, data in variants.items():
        (tmp_path / name).write_bytes(data)
        with _raises_naming(tmp_path / name, problem="not a valid gzip file"):
            read_idx(tmp_path / name)


def test_idx_missing_file(tmp_path):
    with _raises_naming(tmp_path / "nope.gz", FileNotFoundError, "no such file|nope"):
        read_idx(tmp_path / "nope.gz")


def test_write_idx_errors(tmp_path):
    with pytest.raises(TypeError, match="write_idx: array must have dtype uint8, got float64"):
        write_idx(tmp_path / "x", np.zeros(3))
    with pytest.raises(ValueError, match="write_idx: array must have 1 to 255 dimensions, got 0"):
        write_idx(tmp_path / "x", np.uint8(3))
    assert list(tmp_path.iterdir()) == []


# --- load_mnist -------------------------------------------------------------------------------

def _write_split(directory, rng, split="train", n=7, gz=True, n_labels=None):
    prefix = "train" if split == "train" else "t10k"
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n if n_labels is None else n_labels, dtype=np.uint8)
    suffix = ".gz" if gz else ""
    write_idx(Path(directory) / f"{prefix}-images-idx3-ubyte{suffix}", images)
    write_idx(Path(directory) / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return images, labels


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist(tmp_path, rng, split, gz):
    images, labels = _write_split(tmp_path, rng, split, gz=gz)
    got_images, got_labels = load_mnist(tmp_path, split)
    assert got_images.dtype == got_labels.dtype == np.uint8
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_load_mnist_kaggle_names(tmp_path, rng):
    images = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "t10k-images.idx3-ubyte", images)
    write_idx(tmp_path / "t10k-labels.idx1-ubyte", np.arange(3, dtype=np.uint8))
    np.testing.assert_array_equal(load_mnist(tmp_path, "test")[0], images)


def test_load_mnist_count_mismatch(tmp_path, rng):
    _write_split(tmp_path, rng, n=7, n_labels=6)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz' holds 7 images but "
                                         r"'.*train-labels-idx1-ubyte.gz' holds 6 labels"):
        load_mnist(tmp_path)


def test_load_mnist_swapped_files(tmp_path, rng):
    """A labels file where the images belong fails on its magic number, naming the file."""
    _write_split(tmp_path, rng)
    images, labels = (tmp_path / f"train-{k}-idx{d}-ubyte.gz" for k, d in (("images", 3),
                                                                           ("labels", 1)))
    images.write_bytes(labels.read_bytes())
    with _raises_naming(images, problem="magic number 0x00000801"):
        load_mnist(tmp_path)


def test_load_mnist_errors(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match="load_mnist: no train-images-idx3-ubyte file in"):
        load_mnist(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(FileNotFoundError, match="no train-labels-idx1-ubyte file .*download_mnist"):
        load_mnist(tmp_path)
    with pytest.raises(ValueError, match="load_mnist: split must be 'train' or 'test', got 'val'"):
        load_mnist(tmp_path, "val")


# --- download_mnist ----------------------------------------------------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    """GET /<mirror>/<file>: 'good' serves the file, 'missing' answers 404, 'corrupt' serves
    altered bytes, 'short' announces more bytes than it sends and closes the connection."""

    def do_GET(self):
        self.server.requests.append(self.path)
        mirror, _, name = self.path.strip("/").partition("/")
        body = self.server.files.get(name)
        if mirror == "missing" or body is None:
            self.send_error(404)
            return
        if mirror == "corrupt":
            body = bytes([body[0] ^ 1]) + body[1:]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body) + (1000 if mirror == "short" else 0)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server(rng):
    """A local HTTP server with three small gzipped IDX files and their MD5 table."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, 5, dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, 3, dtype=np.uint8),
    }
    httpd.files = {n: gzip.compress(_idx_bytes(a), mtime=0) for n, a in arrays.items()}
    httpd.md5 = {n: hashlib.md5(b).hexdigest() for n, b in httpd.files.items()}
    httpd.arrays, httpd.requests = arrays, []
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _download(server, directory, mirrors, **kwargs):
    return download_mnist(directory, mirrors=[server.url + m for m in mirrors], progress=False,
                          checksums=server.md5, timeout=10, **kwargs)


def test_download_success(server, tmp_path):
    directory = tmp_path / "new" / "mnist"
    assert _download(server, directory, ["good/"]) == directory
    assert sorted(p.name for p in directory.iterdir()) == sorted(server.files)  # no temp files
    for name, array in server.arrays.items():
        assert (directory / name).read_bytes() == server.files[name]
        np.testing.assert_array_equal(read_idx(directory / name), array)
    images, labels = load_mnist(directory, "train")
    np.testing.assert_array_equal(images, server.arrays["train-images-idx3-ubyte.gz"])


def test_download_shows_progress(server, tmp_path, capsys):
    download_mnist(tmp_path, mirrors=[server.url + "good"], checksums=server.md5, timeout=10)
    assert "train-images-idx3-ubyte.gz" in capsys.readouterr().err


def test_download_skips_verified_files_and_replaces_bad_ones(server, tmp_path):
    _download(server, tmp_path, ["good/"])
    server.requests.clear()
    _download(server, tmp_path, ["good/"])
    assert server.requests == []
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"stale")
    _download(server, tmp_path, ["good/"])
    assert server.requests == ["/good/train-labels-idx1-ubyte.gz"]
    assert (tmp_path / "train-labels-idx1-ubyte.gz").read_bytes() == \
        server.files["train-labels-idx1-ubyte.gz"]


def test_download_falls_back_to_the_next_mirror(server, tmp_path):
    _download(server, tmp_path, ["missing/", "good/"])
    name = "train-images-idx3-ubyte.gz"
    assert server.requests[:2] == [f"/missing/{name}", f"/good/{name}"]
    assert (tmp_path / name).read_bytes() == server.files[name]


def test_download_checksum_mismatch_leaves_no_file(server, tmp_path):
    with pytest.raises(DownloadError, match=r"no mirror delivered train-images-idx3-ubyte.gz "
                                            r"\(http://127.0.0.1:\d+/corrupt/train-images-idx3"
                                            r"-ubyte.gz: MD5 [0-9a-f]{32} differs from the "
                                            r"expected [0-9a-f]{32}\)"):
        _download(server, tmp_path, ["corrupt/"])
    assert list(tmp_path.iterdir()) == []


def test_download_interrupted_transfer_leaves_no_file(server, tmp_path):
    with pytest.raises(DownloadError, match=r"short/train-images-idx3-ubyte.gz: transfer ended "
                                            r"after \d+ of \d+ bytes"):
        _download(server, tmp_path, ["short/"])
    assert list(tmp_path.iterdir()) == []


def test_download_lists_every_mirror_failure(server, tmp_path):
    with pytest.raises(DownloadError, match=r"missing/train-images-idx3-ubyte\.gz: HTTP 404") \
            as info:
        download_mnist(tmp_path, mirrors=["http://127.0.0.1:1/", server.url + "missing/",
                                          server.url + "corrupt/"],
                       progress=False, checksums=server.md5, timeout=10)
    message = str(info.value)
    assert "127.0.0.1:1/train-images-idx3-ubyte.gz: " in message
    assert "missing/train-images-idx3-ubyte.gz: HTTP 404" in message
    assert "corrupt/train-images-idx3-ubyte.gz: MD5" in message
    assert isinstance(info.value, OSError)
    assert list(tmp_path.iterdir()) == []


def test_download_argument_errors(server, tmp_path):
    with pytest.raises(TypeError, match="download_mnist: mirrors must be a sequence of URLs"):
        download_mnist(tmp_path, mirrors=server.url, checksums=server.md5)
    with pytest.raises(ValueError, match="download_mnist: mirrors is empty"):
        download_mnist(tmp_path, mirrors=[], checksums=server.md5)
    with pytest.raises(ValueError, match="checksum table names '../evil.gz', not a file name"):
        download_mnist(tmp_path, mirrors=[server.url], checksums={"../evil.gz": "0" * 32})


def test_default_checksum_table():
    assert MNIST_MD5 == {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }


# --- the bundled sample ----------------------------------------------------------------------

@pytest.mark.parametrize("split, per_class", [("train", 400), ("test", 100)])
def test_sample_shapes_and_classes(split, per_class):
    images, labels = load_sample(split)
    assert images.shape == (10 * per_class, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10 * per_class,) and labels.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), [per_class] * 10)
    assert images.min() == 0 and images.max() == 255
    assert len({im.tobytes() for im in images}) == len(images)


def test_sample_parts_are_disjoint():
    train = {im.tobytes() for im in load_sample("train")[0]}
    test = {im.tobytes() for im in load_sample("test")[0]}
    assert len(train) == 4000 and len(test) == 1000 and not train & test


def _ascii(image):
    return "\n".join("".join("#" if v >= 128 else "+" if v >= 32 else "." for v in row)
                     for row in image)


NINE = """\
............................
............................
............................
............................
............................
............................
........+#####+.............
.......+########+...........
.......#####+####+..........
......###+....+####.........
.....+##+.......######......
.....+##+.......+#####......
.....+##+........#####......
.....+##+........+###+......
......###+........###+......
.......####+.....+###.......
.......+######+######.......
.........############.......
............++++++###.......
..................+##.......
..................+##.......
..................+##.......
..................+##+......
..................+##+......
..................+###......
...................+##......
............................
............................"""


def test_sample_digit_is_upright():
    """The second test digit is a 9 with its loop at the top and its tail down to the right."""
    images, labels = load_sample("test")
    assert labels[1] == 9
    assert _ascii(images[1]) == NINE


def test_sample_orientation_statistics():
    """Mean ink: a 6 is heavier at the bottom, a 7 at the top, a 3 on the right. Flipping,
    mirroring or transposing the images breaks at least one of these."""
    images, labels = load_sample("train")
    ink = {d: images[labels == d].astype(np.float64).mean(axis=0) for d in (3, 6, 7)}
    assert ink[6][14:].sum() > 1.3 * ink[6][:14].sum()
    assert ink[7][:14].sum() > 1.1 * ink[7][14:].sum()
    assert ink[3][:, 14:].sum() > 1.3 * ink[3][:, :14].sum()


def test_sample_checksum_matches_its_documentation():
    notes = SAMPLE_PATH.with_name("MNIST_SAMPLE.md").read_text()
    documented = re.findall(r"`([0-9a-f]{64})`", notes)
    assert hashlib.sha256(SAMPLE_PATH.read_bytes()).hexdigest() == documented[-1]


def test_sample_errors():
    with pytest.raises(ValueError, match="load_sample: split must be 'train' or 'test', got 'all'"):
        load_sample("all")
