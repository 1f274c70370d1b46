"""Test setup: 8 simulated CPU devices, offline Hugging Face, shared tiny-model builders."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# No persistent compilation cache in tests: CI aborted twice inside jax's CPU executable
# serialize/deserialize (compilation_cache.put/get_executable_and_time, same sampling test, late in
# the run), and CI runners start from an empty cache, so it cannot pay for itself there. Subprocesses
# inherit this environment, so the multi-process tests run without it too.
os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _hf_home(tmp_path_factory):
    os.environ["HF_HOME"] = str(tmp_path_factory.mktemp("hf_home"))
