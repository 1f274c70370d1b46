"""Where the config files are and what they say: preset names, field defaults and their comments.

The source of every config is the top-level `configs/` directory. A wheel ships a copy as
`dlogp_jax/configs/` (setup.py), so the CLIs work from any directory after `pip install .`:
`--config=dapo:tiny` names the packaged `configs/dapo.py` with the argument `tiny`, and a path
`configs/NAME.py` that does not exist in the working directory falls back to the packaged file too
(the README's commands then work outside a checkout).
"""

from __future__ import annotations

import ast
import importlib.util
import io
import tokenize
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parents[1]


def config_dir() -> Path:
    """The directory of the config files: the wheel's `dlogp_jax/configs/`, else the source tree's
    `configs/` (a checkout or an editable install).

    Raises:
      FileNotFoundError: neither exists (a broken install).
    """
    packaged = _PACKAGE / "configs"
    if packaged.is_dir():
        return packaged
    source = _PACKAGE.parent / "configs"
    if source.is_dir() and (_PACKAGE.parent / "pyproject.toml").is_file():
        return source
    raise FileNotFoundError(
        f"no config files beside {_PACKAGE} (neither dlogp_jax/configs/ nor ../configs/); "
        "reinstall with `pip install dlogp_jax` or `pip install -e .` in a checkout."
    )


def config_names() -> list[str]:
    """The preset file names, e.g. ["dapo", "demo", ...] (`--config=<name>[:arg]`)."""
    return sorted(p.stem for p in config_dir().glob("*.py") if not p.stem.startswith("_"))


def config_path(name: str) -> Path:
    """The file of config `name` (e.g. "dapo" -> .../configs/dapo.py)."""
    return config_dir() / f"{name}.py"


def resolve(value: str) -> str:
    """A `--config` value with preset names turned into paths, the `:arg` part kept.

    `dapo:tiny` -> `<config_dir>/dapo.py:tiny`; an existing file is left as it is; a missing
    `configs/NAME.py` (relative) becomes the packaged one.

    Raises:
      ValueError: one line naming the missing file and the preset names.
    """
    file, colon, arg = value.partition(":")
    path = Path(file).expanduser()
    if path.is_file():
        return value
    names = config_names()
    bare = len(path.parts) == 1 and path.suffix == ""
    relative_default = path.parent == Path("configs") and path.suffix == ".py"
    if (bare or relative_default) and path.stem in names:
        return f"{config_path(path.stem)}{colon}{arg}"
    raise ValueError(
        f"--config={value}: no config file {file!r}; give a path or a preset name "
        f"({', '.join(names)}), e.g. --config=dapo:tiny."
    )


def load(name_or_path: str, arg: str | None = None):
    """`get_config(arg)` of a config file or preset name, as `--config=<name>:<arg>` gives it
    (unlocked: callers may fill in fields)."""
    path = Path(resolve(name_or_path))
    spec = importlib.util.spec_from_file_location(f"dlogp_configs_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


# ------------------------------------------------------------------------------ documentation
def field_comments(path: Path) -> dict[str, str]:
    """The comment of each field of `get_config` in the config file `path`, by dotted name.

    A field's comment is the one on its (first) assignment statement or the comment lines just
    above it (configs/*.py write one field per line with a comment). Sections filled by a call to
    a `dlogp_jax.config_args` function (`c.distributed = distributed()`) take that function's
    field comments.
    """
    comments = _function_comments(Path(path).read_text(), "get_config")
    helpers = Path(_PACKAGE / "config_args.py").read_text()
    for section, func in list(comments.pop("__calls__", {}).items()):
        for name, text in _function_comments(helpers, func).items():
            if name != "__calls__":
                comments[f"{section}.{name}"] = text
    return comments


def _function_comments(source: str, function: str) -> dict[str, Any]:
    """{dotted field: comment} of the assignments to the first local ConfigDict of `function`;
    "__calls__" maps sections assigned from a plain call to the called function's name."""
    lines = _comments_by_line(source)
    tree = ast.parse(source)
    func = next(
        (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function), None
    )
    out: dict[str, Any] = {"__calls__": {}}
    if func is None:
        return out
    root = _root_name(func)
    for node in ast.walk(func):
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        name = _dotted(node.targets[0], root)
        if name is None or name in out:
            continue
        own = [lines[k][0] for k in range(node.lineno, node.end_lineno + 1) if k in lines]
        above, k = [], node.lineno - 1
        while k in lines and lines[k][1]:  # comment-only lines just above
            above.insert(0, lines[k][0])
            k -= 1
        out[name] = " ".join(own or above)
        call = node.value
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and not call.args:
            out["__calls__"][name] = call.func.id
    return out


def _root_name(func: ast.FunctionDef) -> str:
    """The variable the config is built in (`c` in `c = ml_collections.ConfigDict()`)."""
    for node in func.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            target = node.targets[0]
            if isinstance(target, ast.Name) and "ConfigDict" in ast.unparse(node.value.func):
                return target.id
    return "c"


def _comments_by_line(source: str) -> dict[int, tuple[str, bool]]:
    """{1-based line: (comment text without '#', whether the line holds only the comment)}."""
    code, comments = set(), {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            code.update(range(tok.start[0], tok.end[0] + 1))
    return {k: (text, k not in code) for k, text in comments.items()}


def _dotted(node: ast.expr, root: str) -> str | None:
    """ "a.b" for the assignment target `root.a.b`, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id == root and parts:
        return ".".join(reversed(parts))
    return None


def preset_args(path: Path) -> list[str]:
    """The `:arg` words of a config file: the keywords of its `parse_arg(arg, ...)` call."""
    for node in ast.walk(ast.parse(Path(path).read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "parse_arg":
            return [k.arg for k in node.keywords if k.arg]
    return []
