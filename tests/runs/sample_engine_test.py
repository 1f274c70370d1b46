"""`runs.sample` with engine=paged against engine=static on the same inputs: the same samples.jsonl
rows and summary (replace and extrapolate, n > 1, mixed prompt lengths, more sequences than slots,
a page budget that forces waiting), the engine figures in the summary, and the up-front budget
errors.

Slow-ish (~1 min on a loaded 2-core CPU): each engine compiles its programs once per shape."""

import json

import numpy as np
import pytest

from dlogp_jax import runs, toy
from dlogp_jax.engine import choice
from tests.runs.sampling import build_inputs, read_run, settings

LOGS = ("logp_base", "logp_rl", "dlogp")
TIMING = ("seconds", "tokens_per_second", "engine")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return build_inputs(tmp_path_factory.mktemp("inputs"))


def _sample(inputs, out, **kw):
    return read_run(runs.sample(settings(inputs, out, **kw)))


def _assert_close(a, b, path="summary"):
    """Nested dicts equal, floats up to 1e-6 (means of log-probs)."""
    if isinstance(a, dict):
        assert sorted(a) == sorted(b), path
        for k in a:
            _assert_close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, float):
        assert a == pytest.approx(b, abs=1e-6), path
    else:
        assert a == b, path


def _assert_same_rows(paged, static):
    assert [(r["prompt_index"], r["sample_index"]) for r in paged] == [
        (r["prompt_index"], r["sample_index"]) for r in static
    ]
    for p, s in zip(paged, static):
        for k in LOGS:
            np.testing.assert_allclose(p.pop(k), s.pop(k), atol=2e-4, err_msg=k)
        assert p == s  # tokens, proposals, selections, text, length, finish reason, grading


@pytest.mark.parametrize(
    ("mode", "engine_kw"),
    [
        # 6 sequences per call on 2 slots; page sizes that keep compiled shapes few
        ("replace", dict(max_seqs=2, page_size=8)),
        ("extrapolate", dict(max_seqs=4, page_size=4, kv_pages=12)),  # few pages: sequences wait
    ],
)
def test_paged_equals_static(tmp_path, inputs, mode, engine_kw):
    rows_s, sum_s = _sample(inputs, tmp_path / "static", mode=mode, engine="static")
    rows_p, sum_p = _sample(inputs, tmp_path / "paged", mode=mode, **engine_kw)
    assert len(rows_p) == 15
    assert len({len(r["token_ids"]) for r in rows_p}) > 1, "sequences end at different steps"
    _assert_same_rows(rows_p, rows_s)
    for k in TIMING:
        sum_p.pop(k), sum_s.pop(k)
    _assert_close(sum_p, sum_s)
    assert sum_p["cache_full"] == 0
    engine = json.loads((tmp_path / "paged" / "summary.json").read_text())["engine"]
    assert engine["kind"] == "paged" and engine["max_seqs"] == engine_kw["max_seqs"]
    assert engine["peak_live_seqs"] == engine_kw["max_seqs"]
    assert engine["peak_pages_used"] <= engine["kv_pages"]
    if "kv_pages" in engine_kw:
        assert engine["kv_pages"] == engine_kw["kv_pages"] and engine["preempted"] > 0
    else:  # auto on CPU: every slot at full length plus held prompts, no waiting
        assert engine["preempted"] == 0


def test_budget_errors_up_front(tmp_path, inputs):
    """A budget that cannot hold one sequence fails before any decoding, naming the field."""
    out = tmp_path / "o"
    with pytest.raises(ValueError, match=r"kv_pages=3: .* raise kv_pages to >= \d+") as e:
        _sample(inputs, out, mode="extrapolate", kv_pages=3, page_size=4)
    assert "\n" not in str(e.value)
    assert not (out / "run.json").exists() and not (out / "samples.jsonl").exists()
    with pytest.raises(ValueError, match="page_size=0: must be an integer >= 1") as e:
        runs.SampleSettings(base="b", data="d", page_size=0, engine="vllm", kv_pages=-1)
    assert "engine='vllm': use one of paged, static." in str(e.value)
    assert "kv_pages=-1: must be an integer >= 0 (0 = auto)." in str(e.value)


def test_auto_sizes(monkeypatch):
    """Auto kv_pages: AUTO_FRACTION of the free device memory over one page's bytes, clamped to
    [one full sequence, no waiting]; auto max_seqs: the queued sequences up to the platform cap."""
    config = toy.tiny_config(64)
    both = (config, config)
    per_page = choice.page_bytes(both, 16)
    assert per_page == 2 * 2 * 16 * config.num_layers * config.num_kv_heads * config.head_dim * 4
    kw = dict(sequences=12, longest_prompt=20, max_new=100)
    monkeypatch.setattr(choice, "free_device_bytes", lambda: 40 * per_page)
    engine = choice.engine_config.__wrapped__(choice.DEFAULT, both, **kw)
    assert (engine.num_pages, engine.max_seqs) == (20, 12)  # half of 40 pages
    monkeypatch.setattr(choice, "free_device_bytes", lambda: 10**12)
    engine = choice.engine_config.__wrapped__(choice.DEFAULT, both, **kw)
    assert engine.num_pages == 12 * 8 + (2 * 12 + 1) * 2  # 8 columns per slot, 2 prompt pages
    monkeypatch.setattr(choice, "free_device_bytes", lambda: 8 * per_page)
    with pytest.raises(ValueError, match=r"kv_pages=0 \(auto\): .* 4 pages .* fewer than the 10"):
        choice.engine_config.__wrapped__(choice.DEFAULT, both, **kw)
    many = choice.engine_config.__wrapped__(
        choice.EngineChoice(kv_pages=64), both, **{**kw, "sequences": 1000}
    )
    assert many.max_seqs == 64 and many.num_pages == 64  # the CPU cap of auto max_seqs


def test_multi_process_runs_decode_static(monkeypatch):
    """The engine's host loop needs every device local: with 2 processes the choice turns static
    (the same samples), and the run has a line to log."""
    assert choice.for_processes(choice.DEFAULT) == choice.DEFAULT
    assert choice.multi_process_note(choice.DEFAULT) is None
    monkeypatch.setattr(choice.jax, "process_count", lambda: 2)
    assert choice.for_processes(choice.DEFAULT).engine == "static"
    note = choice.multi_process_note(choice.DEFAULT, "rollout.")
    assert note.startswith("rollout.engine=paged runs in one process; 2 processes here")
    static = choice.EngineChoice(engine="static")
    assert choice.for_processes(static) is static
