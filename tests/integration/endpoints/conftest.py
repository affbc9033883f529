"""Fixtures for the endpoints dialect (Cognigy.AI's /new/v2.0/endpoints) through the local stack.

As tests/integration/reconcile's, with the stack speaking ``CognigyApi=endpoints`` to the simulator's
real-API dialect, which knows the project :data:`cogwh.demo.DEMO_PROJECT_ID`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cogwh.demo import LocalWorld
from cogwh.localstack import LocalStack
from cogwh.sim_endpoints import EndpointStore, store_of
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
    yield from roomy_world("endpoints")


@pytest.fixture(scope="package")
def simulator_config(world: LocalWorld) -> SimulatorConfig:
    return simulator_config_of(world)


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
