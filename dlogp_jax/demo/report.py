"""The demo's figures (PNG) and report.md, from the results dict the demo writes as results.json.

Every plotted accuracy carries its 95% interval (error bars or bands) and every caption its sample
count, so a reader can judge each difference without opening results.json. The figures are drawn
by the library's plot functions (`analysis.plots`, `sample_plots`, `train_plots`, the code of
`dlogp-score` and `dlogp-plot`); legends sit outside the data and each caption says what the
shading is. The figures are
analogues of the paper's Fig. 1b, 1c/2, 4 and 5 (docs/method.md §5), at the demo's scale
(docs/method.md §6).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dlogp_jax import outputs
from dlogp_jax.analysis import plots, sample_plots, train_plots
from dlogp_jax.demo import findings

FORMATS = ("png",)  # report.md embeds PNGs; `dlogp-plot` writes PDF / SVG of the same figures
DPI = 110
# What each figure's shading and error bars are, for its caption in report.md.
CAPTIONS = {
    "direction": "Density (log scale) of each metric over response tokens, one colour per set of "
    "generations, all curves of a panel on the same bins.",
    "replacement": "Error bars: 95% intervals over problems. Dashed lines: the base and the RL "
    "model alone; grey bands: their 95% intervals. Log x-axis when the rates span a decade.",
    "extrapolation": "Error bars: 95% intervals over problems (a panel with one setting shows it as "
    "one point with its interval). Dashed line and grey band: the RL model alone with its 95% "
    "interval.",
    "reweighting": "Lines: mean over seeds; shaded bands: min-max over seeds. Held-out accuracy "
    "is Avg@n on the test problems.",
}


def _point(run: dict, x: float = 0.0) -> sample_plots.Point:
    return sample_plots.Point(float(x), run["accuracy"], run["accuracy_ci95"])


def _avg_label(run: dict) -> str:
    return f"test Avg@{run['samples_per_prompt']} ({run['num_prompts']} problems)"


def direction_figure(table: dict[str, np.ndarray]):
    """Fig. 1b analogue: density (log y) of entropy, KL and Δlog p on base vs RL generations."""
    names = {"base": "base generations", "rl": "RL generations"}
    group = np.asarray([names.get(g, g) for g in np.asarray(table["group"]).tolist()])
    return plots.histogram_figure({**table, "group": group}, bins=60)


def replacement_figure(rep: dict):
    """Fig. 1c / 2 analogue: test accuracy vs replacement rate per criterion."""
    curves = {
        sample_plots.CRITERIA.get(name, name): [_point(p, p["rate"]) for p in pts]
        for name, pts in rep["curves"].items()
    }
    xlabel = "replacement rate (flagged tokens / length, mean over responses)"
    panel = sample_plots.CurvePanel(curves, xlabel)
    refs = {"base model": _point(rep["base"]), "RL model": _point(rep["rl"])}
    return sample_plots.curves_figure(
        [panel],
        references=refs,
        ylabel=_avg_label(rep["rl"]),
        title="Selective replacement: the base decodes, the RL model re-draws where the "
        "criterion fires",
    )


def extrapolation_figure(ext: dict):
    """Fig. 4 analogue: selective extrapolation over γ and τ, and extrapolate_all, vs the RL model."""
    star, tau = f"{ext['gamma_star']:g}", f"{ext['threshold']:.3g}"
    panels = [
        sample_plots.CurvePanel(
            {f"selective, τ = {tau}": [_point(p, p["gamma"]) for p in ext["gamma_grid"]]},
            "γ",
            title="over γ at a fixed τ",
        ),
        sample_plots.CurvePanel(
            {f"selective, γ = {star}": [_point(p, p["replacement_rate"]) for p in ext["tau_grid"]]},
            "replacement rate",
            title=f"over τ at γ = {star} (chosen on validation)",
        ),
        sample_plots.CurvePanel(
            {"extrapolate_all": [_point(p, p["gamma"]) for p in ext["extrapolate_all"]]},
            "γ",
            title="every token extrapolated",
        ),
    ]
    return sample_plots.curves_figure(
        panels,
        references={"RL model": _point(ext["rl"])},
        ylabel=_avg_label(ext["rl"]),
        title="Extrapolation: sample from π_RL^(1+γ) / π_base^γ",
    )


def reweighting_figure(rew: dict):
    """Fig. 5 analogue: test accuracy, entropy, length and token weight over steps; mean and
    min-max over seeds."""
    runs: dict[str, list] = {}
    for name, c in rew["curves"].items():
        runs.setdefault(name.rsplit("_s", 1)[0], []).append([*c["train"], *c["eval"]])
    keys = ["eval_accuracy", "entropy", "response_length_mean", "weight_mean"]
    present = [k for k in keys if any(k in row for hs in runs.values() for h in hs for row in h)]
    return train_plots.training_figure(runs, metrics=present, title="Training-time reweighting")


def figures(results: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Writes the figures of the finished experiments as PNG; returns {name: path}."""
    made = {}
    if "direction" in results:
        cols = ["entropy_base", "kl_rl_base", "dlogp", "group"]
        made["direction"] = direction_figure(
            outputs.read_parquet(results["direction"]["tokens"], cols)
        )
    if "replacement" in results:
        made["replacement"] = replacement_figure(results["replacement"])
    if "extrapolation" in results:
        made["extrapolation"] = extrapolation_figure(results["extrapolation"])
    if "reweighting" in results:
        made["reweighting"] = reweighting_figure(results["reweighting"])
    return {
        name: plots.save_figure(fig, out_dir / f"{name}.png", FORMATS, dpi=DPI)[0]
        for name, fig in made.items()
    }


# ------------------------------------------------------------------------------ markdown
def _acc(run: dict) -> str:
    return f"{run['accuracy']:.3f} ± {run['accuracy_ci95']:.3f}"


def _diff(d: dict) -> str:
    return f"{d['mean']:+.3f} ± {d['ci95']:.3f}"


def _rate(x: float | None) -> str:
    return "not reached" if x is None else f"{x:.3f}"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    cell = lambda c: str(c).replace("|", "\\|")  # noqa: E731  (|Δlog p| inside a table cell)
    out = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(map(cell, r)) + " |" for r in rows]


def _findings(res: dict) -> list[str]:
    rows = []
    if d := res.get("direction"):
        g, o = d["stats"]["groups"], d["stats"]["overlap"]
        numbers = (
            f"negative share of |Δlog p| > {d['stats']['tail']} tails: base gens "
            f"{g['base']['negative_share_of_tail']:.2f}, RL gens "
            f"{g['rl']['negative_share_of_tail']:.2f}; histogram overlap base vs RL gens: "
            f"entropy {o['entropy_base']:.2f}, KL {o['kl_rl_base']:.2f}, Δlog p tails "
            f"{o['dlogp_tails']:.2f}"
        )
        claim = "(a) Δlog p is directional; entropy and KL histograms overlap"
        rows.append([claim, d["finding"]["reproduced"], numbers])
    if r := res.get("replacement"):
        f = r["finding"]
        reach = ", ".join(f"{k} {_rate(v)}" for k, v in f["reach_rl"].items())
        half = ", ".join(f"{k} {_rate(v)}" for k, v in f["reach_half_gap"].items())
        numbers = (
            f"rate to reach RL accuracy ({r['rl']['accuracy']:.3f}): {reach}; "
            f"to close half the gap: {half}"
        )
        claim = "(b) Δlog p reaches RL accuracy with the fewest replacements"
        rows.append([claim, f["reproduced"], numbers])
    if e := res.get("extrapolation"):
        numbers = (
            f"γ = {e['gamma_star']:g} (chosen on validation), τ = {e['threshold']:.3g}: "
            f"test accuracy minus RL's {_diff(e['best_minus_rl'])} (paired over "
            f"{e['best_minus_rl']['num_prompts']} problems); minus selective replacement "
            f"at the same τ (γ = 0): {_diff(e['best_minus_replace'])}"
        )
        claim = "(c) selective extrapolation beats the RL model for some γ > 0"
        rows.append([claim, e["finding"]["reproduced"], numbers])
    if w := res.get("reweighting"):
        fin = "; ".join(f"{m} {s['mean']:.3f} ± {s['sd']:.3f} sd" for m, s in w["final"].items())
        diffs = "; ".join(f"{k} {_diff(v)}" for k, v in w["diffs"].items())
        numbers = (
            f"final test accuracy over seeds: {fin}; differences (Welch 95%): {diffs}; "
            f"mean token weight: {_mean_weight(w)}"
        )
        claim = f"(d) token reweighting (c = {res['config']['rl']['weight_c']:g}) beats DAPO"
        rows.append([claim, w.get("finding", {}).get("reproduced", "n/a"), numbers])
    return _table(["paper's finding", "reproduced here?", "numbers (95% intervals)"], rows)


def _tried(res: dict) -> list[str]:
    """For each finding that did not reproduce plainly: the settings that were tried."""
    e, r = res["config"]["exp"], res["config"]["rl"]
    verdicts = {
        "a": res.get("direction", {}).get("finding", {}).get("reproduced"),
        "b": res.get("replacement", {}).get("finding", {}).get("reproduced"),
        "c": res.get("extrapolation", {}).get("finding", {}).get("reproduced"),
        "d": res.get("reweighting", {}).get("finding", {}).get("reproduced"),
    }
    tried = {
        "a": f"tails at |Δlog p| > {findings.TAIL} nats; base and RL generations of the test "
        f"problems, Avg@{e['n']} each, scored under both models (full vocabulary).",
        "b": f"criteria {e['criteria']} at target replacement rates {e['rates']} (τ from "
        f"validation-prompt quantiles), Avg@{e['n']} on the test problems.",
        "c": f"γ in {e['gammas']} at the τ of a {e['extrap_rate']:g} replacement rate, γ chosen on "
        f"validation (Avg@{e['val_n']}); τ grid {e['extrap_rates']}; extrapolate_all γ "
        f"{e['all_gammas']}.",
        "d": f"methods {r['methods']} (c = {r['weight_c']:g}, reshape c = {r['reshape_c']:g}), "
        f"seeds {r['seeds']}, {r['steps']} steps of {r['train_prompts']} prompts x {r['n']} at lr "
        f"{r['lr']:g}; test Avg@{r['eval_n']} every {r['eval_every']} steps. Mean token weight "
        f"per method: {_mean_weight(res['reweighting']) if 'reweighting' in res else '-'}.",
    }
    lines = [
        f"- ({k}) {verdicts[k]}: tried {tried[k]}"
        for k in "abcd"
        if verdicts[k] not in (None, "yes")
    ]
    if not lines:
        return []
    return ["", "What was tried where a finding did not plainly reproduce:", "", *lines]


def _mean_weight(w: dict) -> str:
    """Mean advantage weight per method over steps and seeds (how much reweighting acted)."""
    out = {}
    for name, c in w["curves"].items():
        vals = [p["weight_mean"] for p in c["train"] if p.get("weight_mean") is not None]
        out.setdefault(name.rsplit("_s", 1)[0], []).extend(vals)
    return ", ".join(f"{m} {np.mean(v):.4f}" for m, v in out.items() if v)


def _direction(d: dict) -> list[str]:
    g, o, tail = d["stats"]["groups"], d["stats"]["overlap"], d["stats"]["tail"]
    keys = (
        ("num_tokens", "tokens"),
        ("near_zero_fraction", "|Δlog p| ≤ 0.1"),
        ("negative_tail_fraction", f"Δlog p < −{tail}"),
        ("positive_tail_fraction", f"Δlog p > {tail}"),
        ("negative_share_of_tail", "negative share of tails"),
        ("dlogp_mean", "mean Δlog p"),
        ("entropy_base_mean", "mean base entropy"),
        ("kl_rl_base_mean", "mean KL(RL‖base)"),
    )
    fmt = lambda v: v if isinstance(v, int) else f"{v:.4f}"  # noqa: E731
    rows = [[label, fmt(g["base"][k]), fmt(g["rl"][k])] for k, label in keys]
    lines = _table(["token statistic", "base generations", "RL generations"], rows) + [""]
    overlaps = [[k, f"{v:.3f}"] for k, v in o.items()]
    return lines + _table(["overlap of base-gen and RL-gen histograms", "value"], overlaps)


def _replacement(r: dict) -> list[str]:
    rows = []
    for name, pts in r["curves"].items():
        for p in sorted(pts, key=lambda p: p["target_rate"]):
            target, tau = f"{p['target_rate']:g}", f"{p['threshold']:.4g}"
            rows.append([name, target, tau, f"{p['rate']:.4f}", _acc(p)])
    for name, p in r["ends"].items():
        rows.append([name, "-", "-", f"{p['rate']:.4f}", _acc(p)])
    c = r["checks"]
    checks = (
        f"Checks: `none` − base = {_diff(c['none_minus_base'])} (identical samples expected); "
        f"`all` − RL = {_diff(c['all_minus_rl'])} (same distribution, other random numbers)."
    )
    header = ["criterion", "target rate", "τ", "measured rate", "test accuracy"]
    return _table(header, rows) + ["", checks]


def _extrapolation(e: dict) -> list[str]:
    val = ", ".join(f"γ={g}: {a:.3f}" for g, a in e["val_accuracy_by_gamma"].items())
    star = f"{e['gamma_star']:g}"
    rows = [
        ["selective, γ grid", f"{p['gamma']:g}", f"{p['replacement_rate']:.4f}", _acc(p)]
        for p in e["gamma_grid"]
    ]
    rows += [
        ["selective, τ grid", star, f"{p['replacement_rate']:.4f}", _acc(p)] for p in e["tau_grid"]
    ]
    rows += [["extrapolate_all", f"{p['gamma']:g}", "1", _acc(p)] for p in e["extrapolate_all"]]
    rows += [["RL model alone", "-", "-", _acc(e["rl"])]]
    intro = f"Validation accuracy by γ (Avg@{e.get('val_n', '?')}, used to choose γ): {val}."
    return [intro, ""] + _table(["decoding", "γ", "replacement rate", "test accuracy"], rows)


def _reweighting(w: dict) -> list[str]:
    rows = []
    for m, s in w["final"].items():
        spread = f"{s['min']:.3f} – {s['max']:.3f}"
        per_seed = ", ".join(f"{v:.3f}" for v in w["final_by_seed"][m])
        rows.append([m, f"{s['mean']:.3f}", f"{s['sd']:.3f}", spread, s["n"], per_seed])
    header = ["method", "final test acc. (mean)", "sd", "min – max", "seeds", "per seed"]
    return _table(header, rows)


def _times(seconds: dict[str, float]) -> str:
    kinds: dict[str, list[float]] = {}
    for name, s in seconds.items():
        kinds.setdefault(name.split("/")[0], []).append(s)
    return ", ".join(f"{k} {sum(v):.0f} ({len(v)} runs)" for k, v in kinds.items())


def markdown(res: dict, figures: dict[str, Path], root: Path) -> str:
    """report.md: setup, the four findings with verdicts, one section per experiment, definitions."""
    world, rl = res["config"]["world"], res["config"]["rl"]
    test = res["world"]["metrics"]["test_accuracy"]
    setup = (
        f"World: arithmetic chains, {world['n_train']} train / {world['n_val']} "
        f"validation (held out of SFT and RL) / {world['n_test']} test problems; a tiny "
        f"Qwen2-architecture base SFT'd on slipped traces ({world['steps']} steps). Base "
        f"test Avg@{world['eval_n']} at T = 1: {test['mean']:.3f} ± "
        f"{test['ci95']:.3f}. RL: dlogp-train (DAPO), {rl['steps']} steps, "
        f"methods {rl['methods']}, seeds {rl['seeds']}. Accuracies are Avg@n over "
        "problems with 95% intervals (problems as the unit); sample counts are in each table."
    )
    lines = ["# dlogp-demo report", "", setup, "", "## Findings", ""]
    lines += _findings(res) + _tried(res)
    sections = (
        ("direction", "1. Direction vs magnitude (Fig. 1b analogue)", _direction),
        ("replacement", "2. Selective replacement (Fig. 1c / 2 analogue)", _replacement),
        ("extrapolation", "3. Test-time extrapolation (Fig. 4 analogue)", _extrapolation),
        ("reweighting", "4. Training-time reweighting (Fig. 5 analogue)", _reweighting),
    )
    for key, title, fn in sections:
        if key in res:
            lines += ["", f"## {title}", ""]
            if key in figures:
                lines += [f"![{key}]({figures[key].relative_to(root)})", "", CAPTIONS[key], ""]
            lines += fn(res[key])
    lines += [
        "",
        "## Definitions",
        "",
        "```",
        findings.DEFINITIONS.strip(),
        "```",
        "",
        "Seconds per stage kind, summed over its runs when they ran (RL runs train two at a time "
        "beside the sampling, so the sum exceeds the wall time): "
        + _times(res.get("stage_seconds", {})),
        "",
    ]
    return "\n".join(lines)
