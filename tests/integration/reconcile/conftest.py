"""Fixtures for the reconcile integration tests.

One local world (LocalCA, the Cognigy simulator over TLS, HTTPS targets on TLS 1.3/1.2/1.1 and a
closed port) for the whole folder; one local stack (template.yaml and the real ASL on moto, retry
intervals and waits instant) per test module, because only one local stack may be open per process;
and a clean slate for every test: the simulator reset (webhooks, requests, faults, keys) and the
endpoint, audit and rate-limit tables emptied, once every Lambda invocation of the previous test has
ended (an execution may end before its last task does; see the harness).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cogwh.demo import LocalWorld
from cogwh.localstack import LocalStack
from cogwh.simulator import SimulatorConfig
from tests.integration.reconcile.harness import (
    Harness,
    clean_harness,
    roomy_world,
    serve_stack,
    simulator_config_of,
)


@pytest.fixture(scope="package")
def world() -> Iterator[LocalWorld]:
    yield from roomy_world()


@pytest.fixture(scope="package")
def simulator_config(world: LocalWorld) -> SimulatorConfig:
    """The simulator's configuration as the world made it (tests that revoke the key change it)."""
    return simulator_config_of(world)


@pytest.fixture(scope="module")
def stack(world: LocalWorld) -> Iterator[LocalStack]:
    yield from serve_stack(world)


@pytest.fixture
def h(stack: LocalStack, world: LocalWorld, simulator_config: SimulatorConfig) -> Harness:
    return clean_harness(stack, world, simulator_config)
