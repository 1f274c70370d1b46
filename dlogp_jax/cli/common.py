"""absl / ConfigDict glue shared by the CLIs: the app wrapper, config files, one-line errors.

Every CLI takes `--config=FILE_OR_PRESET[:ARG]` (a path, or a preset name such as `dapo:tiny` that
works from any directory: cli/config_files.py), `--config.FIELD=VALUE` overrides, and:
  --help          what the tool does and every config field with its default and comment
  --print_config  the resolved config (after overrides) as JSON, then exit 0
  --dry_run       validate the settings and inputs, print what would run, write nothing
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from absl import app, flags
from ml_collections import config_flags

from dlogp_jax import runs
from dlogp_jax.cli import config_files, help_text
from dlogp_jax.errors import CheckpointError, DataError, UnsupportedModelError
from dlogp_jax.runs import settings

HELP_FLAGS = ("--help", "-h", "--helpshort", "-?")


def fail(message: str) -> None:
    """Ends the program with one clear error line (no traceback) and exit status 1."""
    raise SystemExit(f"error: {message}")


def to_settings(cls, config):
    """The settings dataclass `cls` of a ConfigDict (or dict); bad settings end with one line."""
    values = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    try:
        return settings.from_dict(cls, values)
    except ValueError as e:
        fail(str(e))


def run_app(
    run_fn,
    config_name: str,
    extra_errors: tuple[type[Exception], ...] = (),
    positional: bool = False,
    *,
    settings_fn: Callable[[Any], Any] | None = None,
    doc: str = "",
) -> None:
    """Defines `--config` (default `configs/<config_name>.py`) and runs `run_fn(config)` as an app.

    The flags are defined here, at program start, not at import: several CLIs can then be imported
    in one process (tests, notebooks). User errors (bad files, rows, checkpoints, settings, and
    `extra_errors`) end with one line, no traceback.

    Args:
      run_fn: config -> result, the CLI's `run`.
      config_name: the default config file's name (configs/<config_name>.py).
      extra_errors: more exception types that end with one line.
      positional: the words after the flags go to `run_fn(config, args)` (`dlogp-plot train
        RUN...`); otherwise they are refused.
      settings_fn: config -> the run's settings dataclass (validated), for `--dry_run`.
      doc: what the tool does (the CLI module's docstring), the head of `--help`.
    """
    argv = sys.argv
    if any(a in HELP_FLAGS for a in argv[1:]):
        print(help_text.render(doc, _config_arg(argv, config_name)))
        raise SystemExit(0)
    errors = (DataError, CheckpointError, UnsupportedModelError, ValueError, *extra_errors)
    try:  # ml_collections applies the --config.x overrides here, at definition
        config = config_flags.DEFINE_config_file(
            "config", default_config(config_name), lock_config=True
        )
    except (AttributeError, KeyError) as e:
        fail(unknown_key_message(e, sys.argv[1:]))
    flags.FLAGS["config"].parser = PresetParser(flags.FLAGS["config"].parser)
    print_flag = flags.DEFINE_boolean("print_config", False, "print the resolved config and exit")
    dry_flag = flags.DEFINE_boolean(
        "dry_run", False, "validate settings and inputs, print what would run, write nothing"
    )

    def main(argv):
        if len(argv) > 1 and not positional:
            fail(f"unexpected arguments {argv[1:]}; settings go through --config.<field>=<value>.")
        try:
            if print_flag.value:
                print(json.dumps(config.value.to_dict(), indent=2, default=str))
            elif dry_flag.value:
                words = (argv[1:],) if positional else ()
                print(dry_run(settings_fn, config.value, *words))
            elif positional:
                run_fn(config.value, argv[1:])
            else:
                run_fn(config.value)
        except errors as e:
            fail(str(e))

    app.run(main)


def dry_run(settings_fn: Callable[..., Any] | None, config, *args) -> str:
    """What `--dry_run` prints: the validated settings, their inputs checked (runs.plan).
    `args`: the positional words of a `positional` tool."""
    if settings_fn is None:
        raise ValueError("--dry_run: this tool has no dry run; use --print_config.")
    return runs.plan(settings_fn(config, *args))


class PresetParser(flags.ArgumentParser):
    """Wraps ml_collections' `--config` parser: preset names (`dapo:tiny`) become file paths."""

    def __init__(self, inner: flags.ArgumentParser):
        self.inner = inner

    def parse(self, argument):
        return self.inner.parse(config_files.resolve(argument))

    def flag_type(self):
        return self.inner.flag_type()


def _config_arg(argv: list[str], config_name: str) -> str:
    """The `--config` value given on the command line (`--config=X` or `--config X`), or the
    default config's name."""
    for i, arg in enumerate(argv[1:], 1):
        if arg.startswith("--config="):
            return arg.partition("=")[2]
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
    return config_name


def unknown_key_message(error: Exception, argv: list[str]) -> str:
    """One line naming the `--config.<key>` override that names no setting."""
    missing = str(error).strip("\"' ")
    flags = [a.split("=")[0] for a in argv if a.startswith("--config.")]
    named = [f for f in flags if missing in f.removeprefix("--config.").split(".")] or flags
    flag = named[0] if named else f"--config.{missing}"
    return (
        f"{flag}: the config has no setting {missing!r}; check the spelling (--help lists the "
        "settings)."
    )


def default_config(name: str) -> str:
    """Path of config `name` (`configs/<name>.py`, or the wheel's copy): the default `--config`."""
    return str(config_files.config_path(name))


def load_config(name: str, arg: str | None = None):
    """`get_config(arg)` of config `name`, as `--config=<name>:<arg>` gives it (unlocked: callers
    fill in fields before running a CLI's `run`)."""
    return config_files.load(name, arg)
