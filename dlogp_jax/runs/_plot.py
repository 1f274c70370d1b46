"""`plot`: the paper's figures from finished runs (the `dlogp-plot` tool).

  kind=train   `training.{png,pdf,svg}`: one panel per logged metric (eval Avg@n with its 95%
               interval, reward, accuracy, entropy, response length, mean token weight, Δlog p vs
               init), one line per `dlogp-train` workdir (the paper's Fig. 5 layout).
  kind=sample  `replacement.*`: accuracy vs replacement rate per criterion (Fig. 1c / 2), the
               runs without a criterion (single model, extrapolate_all, all / none) as reference
               bands; `accuracy.*`: each output's accuracy with its 95% interval (Fig. 4's bars).

Every input is read and checked before a figure is drawn (one DataError line naming the input and
the fix). Figures go to `settings.out` ("" = the single input's directory; a train input may also be its
metrics.jsonl file), each file atomically.
"""

from __future__ import annotations

from pathlib import Path

from absl import logging

from dlogp_jax.analysis import plots, sample_plots, train_plots
from dlogp_jax.errors import DataError
from dlogp_jax.runs.settings import PlotSettings


def plot(settings: PlotSettings) -> list[Path]:
    """Writes the figures of `settings.inputs`; returns the written files.

    Raises:
      DataError: an input that is not a finished run of `settings.kind`, or repeated labels.
    """
    labels = settings.labels or tuple(_name(p) for p in settings.inputs)
    if len(set(labels)) < len(labels):
        raise DataError(
            f"labels {list(labels)} repeat: set --config.labels=a,b,... (one distinct per input)."
        )
    first = Path(settings.inputs[0])
    out = Path(settings.out) if settings.out else first if first.is_dir() else first.parent
    if settings.kind == "train":
        figures = {"training": _train_figure(settings, labels)}
    else:
        figures = _sample_figures(settings, labels)
    written = []
    for name, fig in figures.items():
        written += plots.save_figure(fig, out / f"{name}.png", settings.formats, dpi=settings.dpi)
    logging.info("wrote %s", ", ".join(map(str, written)))
    return written


def _name(path: str) -> str:
    return Path(path).resolve().name


def _train_figure(settings: PlotSettings, labels: tuple[str, ...]):
    runs = {label: [train_plots.read_history(p)] for label, p in zip(labels, settings.inputs)}
    if settings.metrics:
        present = {k for (h,) in runs.values() for row in h for k in row}
        if missing := [k for k in settings.metrics if k not in present]:
            raise DataError(
                f"metrics {missing}: no run logged them; the runs log {', '.join(sorted(present))}."
            )
    return train_plots.training_figure(runs, metrics=settings.metrics, title=settings.title)


def _sample_figures(settings: PlotSettings, labels: tuple[str, ...]) -> dict:
    summaries = {label: sample_plots.read_summary(p) for label, p in zip(labels, settings.inputs)}
    curves, references, bars, modes = sample_plots.sample_points(summaries)
    n = {s.get("samples_per_prompt") for s in summaries.values()}
    prompts = {s.get("num_prompts") for s in summaries.values()}
    ylabel = f"accuracy (Avg@{n.pop()})" if len(n) == 1 else "accuracy (Avg@n)"
    if len(prompts) == 1:
        ylabel += f", {prompts.pop()} prompts"
    figures = {}
    if curves:
        panel = sample_plots.CurvePanel(curves, "replacement rate (replaced tokens / length)")
        figures["replacement"] = sample_plots.curves_figure(
            [panel], references=references, ylabel=ylabel, title=settings.title
        )
    figures["accuracy"] = sample_plots.bars_figure(
        bars, groups=modes, xlabel=ylabel, title=settings.title
    )
    return figures
