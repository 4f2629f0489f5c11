"""Every example in a docstring runs and prints what it says (NumPy is `np` in all of them)."""

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import striate

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(striate.__path__, prefix="striate.")
    if info.name not in ("striate.__main__",)
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name, globs={"np": np, **vars(module)}):
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{name}: {results.failed} of {results.attempted} examples failed"
