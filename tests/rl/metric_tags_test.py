"""The namespaced metric tags: the table, the key families, and docs/operators.md's copy of it."""

import re
from pathlib import Path

from dlogp_jax.rl import metric_tags

OPERATORS = Path(__file__).resolve().parents[2] / "docs" / "operators.md"


def test_tags_of_keys_and_families():
    assert metric_tags.tag("loss") == "actor/loss"
    assert metric_tags.tag("clipped_high") == "actor/pg_clipfrac_high"
    assert metric_tags.tag("reward_mean") == "rollout/reward_mean"
    assert metric_tags.tag("time_update") == "timing/update"
    assert metric_tags.tag("eval_pass_at_4") == "eval/pass_at_4"
    assert metric_tags.tag("dlogp_vs_init_p95") == "actor/dlogp_vs_init_p95"
    assert metric_tags.tag("brand_new") == "other/brand_new"
    namespaces = {t.split("/")[0] for t in metric_tags.TAGS.values()}
    assert namespaces == {"actor", "rollout", "timing"}
    assert len(set(metric_tags.TAGS.values())) == len(metric_tags.TAGS)  # no two keys share a tag


def test_tagged_scalars_keep_numbers_only():
    metrics = {"step": 3, "loss": 0.5, "groups_kept": 4, "note": "x", "skipped": True}
    assert metric_tags.tagged_scalars(metrics) == {"actor/loss": 0.5, "rollout/groups_kept": 4.0}


def test_operators_doc_prints_the_table():
    rows = re.findall(
        r"^\| `([a-z0-9_]+\*?)` \| `([a-z0-9_/]+\*?)` \|$", OPERATORS.read_text(), re.M
    )
    families = {k + "*": v + "*" for k, v in metric_tags.PREFIX_TAGS.items()}
    assert dict(rows) == {**metric_tags.TAGS, **families}
    assert len(rows) == len(dict(rows))
