"""The Cognigy simulator served over real TLS on 127.0.0.1 for tests.

``running_simulator(local_ca, config)`` is a context manager; the ``simulator`` fixture serves one
simulator per test module and resets it (webhooks, requests, faults, config) before each test.
Both give a :class:`RunningSimulator` ``(base_url, api_key, state, ca_file)``.

The fixtures themselves (``simulator_server`` per module, ``simulator`` reset per test) live in
``tests/conftest.py``: every tier that needs them just names them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from cogwh.certs import LocalCA
from cogwh.servers import serve_in_thread
from cogwh.simulator import SimulatorConfig, SimulatorState, create_simulator_app

# Keys made fresh per run, with a recognisable prefix so leak checks can look for them.
API_KEY = "ck_test_" + secrets.token_urlsafe(24)
READ_ONLY_KEY = "ck_ro_" + secrets.token_urlsafe(24)

# Roomy defaults so tests only meet the rate limit when they set it low on purpose.
TEST_CONFIG = SimulatorConfig(
    api_keys=(API_KEY,),
    read_only_keys=(READ_ONLY_KEY,),
    rate_per_minute=60_000,
    burst=1_000,
    seed=7,
)


class RunningSimulator(NamedTuple):
    base_url: str
    api_key: str
    state: SimulatorState
    ca_file: Path

    @property
    def read_only_key(self) -> str:
        return READ_ONLY_KEY

    def configure(self, **changes: object) -> None:
        """Replace config fields (rate_per_minute, burst, allow_duplicate_names, ...) and reset."""
        self.state.reset(dataclasses.replace(TEST_CONFIG, **changes))  # type: ignore[arg-type]


@contextlib.contextmanager
def running_simulator(local_ca: LocalCA, config: SimulatorConfig = TEST_CONFIG) -> Iterator[RunningSimulator]:
    """Serve a simulator over TLS with a LocalCA certificate for localhost and 127.0.0.1."""
    leaf = local_ca.issue("localhost", "127.0.0.1")
    app = create_simulator_app(config)
    with serve_in_thread(app, certfile=leaf.cert, keyfile=leaf.key, url_host="localhost") as served:
        yield RunningSimulator(served.base_url, config.api_keys[0], app.state.sim, local_ca.ca_file)
