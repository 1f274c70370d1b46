"""The demo's figures (PNG) and report.md, from the results dict the demo writes as results.json.

Every plotted accuracy carries its 95% interval (error bars or bands) and every caption its sample
count, so a reader can judge each difference without opening results.json. The figures are
analogues of the paper's Fig. 1b, 1c/2, 4 and 5 (docs/method.md §5), at the demo's scale
(docs/method.md §6).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dlogp_jax import outputs
from dlogp_jax.demo import findings

LABELS = {
    "dlogp": "Δlog p ≤ τ",
    "entropy_base": "base entropy ≥ τ",
    "entropy_rl": "RL entropy ≥ τ",
    "kl_rl_base": "KL(RL‖base) ≥ τ",
    "kl_base_rl": "KL(base‖RL) ≥ τ",
    "kl_sym": "sym. KL ≥ τ",
    "random": "random (U < τ)",
}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.tight_layout()
    fig.savefig(tmp, dpi=110)
    _plt().close(fig)
    tmp.replace(path)
    return path


def _band(ax, run: dict, label: str, color: str) -> None:
    """Horizontal line at a run's accuracy with its 95% band."""
    a, h = run["accuracy"], run["accuracy_ci95"]
    ax.axhline(a, color=color, ls="--", lw=1, label=f"{label} {a:.3f}±{h:.3f}")
    ax.axhspan(a - h, a + h, color=color, alpha=0.12)


def direction_figure(table: dict[str, np.ndarray], path: Path) -> Path:
    """Fig. 1b analogue: density (log y) of entropy, KL and Δlog p on base vs RL generations."""
    plt = _plt()
    panels = (
        ("entropy_base", "base-model entropy"),
        ("kl_rl_base", "KL(π_RL ‖ π_base)"),
        ("dlogp", "Δlog p = log π_RL − log π_base"),
    )
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for ax, (col, title) in zip(axes, panels):
        v = table[col]
        edges = np.linspace(v.min(), v.max() if v.max() > v.min() else v.min() + 1, 61)
        for g, color in (("base", "tab:blue"), ("rl", "tab:red")):
            x = v[table["group"] == g]
            dens, _ = np.histogram(x, edges, density=True)
            label = f"{g} generations ({x.size} tokens)"
            dens = np.where(dens > 0, dens, np.nan)  # empty bins: no line at 0 on a log axis
            ax.step(edges[:-1], dens, where="post", color=color, label=label)
        ax.set_yscale("log")
        ax.set_title(title)
        ax.set_ylabel("density")
        ax.legend(fontsize=7)
    return _save(fig, path)


def replacement_figure(rep: dict, path: Path) -> Path:
    """Fig. 1c / 2 analogue: test accuracy vs replacement rate per criterion."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, pts in rep["curves"].items():
        pts = sorted(pts, key=lambda p: p["rate"])
        ax.errorbar(
            [p["rate"] for p in pts],
            [p["accuracy"] for p in pts],
            yerr=[p["accuracy_ci95"] for p in pts],
            marker="o",
            ms=4,
            capsize=2,
            label=LABELS.get(name, name),
        )
    _band(ax, rep["base"], "base", "tab:gray")
    _band(ax, rep["rl"], "RL", "black")
    n = rep["rl"]["num_prompts"], rep["rl"]["samples_per_prompt"]
    ax.set_xlabel("replacement rate (mean over responses of flagged tokens / length)")
    ax.set_ylabel(f"test Avg@{n[1]} ({n[0]} problems)")
    ax.set_title("Selective replacement: base decodes, RL re-draws where the criterion fires")
    ax.legend(fontsize=7)
    return _save(fig, path)


def extrapolation_figure(ext: dict, path: Path) -> Path:
    """Fig. 4 analogue: selective extrapolation over γ and τ, and extrapolate_all, vs the RL model."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), sharey=True)
    tau_label = f"replacement rate (γ = {ext['gamma_star']:g})"
    series = (
        (axes[0], ext["gamma_grid"], "gamma", f"γ (τ = {ext['threshold']:.3g})", "selective"),
        (axes[1], ext["tau_grid"], "rate", tau_label, "τ grid"),
        (axes[2], ext["extrapolate_all"], "gamma", "γ", "extrapolate_all"),
    )
    for ax, pts, key, xlabel, label in series:
        pts = sorted(pts, key=lambda p: p.get(key) if key != "rate" else p["replacement_rate"])
        xs = [p["replacement_rate"] if key == "rate" else p[key] for p in pts]
        ax.errorbar(
            xs,
            [p["accuracy"] for p in pts],
            yerr=[p["accuracy_ci95"] for p in pts],
            marker="o",
            capsize=2,
            label=label,
        )
        _band(ax, ext["rl"], "RL", "black")
        ax.set_xlabel(xlabel)
        ax.legend(fontsize=7)
    axes[0].set_ylabel(
        f"test Avg@{ext['rl']['samples_per_prompt']} ({ext['rl']['num_prompts']} problems)"
    )
    fig.suptitle("Extrapolation: sample from π_RL^(1+γ) / π_base^γ")
    return _save(fig, path)


def reweighting_figure(rew: dict, path: Path) -> Path:
    """Fig. 5 analogue: test accuracy, entropy and length over steps; mean and min-max over seeds."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    methods = list(dict.fromkeys(k.rsplit("_s", 1)[0] for k in rew["curves"]))
    panels = (
        ("eval", "eval_accuracy", "test accuracy"),
        ("train", "entropy", "entropy (train)"),
        ("train", "response_length_mean", "response length (train)"),
    )
    for ax, (part, key, title) in zip(axes, panels):
        for m in methods:
            runs = [c[part] for k, c in rew["curves"].items() if k.rsplit("_s", 1)[0] == m]
            steps = [p["step"] for p in runs[0]]
            vals = np.asarray([[p[key] for p in r[: len(steps)]] for r in runs], np.float64)
            ax.plot(steps, vals.mean(0), label=f"{m} (mean of {len(runs)} seeds)")
            ax.fill_between(steps, vals.min(0), vals.max(0), alpha=0.2)
        ax.set_xlabel("training step")
        ax.set_title(title)
        ax.legend(fontsize=7)
    return _save(fig, path)


def figures(results: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Writes the figures of the finished experiments; returns {name: path}."""
    out: dict[str, Path] = {}
    if "direction" in results:
        cols = ["entropy_base", "kl_rl_base", "dlogp", "group"]
        table = outputs.read_parquet(results["direction"]["tokens"], cols)
        out["direction"] = direction_figure(table, out_dir / "direction.png")
    if "replacement" in results:
        out["replacement"] = replacement_figure(results["replacement"], out_dir / "replacement.png")
    if "extrapolation" in results:
        path = out_dir / "extrapolation.png"
        out["extrapolation"] = extrapolation_figure(results["extrapolation"], path)
    if "reweighting" in results:
        out["reweighting"] = reweighting_figure(results["reweighting"], out_dir / "reweighting.png")
    return out


# ------------------------------------------------------------------------------ markdown
def _acc(run: dict) -> str:
    return f"{run['accuracy']:.3f} ± {run['accuracy_ci95']:.3f}"


def _diff(d: dict) -> str:
    return f"{d['mean']:+.3f} ± {d['ci95']:.3f}"


def _rate(x: float | None) -> str:
    return "not reached" if x is None else f"{x:.3f}"


def _band(interval: list | None) -> str:
    """' [low, high]' of a rate-to-reach interval (findings.rate_interval); '' when unknown."""
    if not interval or interval[0] is None:
        return ""
    high = "not reached" if interval[1] is None else f"{interval[1]:.3f}"
    return f" [{interval[0]:.3f}, {high}]"


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
        band = f.get("reach_rl_interval", {})
        reach = ", ".join(f"{k} {_rate(v)}{_band(band.get(k))}" for k, v in f["reach_rl"].items())
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
                lines += [f"![{key}]({figures[key].relative_to(root)})", ""]
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
