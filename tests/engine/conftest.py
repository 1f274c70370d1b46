"""Session fixture: the sampler tests' tiny base/RL pair (base V=99, RL V=106 with padding rows)."""

import pytest

from tests.sampling import models


@pytest.fixture(scope="session")
def pair() -> models.Pair:
    return models.build_pair()
