"""`--help` of the CLIs: what the tool does, how to pick a config, and every config field with its
default and its comment, read from the config file's source (configs/*.py comment every field)."""

from __future__ import annotations

import json
from pathlib import Path

from dlogp_jax.cli import config_files

_FLAGS = (
    ("--config=FILE|NAME[:ARG]", "config file or preset name (e.g. dapo:tiny), from any directory"),
    ("--config.FIELD=VALUE", "override one field (the list below)"),
    ("--print_config", "print the resolved config (after overrides) as JSON and exit"),
    ("--dry_run", "validate settings and inputs, print what would run, write nothing"),
    ("--helpfull", "every absl flag (logging, ...)"),
)
_WIDTH = 38  # column of the comments


def render(doc: str, config_arg: str) -> str:
    """The whole `--help` text.

    Args:
      doc: the CLI module's docstring (first line: "`dlogp-x`: what it does").
      config_arg: the `--config` value given (or the default config's name).
    """
    lines = [doc.strip(), "", "Flags:"]
    lines += [_row(flag, text) for flag, text in _FLAGS]
    names = config_files.config_names()
    lines += ["", f"Config files ({config_files.config_dir()}): {', '.join(names)}"]
    try:
        file, _, arg = config_files.resolve(config_arg).partition(":")
        config = config_files.load(file, arg or None)
    except (ValueError, OSError) as e:
        return "\n".join([*lines, "", f"(cannot list the fields: {e})"])
    path = Path(file)
    if presets := config_files.preset_args(path):
        lines.append(f"Presets of {path.stem}: {', '.join(presets)} (--config={path.stem}:NAME)")
    lines += ["", f"Config fields of --config={config_arg} (default, then what it does):"]
    lines += field_lines(config.to_dict(), _comments(path, config.to_dict()))
    return "\n".join(lines)


def field_lines(values: dict, comments: dict[str, str]) -> list[str]:
    """One line per leaf field, in the config file's order: `  name = default` then its comment
    at a fixed column."""
    order = {name: i for i, name in enumerate(comments)}
    out = []
    for name, value in sorted(_leaves(values), key=lambda kv: order.get(kv[0], len(order))):
        out.append(_row(f"{name} = {json.dumps(value, default=str)}", comments.get(name, "")))
    return out


def _row(left: str, text: str) -> str:
    left = f"  {left}"
    if not text:
        return left
    if len(left) >= _WIDTH:
        return f"{left}\n{' ' * _WIDTH}{text}"
    return f"{left:<{_WIDTH}}{text}"


def _leaves(tree: dict, prefix: str = "") -> list[tuple[str, object]]:
    out = []
    for key, value in tree.items():
        if isinstance(value, dict):
            out += _leaves(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def _comments(path: Path, values: dict) -> dict[str, str]:
    """The field comments of `path`; a file that only adjusts another config's fields (pods.py)
    borrows the comments of the sibling config sharing the most fields."""
    comments = config_files.field_comments(path)
    names = {name for name, _ in _leaves(values)}
    if names <= set(comments):
        return comments
    siblings = [config_files.field_comments(p) for p in sorted(path.parent.glob("*.py"))]
    best = max(siblings, key=lambda c: len(names & set(c)), default={})
    return {**best, **{k: v for k, v in comments.items() if v}}
