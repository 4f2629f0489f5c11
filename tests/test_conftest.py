"""The `rng` fixture gives every test, and every parametrisation of one, its own seed."""

import numpy as np

from tests.conftest import seed_of


def test_parametrisations_that_permute_their_ids_get_different_seeds():
    a = seed_of("tests/x.py::test_f[False-True]")
    b = seed_of("tests/x.py::test_f[True-False]")
    assert a != b
    assert a == 0xCC885AC5  # zlib.crc32 of the id: the same in every run and process


def test_seeds_of_many_ids_are_distinct_and_spread():
    ids = [f"tests/functional/test_conv.py::test_conv[{i}-{j}-{k}]"
           for i in range(20) for j in range(20) for k in ("same", "valid", "full")]
    seeds = np.array([seed_of(i) for i in ids], dtype=np.uint64)
    assert len(set(seeds.tolist())) == len(ids)
    assert seeds.max() > 2**31 and seeds.min() < 2**28  # the whole 32-bit range, not a sum


def test_rng_fixture_is_seeded_from_the_test_id(rng, request):
    want = np.random.default_rng(seed_of(request.node.nodeid)).standard_normal(4)
    np.testing.assert_array_equal(rng.standard_normal(4), want)
