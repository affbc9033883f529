"""The summarize step over a Distributed Map's results (cognigy_webhooks.reconcile.summary) and the
map's concurrency (cognigy_webhooks.reconcile.plan.map_concurrency): pure, no AWS."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from cognigy_webhooks.dal.executions import ExecutionStatus
from cognigy_webhooks.dal.run_files import ChildResult
from cognigy_webhooks.reconcile.plan import map_concurrency
from cognigy_webhooks.reconcile.summary import (
    INLINE_RESULTS,
    bounded,
    results_of_children,
    summarize,
    why_stopped,
)


def _created(name: str) -> ChildResult:
    result = {"name": name, "outcome": "created", "webhookId": f"id-{name}"}
    return ChildResult(status="SUCCEEDED", input={"endpoint": {"name": name}}, output=result)


def test_a_child_that_failed_as_a_whole_is_its_endpoints_failure_with_the_childs_error() -> None:
    cause = json.dumps({"errorMessage": "the task broke", "errorType": "Boom", "stackTrace": ["..."]})
    children = [
        _created("one"),
        ChildResult(
            status="FAILED", input={"endpoint": {"name": "two"}}, error="States.Runtime", cause=cause
        ),
        ChildResult(status="TIMED_OUT", input={"endpoint": {"name": "three"}}, error="States.Timeout"),
    ]
    summary = summarize(results_of_children(children), [], execution_id="x", source="cli")
    assert summary.counts == {"created": 1, "updated": 0, "unchanged": 0, "deleted": 0, "failed": 2}
    assert summary.failed == [
        {"name": "two", "reason": "child_failed", "detail": "States.Runtime: the task broke"},
        {"name": "three", "reason": "child_failed", "detail": "States.Timeout"},
    ]
    assert "stackTrace" not in json.dumps(summary.model_dump())


def test_the_output_carries_every_result_up_to_the_bound_and_then_counts_and_failures_alone() -> None:
    ref = {"bucket": "b", "key": "reconcile/x/summary.json"}
    small = summarize(
        results_of_children([_created(f"e{i}") for i in range(3)]), [], execution_id="x", source="cli"
    )
    kept = bounded(small, ref)
    assert (kept.truncated, kept.created, kept.summary_ref) == (False, ["e0", "e1", "e2"], ref)

    many = [_created(f"e{i}") for i in range(INLINE_RESULTS + 1)]
    invalid = [{"name": "bad", "outcome": "failed", "reason": "invalid_spec", "detail": "url"}]
    big = summarize(results_of_children(many), invalid, execution_id="x", source="cli")
    cut = bounded(big, ref)
    assert cut.truncated is True
    assert cut.summary_ref == ref
    assert (
        cut.counts
        == big.counts
        == {"created": INLINE_RESULTS + 1, "updated": 0, "unchanged": 0, "deleted": 0, "failed": 1}
    )
    assert (cut.created, cut.results) == ([], [])
    assert [f["name"] for f in cut.failed] == ["bad"]
    assert len(cut.model_dump_json()) < 2_000  # whatever the number of endpoints


@pytest.mark.parametrize(
    ("per_minute", "seconds", "most", "expected"),
    [
        (60, 3, 40, 3),  # the defaults: one request a second, three seconds an endpoint
        (300, 3, 10, 10),  # bounded by MapConcurrency
        (1, 3, 40, 1),  # at least one
        (6000, 2.5, 10000, 250),
    ],
)
def test_the_concurrency_is_what_the_cognigy_budget_keeps_busy(
    per_minute: float, seconds: float, most: int, expected: int
) -> None:
    assert (
        map_concurrency(requests_per_minute=per_minute, seconds_per_endpoint=seconds, most=most) == expected
    )


@dataclass
class _Executions:
    failed: list[ExecutionStatus] = field(default_factory=list)
    described: dict[str, ExecutionStatus] = field(default_factory=dict)

    def map_runs(self, execution_arn: str) -> list[str]:
        return ["run-1"]

    def children_page(self, run: str, **kwargs: Any) -> tuple[list[ExecutionStatus], None]:
        assert kwargs == {"status": "FAILED", "limit": 1}
        return self.failed, None

    def describe(self, arn: str) -> ExecutionStatus:
        return self.described[arn]


def test_a_stopped_map_run_fails_the_execution_with_its_failed_childs_error() -> None:
    child = ExecutionStatus(
        execution_arn="child", status="FAILED", error="CognigyAuthError", cause="401: the key"
    )
    found = why_stopped(
        _Executions([child], {"child": child}), "exec", {"Error": "States.ExceedToleratedFailureThreshold"}
    )
    assert found == {"error": "CognigyAuthError", "cause": "401: the key"}
    # no failed child to read (EXPRESS children are listed nowhere): the threshold's own
    assert why_stopped(
        _Executions(), "exec", {"Error": "States.ExceedToleratedFailureThreshold", "Cause": "c"}
    ) == {
        "error": "States.ExceedToleratedFailureThreshold",
        "cause": "c",
    }


class _OneExecution:
    """The reconcile's executions as describe_execution reads them: one that succeeded."""

    def __init__(self, output: str) -> None:
        self.output = output

    def arn_of(self, execution: str) -> str:
        return f"arn:aws:states:eu-central-1:123456789012:execution:stack-reconcile:{execution}"

    def describe(self, arn: str) -> ExecutionStatus:
        return ExecutionStatus(
            execution_arn=arn, status="SUCCEEDED", output=self.output, name=arn.rsplit(":", 1)[-1]
        )


def test_a_truncated_summary_is_read_whole_from_its_ref_and_kept_bounded_when_it_is_gone() -> None:
    import boto3
    from moto import mock_aws

    from cognigy_webhooks.dal.desired_sets import DesiredSetStore
    from cognigy_webhooks.ops import StackAccess, describe_execution

    many = [_created(f"e{i}") for i in range(INLINE_RESULTS + 5)]
    whole = summarize(results_of_children(many), [], execution_id="x", source="cli")
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-central-1")
        s3.create_bucket(Bucket="config-b", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
        key = "reconcile/cli-x/summary.json"
        s3.put_object(Bucket="config-b", Key=key, Body=whole.model_dump_json(by_alias=True).encode())
        ref = {"bucket": "config-b", "key": key}
        output = bounded(whole, ref).model_dump_json(by_alias=True)
        access = StackAccess(
            store=None,  # type: ignore[arg-type]
            desired_sets=DesiredSetStore(s3, "config-b"),
            executions=_OneExecution(output),  # type: ignore[arg-type]
            secretsmanager=lambda: None,
            stack_name="stack",
        )
        # the API's view: the bounded summary; the command line's: the whole one
        assert describe_execution(access, "cli-x").summary.truncated is True
        read = describe_execution(access, "cli-x", whole=True).summary
        assert read is not None
        assert len(read.created) == INLINE_RESULTS + 5
        assert read.summary_ref == ref
        # once the bucket's lifecycle expired it: the bounded one, no error
        s3.delete_object(Bucket="config-b", Key=key)
        kept = describe_execution(access, "cli-x", whole=True).summary
        assert kept is not None
        assert kept.truncated is True
        assert kept.counts["created"] == INLINE_RESULTS + 5
