"""The reconcile's Distributed Map on the local stack (the template's own state machine, the real
functions, the Cognigy simulator, real HTTPS targets): the plan's items in the config bucket, one
STANDARD child execution per endpoint with its own history, the parent's history bounded, the
ResultWriter's files read by summarize, the whole summary beside them and the output bounded."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.reconcile.harness import Harness

CHILD_STATES = {"Route", "Probe", "ProbePassed", "Register", "RecordProbeFailure", "RecordFailure"}
PARENT_EVENTS = [
    "ExecutionStarted",
    "TaskStateEntered",
    "LambdaFunctionScheduled",
    "LambdaFunctionStarted",
    "LambdaFunctionSucceeded",
    "TaskStateExited",
    "MapStateEntered",
    "MapStateStarted",
    "MapRunStarted",
    "MapRunSucceeded",
    "MapStateSucceeded",
    "MapStateExited",
    "TaskStateEntered",
    "LambdaFunctionScheduled",
    "LambdaFunctionStarted",
    "LambdaFunctionSucceeded",
    "TaskStateExited",
    "ExecutionSucceeded",
]


def _read(h: Harness, bucket: str, key: str) -> Any:
    return json.loads(h.stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def test_each_endpoint_runs_in_a_child_and_the_parent_history_stays_the_same_size(h: Harness) -> None:
    # Given two healthy endpoints, one whose target is down, and one the plan refuses
    endpoints = [h.endpoint("dmap-one"), h.endpoint("dmap-two", port="PORT_TLS12")]
    endpoints += [h.endpoint("dmap-down", port="PORT_DOWN"), {"name": "dmap-bad", "url": "http://x"}]

    # When they are applied
    applied = h.apply(endpoints)

    # Then the parent's history is the plan, the map run and the summary: nothing of any endpoint
    parent = h.stack.execution_history(applied.arn)
    assert [e["type"] for e in parent] == PARENT_EVENTS
    entered = {e["stateEnteredEventDetails"]["name"] for e in parent if "stateEnteredEventDetails" in e}
    assert entered == {"Plan", "ApplyEach", "Summarize"}
    # and the plan's output carries where its items are, not the items
    [plan_exit] = [e for e in parent if e.get("stateExitedEventDetails", {}).get("name") == "Plan"]
    ref = json.loads(plan_exit["stateExitedEventDetails"]["output"])["itemsRef"]
    assert (ref["count"], ref["invalidCount"]) == (3, 1)
    assert [i["endpoint"]["name"] for i in _read(h, ref["bucket"], ref["key"])] == [
        "dmap-one",
        "dmap-two",
        "dmap-down",
    ]

    # and each endpoint ran in a child execution of its own, with its own history
    sfn = h.stack.client("stepfunctions")
    [run] = sfn.list_map_runs(executionArn=applied.arn)["mapRuns"]
    children = sfn.list_executions(mapRunArn=run["mapRunArn"])["executions"]
    assert len(children) == 3
    assert {c["status"] for c in children} == {"SUCCEEDED"}
    for child in children:
        states = {
            e["stateEnteredEventDetails"]["name"]
            for e in h.stack.execution_history(child["executionArn"])
            if "stateEnteredEventDetails" in e
        }
        assert states <= CHILD_STATES | {"ReadThrottleCause", "ReadThrottleMessage", "CountThrottle"}
        assert "Probe" in states

    # and the summary counts every endpoint, the whole one written beside the results
    summary = applied.summary
    assert summary["counts"] == {"created": 2, "updated": 0, "unchanged": 0, "deleted": 0, "failed": 2}
    assert sorted(f["name"] for f in summary["failed"]) == ["dmap-bad", "dmap-down"]
    assert summary["truncated"] is False
    whole = _read(h, summary["summaryRef"]["bucket"], summary["summaryRef"]["key"])
    assert whole["counts"] == summary["counts"]
    assert len(whole["results"]) == 4
    assert len(h.sim.webhooks_named("dmap-one")) == len(h.sim.webhooks_named("dmap-two")) == 1


def test_the_map_runs_as_many_children_at_once_as_the_cognigy_budget_keeps_busy(h: Harness) -> None:
    # the local stack's budget (stack_parameters) and ReconcileSecondsPerEndpoint give the plan's
    # concurrency; MapConcurrency bounds it
    environment = h.stack.environment("PlanFunction")
    applied = h.apply([h.endpoint("dmap-budget")])
    parent = h.stack.execution_history(applied.arn)
    [plan_exit] = [e for e in parent if e.get("stateExitedEventDetails", {}).get("name") == "Plan"]
    concurrency = json.loads(plan_exit["stateExitedEventDetails"]["output"])["itemsRef"]["concurrency"]
    per_minute = float(h.stack.environment("RegisterFunction")["COGNIGY_REQUESTS_PER_MINUTE"])
    wanted = -(-per_minute / 60 * float(environment["SECONDS_PER_ENDPOINT"]) // 1)
    assert concurrency == max(1, min(int(environment["MAP_CONCURRENCY"]), int(wanted)))
    sfn = h.stack.client("stepfunctions")
    [run] = sfn.list_map_runs(executionArn=applied.arn)["mapRuns"]
    assert sfn.describe_map_run(mapRunArn=run["mapRunArn"])["maxConcurrency"] == concurrency


def test_a_set_with_nothing_valid_runs_an_empty_map_and_reports_each_refusal(h: Harness) -> None:
    applied = h.apply([{"name": "dmap-only-bad", "url": "http://x"}])
    assert applied.summary["counts"] == {
        "created": 0,
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
        "failed": 1,
    }
    assert [f["reason"] for f in applied.summary["failed"]] == ["invalid_spec"]
    sfn = h.stack.client("stepfunctions")
    [run] = sfn.list_map_runs(executionArn=applied.arn)["mapRuns"]
    assert sfn.list_executions(mapRunArn=run["mapRunArn"])["executions"] == []
