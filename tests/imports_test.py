"""The package's import graph: every module imports, no circle, and imports go down the layers.

Layers, bottom to top: the library (everything below), `runs/` (settings in, resumable outputs
out), `demo/` (the embedded world and its pipeline, built on runs), `cli/` (absl apps). Function-
local imports count as edges too: a circle hidden behind one is still a circle.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import dlogp_jax

ROOT = Path(dlogp_jax.__file__).resolve().parent
# A module may import from its own layer and the ones below, never above.
RANK = {"library": 0, "runs": 1, "demo": 2, "cli": 3}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(name: str, *, local_only: bool = False) -> set[str]:
    """The dlogp_jax modules `name` imports, anywhere in its file (module or function level), or
    only those imported inside a function."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    functions = [
        n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    found = set()
    for node in (n for f in functions for n in ast.walk(f)) if local_only else ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import sub` imports the submodule when there is one.
            found |= {
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            }
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name) for name in MODULES}


def _layer(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else "library"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_imports(name):
    importlib.import_module(name)


def test_no_import_circle():
    """Depth-first search for a back edge; the message shows the circle."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(GRAPH[m]):
            if n == "dlogp_jax":  # the facade re-exports; importing it is never needed below it
                continue
            if state.get(n) == 1:
                circle = stack[stack.index(n) :] + [n]
                pytest.fail("import circle: " + " -> ".join(circle))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)


def test_imports_go_down_the_layers():
    upward = [
        f"{m} ({_layer(m)}) imports {n} ({_layer(n)})"
        for m, targets in GRAPH.items()
        if m != "dlogp_jax"  # the facade sits on top and re-exports the public API
        for n in targets
        if RANK[_layer(n)] > RANK[_layer(m)]
    ]
    assert not upward, "imports against the layers:\n" + "\n".join(sorted(upward))


def test_no_function_local_imports_of_the_package():
    """A function-local import is where a circle hides; imports of the package sit at the top."""
    local = {m: sorted(t) for m in MODULES if (t := _imports(m, local_only=True))}
    assert not local, local


def test_the_demo_pipeline_is_its_top_and_settings_its_bottom():
    demo = {m for m in MODULES if m.startswith("dlogp_jax.demo.")}
    assert GRAPH["dlogp_jax.demo.settings"] & demo <= {"dlogp_jax.demo.task"}
    users = {m for m, t in GRAPH.items() if "dlogp_jax.demo.pipeline" in t}
    assert users <= {"dlogp_jax.demo"}, users  # the facade; cli/demo goes through it


def test_library_modules_never_import_the_facade():
    """`import dlogp_jax` from inside the package would load every layer from the bottom one."""
    offenders = [m for m, targets in GRAPH.items() if m != "dlogp_jax" and "dlogp_jax" in targets]
    assert not offenders, offenders
