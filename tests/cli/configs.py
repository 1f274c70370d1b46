"""Loading `configs/<name>.py:get_config(arg)` the way config_flags does, for CLI tests."""

import importlib.util
from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def get_config(name: str, arg: str | None = None, **overrides):
    spec = importlib.util.spec_from_file_location(f"config_{name}", CONFIGS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(arg)
    config.update(overrides)
    return config
