"""Fixtures every tier shares: the local CA, the anyio backend and the Cognigy simulator. A tier's own
fixtures live in its conftest.py; tests/support/ holds the helpers they are built from."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cogwh.certs import LocalCA
from tests.support.simulator import TEST_CONFIG, RunningSimulator, running_simulator


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def local_ca() -> Iterator[LocalCA]:
    ca = LocalCA()
    yield ca
    ca.close()


@pytest.fixture(scope="module")
def simulator_server(local_ca: LocalCA) -> Iterator[RunningSimulator]:
    """One simulator over TLS per test module."""
    with running_simulator(local_ca) as sim:
        yield sim


@pytest.fixture
def simulator(simulator_server: RunningSimulator) -> RunningSimulator:
    """A clean simulator (module-wide server, state reset for each test)."""
    simulator_server.state.reset(TEST_CONFIG)
    return simulator_server
