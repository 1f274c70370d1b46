"""The demo's figures: drawn by the library plot functions, legends off the data, log-x where the
rates span a decade, a one-setting panel as a point with its interval, captions for the bands."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dlogp_jax.demo import report


def _run(acc, rate=0.0, **kw):
    return dict(
        accuracy=acc,
        accuracy_ci95=0.05,
        rate=rate,
        replacement_rate=rate,
        num_prompts=32,
        samples_per_prompt=4,
        **kw,
    )


def _results(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    table = {
        "entropy_base": rng.exponential(0.5, n),
        "kl_rl_base": rng.exponential(0.1, n),
        "dlogp": rng.normal(0, 1, n),
        "group": np.repeat(["base", "rl"], n // 2),
    }
    pq.write_table(pa.table(table), tmp_path / "tokens.parquet")
    curves = {c: [_run(0.1 + r / 4, r) for r in (0.01, 0.05, 0.3)] for c in ("dlogp", "random")}
    rep = dict(curves=curves, base=_run(0.1), rl=_run(0.2))
    ext = dict(
        gamma_star=0.5,
        threshold=-0.2,
        gamma_grid=[_run(0.15, 0.1, gamma=g) for g in (0.0, 0.5, 1.0)],
        tau_grid=[_run(0.15, r, gamma=0.5) for r in (0.1, 0.3)],
        extrapolate_all=[_run(0.12, 1.0, gamma=0.5)],
        rl=_run(0.2),
    )

    def curve(shift):
        train = [
            dict(step=s, entropy=0.2, response_length_mean=20.0, weight_mean=1.0) for s in (1, 2, 3)
        ]
        return dict(
            train=train,
            eval=[dict(step=s, eval_accuracy=0.1 + shift, eval_n=2) for s in (0, 1, 2, 3)],
        )

    rew = dict(curves={"none_s0": curve(0), "none_s1": curve(0.02), "reshape_s0": curve(0.05)})
    return dict(
        direction=dict(tokens=str(tmp_path / "tokens.parquet")),
        replacement=rep,
        extrapolation=ext,
        reweighting=rew,
    )


def test_figures_are_written_and_readable(tmp_path):
    res = _results(tmp_path)
    paths = report.figures(res, tmp_path / "figures")
    assert sorted(paths) == ["direction", "extrapolation", "replacement", "reweighting"]
    assert all(p.suffix == ".png" and p.stat().st_size > 10_000 for p in paths.values())
    assert set(report.CAPTIONS) == set(paths)

    (ax,) = report.replacement_figure(res["replacement"]).get_axes()
    assert ax.get_xscale() == "log" and ax.get_legend() is None  # legend below, off the data
    axes = report.extrapolation_figure(res["extrapolation"]).get_axes()
    assert [a.get_xscale() for a in axes] == ["linear", "linear", "linear"]
    single = axes[2]
    assert list(single.get_xticks()) == [0.5]  # one setting: one point with its interval
    (bar,) = single.containers[0].lines[2][0].get_segments()
    np.testing.assert_allclose(bar[:, 1], [0.07, 0.17])
    fig = report.reweighting_figure(res["reweighting"])
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["none", "reshape", "shaded: min-max over seeds"]
    titles = [a.get_title() for a in fig.get_axes() if a.get_visible()]
    assert titles[0] == "held-out accuracy (Avg@2)" and len(titles) == 4
    table = pq.read_table(tmp_path / "tokens.parquet").to_pydict()
    hist = report.direction_figure({k: np.asarray(v) for k, v in table.items()})
    legend = [t.get_text() for t in hist.get_axes()[0].get_legend().get_texts()]
    assert legend == ["base generations", "RL generations"]
