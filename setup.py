"""Ships the top-level `configs/*.py` inside the wheel as `dlogp_jax/configs/` (the source stays in
`configs/`, one copy in git). Editable installs and source checkouts read `configs/` directly
(`dlogp_jax.cli.common.config_dir`); everything else is in pyproject.toml."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithConfigs(build_py):
    """build_py that also copies configs/*.py to <build_lib>/dlogp_jax/configs/."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # the editable package finds the source tree's configs/ itself
        target = Path(self.build_lib, "dlogp_jax", "configs")
        self.mkpath(str(target))
        for path in sorted(Path(__file__).resolve().parent.joinpath("configs").glob("*.py")):
            self.copy_file(str(path), str(target / path.name))


setup(cmdclass={"build_py": BuildPyWithConfigs})
