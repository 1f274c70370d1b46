"""configs/*.py are written one field per line with a comment (big_vision style): every field of
every default config is set by its own `c.section.field = value` statement carrying a comment (at
the end of the statement or on the lines just above it), no section is packed into
`ConfigDict(dict(...))`, and nothing is kept out of the formatter with `# fmt: skip`."""

import ast
import io
import tokenize
from pathlib import Path

import pytest

from tests.cli.configs import get_config

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
WITH_DEFAULTS = (
    "score",
    "sample",
    "dapo",
    "demo",
    "grade",
    "view",
    "plot",
)  # pods.py only overrides these


def _comment_lines(source: str) -> tuple[set[int], set[int]]:
    """(lines holding a comment, lines holding only a comment), 1-based."""
    any_comment, only_comment = set(), set()
    code_lines = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            any_comment.add(tok.start[0])
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            code_lines.update(range(tok.start[0], tok.end[0] + 1))
    only_comment = any_comment - code_lines
    return any_comment, only_comment


def _dotted(node: ast.expr, root: str) -> str | None:
    """ "a.b" for the target `root.a.b`, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id == root and parts:
        return ".".join(reversed(parts))
    return None


def _commented_fields(path: Path, function: str, root: str) -> tuple[dict[str, bool], set[str]]:
    """For each field first assigned in `function` of `path`: whether that statement is commented;
    and the fields filled from a `distributed()` call."""
    source = path.read_text()
    any_comment, only_comment = _comment_lines(source)
    func = next(
        n
        for n in ast.walk(ast.parse(source))
        if isinstance(n, ast.FunctionDef) and n.name == function
    )
    fields: dict[str, bool] = {}
    from_calls: set[str] = set()
    for node in ast.walk(func):
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        name = _dotted(node.targets[0], root)
        if name is None or name in fields:
            continue
        above = node.lineno - 1
        commented = any(line in any_comment for line in range(node.lineno, node.end_lineno + 1))
        fields[name] = commented or above in only_comment
        call = node.value
        if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "distributed":
            from_calls.add(name)
    return fields, from_calls


def _leaves(tree: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        out += _leaves(value, path + ".") if isinstance(value, dict) else [path]
    return out


@pytest.mark.parametrize("name", WITH_DEFAULTS)
def test_every_default_field_is_set_on_its_own_commented_line(name):
    fields, from_calls = _commented_fields(CONFIGS / f"{name}.py", "get_config", "c")
    dist, _ = _commented_fields(ROOT / "dlogp_jax" / "config_args.py", "distributed", "d")
    for leaf in _leaves(get_config(name).to_dict()):
        section = leaf.rpartition(".")[0]
        if section in from_calls:  # filled by config_args.distributed()
            assert dist.get(leaf.rpartition(".")[2]), f"config_args.distributed: {leaf} uncommented"
            continue
        assert leaf in fields, f"configs/{name}.py: {leaf} is not set by its own statement"
        assert fields[leaf], f"configs/{name}.py: {leaf} has no comment"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.py")), ids=lambda p: p.name)
def test_no_packed_sections_and_no_fmt_skip(path):
    source = path.read_text()
    assert "# fmt: skip" not in source
    assert "ConfigDict(dict(" not in source.replace(" ", "").replace("\n", "")
    assert "PAPER.md" not in source  # cite docs/method.md
