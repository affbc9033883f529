"""Following a reconcile on a Distributed Map (cogwh.follow): the parent's history, then each child's
endpoint by endpoint; a run of more than FOLLOW_CHILDREN endpoints by its map run's counts. Step
Functions is a stub client behind the real Executions (the local stack's children are covered by
tests/integration/test_cli_plan_apply.py)."""

from __future__ import annotations

import json
from typing import Any

from cognigy_webhooks.dal.executions import Executions
from cognigy_webhooks.ops import StackAccess, Step, planned_counts, progress_step
from cogwh.follow import CHILD_READS_PER_POLL, FOLLOW_CHILDREN, follow

MACHINE = "arn:aws:states:eu-central-1:123456789012:stateMachine:stack-reconcile"
ARN = MACHINE.replace(":stateMachine:", ":execution:") + ":cli-run"
RUN = "arn:aws:states:eu-central-1:123456789012:mapRun:stack-reconcile/ApplyEach:run"


def _child_history(name: str) -> list[dict[str, Any]]:
    doc = {"endpoint": {"name": name}, "action": "apply"}
    result = {"name": name, "outcome": "created"}
    return [
        {"id": 1, "type": "ExecutionStarted"},
        {
            "id": 2,
            "type": "TaskStateEntered",
            "stateEnteredEventDetails": {"name": "Probe", "input": json.dumps(doc)},
        },
        {
            "id": 3,
            "type": "TaskStateExited",
            "stateExitedEventDetails": {"name": "Register", "output": json.dumps(result)},
        },
        {"id": 4, "type": "ExecutionSucceeded"},
    ]


class StubStepFunctions:
    """One execution that planned ``count`` endpoints and ended (its children ended too)."""

    def __init__(self, count: int, children: int) -> None:
        plan = {"itemsRef": {"count": count, "invalidCount": 1}, "invalid": [], "source": "cli"}
        self.parent = [
            {"id": 1, "type": "ExecutionStarted"},
            {
                "id": 2,
                "type": "TaskStateExited",
                "stateExitedEventDetails": {"name": "Plan", "output": json.dumps(plan)},
            },
            {"id": 3, "type": "MapRunStarted", "mapRunStartedEventDetails": {"mapRunArn": RUN}},
            {
                "id": 4,
                "type": "MapRunFailed",
                "mapRunFailedEventDetails": {"error": "States.ExceedToleratedFailureThreshold"},
            },
            {
                "id": 5,
                "type": "ExecutionFailed",
                "executionFailedEventDetails": {"error": "CognigyAuthError"},
            },
        ]
        self.children = {f"{ARN}-child-{i}": f"hook-{i}" for i in range(children)}
        self.histories_read: list[str] = []
        self.counted = 0

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        return {
            "executionArn": executionArn,
            "status": "FAILED",
            "error": "CognigyAuthError",
            "name": "cli-run",
        }

    def get_execution_history(self, executionArn: str, **kwargs: Any) -> dict[str, Any]:
        self.histories_read.append(executionArn)
        if executionArn == ARN:
            return {"events": self.parent}
        return {"events": _child_history(self.children[executionArn])}

    def list_executions(self, mapRunArn: str, **kwargs: Any) -> dict[str, Any]:
        assert mapRunArn == RUN
        return {
            "executions": [
                {"executionArn": arn, "status": "SUCCEEDED", "startDate": i}
                for i, arn in enumerate(self.children)
            ]
        }

    def describe_map_run(self, mapRunArn: str) -> dict[str, Any]:
        self.counted += 1
        return {"itemCounts": {"succeeded": 2, "failed": 1, "running": 0, "total": 3}}


def _access(sfn: StubStepFunctions) -> StackAccess:
    return StackAccess(
        store=None,  # type: ignore[arg-type]
        desired_sets=None,  # type: ignore[arg-type]
        executions=Executions(sfn, MACHINE),
        secretsmanager=lambda: None,
        stack_name="stack",
    )


def test_a_small_run_is_followed_child_by_child_and_summarised_from_their_results() -> None:
    sfn = StubStepFunctions(count=3, children=3)
    steps: list[Step] = []

    view = follow(_access(sfn), ARN, on_step=steps.append, sleep=lambda s: None)

    lines = [(s.endpoint, s.what) for s in steps]
    assert lines[0] == ("*", "planned")
    assert [s.detail for s in steps[:1]] == ["3 to reconcile, 1 refused"]
    for name in ("hook-0", "hook-1", "hook-2"):
        assert (name, "probing") in lines
        assert (name, "created") in lines
    # the parent's end comes after its children's steps
    assert lines[-1] == ("*", "execution failed")
    assert view.summary is not None
    assert sorted(view.summary.created) == ["hook-0", "hook-1", "hook-2"]
    assert sfn.counted == 0  # no map run counts for a run followed endpoint by endpoint


def test_each_child_history_is_read_once_and_at_most_a_few_a_poll() -> None:
    sfn = StubStepFunctions(count=CHILD_READS_PER_POLL + 5, children=CHILD_READS_PER_POLL + 5)
    follow(_access(sfn), ARN, on_step=lambda step: None, sleep=lambda s: None)
    children_read = [arn for arn in sfn.histories_read if arn != ARN]
    assert len(children_read) == CHILD_READS_PER_POLL  # one poll (the execution had ended)
    assert len(set(children_read)) == len(children_read)


def test_a_big_run_is_shown_by_its_map_run_counts_not_endpoint_by_endpoint() -> None:
    sfn = StubStepFunctions(count=FOLLOW_CHILDREN + 1, children=3)
    steps: list[Step] = []

    follow(_access(sfn), ARN, on_step=steps.append, sleep=lambda s: None)

    assert [arn for arn in sfn.histories_read if arn != ARN] == []
    assert Step("*", "progress", f"3 of {FOLLOW_CHILDREN + 1} done, 1 failed, 0 running") in steps
    assert sfn.counted == 1


def test_planned_counts_read_the_items_ref_or_the_items_themselves() -> None:
    assert planned_counts({"itemsRef": {"count": 3000, "invalidCount": 2}}) == (3000, 2)
    assert planned_counts({"items": [{}, {}], "invalid": [{}]}) == (2, 1)
    assert progress_step({"succeeded": 5, "timedOut": 1, "aborted": 1, "running": 4}, 20).detail == (
        "7 of 20 done, 2 failed, 4 running"
    )
