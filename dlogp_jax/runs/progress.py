"""INFO logs (and, in the runs, tqdm.auto progress bars) that show up anywhere: a terminal, a
script, a notebook.

The CLIs run under absl's `app.run`, which installs absl's log handler at INFO. A run called from
Python (a notebook, a script) has none, and absl's INFO lines would be dropped (absl's logger
defaults to WARNING before flag parsing): `setup_logging` fixes that, leaving any level or handler
the caller configured alone. The runs' bars are tqdm's notebook-aware `tqdm.auto` (widgets in Jupyter,
text elsewhere), drawn by the writing process only.
"""

from __future__ import annotations

import logging as py_logging
import sys

import jax
from absl import flags

FORMAT = "%(asctime)s %(levelname)s %(message)s"


def setup_logging() -> None:
    """INFO logs of the runs visible outside `app.run`, leaving configured logging alone.

    Under app.run (flags parsed) absl's handler is in place: nothing to do. Otherwise the absl
    logger gets level INFO unless the caller set one, and, when the root logger has no handler
    yet, `logging.basicConfig` gives it a timestamped stderr handler (absl would install a plain
    one at its first log line anyway).
    """
    if flags.FLAGS.is_parsed():
        return
    absl_logger = py_logging.getLogger("absl")
    if absl_logger.level == py_logging.NOTSET:
        absl_logger.setLevel(py_logging.INFO)
    if not py_logging.getLogger().handlers:
        py_logging.basicConfig(format=FORMAT, datefmt="%H:%M:%S", stream=sys.stderr)


class StepTrace:
    """A `jax.profiler` trace of training steps start .. start + num - 1 (1-based), written under
    `log_dir/plugins/profile/<time>/` where TensorBoard's profile plugin and xprof read it.

    Call `before(step)` before each step and `after(step)` after it; `close()` ends a trace still
    open (an early exit). start = 0 is off.
    """

    def __init__(self, log_dir: str, start: int, num: int):
        self.log_dir, self.start, self.stop = log_dir, start, start + num - 1
        self.active = False

    def before(self, step: int) -> None:
        if self.start and step == self.start and not self.active:
            jax.profiler.start_trace(self.log_dir)
            self.active = True

    def after(self, step: int) -> None:
        if self.active and step >= self.stop:
            self.close()

    def close(self) -> None:
        if self.active:
            jax.block_until_ready(jax.numpy.zeros(()))  # the traced work has been dispatched
            jax.profiler.stop_trace()
            self.active = False
