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

from cogwh.demo import API_KEY_SECRET_NAME, ROOT, LocalWorld, local_world
from cogwh.localstack import LocalStack
from cogwh.simulator import SimulatorConfig
from tests.integration.reconcile.harness import BURST, RATE_PER_MINUTE, Harness, in_flight, stack_parameters


@pytest.fixture(scope="package")
def world() -> Iterator[LocalWorld]:
    with local_world(rate_per_minute=RATE_PER_MINUTE, burst=BURST) as local:
        yield local


@pytest.fixture(scope="package")
def simulator_config(world: LocalWorld) -> SimulatorConfig:
    """The simulator's configuration as the world made it (tests that revoke the key change it)."""
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
    harness.in_flight.wait_idle()  # nothing of the previous test may write after the wipe
    harness.sim.reset(simulator_config)
    harness.wipe()
    return harness
