"""Strict numerics for every test: numpy floating-point errors raise, warnings are errors
(pyproject), and jax (the oracle) runs in float64."""

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "funcnet",
    deadline=None,  # the jax oracle traces on first use; wall-clock limits would flake
    max_examples=20,
    derandomize=True,  # CI sees the same examples every run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("funcnet")


@pytest.fixture(autouse=True)
def strict_numerics():
    with np.errstate(all="raise"):
        yield


@pytest.fixture(scope="session")
def jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax
