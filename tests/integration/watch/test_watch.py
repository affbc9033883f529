"""The watch end to end (issue 12 items 1, 2 and 4): the real template and statemachine/watch.asl.json
on moto, the probe function and the watch function in-process, the simulator's Cognigy.AI Endpoints,
real TLS targets on 127.0.0.1 that go down and come back, time compressed through the watch's ``at``.

Each transition has its audit event and its event on the operations bus; the watch calls Cognigy only
when a rule says so (deactivate, reactivate, switch the URL) and never when nothing changes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cogwh.sim_endpoints import ENDPOINTS_PATH, EndpointStore
from cogwh.targets import SwitchableTarget
from tests.integration.reconcile.harness import Harness
from tests.integration.watch.conftest import BLOCK, Watches


def _spec(name: str, target: SwitchableTarget, *fallbacks: SwitchableTarget) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "url": target.url(f"/hooks/{name}"), "timeoutMs": 3000}
    if fallbacks:
        spec["fallbackUrls"] = [f.url(f"/hooks/{name}") for f in fallbacks]
    return spec


def _writes(h: Harness) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in h.sim.requests if r["method"] in ("POST", "PATCH", "DELETE")]


def _audit_actions(h: Harness, name: str) -> list[str]:
    return [e.action for e in h.audit(name) if e.source == "watch"]


def test_a_target_that_goes_down_is_unhealthy_then_deactivated_after_the_span_then_reactivated(
    h: Harness, cognigy: EndpointStore, watches: Watches, target: SwitchableTarget
) -> None:
    h.apply([_spec("orders-hook", target)], cognigy=BLOCK)
    (endpoint,) = cognigy.named("orders-hook")
    assert endpoint["active"] is True
    before = len(h.sim.requests)

    first = watches.run()  # healthy: nothing to tell anyone
    assert first["healthy"] == 1
    assert first["cognigyCalls"] == 0
    assert len(h.sim.requests) == before  # not even a read
    assert watches.events("orders-hook") == []

    target.down()
    for _ in range(2):
        watches.run()
    assert h.record("orders-hook").watch.state == "healthy"  # two failures are a blip
    third = watches.run()
    assert third["transitions"] == {"Endpoint Unhealthy": 1}
    assert watches.kinds("orders-hook") == ["Endpoint Unhealthy"]
    # many failures in a short time never deactivate: 20 more watches within the hour
    for _ in range(4):
        watches.run(after=timedelta(minutes=10))
    assert h.record("orders-hook").watch.state == "unhealthy"
    assert len(h.sim.requests) == before

    deactivating = watches.run(after=timedelta(hours=24))
    assert deactivating["transitions"] == {"Endpoint Deactivated": 1}
    assert deactivating["cognigyCalls"] == 1
    (endpoint,) = cognigy.named("orders-hook")
    assert endpoint["active"] is False
    assert _writes(h)[-1] == ("PATCH", f"{ENDPOINTS_PATH}/{endpoint['_id']}")
    record = h.record("orders-hook")
    assert record.watch.state == "deactivated"
    assert record.last_changed == endpoint["lastChanged"]

    watches.run()  # still down: no second deactivation
    target.up()
    watches.run()
    watches.run()
    assert h.record("orders-hook").watch.state == "deactivated"
    recovering = watches.run()
    assert recovering["transitions"] == {"Endpoint Recovered": 1}
    (endpoint,) = cognigy.named("orders-hook")
    assert endpoint["active"] is True
    story = ["Endpoint Unhealthy", "Endpoint Deactivated", "Endpoint Recovered"]
    assert watches.kinds("orders-hook") == story
    assert _audit_actions(h, "orders-hook") == [kind.lower().replace(" ", "_") for kind in story]
    # exactly two Cognigy writes in the whole story: the deactivation and the reactivation
    assert [m for m, _ in _writes(h)].count("PATCH") == 2

    # the next apply finds the endpoint up to date: it undoes nothing, writes nothing
    writes = len(_writes(h))
    run = h.apply([_spec("orders-hook", target)], cognigy=BLOCK)
    assert run.result("orders-hook")["outcome"] == "unchanged"
    assert len(_writes(h)) == writes


def test_the_schedule_starts_a_watch_that_judges_at_its_own_start_time(
    h: Harness, watches: Watches, target: SwitchableTarget
) -> None:
    h.apply([_spec("scheduled-hook", target)], cognigy=BLOCK)
    arn = h.stack.fire_schedule("WatchStateMachine")  # what EventBridge Scheduler does every 15 minutes
    ended = h.stack.wait_execution(arn)
    h.in_flight.wait_idle()
    assert ended["status"] == "SUCCEEDED"
    record = h.record("scheduled-hook")
    assert record is not None
    assert record.watch is not None
    # the execution's start time (describe_execution rounds it to milliseconds)
    assert abs((record.watch.last_watch_at - ended["startDate"]).total_seconds()) < 0.001
    assert record.watch.consecutive_successes == 1


def test_the_watch_state_stays_small_enough_for_the_reconcile_s_1000_endpoints(
    h: Harness, watches: Watches, target: SwitchableTarget
) -> None:
    n = 12
    h.apply(
        [
            _spec(f"sized-{i:02d}", target)
            | {
                "basicAuth": {"username": "cognigy", "password": "p" * 40},
                "fallbackUrls": [target.url(f"/f{i}")],
            }
            for i in range(n)
        ],
        cognigy=BLOCK,
    )
    watches.run()
    arn = h.stack.client("stepfunctions").list_executions(
        stateMachineArn=h.stack.outputs["WatchStateMachineArn"]
    )["executions"][0]["executionArn"]
    largest = 0
    for event in h.stack.execution_history(arn):
        for details in event.values():
            if isinstance(details, dict):
                for key in ("input", "output"):
                    if isinstance(details.get(key), str):
                        largest = max(largest, len(details[key].encode()))
    # Step Functions allows 256 KiB per state: 1000 endpoints (the plan's cap) must fit
    assert largest / n * 1000 < 256 * 1024 * 0.9, largest / n
