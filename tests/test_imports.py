"""The package's import graph: every module imports alone, in a fresh interpreter, and no two
modules import each other (directly or round a longer loop) at module level."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import striate

ROOT = Path(striate.__file__).parent


def _modules() -> list[str]:
    names = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = _modules()


def _is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (ROOT.parent / relative).with_suffix(".py").exists() or (
        ROOT.parent / relative / "__init__.py").exists()


def _imports(name: str) -> set[str]:
    """The striate modules `name` imports at module level (not inside functions)."""
    path = ROOT.parent / Path(*name.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("striate")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                parent = parent[:len(parent) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            if not base.startswith("striate"):
                continue
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if _is_module(child) else base)
    return found - {name}


def test_no_import_cycles():
    graph = {name: _imports(name) for name in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for child in sorted(graph.get(node, ())):
            # a package's __init__ importing its own submodules is how packages are built
            if child.startswith(node + ".") and node in graph and (
                    ROOT.parent / Path(*node.split(".")) / "__init__.py").exists():
                continue
            if state.get(child) == 1:
                loop = path[path.index(child):] + [child]
                pytest.fail(f"import cycle: {' -> '.join(loop)}")
            if state.get(child) is None:
                visit(child)
        path.pop()
        state[node] = 2

    for name in MODULES:
        if name not in state:
            visit(name)


def test_every_module_imports_alone():
    """One fresh interpreter per module (a cycle would show as an ImportError here)."""
    failures = []
    for name in (n for n in MODULES if not n.endswith("__main__")):  # that one runs the CLI
        run = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True,
                             text=True, timeout=120)
        if run.returncode:
            failures.append(f"{name}: {run.stderr.strip().splitlines()[-1]}")
    assert not failures, "\n".join(failures)
