"""What the reconcile integration tests drive: the local stack (template.yaml + the real ASL on moto,
waits instant) next to a local world (LocalCA, the Cognigy simulator over TLS, HTTPS targets).

:class:`Harness` applies desired sets through :func:`cogwh.ops.apply` (the CLI's own path: secrets to
Secrets Manager, the desired set to the config bucket, a deterministically named execution) and gives
the execution's history, the records, the audit events and the simulator's view of what happened.

An execution can end while one of its tasks still runs, as on AWS: a Fail state in one Map iteration
(a refused API key) fails the execution while another iteration's register task is still talking to
Cognigy, and that task still writes its audit event afterwards. :class:`InFlight` counts the Lambda
invocations the local stack is running; :meth:`Harness.apply` returns only once none is left, and
the per-test clean slate waits for the same, so one test's stragglers never land in the next test's
tables (the cause of the flaky ``test_faults.py[read_only-CognigyForbidden-403]``: the revoked-key
case before it left a 401 refusal behind).
"""

from __future__ import annotations

import functools
import json
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cognigy_webhooks.dal.records import Store
from cognigy_webhooks.models.records import AuditEvent, EndpointRecord
from cogwh import ops
from cogwh.demo import LocalWorld
from cogwh.localstack import LocalStack
from cogwh.simulator import SimulatorConfig, SimulatorState

COGNIGY_WRITE_METHODS = ("POST", "PATCH", "DELETE")

# A budget so roomy (on both sides: our limiter and the simulator's) that only the tests that inject
# 429s on purpose ever meet one.
RATE_PER_MINUTE = 60_000
BURST = 1_000


class InFlight:
    """The Lambda invocations a local stack is running right now (its ``dispatch`` hook, wrapped)."""

    def __init__(self, stack: LocalStack) -> None:
        self._changed = threading.Condition()
        self._running = 0
        dispatch = stack.dispatch

        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._changed:
                self._running += 1
            try:
                return dispatch(*args, **kwargs)
            finally:
                with self._changed:
                    self._running -= 1
                    self._changed.notify_all()

        stack.dispatch = counted  # type: ignore[method-assign]

    def wait_idle(self, timeout: float = 120.0) -> None:
        """Return once no invocation is running (AssertionError after ``timeout`` seconds)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._running == 0, timeout=timeout):
                raise AssertionError(f"{self._running} Lambda invocation(s) still running after {timeout} s")


_IN_FLIGHT: weakref.WeakKeyDictionary[LocalStack, InFlight] = weakref.WeakKeyDictionary()


def in_flight(stack: LocalStack) -> InFlight:
    """The stack's invocation counter, installed on first use."""
    if stack not in _IN_FLIGHT:
        _IN_FLIGHT[stack] = InFlight(stack)
    return _IN_FLIGHT[stack]


def stack_parameters(world: LocalWorld) -> dict[str, str]:
    """The template's parameters for the local world, with the roomy Cognigy budget."""
    return {
        **world.stack_parameters(),
        "CognigyRequestsPerMinute": str(RATE_PER_MINUTE),
        "CognigyBurst": str(BURST),
    }


@dataclass
class Applied:
    """One finished reconcile execution; its ``history`` (the parent's events, then each child
    execution's) is read the first time a test asks for it."""

    run: ops.ApplyRun
    read_history: Callable[[], list[dict[str, Any]]] = field(repr=False)

    @functools.cached_property
    def history(self) -> list[dict[str, Any]]:
        return self.read_history()

    @property
    def arn(self) -> str:
        return self.run.execution_arn

    @property
    def summary(self) -> dict[str, Any]:
        assert self.run.status == "SUCCEEDED", f"{self.run.status}: {self.run.error} {self.run.cause}"
        assert self.run.summary is not None
        return self.run.summary

    def result(self, name: str) -> dict[str, Any]:
        found = [r for r in self.summary["results"] if r["name"] == name]
        assert len(found) == 1, f"{name}: {len(found)} results in {self.summary['results']}"
        return found[0]

    def entered(self, state: str) -> list[dict[str, Any]]:
        """The input of every time the execution entered ``state`` (parsed JSON), in order."""
        return [
            json.loads(e["stateEnteredEventDetails"].get("input") or "null")
            for e in self.history
            if e.get("stateEnteredEventDetails", {}).get("name") == state
        ]

    def entered_for(self, state: str, endpoint: str) -> list[dict[str, Any]]:
        return [i for i in self.entered(state) if (i.get("endpoint") or {}).get("name") == endpoint]

    def task_failures(self) -> list[dict[str, Any]]:
        """Every failed Lambda task attempt (error name and cause), in order."""
        return [
            e["lambdaFunctionFailedEventDetails"]
            for e in self.history
            if "lambdaFunctionFailedEventDetails" in e
        ]


class Harness:
    def __init__(self, stack: LocalStack, world: LocalWorld) -> None:
        self.stack = stack
        self.world = world
        self.in_flight = in_flight(stack)
        self.store = Store(
            stack.client("dynamodb"),
            endpoints_table=stack.outputs["EndpointsTableName"],
            audit_table=stack.outputs["AuditTableName"],
        )

    @property
    def sim(self) -> SimulatorState:
        state = self.world.simulator_state
        assert isinstance(state, SimulatorState)
        return state

    def url(self, name: str, port: str = "PORT_TLS13") -> str:
        return f"https://localhost:{self.world.ports[port]}/hooks/{name}"

    def endpoint(self, name: str, *, port: str = "PORT_TLS13", **fields: Any) -> dict[str, Any]:
        """A desired endpoint (camelCase, as a user writes it) pointing at one of the local targets."""
        return {"name": name, "url": self.url(name, port), "timeoutMs": 5000, **fields}

    def apply(
        self,
        endpoints: list[dict[str, Any]],
        *,
        prune: bool = False,
        source: str = "cli",
        cognigy: dict[str, Any] | None = None,
    ) -> Applied:
        """Apply a desired set (``cognigy``: its top-level block, for the endpoints dialect)."""
        desired: dict[str, Any] = {"endpoints": endpoints}
        if cognigy is not None:
            desired["cognigy"] = cognigy
        run = ops.apply(self.stack, desired, prune=prune, source=source, wait=self.stack.wait_execution)
        self.in_flight.wait_idle()  # the execution ended; its last tasks may still be running
        arn, stack = run.execution_arn, self.stack
        return Applied(run, lambda: stack.execution_history(arn, children=True))

    def record(self, name: str) -> EndpointRecord | None:
        return self.store.get_record(name)

    def audit(self, name: str) -> list[AuditEvent]:
        """The endpoint's audit events, oldest first."""
        return self.store.audit_for(name, newest_first=False)

    def cognigy_writes(self) -> int:
        return sum(self.sim.count(method=m) for m in COGNIGY_WRITE_METHODS)

    def raw_items(self, output: str) -> list[dict[str, Any]]:
        """Every item of a table (by its output name) as DynamoDB holds it (tests only: a Scan)."""
        ddb = self.stack.client("dynamodb")
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.stack.outputs[output]}
        while True:
            page = ddb.scan(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def wipe(self) -> None:
        """Empty the endpoint, audit and rate-limit tables (between tests)."""
        ddb = self.stack.client("dynamodb")
        for output, keys in (
            ("EndpointsTableName", ("name",)),
            ("AuditTableName", ("name", "sk")),
            ("RateLimitTableName", ("bucket",)),
        ):
            for item in self.raw_items(output):
                ddb.delete_item(TableName=self.stack.outputs[output], Key={k: item[k] for k in keys})


def roomy_world(cognigy_api: str = "tutorial") -> Iterator[LocalWorld]:
    """CA, simulator and targets at the roomy budget the reconcile tests use (a fixture body:
    ``yield from``)."""
    from cogwh.demo import local_world

    with local_world(rate_per_minute=RATE_PER_MINUTE, burst=BURST, cognigy_api=cognigy_api) as local:
        yield local


def simulator_config_of(world: LocalWorld) -> SimulatorConfig:
    """The simulator's configuration as the world made it (tests that change it reset to this)."""
    config = world.simulator_state.config
    assert isinstance(config, SimulatorConfig)
    return config


def serve_stack(world: LocalWorld) -> Iterator[LocalStack]:
    """A module's local stack next to ``world`` (waits instant, the roomy budget, the API key stored),
    closed once every Lambda invocation of it has ended (a fixture body: ``yield from``)."""
    from cogwh.demo import API_KEY_SECRET_NAME, ROOT

    with LocalStack(ROOT, parameters=stack_parameters(world), time_factor=0.0) as local:
        local.client("secretsmanager").create_secret(Name=API_KEY_SECRET_NAME, SecretString=world.api_key)
        yield local
        in_flight(local).wait_idle()


def serve_cli_stack(world: LocalWorld, state: Path) -> Iterator[LocalStack]:
    """The stack `cogwh up` would serve (server mode, waits instant, the API key stored), with its
    state file at ``state``, where `--local` looks for it while the fixture lives (a fixture body:
    ``yield from``)."""
    import pytest

    from cogwh.demo import API_KEY_SECRET_NAME, ROOT

    with (
        pytest.MonkeyPatch.context() as patch,
        LocalStack(ROOT, parameters=stack_parameters(world), time_factor=0.0, server=True) as stack,
    ):
        patch.setenv(ops.STATE_FILE_ENV, str(state))
        stack.client("secretsmanager").create_secret(Name=API_KEY_SECRET_NAME, SecretString=world.api_key)
        ops.write_state(
            state,
            stack_name=stack.stack_name,
            endpoint_url=stack.endpoint_url,
            region=stack.region,
            outputs=stack.outputs,
        )
        yield stack
        in_flight(stack).wait_idle()


def clean_harness(stack: LocalStack, world: LocalWorld, config: Any) -> Harness:
    """A harness on a clean slate: nothing of the previous test still running, the simulator reset to
    ``config``, the tables emptied."""
    harness = Harness(stack, world)
    harness.in_flight.wait_idle()  # nothing of the previous test may write after the wipe
    harness.sim.reset(config)
    harness.wipe()
    return harness
