"""Test setup: 8 simulated CPU devices, offline Hugging Face, shared tiny-model builders."""

import gc
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# No persistent compilation cache in tests: CI runners start from an empty cache, so it cannot pay
# for itself there, and it only adds serialization to every compile.
os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)

import jax  # noqa: E402
import pytest  # noqa: E402

from tests import tiers  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop every compiled program after each test module.

    Each CPU executable keeps a few memory mappings of its machine code for as long as jax caches
    it; the whole suite compiles ~20k programs, and one pytest process reached Linux's default
    `vm.max_map_count` (65,530) about halfway through: mmap then fails inside XLA and the process
    dies with SIGSEGV/SIGABRT in compile, serialize or deserialize, at a different test each time
    (CI failed that way three times). Measured at a4aa52b: 60k mappings at 45% of the suite.
    """
    yield
    jax.clear_caches()
    gc.collect()


def pytest_collection_modifyitems(config, items):
    """Mark the second tier (tests/tiers.py) `slow`: README's test command runs `-m "not slow"`."""
    for item in items:
        if tiers.is_slow(item.nodeid):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True, scope="session")
def _hf_home(tmp_path_factory):
    os.environ["HF_HOME"] = str(tmp_path_factory.mktemp("hf_home"))
