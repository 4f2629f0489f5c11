"""DataLoader: coverage of an epoch, seeded shuffling, resumption, transforms, errors."""

import numpy as np
import pytest

from striate.data import DataLoader
from striate.data.transforms import RandomHorizontalFlip


def _dataset(n, shape=(4, 3)):
    """Image k is filled with k, label k is k: any batch shows which examples it holds."""
    index = np.arange(n, dtype=np.int64).reshape((n,) + (1,) * len(shape))
    images = np.broadcast_to(index, (n, *shape)).copy()
    return images, np.arange(n)


def _epoch(loader):
    return [(x.copy(), y.copy()) for x, y in loader]


CONFIGS = [(n, b, s, d) for n in (1, 7, 10, 64) for b in (1, 3, 10, 64) for s in (False, True)
           for d in (False, True)]


@pytest.mark.parametrize("n, batch_size, shuffle, drop_last", CONFIGS)
def test_batches_cover_the_epoch_once(n, batch_size, shuffle, drop_last):
    images, labels = _dataset(n)
    loader = DataLoader(images, labels, batch_size, shuffle=shuffle, drop_last=drop_last)
    batches = _epoch(loader)
    assert len(batches) == len(loader)
    assert len(loader) == (n // batch_size if drop_last else -(-n // batch_size))
    for x, y in batches:
        np.testing.assert_array_equal(x[:, 0, 0], y)  # images and labels stay paired
        assert x.shape[1:] == (4, 3) and x.dtype == images.dtype
    seen = np.concatenate([y for _, y in batches]) if batches else np.array([], int)
    sizes = [len(y) for _, y in batches]
    if drop_last:
        assert all(s == batch_size for s in sizes)
        assert len(seen) == n - n % batch_size and len(set(seen.tolist())) == len(seen)
    else:
        assert all(s == batch_size for s in sizes[:-1]) and 1 <= sizes[-1] <= batch_size
        np.testing.assert_array_equal(np.sort(seen), labels)
    if not shuffle:
        np.testing.assert_array_equal(seen, labels[: len(seen)])


def test_seeded_shuffle_is_reproducible_and_differs_per_epoch_and_seed():
    images, labels = _dataset(50)
    a = DataLoader(images, labels, 8, shuffle=True, seed=3)
    b = DataLoader(images, labels, 8, shuffle=True, seed=3)
    c = DataLoader(images, labels, 8, shuffle=True, seed=4)
    orders = {name: [np.concatenate([y for _, y in _epoch(loader)]) for _ in range(3)]
              for name, loader in (("a", a), ("b", b), ("c", c))}
    for epoch in range(3):
        np.testing.assert_array_equal(orders["a"][epoch], orders["b"][epoch])
        assert not np.array_equal(orders["a"][epoch], orders["c"][epoch])
    assert not np.array_equal(orders["a"][0], orders["a"][1])
    assert not np.array_equal(orders["a"][1], orders["a"][2])
    assert not np.array_equal(orders["a"][0], np.arange(50))


def test_resuming_at_an_epoch_boundary_repeats_the_batches():
    """Batches and transform randomness of epoch 2 do not depend on epochs 0 and 1."""
    images, labels = _dataset(30, (2, 5, 1))
    images = images + np.arange(5).reshape(1, 1, 5, 1)  # asymmetric, so a flip shows
    kwargs = dict(batch_size=7, shuffle=True, seed=11, transform=RandomHorizontalFlip())
    run = DataLoader(images, labels, **kwargs)
    epochs = [_epoch(run) for _ in range(3)]
    resumed = DataLoader(images, labels, **kwargs)
    resumed.set_epoch(2)
    for (x, y), (x2, y2) in zip(epochs[2], _epoch(resumed), strict=True):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    assert resumed.epoch == 3
    # image k's first pixel is k, or k + 4 once mirrored
    flipped = [bool(x[k, 0, 0, 0] != y[k]) for x, y in epochs[2] for k in range(len(y))]
    assert any(flipped) and not all(flipped)


def test_epoch_advances_when_iteration_starts():
    loader = DataLoader(*_dataset(10), batch_size=4, shuffle=True)
    assert loader.epoch == 0
    first = iter(loader)
    assert loader.epoch == 1
    next(first)  # a partly consumed epoch still counts as one
    second = [y for _, y in loader]
    reference = DataLoader(*_dataset(10), batch_size=4, shuffle=True)
    reference.set_epoch(1)
    for y, y_ref in zip(second, [y for _, y in reference], strict=True):
        np.testing.assert_array_equal(y, y_ref)


def test_transform_gets_the_batch_and_a_generator():
    calls = []

    def transform(x, rng):
        calls.append((x.shape, type(rng)))
        return x.astype(np.float32) * 2

    loader = DataLoader(*_dataset(5), batch_size=2, transform=transform)
    xs = [x for x, _ in loader]
    assert calls == [((2, 4, 3), np.random.Generator)] * 2 + [((1, 4, 3), np.random.Generator)]
    assert all(x.dtype == np.float32 for x in xs)
    np.testing.assert_array_equal(xs[1][:, 0, 0], [4, 6])


def test_batches_are_copies():
    images, labels = _dataset(6)
    for shuffle in (False, True):
        for x, y in DataLoader(images, labels, batch_size=4, shuffle=shuffle):
            x[...] = -1
            y[...] = -1
    np.testing.assert_array_equal(labels, np.arange(6))
    assert images.min() == 0


def test_accepts_non_contiguous_and_list_input():
    images = np.arange(40).reshape(10, 4)[:, ::2]
    loader = DataLoader(images, list(range(10)), batch_size=3)
    np.testing.assert_array_equal(np.concatenate([x for x, _ in loader]), images)


def test_batch_of_one_and_empty_epoch():
    loader = DataLoader(*_dataset(3), batch_size=1)
    assert [y.tolist() for _, y in loader] == [[0], [1], [2]]
    loader = DataLoader(*_dataset(3), batch_size=5, drop_last=True)
    assert len(loader) == 0 and list(loader) == []


def test_repr():
    loader = DataLoader(*_dataset(10), batch_size=4, shuffle=True, seed=2)
    assert repr(loader) == ("DataLoader(10 examples, batch_size=4, shuffle=True, seed=2, "
                            "drop_last=False)")


def test_errors():
    images, labels = _dataset(10)
    with pytest.raises(ValueError, match=r"DataLoader: images and labels must have one entry per "
                                         r"example, got images of shape \(10, 4, 3\) and labels "
                                         r"of shape \(9,\)"):
        DataLoader(images, labels[:9])
    with pytest.raises(ValueError, match="DataLoader: batch_size must be >= 1, got 0"):
        DataLoader(images, labels, batch_size=0)
    with pytest.raises(TypeError, match="DataLoader: batch_size must be an int, got 2.5"):
        DataLoader(images, labels, batch_size=2.5)
    with pytest.raises(TypeError, match="DataLoader: batch_size must be an int, got True"):
        DataLoader(images, labels, batch_size=True)
    with pytest.raises(TypeError, match="DataLoader: transform must be callable, got 3"):
        DataLoader(images, labels, transform=3)
    with pytest.raises(ValueError, match="DataLoader.set_epoch: epoch must be >= 0, got -1"):
        DataLoader(images, labels).set_epoch(-1)
