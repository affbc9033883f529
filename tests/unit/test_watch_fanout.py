"""The watch's fan-out read back (cognigy_webhooks.watch.fanout), with no AWS: each child of the
Distributed Map as its endpoint's judgement, the execution's output bounded whatever the number of
endpoints, and the summarize step reading only its own run's results."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest

from cognigy_webhooks.dal.run_files import ChildResult
from cognigy_webhooks.errors import InvalidInput
from cognigy_webhooks.watch.fanout import (
    INLINE_RESULTS,
    bounded,
    judgements,
    summarize_run,
    tolerated_percentage,
)
from cognigy_webhooks.watch.run import WatchSummary, summarize

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
REF = {"bucket": "config", "key": "watch/run-1/summary.json"}


def _judged(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "outcome": "unchanged", "state": "healthy", "writes": 1, **fields}


def _child(name: str, **fields: Any) -> ChildResult:
    return ChildResult(status="SUCCEEDED", input={"name": name}, output=_judged(name, **fields))


def test_each_child_is_its_endpoint_s_judgement_in_name_order_a_broken_one_failed_by_name() -> None:
    cause = "The JSONPath '$$.Map.Item.Value.endpoint' could not be found " + "x" * 500
    children = [
        _child("b-hook"),
        ChildResult(status="FAILED", input={"name": "a-hook"}, error="States.Runtime", cause=cause),
        ChildResult(status="TIMED_OUT", input={"name": "c-hook"}, error="States.Timeout"),
        ChildResult(status="SUCCEEDED", input={"name": "d-hook"}, output={"no": "judgement"}),
        ChildResult(status="FAILED", input=None, error="States.Runtime"),  # an unreadable input
    ]

    results = judgements(children)

    assert [r["name"] for r in results] == ["?", "a-hook", "b-hook", "c-hook", "d-hook"]
    by_name = {r["name"]: r for r in results}
    assert by_name["b-hook"]["outcome"] == "unchanged"
    dead = by_name["a-hook"]
    assert dead["outcome"] == "failed"
    assert dead["reason"].startswith("child_failed: States.Runtime: The JSONPath")
    assert len(dead["reason"]) < 260
    assert dead["reason"].endswith("...")
    assert by_name["c-hook"]["reason"] == "child_failed: States.Timeout"
    assert by_name["d-hook"]["reason"].startswith("bad_result")
    # and every one is counted: the summary never drops an endpoint
    summary = summarize(AT, results)
    assert (summary.watched, summary.failed) == (1, 4)


def test_the_output_is_the_whole_summary_up_to_the_bound_then_counts_and_the_notable_ones() -> None:
    # Given a watch of INLINE_RESULTS endpoints, and one of 3 x INLINE_RESULTS with a few notable ones
    small = summarize(AT, [_judged(f"h-{i:04d}") for i in range(INLINE_RESULTS)])
    many = [_judged(f"h-{i:04d}") for i in range(3 * INLINE_RESULTS)]
    many[7] = _judged("h-0007", outcome="changed", state="unhealthy", transitions=["Endpoint Unhealthy"])
    many[9] = {"name": "h-0009", "outcome": "failed", "reason": "CognigyAuthError"}
    big = summarize(AT, many)

    # Then the small one is carried whole, the big one bounded, both naming the whole summary
    assert bounded(small, REF) == small.model_copy(update={"summary_ref": REF})
    out = bounded(big, REF)
    assert (out.truncated, out.summary_ref, out.watched, out.failed) == (True, REF, 3 * INLINE_RESULTS - 1, 1)
    assert out.transitions == {"Endpoint Unhealthy": 1}
    assert [r.name for r in out.results] == ["h-0007", "h-0009"]
    # and however many endpoints change, the output stays well inside Step Functions' 256 KiB
    worst = summarize(
        AT,
        [
            _judged(
                f"endpoint-name-of-64-characters-{i:032d}", outcome="changed", transitions=["Drift Detected"]
            )
            for i in range(10 * INLINE_RESULTS)
        ],
    )
    dumped = json.dumps(bounded(worst, REF).model_dump(mode="json", by_alias=True, exclude_none=True))
    assert len(dumped.encode()) < 64 * 1024


class _Files:
    """The config bucket's run files, in memory."""

    bucket = "config"

    def __init__(self, children: list[ChildResult]) -> None:
        self.children = children
        self.written: dict[str, Any] = {}
        self.read: list[dict[str, Any]] = []

    def put_json(self, key: str, doc: Any) -> dict[str, str]:
        self.written[key] = doc
        return {"bucket": self.bucket, "key": key}

    def map_results(self, details: dict[str, Any]) -> Iterable[ChildResult]:
        self.read.append(details)
        return iter(self.children)


def test_summarize_run_reads_its_own_results_and_writes_the_whole_summary_beside_them() -> None:
    files = _Files([_child("one"), _child("two")])
    details = {"Bucket": "config", "Key": "watch/run-1/results/map-run-id/manifest.json"}

    summary, ref = summarize_run(AT, details, files, "run-1")

    assert files.read == [details]
    assert ref == REF
    assert WatchSummary.model_validate(files.written[REF["key"]]) == summary
    assert [r.name for r in summary.results] == ["one", "two"]


def test_a_run_with_nothing_to_watch_has_an_empty_summary_and_one_that_had_needs_its_results() -> None:
    files = _Files([])
    summary, ref = summarize_run(AT, None, files, "run-1", count=0)
    assert (summary.watched, summary.results, ref) == (0, [], REF)
    assert files.read == []
    with pytest.raises(InvalidInput):
        summarize_run(AT, None, files, "run-1", count=3)


@pytest.mark.parametrize(
    ("details", "field"),
    [
        ("manifest.json", "resultWriterDetails"),
        ({"Bucket": "other", "Key": "watch/run-1/results/m/manifest.json"}, "resultWriterDetails.Bucket"),
        ({"Bucket": "config", "Key": "watch/run-2/results/m/manifest.json"}, "resultWriterDetails.Key"),
        ({"Bucket": "config", "Key": "watch/run-1/results-x/manifest.json"}, "resultWriterDetails.Key"),
        ({"Bucket": "config", "Key": "watch/run-1/results/../../run-2/s.json"}, "resultWriterDetails.Key"),
        ({"Bucket": "config"}, "resultWriterDetails.Key"),
    ],
)
def test_summarize_run_refuses_results_that_are_not_its_own(details: Any, field: str) -> None:
    files = _Files([])
    with pytest.raises(InvalidInput) as refused:
        summarize_run(AT, details, files, "run-1")
    assert [e["field"] for e in refused.value.errors] == [field]
    assert files.read == []
    assert files.written == {}


@pytest.mark.parametrize(
    ("asked", "count", "given"),
    [
        (5, 1000, 5.0),  # 50 children may die
        (5, 21, 5.0),  # one may (100 > 5 x 21 is false), two may not
        (5, 20, 5.0),
        (5, 19, 5.27),  # raised: one child of 19 is 5.26...%
        (5, 3, 33.34),
        (5, 1, 100.0),
        (50, 3, 50.0),
        (0, 3, 0.0),  # 0 asks for none: the first child that dies fails the watch
        (5, 0, 5.0),  # nothing to watch
    ],
)
def test_the_tolerated_percentage_is_the_stack_s_but_one_child_at_least(
    asked: float, count: int, given: float
) -> None:
    percentage = tolerated_percentage(asked, count)
    assert percentage == given
    if count and asked:  # Step Functions fails the run once failed x 100 > percentage x count
        assert percentage * count >= 100  # one child that dies is within it
        tolerated = max(f for f in range(count + 1) if not f * 100 > percentage * count)
        assert tolerated == max(1, int(asked * count // 100))
