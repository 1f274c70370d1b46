"""Stage caching: reuse with equal settings, rerun on change, nothing recorded for a failed stage."""

import pytest

from dlogp_jax.demo import stages


def test_cached_runs_once_and_reruns_on_changed_settings(tmp_path):
    calls = []

    def fn():
        calls.append(1)
        return {"value": (1, 2)}

    first = stages.cached(tmp_path, "a/b", {"x": 1}, fn, log_fn=lambda s: None)
    again = stages.cached(tmp_path, "a/b", {"x": 1}, fn, log_fn=lambda s: None)
    assert first == again == {"value": [1, 2]} and len(calls) == 1
    stages.cached(tmp_path, "a/b", {"x": 2}, fn, log_fn=lambda s: None)
    assert len(calls) == 2
    assert set(stages.seconds_by_stage(tmp_path)) == {"a/b"}


def test_failed_stage_leaves_no_record(tmp_path):
    def boom():
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        stages.cached(tmp_path, "s", {}, boom, log_fn=lambda s: None)
    assert not stages.record_path(tmp_path, "s").exists()
    assert stages.cached(tmp_path, "s", {}, lambda: 3, log_fn=lambda s: None) == 3
