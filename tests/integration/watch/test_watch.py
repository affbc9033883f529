"""The watch end to end (issue 12 items 1, 2 and 4): the real template and statemachine/watch.asl.json
on moto, the probe function and the watch function in-process, the simulator's Cognigy.AI Endpoints,
real TLS targets on 127.0.0.1 that go down and come back, time compressed through the watch's ``at``.

Each transition has its audit event and its event on the operations bus; the watch calls Cognigy only
when a rule says so (deactivate, reactivate, switch the URL) and never when nothing changes."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from cognigy_webhooks import ops as library_ops
from cognigy_webhooks.watch import fanout
from cogwh import ops
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


def _parent_history(h: Harness, arn: str) -> list[dict[str, Any]]:
    return h.stack.execution_history(arn)


def _largest_payload(history: list[dict[str, Any]]) -> int:
    largest = 0
    for event in history:
        for details in event.values():
            if isinstance(details, dict):
                for key in ("input", "output"):
                    if isinstance(details.get(key), str):
                        largest = max(largest, len(details[key].encode()))
    return largest


def test_the_watch_fans_out_on_a_distributed_map_its_own_history_the_same_for_2_or_6_endpoints(
    h: Harness, watches: Watches, target: SwitchableTarget
) -> None:
    n = 6
    names = [f"sized-{i:02d}" for i in range(n)]
    h.apply(
        [
            _spec(name, target)
            | {"basicAuth": {"username": "cognigy", "password": "p" * 40}, "fallbackUrls": [target.url("/f")]}
            for name in names
        ],
        cognigy=BLOCK,
    )
    small = watches.run(names=names[:2])
    big = watches.run()
    assert (small["watched"], big["watched"]) == (2, n)
    assert [r["name"] for r in big["results"]] == names  # in name order, each judged in its own child

    # the parent's history: the same events whatever the number of endpoints, none of a child's
    histories = [_parent_history(h, arn) for arn in watches.arns]
    assert [e["type"] for e in histories[0]] == [e["type"] for e in histories[1]]
    entered = [e["stateEnteredEventDetails"]["name"] for e in histories[1] if "stateEnteredEventDetails" in e]
    assert entered == ["ListTargets", "AnyTargets", "WatchEach", "Summarize"]
    assert "MapRunStarted" in [e["type"] for e in histories[1]]
    # its state carries references, not the endpoints: the payloads do not grow with them (the
    # summary inlines each endpoint's judgement up to INLINE_RESULTS, ~150 bytes each, then only
    # the notable ones: the next tests and tests/unit/test_watch_fanout.py)
    listed = next(e for e in histories[1] if e["type"] == "TaskStateExited")
    assert len(listed["stateExitedEventDetails"]["output"]) < 1000
    assert _largest_payload(histories[1]) - _largest_payload(histories[0]) < (n - 2) * 200

    # what the map read and wrote: the targets, the result files, the whole summary
    run = watches.arns[1].rsplit(":", 1)[-1]
    objects = watches.objects()
    targets = objects[f"watch/{run}/targets.json"]
    assert [t["name"] for t in targets] == names
    assert set(targets[0]["endpoint"]) == {"name", "url", "fallbackUrls", "timeoutMs"}  # no secret field
    assert objects[f"watch/{run}/summary.json"]["watched"] == n
    [manifest] = [
        key for key in objects if key.startswith(f"watch/{run}/results/") and key.endswith("manifest.json")
    ]
    assert len(objects[manifest.replace("manifest.json", "SUCCEEDED_0.json")]) == n
    # and its children ran as EXPRESS executions: listed nowhere, their histories not kept (as on AWS)
    sfn = h.stack.client("stepfunctions")
    [map_run] = sfn.list_map_runs(executionArn=watches.arns[1])["mapRuns"]
    assert sfn.list_executions(mapRunArn=map_run["mapRunArn"])["executions"] == []


def test_a_watch_with_nothing_registered_skips_the_map_and_succeeds_empty(
    h: Harness, watches: Watches
) -> None:
    summary = watches.run()  # the tables are empty: what the schedule does on a new stack

    assert (summary["watched"], summary["results"], summary["failed"]) == (0, [], 0)
    history = h.stack.execution_history(watches.arns[-1])
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert entered == ["ListTargets", "AnyTargets", "NothingToWatch", "Summarize"]


def _dead_items(h: Harness, dispatch: Any, dead: int) -> Any:
    """The stack's dispatch, with ``dead`` items a child cannot read (no endpoint) added to the list
    step's targets."""
    s3 = h.stack.client("s3")

    def rewritten(function: str, body: Any, headers: Any, response_headers: dict[str, Any]) -> Any:
        event = json.loads(body) if body else {}
        answer = dispatch(function, body, headers, response_headers)
        if "WatchFunction" not in function or event.get("step") != "list":
            return answer
        listed = json.loads(answer)
        ref = listed["itemsRef"]
        targets = json.loads(s3.get_object(Bucket=ref["bucket"], Key=ref["key"])["Body"].read())
        targets += [{"name": f"dead-{i}"} for i in range(dead)]
        s3.put_object(Bucket=ref["bucket"], Key=ref["key"], Body=json.dumps(targets).encode())
        # as the list step tells the map for that many children (the template's 5%, one at least)
        ref["count"] = len(targets)
        ref["toleratedFailurePercentage"] = fanout.tolerated_percentage(
            event["toleratedFailurePercentage"], len(targets)
        )
        return json.dumps(listed).encode()

    return rewritten


def test_a_child_that_dies_is_reported_failed_and_fails_the_watch_only_past_the_tolerated_percentage(
    h: Harness, watches: Watches, target: SwitchableTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a registered endpoint, and beside it a child that dies (an item it cannot read:
    # States.Runtime, past every Catch); the execution's output inlining one endpoint at most
    # (INLINE_RESULTS is 200)
    monkeypatch.setattr(fanout, "INLINE_RESULTS", 1)
    h.apply([_spec("survivor-hook", target)], cognigy=BLOCK)
    dispatch = h.stack.dispatch
    access = ops.stack_access(h.stack)
    try:
        # When 1 child of 2 dies: 50% of them, but one endpoint's child never fails the watch
        h.stack.dispatch = _dead_items(h, dispatch, dead=1)  # type: ignore[method-assign]
        summary = watches.run()

        # Then the watch succeeds, the dead one reported failed by name, the other judged
        assert (summary["failed"], summary["healthy"]) == (1, 1)
        [dead] = [r for r in summary["results"] if r["outcome"] == "failed"]
        assert dead["name"] == "dead-0"
        assert dead["reason"].startswith("child_failed: States.Runtime")
        assert h.record("survivor-hook").watch.consecutive_successes == 1  # type: ignore[union-attr]
        # the output is bounded (the counts, the notable endpoint), the view the whole (summaryRef)
        output = json.loads(
            h.stack.client("stepfunctions").describe_execution(executionArn=watches.arns[-1])["output"]
        )
        assert (output["truncated"], output["failed"], [r["name"] for r in output["results"]]) == (
            True,
            1,
            ["dead-0"],
        )
        assert (summary["truncated"], [r["name"] for r in summary["results"]]) == (
            False,
            ["dead-0", "survivor-hook"],
        )
        assert summary["summaryRef"] == output["summaryRef"]
        assert output["summaryRef"]["key"] == f"watch/{watches.arns[-1].rsplit(':', 1)[-1]}/summary.json"

        # When 2 children of 3 die: past the tolerated percentage (one child of 3: 33.34%)
        h.stack.dispatch = _dead_items(h, dispatch, dead=2)  # type: ignore[method-assign]
        started = library_ops.start_watch(access, at=watches.at + timedelta(minutes=15), source="test")
        ended = h.stack.wait_execution(started.execution_arn)
        h.in_flight.wait_idle()
    finally:
        h.stack.dispatch = dispatch  # type: ignore[method-assign]

    # Then the watch fails, and says so
    assert (ended["status"], ended.get("error")) == ("FAILED", "States.ExceedToleratedFailureThreshold")
    view = library_ops.describe_watch(access, started.execution_arn)
    assert (view.status, view.summary) == ("FAILED", None)
