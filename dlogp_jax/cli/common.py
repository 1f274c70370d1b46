"""absl / ConfigDict glue shared by the CLIs: the app wrapper, config files, one-line errors."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from dlogp_jax.errors import CheckpointError, DataError, UnsupportedModelError
from dlogp_jax.runs import settings


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
) -> None:
    """Defines `--config` (default `configs/<config_name>.py`) and runs `run_fn(config)` as an app.

    The flag is defined here, at program start, not at import: several CLIs can then be imported in
    one process (tests, notebooks). User errors (bad files, rows, checkpoints, settings, and
    `extra_errors`) end with one line, no traceback. With `positional`, the words after the flags
    go to `run_fn(config, args)` (`dlogp-plot train RUN...`); otherwise they are refused.
    """
    from absl import app
    from ml_collections import config_flags

    errors = (DataError, CheckpointError, UnsupportedModelError, ValueError, *extra_errors)
    try:  # ml_collections applies the --config.x overrides here, at definition
        config = config_flags.DEFINE_config_file(
            "config", default_config(config_name), lock_config=True
        )
    except (AttributeError, KeyError) as e:
        fail(unknown_key_message(e, sys.argv[1:]))

    def main(argv):
        if len(argv) > 1 and not positional:
            fail(f"unexpected arguments {argv[1:]}; settings go through --config.<field>=<value>.")
        try:
            run_fn(config.value, argv[1:]) if positional else run_fn(config.value)
        except errors as e:
            fail(str(e))

    app.run(main)


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
    """Path of `configs/<name>.py` in the source tree (the default `--config`)."""
    return str(Path(__file__).resolve().parents[2] / "configs" / f"{name}.py")


def load_config(name: str, arg: str | None = None):
    """`configs/<name>.py:get_config(arg)` of the source tree, as `--config=configs/<name>.py:arg`
    would give it (unlocked: callers fill in fields before running a CLI's `run`)."""
    path = default_config(name)
    spec = importlib.util.spec_from_file_location(f"dlogp_configs_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)
