"""Rules the test suite keeps about itself."""

import ast
from pathlib import Path

TESTS = Path(__file__).parent


def _raises_without_match(path: Path) -> list[str]:
    source = path.read_text()
    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "raises" and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "pytest"
                and not any(keyword.arg == "match" for keyword in node.keywords)):
            found.append(f"{path.relative_to(TESTS.parent)}:{node.lineno}")
    return found


def test_every_pytest_raises_checks_the_message():
    """An error test without `match=` passes on any error of that type, the wrong one too."""
    bare = [place for path in sorted(TESTS.rglob("*.py")) for place in _raises_without_match(path)]
    assert bare == [], f"pytest.raises without match= at {', '.join(bare)}"
