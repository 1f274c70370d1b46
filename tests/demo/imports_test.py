"""The demo's import graph: every module imports, the graph goes one way, only `tools` sees `cli`."""

import ast
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest

import dlogp_jax.demo

PACKAGE = "dlogp_jax.demo"
# The demo reaches the sample / score / train tools through this module only.
MAY_IMPORT_CLI = {"dlogp_jax.demo.tools"}


def _modules() -> dict[str, Path]:
    root = Path(dlogp_jax.demo.__file__).parent
    found = {PACKAGE: root / "__init__.py"}
    for info in pkgutil.iter_modules([str(root)]):
        assert not info.ispkg, f"{info.name}: the demo is flat (update this test for subpackages)"
        found[f"{PACKAGE}.{info.name}"] = root / f"{info.name}.py"
    return found


MODULES = _modules()


def _is_module(name: str) -> bool:
    if name in MODULES:
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # `name` is an attribute of a module, not a submodule
        return False


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported dlogp_jax module, whether the import is inside a function) for one file."""
    out = []

    def visit(node: ast.AST, local: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                out.extend((a.name, inner) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                for a in child.names:  # `from pkg import sub` imports the submodule pkg.sub
                    sub = f"{child.module}.{a.name}"
                    out.append((sub if _is_module(sub) else child.module, inner))
            visit(child, inner)

    visit(ast.parse(path.read_text()), False)
    return [(name, local) for name, local in out if name.split(".")[0] == "dlogp_jax"]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_imports(name):
    importlib.import_module(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_only_tools_imports_cli(name):
    cli = [m for m, _ in _imports(MODULES[name]) if m.startswith("dlogp_jax.cli")]
    if name not in MAY_IMPORT_CLI:
        assert not cli, f"{name} imports {cli}: go through {sorted(MAY_IMPORT_CLI)}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_function_local_imports_of_the_package(name):
    local = [m for m, inner in _imports(MODULES[name]) if inner]
    assert not local, f"{name} imports {local} inside a function (a hidden circle?)"


def test_the_demo_import_graph_has_no_cycle():
    edges = {
        name: {m for m, _ in _imports(path) if m in MODULES and m != PACKAGE}
        for name, path in MODULES.items()
    }
    for name, path in MODULES.items():
        if name != PACKAGE:  # a submodule importing the facade closes a circle through it
            assert PACKAGE not in {m for m, _ in _imports(path)}, f"{name} imports the facade"
    done: set[str] = set()

    def walk(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, "import circle: " + " -> ".join((*path, name))
        if name in done:
            return
        for nxt in sorted(edges[name]):
            walk(nxt, (*path, name))
        done.add(name)

    for name in sorted(MODULES):
        walk(name, ())
    assert edges["dlogp_jax.demo.settings"] <= {"dlogp_jax.demo.task"}  # the bottom
    top = [n for n, e in edges.items() if "dlogp_jax.demo.pipeline" in e and n != PACKAGE]
    assert not top, f"{top} import the pipeline, the top of the demo"
