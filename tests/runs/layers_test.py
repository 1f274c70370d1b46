"""The layers below the CLIs never see a ConfigDict: runs/, data/ and analysis/ import neither
ml_collections nor dlogp_jax.cli (checked on the source, at every depth of the module)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "dlogp_jax"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("sub", ["runs", "data", "analysis"])
def test_no_config_dict_below_the_cli(sub):
    for path in sorted((PACKAGE / sub).glob("*.py")):
        bad = {n for n in _imports(path) if n.startswith(("ml_collections", "dlogp_jax.cli"))}
        assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"
