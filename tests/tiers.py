"""The second test tier: what `.ci/run` leaves out to stay near 25 minutes on 2 CPU cores.

The first tier (README's test command, `-m "not slow"`) keeps at least one test of every behaviour;
the second (`-m slow`) holds the sweeps over more cases of the same behaviour, the multi-process
runs and the in-process demo (CI runs `dlogp-demo --config=configs/demo.py:smoke` from the
runtime-only venv instead). Both tiers together are the whole suite: `pytest tests`.

Each entry is a pattern over the test's node id (`*` is any text; brackets are literal), with
the reason it is second-tier and where the first tier covers the same behaviour.
"""

import re

SLOW = {
    # -- the demo in-process: CI runs dlogp-demo :smoke itself, and checks report.md
    "tests/demo/pipeline_test.py::test_artefacts_and_report": "the smoke demo (module fixture)",
    "tests/demo/pipeline_test.py::test_every_model_loads_with_transformers": "smoke demo",
    "tests/demo/pipeline_test.py::test_accuracies_are_fractions": "smoke demo",
    "tests/demo/pipeline_test.py::test_replacement_rate_grows_with_the_dlogp_threshold": "smoke",
    "tests/demo/pipeline_test.py::test_none_reproduces_base_and_all_reproduces_rl": "smoke demo",
    "tests/demo/pipeline_test.py::test_rerun_reuses_every_stage": "smoke demo",
    "tests/demo/pipeline_test.py::test_killed_sampling_run_resumes_to_the_same_samples": "smoke",
    "tests/demo/pipeline_test.py::test_failed_training_run_names_its_log": "a dlogp-train child",
    "tests/demo/build_test.py::*": "the smoke world build (CI's dlogp-demo builds it)",
    "tests/demo/sft_test.py::test_smoke_sft_lowers_loss": "SFT fixture",
    "tests/demo/sft_test.py::test_export*": "SFT fixture",
    "tests/demo/sft_test.py::test_evaluate_accuracy_on_a_smoke_model": "SFT fixture",
    "tests/demo/engine_test.py::test_sft_eval_samples_equal_the_static_decoder": (
        "engine = static is tier 1 in tests/engine/engine_test.py"
    ),
    # -- several processes (tier 1: every single-process equality)
    "tests/cli/score_multiprocess_test.py::*": "two jax processes over gloo",
    "tests/cli/sample_multiprocess_test.py::*": "two jax processes over gloo (paged engine)",
    "tests/launch/launch_test.py::test_cpu_multiprocess_*": "two jax processes over gloo",
    "tests/rl/trainer_test.py::test_one_device_mesh_and_two_processes_agree": "two processes",
    # -- sweeps: tier 1 keeps the first cases
    "tests/engine/engine_test.py::test_modes_match_static[extrapolate_all_exact]": "mode sweep",
    "tests/engine/engine_test.py::test_modes_match_static[replace_faithful_entropy]": "mode sweep",
    "tests/engine/engine_test.py::test_modes_match_static[extrapolate_faithful_greedy]": "sweep",
    "tests/engine/engine_test.py::test_modes_match_static[extrapolate_all_faithful]": "sweep",
    "tests/engine/engine_test.py::test_every_criterion[*]": "criterion sweep (tier 1: dlogp)",
    "tests/engine/engine_test.py::test_page_sizes_and_rounds[page16_all_slots]": "sweep",
    "tests/model/splash_test.py::test_forward_and_gradients_match_xla_attention": (
        "splash forward/backward in interpret mode (~30 s; tier 1 runs the same kernel forward "
        "and backward through the transformer)"
    ),
    "tests/engine/distribution_test.py::*": (
        "6,000 samples through the engine's forked prompt pages (~80 s; tier 1 tests the same "
        "step functions' distributions in tests/sampling/steps_test.py)"
    ),
    "tests/engine/accounting_test.py::test_pages_free_after_run_and_shared_pages_counted": (
        "page accounting over a long run (tier 1: tests/engine/pages_test.py)"
    ),
    "tests/model/transformer_test.py::*[qwen2_mqa_tied]": "architecture sweep vs transformers",
    "tests/model/transformer_test.py::*[qwen3_mha_tied]": "architecture sweep vs transformers",
    "tests/model/transformer_test.py::*[llama_mha_tied_bias]": "architecture sweep",
    "tests/model/transformer_test.py::*[llama_mqa_linear_rope]": "architecture sweep",
    "tests/cli/sample_test.py::test_batch_size_does_not_change_samples": (
        "batching invariance (tier 1: tests/engine/engine_test.py, more prompts than slots)"
    ),
    "tests/faults/resume_test.py::test_killed_score_run_resumes_to_equal_outputs": (
        "a killed subprocess (tier 1: sample resume in tests/cli/sample_test.py)"
    ),
    "tests/runs/sample_engine_test.py::test_paged_equals_static[extrapolate-engine_kw1]": (
        "second engine setting (tier 1: [replace-engine_kw0])"
    ),
    "tests/model/layers_test.py::test_causal_blocks_skip_keys_above_the_diagonal_exactly[37]": (
        "second length (tier 1: [32])"
    ),
    "tests/engine/engine_test.py::test_page_sizes_and_rounds[page1_round1]": (
        "page size 1 (tier 1: page sizes 4 and 8 in the other engine tests)"
    ),
    "tests/rl/rewards_test.py::test_a_slow_job_never_changes_another_jobs_score[1]": (
        "one grader worker (tier 1: [2], the measured case)"
    ),
    "tests/cli/sample_test.py::test_single_mode_and_demo": (
        "CI's README block runs `dlogp-sample :demo`; single mode: tests/engine/engine_test.py"
    ),
    # -- optional extras
    "tests/runs/services_test.py::test_wandb_offline_and_tensorboard_get_the_namespaced_metrics": (
        "a real train run logged to W&B offline (~80 s; tier 1: the tag table, the refusals, the "
        "upload path)"
    ),
}


def is_slow(nodeid: str) -> bool:
    """Whether the test with this node id (`tests/x_test.py::test_y[case]`) is second-tier."""
    return _SLOW_RE.fullmatch(nodeid) is not None


_SLOW_RE = re.compile("|".join(re.escape(p).replace(r"\*", ".*") for p in SLOW))
