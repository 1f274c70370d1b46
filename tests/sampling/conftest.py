"""Session fixture: the tiny base/RL pair of `models.py` (built once)."""

import pytest

from tests.sampling import models


@pytest.fixture(scope="session")
def pair() -> models.Pair:
    return models.build_pair()
