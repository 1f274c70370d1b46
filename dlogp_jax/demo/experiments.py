"""The demo's experiments 1-4 and its report, each a cached stage driving dlogp-sample / dlogp-score.

Experiment 1 measures token metrics (docs/method.md §1), 2 selective token replacement (§2), 3
test-time extrapolation (§3), 4 reweighted DAPO (§4); the protocol is docs/method.md §5. See
`dlogp_jax.demo.pipeline` for the layout and `dlogp_jax.demo.findings` for the statistics.

Deviations from the paper (docs/method.md §6): each criterion's τ comes from quantiles of its score
on base generations of *validation* prompts (targeting replacement rates), because a tiny model's
score scales are not the paper's; γ of the headline extrapolation result is chosen on validation
prompts; sampling uses temperature 1 and top-p 1 (the paper's top-p 0.7 removes the slips this
world's base makes); re-draws are exact over the full vocabulary (no top-50 approximation).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from dlogp_jax import outputs
from dlogp_jax.analysis import accuracy
from dlogp_jax.demo import findings, stages, tools
from dlogp_jax.demo import report as report_lib
from dlogp_jax.demo.context import Ctx, run_name

SUMMARY_KEYS = (
    "accuracy",
    "accuracy_ci95",
    "replacement_rate",
    "mean_length",
    "num_prompts",
    "samples_per_prompt",
    "num_samples",
)
# Criterion -> the dlogp-score column (or columns, averaged) holding its score.
SCORE_COLUMNS = {
    "dlogp": ("dlogp",),
    "entropy_base": ("entropy_base",),
    "entropy_rl": ("entropy_rl",),
    "kl_rl_base": ("kl_rl_base",),
    "kl_base_rl": ("kl_base_rl",),
    "kl_sym": ("kl_rl_base", "kl_base_rl"),
}


# ------------------------------------------------------------------------------ tool runs
def sample(ctx: Ctx, name: str, *, base: str, data: str, n: int, rl: str = "", **kw) -> dict:
    """One cached dlogp-sample run (`samples/<name>`); returns its summary figures and `out`.

    Args:
      name: the run's directory under samples/ and its stage name.
      base, rl, data, n: the models, the prompts and the samples per prompt.
      kw: further dlogp-sample settings (mode, criterion, threshold, gamma).
    """
    e, w = ctx.settings.exp, ctx.settings.world
    identity = {
        **ctx.uses(base, rl),
        "base": base,
        "rl": rl,
        "data": data,
        "n": n,
        **kw,
        "sampling": [e.temperature, e.top_p, e.seed, w.max_new_tokens],
    }

    def go():
        out = stages.fresh_dir(ctx.root / "samples" / name, identity)
        tools.sample(
            base=base,
            rl=rl,
            data=data,
            out=str(out),
            n=n,
            temperature=e.temperature,
            top_p=e.top_p,
            seed=e.seed,
            max_new_tokens=w.max_new_tokens,
            batch_prompts=e.batch_prompts,
            grader_workers=0,
            mesh=ctx.settings.mesh,
            **kw,
        )
        summary = json.loads((out / "summary.json").read_text())
        return {"out": str(out), **{k: summary.get(k) for k in SUMMARY_KEYS}}

    return ctx.stage(f"samples/{name}", identity, go)


def score(ctx: Ctx, name: str, runs: list[tuple[dict, str]], rl: str) -> Path:
    """Cached dlogp-score of sample runs (grouped) under base and RL; returns tokens.parquet."""
    identity = {**ctx.uses(rl), "runs": [[r["out"], g] for r, g in runs], "rl": rl}

    def go():
        out = stages.fresh_dir(ctx.root / "score" / name, identity)
        rows = tools.samples_to_score_rows([(Path(r["out"]), g) for r, g in runs])
        outputs.write_jsonl(out / "input.jsonl", rows)
        tools.score(
            base=ctx.world["base"],
            rl=rl,
            data=str(out / "input.jsonl"),
            out=str(out),
            mesh=ctx.settings.mesh,
            batch_size=64,
        )
        return {"tokens": str(out / "tokens.parquet")}

    return Path(ctx.stage(f"score/{name}", identity, go)["tokens"])


def base_and_rl(ctx: Ctx) -> tuple[dict, dict]:
    """Single-model test samples of the base and of the RL model (the horizontal lines)."""
    n, test = ctx.settings.exp.n, ctx.world["test"]
    rl_model = ctx.rl_model()
    base = sample(ctx, "base_test", base=ctx.world["base"], data=test, n=n)
    rl = sample(ctx, "rl_test", base=rl_model, data=test, n=n)
    return base, rl


def _per_prompt(run: dict) -> dict[int, float]:
    return findings.per_prompt_accuracy(Path(run["out"]) / "samples.jsonl")


# ------------------------------------------------------------------------------ experiment 1
def direction(ctx: Ctx) -> dict[str, Any]:
    """Token metrics of base and RL test generations, scored under both models."""
    base, rl = base_and_rl(ctx)
    tokens = score(ctx, "direction", [(base, "base"), (rl, "rl")], ctx.rl_model())
    stats = findings.direction_stats(outputs.read_parquet(tokens))
    return {"tokens": str(tokens), "stats": stats, "finding": findings.finding_a(stats)}


# ------------------------------------------------------------------------------ experiment 2
def calibration(ctx: Ctx) -> dict[str, dict[str, float]]:
    """τ per (criterion, target rate) from base generations of the validation prompts (a stage:
    computed once, recorded with its thresholds)."""
    e = ctx.settings.exp
    run = sample(ctx, "base_val", base=ctx.world["base"], data=ctx.world["val"], n=e.val_n)
    tokens = score(ctx, "calibration", [(run, "base")], ctx.rl_model())
    rates = sorted(set(e.rates_list + [e.extrap_rate] + e.extrap_rates_list))

    def go():
        table = outputs.read_parquet(tokens)
        out = {}
        for criterion in e.criteria_list:
            cols = SCORE_COLUMNS.get(criterion)
            scores = np.mean([table[c] for c in cols], axis=0) if cols else np.zeros(0)
            taus = findings.thresholds_for_rates(criterion, scores, rates)
            out[criterion] = {str(r): t for r, t in zip(rates, taus)}
        return out

    identity = {
        "tokens": str(tokens),
        "rates": rates,
        "criteria": e.criteria,
        **ctx.uses(ctx.rl_model()),
    }
    return ctx.stage("thresholds", identity, go)


def replace_point(ctx: Ctx, criterion: str, rate: float, tau: float) -> dict[str, Any]:
    """Selective replacement on the test prompts at threshold `tau` (for target `rate`)."""
    run = sample(
        ctx,
        f"replace_{criterion}_{rate:g}",
        base=ctx.world["base"],
        rl=ctx.rl_model(),
        data=ctx.world["test"],
        n=ctx.settings.exp.n,
        mode="replace",
        criterion=criterion,
        threshold=tau,
    )
    return {"target_rate": rate, "threshold": tau, "rate": run["replacement_rate"], **run}


def replacement(ctx: Ctx) -> dict[str, Any]:
    """Accuracy vs replacement rate per criterion (plus `none` and `all`)."""
    e = ctx.settings.exp
    base, rl = base_and_rl(ctx)
    taus = calibration(ctx)
    curves = {
        c: [replace_point(ctx, c, r, taus[c][str(r)]) for r in e.rates_list]
        for c in e.criteria_list
    }
    ends = {c: replace_point(ctx, c, 0.0 if c == "none" else 1.0, 0.0) for c in ("none", "all")}
    runs = {"base": base, "rl": rl, "none": ends["none"], "all": ends["all"]}
    per = {k: _per_prompt(v) for k, v in runs.items()}
    checks = {
        "none_minus_base": accuracy.paired_difference(per["none"], per["base"]),
        "all_minus_rl": accuracy.paired_difference(per["all"], per["rl"]),
    }
    return {
        "base": base,
        "rl": rl,
        "thresholds": taus,
        "curves": curves,
        "ends": ends,
        "checks": checks,
        "finding": findings.finding_b(curves, base["accuracy"], rl["accuracy"]),
    }


# ------------------------------------------------------------------------------ experiment 3
def extrapolation(ctx: Ctx) -> dict[str, Any]:
    """Selective extrapolation over γ (τ fixed) and τ (γ chosen on validation); extrapolate_all."""
    e, w = ctx.settings.exp, ctx.world
    rl_model = ctx.rl_model()
    _, rl = base_and_rl(ctx)
    taus = calibration(ctx)["dlogp"]
    tau = taus[str(e.extrap_rate)]
    selective = dict(base=w["base"], rl=rl_model, mode="extrapolate", criterion="dlogp")

    def on_test(name: str, **kw) -> dict:
        return sample(ctx, name, data=w["test"], n=e.n, **selective, **kw)

    # γ* is the γ most accurate on the validation prompts.
    val = {}
    for g in e.gammas_list:
        run = sample(
            ctx,
            f"val_extrapolate_g{g:g}",
            data=w["val"],
            n=e.val_n,
            threshold=tau,
            gamma=g,
            **selective,
        )
        val[g] = run["accuracy"]
    gamma_star = max(val, key=val.get)
    # γ = 0 is selective replacement at the same τ (identical samples): reuse that run.
    gammas = [{"gamma": 0.0, **replace_point(ctx, "dlogp", e.extrap_rate, tau)}]
    for g in e.gammas_list:
        run = on_test(f"extrapolate_g{g:g}_r{e.extrap_rate:g}", threshold=tau, gamma=g)
        gammas.append({"gamma": g, **run})
    best = next(p for p in gammas if p["gamma"] == gamma_star)
    tau_grid = [{"target_rate": e.extrap_rate, "threshold": tau, **best}]
    for r in e.extrap_rates_list:
        if r != e.extrap_rate:
            name = f"extrapolate_g{gamma_star:g}_r{r:g}"
            run = on_test(name, threshold=taus[str(r)], gamma=gamma_star)
            tau_grid.append({"target_rate": r, "threshold": taus[str(r)], **run})
    every = []
    for g in e.all_gammas_list:
        run = sample(
            ctx,
            f"extrapolate_all_g{g:g}",
            gamma=g,
            base=w["base"],
            rl=rl_model,
            mode="extrapolate_all",
            data=w["test"],
            n=e.n,
        )
        every.append({"gamma": g, **run})
    diff = accuracy.paired_difference(_per_prompt(best), _per_prompt(rl))
    # Is γ > 0 itself the gain, or selective replacement at the same τ (γ = 0)?
    vs_replace = accuracy.paired_difference(_per_prompt(best), _per_prompt(gammas[0]))
    return {
        "threshold": tau,
        "target_rate": e.extrap_rate,
        "val_accuracy_by_gamma": val,
        "val_n": e.val_n,
        "gamma_star": gamma_star,
        "gamma_grid": gammas,
        "tau_grid": tau_grid,
        "extrapolate_all": every,
        "rl": rl,
        "best_minus_rl": diff,
        "best_minus_replace": vs_replace,
        "finding": {"reproduced": findings.verdict(diff), "gamma": gamma_star},
    }


# ------------------------------------------------------------------------------ experiment 4
def reweighting(ctx: Ctx) -> dict[str, Any]:
    """Test-accuracy curves per weighting method over seeds; final-step differences vs DAPO."""
    runs = {(m, s): ctx.rl(m, s) for m, s in ctx.settings.rl.runs}
    methods = list(dict.fromkeys(m for m, _ in runs))
    final = {
        m: [r["eval"][-1]["eval_accuracy"] for (mm, _), r in runs.items() if mm == m]
        for m in methods
    }
    out: dict[str, Any] = {
        "final": {m: findings.seed_stats(v) for m, v in final.items()},
        "final_by_seed": final,
        "diffs": {},
    }
    ref = methods[0]  # the DAPO baseline ("none" by default)
    for m in methods[1:]:
        out["diffs"][f"{m}_minus_{ref}"] = findings.seed_difference(final[m], final[ref])
    key = f"reshape_reversed_minus_{ref}"
    if key in out["diffs"]:
        out["finding"] = {"reproduced": findings.verdict(out["diffs"][key])}
    out["curves"] = {
        run_name(m, s): {"eval": r["eval"], "train": r["train"]} for (m, s), r in runs.items()
    }
    return out


# ------------------------------------------------------------------------------ report
def report(ctx: Ctx) -> Path:
    """results.json, figures/*.png and report.md from every finished stage."""
    results = {
        "world": ctx.world,
        "config": ctx.settings.to_dict(),
        **ctx.done,
        "stage_seconds": stages.seconds_by_stage(ctx.root),
    }
    if "direction" in ctx.done:
        results["direction_table"] = ctx.done["direction"]["tokens"]
    outputs.write_json(ctx.root / "results.json", results)
    figures = report_lib.figures(results, ctx.root / "figures")
    markdown = report_lib.markdown(results, figures, ctx.root)
    return outputs.write_text(ctx.root / "report.md", markdown)
