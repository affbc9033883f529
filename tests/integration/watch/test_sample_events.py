"""The watch function's sample events (events/watch_*.json), given to the handler as the watch state
machine would, through the local stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cognigy_webhooks.errors import InvalidInput
from cogwh.targets import SwitchableTarget
from tests.integration.reconcile.harness import Harness
from tests.integration.watch.conftest import BLOCK

EVENTS = Path(__file__).resolve().parents[3] / "events"


def sample(name: str) -> dict[str, Any]:
    loaded = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_list_sample_lists_the_active_records_and_judges_at_the_execution_start(
    h: Harness, target: SwitchableTarget
) -> None:
    h.apply(
        [
            {"name": "watched-hook", "url": target.url("/a")},
            {"name": "inactive-hook", "url": target.url("/b"), "isActive": False},
        ],
        cognigy=BLOCK,
    )
    output = h.stack.invoke("WatchFunction", sample("watch_list.json"))
    assert output["at"] == "2026-12-01T09:00:00+00:00"
    # the targets are in the config bucket, where the Distributed Map reads them: the state holds where
    bucket = h.stack.outputs["ConfigBucketName"]
    assert output["itemsRef"] == {
        "bucket": bucket,
        "key": "watch/schedule-0001/targets.json",
        "resultsPrefix": "watch/schedule-0001/results",
        "count": 1,
        "toleratedFailurePercentage": 100.0,  # 5 asked, but one child that dies never fails the watch
    }
    body = h.stack.client("s3").get_object(Bucket=bucket, Key=output["itemsRef"]["key"])["Body"].read()
    targets = json.loads(body)
    assert [item["name"] for item in targets] == ["watched-hook"]  # an inactive one is not watched
    assert targets[0]["endpoint"]["url"] == target.url("/a")


def test_judge_sample_records_one_healthy_watch_with_one_write_and_no_cognigy_call(
    h: Harness, target: SwitchableTarget
) -> None:
    event = sample("watch_judge.json")
    url = target.url("/orders")
    h.apply([{"name": event["name"], "url": url}], cognigy=BLOCK)
    before = len(h.sim.requests)
    event["probe"]["primary"]["url"] = url
    output = h.stack.invoke("WatchFunction", event)
    assert output == {
        "name": "orders-bot-webhook",
        "outcome": "unchanged",
        "state": "healthy",
        "transitions": [],
        "cognigyCalls": 0,
        "writes": 1,
        "certDaysLeft": 61,
    }
    assert len(h.sim.requests) == before
    record = h.record("orders-bot-webhook")
    assert record is not None
    assert record.watch is not None
    assert record.watch.last_watch_at is not None
    assert record.watch.last_watch_at.isoformat() == event["at"]
    # the same judgement again (a retried step) changes nothing and writes nothing
    again = h.stack.invoke("WatchFunction", event)
    assert again["writes"] == 0
    assert h.record("orders-bot-webhook").version == record.version  # type: ignore[union-attr]


def _results_written(h: Harness, event: dict[str, Any]) -> None:
    """What the map run's ResultWriter wrote (events/watch_summarize_results.json), in the stack's
    config bucket where the sample names it."""
    written = sample("watch_summarize_results.json")
    s3, bucket = h.stack.client("s3"), h.stack.outputs["ConfigBucketName"]
    event["resultWriterDetails"]["Bucket"] = event["itemsRef"]["bucket"] = bucket
    manifest_key = event["resultWriterDetails"]["Key"]
    files: dict[str, list[dict[str, Any]]] = {"SUCCEEDED": [], "FAILED": [], "PENDING": []}
    for status in ("SUCCEEDED", "FAILED"):
        key = manifest_key.replace("manifest.json", f"{status}_0.json")
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(written[status.lower()]).encode())
        files[status].append({"Key": key, "Size": 0})
    s3.put_object(Bucket=bucket, Key=manifest_key, Body=json.dumps({"ResultFiles": files}).encode())


def test_summarize_sample_counts_states_transitions_and_failures(h: Harness) -> None:
    event = sample("watch_summarize.json")
    _results_written(h, event)

    output = h.stack.invoke("WatchFunction", event)

    assert (output["watched"], output["healthy"], output["unhealthy"], output["failed"]) == (2, 1, 1, 2)
    assert output["transitions"] == {"Endpoint Unhealthy": 1}
    assert output["minCertDaysLeft"] == 12
    assert output["writes"] == 3
    # each endpoint by name: the judge's failure, and the child that failed as a whole
    failed = {r["name"]: r["reason"] for r in output["results"] if r["outcome"] == "failed"}
    assert failed["billing-webhook"] == "CognigyAuthError"
    assert failed["legacy-crm"].startswith("child_failed: States.Runtime: The JSONPath")
    assert [r["name"] for r in output["results"]] == sorted(r["name"] for r in output["results"])
    # and the whole summary is written beside the results
    ref = output["summaryRef"]
    assert ref["key"] == "watch/schedule-0001/summary.json"
    whole = json.loads(h.stack.client("s3").get_object(Bucket=ref["bucket"], Key=ref["key"])["Body"].read())
    assert len(whole["results"]) == 4


@pytest.mark.parametrize(
    ("details", "field"),
    [
        (None, "resultWriterDetails"),
        ({"Bucket": "someone-elses-bucket", "Key": "watch/schedule-0001/results/x/manifest.json"}, "Bucket"),
        ({"Key": "watch/another-run/results/x/manifest.json"}, "Key"),
        ({"Key": "desired/endpoints.json"}, "Key"),
        ({"Key": "watch/schedule-0001/results/../../../desired/endpoints.json"}, "Key"),
    ],
)
def test_summarize_reads_only_its_own_run_s_results(h: Harness, details: Any, field: str) -> None:
    event = sample("watch_summarize.json")
    bucket = h.stack.outputs["ConfigBucketName"]
    event["resultWriterDetails"] = None if details is None else {"Bucket": bucket, **details}
    with pytest.raises(InvalidInput) as refused:
        h.stack.invoke("WatchFunction", event)
    assert [e["field"] for e in refused.value.errors] == [
        field if field == "resultWriterDetails" else f"resultWriterDetails.{field}"
    ]


def test_a_bad_step_is_refused_naming_the_field(h: Harness) -> None:
    for event, field in (
        ({"step": "dance"}, "step"),
        ({"step": "judge", "name": "x", "at": "yesterday"}, "at"),
        ({"step": "list", "input": {"at": "2026-12-01T09:00:00"}}, "at"),  # no offset
        ({"step": "summarize", "at": "2026-12-01T09:00:00+00:00"}, "executionName"),
    ):
        with pytest.raises(InvalidInput) as refused:
            h.stack.invoke("WatchFunction", event)
        assert field in {e["field"].split(".")[0] for e in refused.value.errors}, refused.value.errors
