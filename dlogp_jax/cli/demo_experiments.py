"""The demo's experiments 1-4 and its report, each a cached stage driving dlogp-sample / dlogp-score.

See `dlogp_jax.cli.demo` for the layout and `dlogp_jax.world.findings` for the statistics.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from dlogp_jax import outputs
from dlogp_jax.cli import common
from dlogp_jax.cli.demo import Ctx, csv, fresh_dir
from dlogp_jax.cli.demo_rl import rl_runs, run_name
from dlogp_jax.world import findings, stages
from dlogp_jax.world import report as report_lib

SUMMARY_KEYS = ("accuracy", "accuracy_ci95", "replacement_rate", "mean_length", "num_prompts",
                "samples_per_prompt", "num_samples")  # fmt: skip
# Criterion -> the dlogp-score column (or columns, averaged) holding its score.
SCORE_COLUMNS = {"dlogp": ("dlogp",), "entropy_base": ("entropy_base",),
                 "entropy_rl": ("entropy_rl",), "kl_rl_base": ("kl_rl_base",),
                 "kl_base_rl": ("kl_base_rl",), "kl_sym": ("kl_rl_base", "kl_base_rl")}  # fmt: skip


# ------------------------------------------------------------------------------ tool runs
def sample(ctx: Ctx, name: str, *, base: str, data: str, n: int, rl: str = "", **kw) -> dict:
    """One cached dlogp-sample run (`samples/<name>`); returns its summary figures and `out`."""
    from dlogp_jax.cli import sample as cli_sample

    e, w = ctx.config.exp, ctx.config.world
    settings = {**ctx.uses(base, rl), "base": base, "rl": rl, "data": data, "n": n, **kw,
                "sampling": [e.temperature, e.top_p, e.seed, w.max_new_tokens]}  # fmt: skip

    def go():
        cfg = common.load_config("sample")
        out = fresh_dir(ctx.root / "samples" / name, settings)
        cfg.update(
            base=base, rl=rl, data=data, out=str(out), n=n, temperature=e.temperature,
            top_p=e.top_p, seed=e.seed, max_new_tokens=w.max_new_tokens,
            batch_prompts=e.batch_prompts, grader_workers=0, mesh=ctx.config.mesh, **kw,
        )  # fmt: skip
        cli_sample.run(cfg)
        summary = json.loads((out / "summary.json").read_text())
        return {"out": str(out), **{k: summary.get(k) for k in SUMMARY_KEYS}}

    return ctx.stage(f"samples/{name}", settings, go)


def score(ctx: Ctx, name: str, runs: list[tuple[dict, str]], rl: str) -> Path:
    """Cached dlogp-score of sample runs (grouped) under base and RL; returns tokens.parquet."""
    from dlogp_jax.cli import sample as cli_sample
    from dlogp_jax.cli import score as cli_score

    settings = {**ctx.uses(rl), "runs": [[r["out"], g] for r, g in runs], "rl": rl}

    def go():
        out = fresh_dir(ctx.root / "score" / name, settings)
        rows = cli_sample.samples_to_score_rows([(Path(r["out"]), g) for r, g in runs])
        outputs.write_jsonl(out / "input.jsonl", rows)
        cfg = common.load_config("score")
        cfg.update(base=ctx.world["base"], rl=rl, data=str(out / "input.jsonl"), out=str(out),
                   mesh=ctx.config.mesh, batch_size=64)  # fmt: skip
        cli_score.run(cfg)
        return {"tokens": str(out / "tokens.parquet")}

    return Path(ctx.stage(f"score/{name}", settings, go)["tokens"])


def base_and_rl(ctx: Ctx) -> tuple[dict, dict]:
    """Single-model test samples of the base and of the RL model (the horizontal lines)."""
    n, test = ctx.config.exp.n, ctx.world["test"]
    rl = ctx.rl_model()
    return (sample(ctx, "base_test", base=ctx.world["base"], data=test, n=n),
            sample(ctx, "rl_test", base=rl, data=test, n=n))  # fmt: skip


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
    e = ctx.config.exp
    run = sample(ctx, "base_val", base=ctx.world["base"], data=ctx.world["val"], n=e.val_n)
    tokens = score(ctx, "calibration", [(run, "base")], ctx.rl_model())
    rates = sorted(set(csv(e.rates, float) + [e.extrap_rate] + csv(e.extrap_rates, float)))

    def go():
        table = outputs.read_parquet(tokens)
        out = {}
        for criterion in csv(e.criteria):
            cols = SCORE_COLUMNS.get(criterion)
            scores = np.mean([table[c] for c in cols], axis=0) if cols else np.zeros(0)
            taus = findings.thresholds_for_rates(criterion, scores, rates)
            out[criterion] = {str(r): t for r, t in zip(rates, taus)}
        return out

    settings = {
        "tokens": str(tokens),
        "rates": rates,
        "criteria": e.criteria,
        **ctx.uses(ctx.rl_model()),
    }
    return ctx.stage("thresholds", settings, go)


def replace_point(ctx: Ctx, criterion: str, rate: float, tau: float) -> dict[str, Any]:
    rl = ctx.rl_model()
    run = sample(ctx, f"replace_{criterion}_{rate:g}", base=ctx.world["base"], rl=rl,
                 data=ctx.world["test"], n=ctx.config.exp.n, mode="replace",
                 criterion=criterion, threshold=tau)  # fmt: skip
    return {"target_rate": rate, "threshold": tau, "rate": run["replacement_rate"], **run}


def replacement(ctx: Ctx) -> dict[str, Any]:
    """Accuracy vs replacement rate per criterion (plus `none` and `all`)."""
    e = ctx.config.exp
    base, rl = base_and_rl(ctx)
    taus = calibration(ctx)
    curves = {
        c: [replace_point(ctx, c, r, taus[c][str(r)]) for r in csv(e.rates, float)]
        for c in csv(e.criteria)
    }
    ends = {c: replace_point(ctx, c, 0.0 if c == "none" else 1.0, 0.0) for c in ("none", "all")}
    per = {k: findings.per_prompt_accuracy(Path(v["out"]) / "samples.jsonl")
           for k, v in (("base", base), ("rl", rl), ("none", ends["none"]), ("all", ends["all"]))}  # fmt: skip
    checks = {"none_minus_base": findings.paired_difference(per["none"], per["base"]),
              "all_minus_rl": findings.paired_difference(per["all"], per["rl"])}  # fmt: skip
    return {
        "base": base, "rl": rl, "thresholds": taus, "curves": curves, "ends": ends,
        "checks": checks, "finding": findings.finding_b(curves, base["accuracy"], rl["accuracy"]),
    }  # fmt: skip


# ------------------------------------------------------------------------------ experiment 3
def extrapolation(ctx: Ctx) -> dict[str, Any]:
    """Selective extrapolation over γ (τ fixed) and τ (γ chosen on validation); extrapolate_all."""
    e, w = ctx.config.exp, ctx.world
    rl_model = ctx.rl_model()
    _, rl = base_and_rl(ctx)
    taus = calibration(ctx)["dlogp"]
    tau = taus[str(e.extrap_rate)]
    common_kw = dict(base=w["base"], rl=rl_model, mode="extrapolate", criterion="dlogp")
    val = {g: sample(ctx, f"val_extrapolate_g{g:g}", data=w["val"], n=e.val_n, threshold=tau,
                     gamma=g, **common_kw)["accuracy"] for g in csv(e.gammas, float)}  # fmt: skip
    gamma_star = max(val, key=val.get)
    test = lambda name, **kw: sample(ctx, name, data=w["test"], n=e.n, **common_kw, **kw)  # noqa: E731
    # γ = 0 is selective replacement at the same τ (identical samples): reuse that run.
    gammas = [{"gamma": 0.0, **replace_point(ctx, "dlogp", e.extrap_rate, tau)}]
    gammas += [{"gamma": g, **test(f"extrapolate_g{g:g}_r{e.extrap_rate:g}", threshold=tau, gamma=g)}
               for g in csv(e.gammas, float)]  # fmt: skip
    best = next(p for p in gammas if p["gamma"] == gamma_star)
    tau_grid = [{"target_rate": e.extrap_rate, "threshold": tau, **best}]
    tau_grid += [{"target_rate": r, "threshold": taus[str(r)],
                  **test(f"extrapolate_g{gamma_star:g}_r{r:g}", threshold=taus[str(r)],
                         gamma=gamma_star)}
                 for r in csv(e.extrap_rates, float) if r != e.extrap_rate]  # fmt: skip
    all_kw = dict(base=w["base"], rl=rl_model, mode="extrapolate_all", data=w["test"], n=e.n)
    every = [{"gamma": g, **sample(ctx, f"extrapolate_all_g{g:g}", gamma=g, **all_kw)}
             for g in csv(e.all_gammas, float)]  # fmt: skip
    per = lambda run: findings.per_prompt_accuracy(Path(run["out"]) / "samples.jsonl")  # noqa: E731
    diff = findings.paired_difference(per(best), per(rl))
    # Is γ > 0 itself the gain, or selective replacement at the same τ (γ = 0)?
    vs_replace = findings.paired_difference(per(best), per(gammas[0]))
    return {
        "threshold": tau, "target_rate": e.extrap_rate, "val_accuracy_by_gamma": val, "val_n": e.val_n,
        "gamma_star": gamma_star, "gamma_grid": gammas, "tau_grid": tau_grid,
        "extrapolate_all": every, "rl": rl, "best_minus_rl": diff,
        "best_minus_replace": vs_replace,
        "finding": {"reproduced": findings.verdict(diff), "gamma": gamma_star},
    }  # fmt: skip


# ------------------------------------------------------------------------------ experiment 4
def reweighting(ctx: Ctx) -> dict[str, Any]:
    """Test-accuracy curves per weighting method over seeds; final-step differences vs DAPO."""
    runs = {(m, s): ctx.rl(m, s) for m, s in rl_runs(ctx.config)}
    methods = list(dict.fromkeys(m for m, _ in runs))
    final = {m: [runs[(mm, s)]["eval"][-1]["eval_accuracy"] for mm, s in runs if mm == m]
             for m in methods}  # fmt: skip
    out: dict[str, Any] = {"final": {m: findings.seed_stats(v) for m, v in final.items()},
                           "final_by_seed": final, "diffs": {}}  # fmt: skip
    ref = methods[0]  # the DAPO baseline ("none" by default)
    for m in methods[1:]:
        out["diffs"][f"{m}_minus_{ref}"] = findings.welch_difference(final[m], final[ref])
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
        "config": ctx.config.to_dict(),
        **ctx.done,
        "stage_seconds": stages.seconds_by_stage(ctx.root),
    }
    if "direction" in ctx.done:
        results["direction_table"] = ctx.done["direction"]["tokens"]
    outputs.write_json(ctx.root / "results.json", results)
    figures = report_lib.figures(results, ctx.root / "figures")
    path = outputs.write_text(
        ctx.root / "report.md", report_lib.markdown(results, figures, ctx.root)
    )
    return path
