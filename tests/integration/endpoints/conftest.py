"""Fixtures for the endpoints dialect (Cognigy.AI's /new/v2.0/endpoints) through the local stack.

As tests/integration/reconcile's, with the stack speaking ``CognigyApi=endpoints`` to the simulator's
real-API dialect, which knows the project :data:`cogwh.demo.DEMO_PROJECT_ID`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cogwh.demo import API_KEY_SECRET_NAME, ROOT, LocalWorld, local_world
from cogwh.localstack import LocalStack
from cogwh.sim_endpoints import EndpointStore, store_of
from cogwh.simulator import SimulatorConfig
from tests.integration.reconcile.harness import BURST, RATE_PER_MINUTE, Harness, in_flight, stack_parameters


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
    with LocalStack(ROOT, parameters=stack_parameters(world), time_factor=0.0) as local:
        local.client("secretsmanager").create_secret(Name=API_KEY_SECRET_NAME, SecretString=world.api_key)
        yield local
        in_flight(local).wait_idle()


@pytest.fixture
def h(stack: LocalStack, world: LocalWorld, simulator_config: SimulatorConfig) -> Harness:
    harness = Harness(stack, world)
    harness.in_flight.wait_idle()
    harness.sim.reset(simulator_config)
    harness.wipe()
    return harness


@pytest.fixture
def cognigy(h: Harness) -> EndpointStore:
    """The simulator's Endpoints (what Cognigy.AI holds), emptied with every reset."""
    return store_of(h.sim)
