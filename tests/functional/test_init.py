import importlib

import striate.functional as F

FAMILIES = ("activation", "conv", "dropout", "linear", "loss", "norm", "pool", "shape")


def test_star_import_gives_every_public_op():
    names: dict = {}
    exec("from striate.functional import *", names)
    for family in FAMILIES:
        module = importlib.import_module(f"striate.functional.{family}")
        for name in module.__all__:
            assert names[name] is getattr(module, name), name
    assert names["concatenate"] is F.concatenate and callable(names["conv2d"])
