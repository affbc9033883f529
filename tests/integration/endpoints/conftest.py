"""Fixtures for the endpoints dialect (Cognigy.AI's /new/v2.0/endpoints) through the local stack.

As tests/integration/reconcile's, with the stack speaking ``CognigyApi=endpoints`` to the simulator's
real-API dialect, which knows the project :data:`cogwh.demo.DEMO_PROJECT_ID`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cogwh.demo import LocalWorld, local_world
from cogwh.localstack import LocalStack
from cogwh.sim_endpoints import EndpointStore, store_of
from cogwh.simulator import SimulatorConfig
from tests.integration.reconcile.harness import BURST, RATE_PER_MINUTE, Harness, clean_harness, serve_stack


@pytest.fixture(scope="package")
def world() -> Iterator[LocalWorld]:
    with local_world(rate_per_minute=RATE_PER_MINUTE, burst=BURST, cognigy_api="endpoints") as local:
        yield local


@pytest.fixture(scope="package")
def simulator_config(world: LocalWorld) -> SimulatorConfig:
    config = world.simulator_state.config
    assert isinstance(config, SimulatorConfig)
    return config


@pytest.fixture(scope="module")
def stack(world: LocalWorld) -> Iterator[LocalStack]:
    yield from serve_stack(world)


@pytest.fixture
def h(stack: LocalStack, world: LocalWorld, simulator_config: SimulatorConfig) -> Harness:
    return clean_harness(stack, world, simulator_config)


@pytest.fixture
def cognigy(h: Harness) -> EndpointStore:
    """The simulator's Endpoints (what Cognigy.AI holds), emptied with every reset."""
    return store_of(h.sim)
