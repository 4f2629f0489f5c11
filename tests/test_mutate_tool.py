"""tools/mutate.py, the mutation check: its list stays in step with the code, and a mutation
whose text has moved is reported as NOT FOUND, never as caught."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def mutate():
    spec = importlib.util.spec_from_file_location("mutate", ROOT / "tools" / "mutate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutate"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    yield module
    del sys.modules["mutate"]


def test_every_mutation_finds_its_text_once_and_names_existing_tests(mutate):
    names = [m.name for m in mutate.MUTATIONS]
    assert len(names) == len(set(names))
    for m in mutate.MUTATIONS:
        count = (ROOT / m.file).read_text().count(m.old)
        assert count == 1, f"{m.name}: the old text occurs {count} times in {m.file}; update it"
        assert m.old != m.new and m.tests, m.name
        for test in m.tests:
            assert (ROOT / test.split("::")[0]).is_file(), f"{m.name}: no test file {test}"


def test_text_not_found_is_reported_not_counted_as_caught(mutate):
    planted = mutate.Mutation("moved", "src/striate/arith.py", "text that is not there", "x",
                              "a record whose code has moved", ("tests/test_conftest.py",))
    rows = mutate.run([planted], sys.executable, timeout=120, log=lambda line: None)
    assert [row["outcome"] for row in rows] == ["NOT FOUND"]
    assert "occurs 0 times in src/striate/arith.py" in rows[0]["by"]
    report = mutate.table(rows)
    assert report.endswith("0 of 1 planted bugs caught")
