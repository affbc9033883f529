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
    assert [item["name"] for item in output["items"]] == ["watched-hook"]  # an inactive one is not watched
    assert output["items"][0]["endpoint"]["url"] == target.url("/a")


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


def test_summarize_sample_counts_states_transitions_and_failures(h: Harness) -> None:
    output = h.stack.invoke("WatchFunction", sample("watch_summarize.json"))
    assert (output["watched"], output["healthy"], output["unhealthy"], output["failed"]) == (2, 1, 1, 1)
    assert output["transitions"] == {"Endpoint Unhealthy": 1}
    assert output["minCertDaysLeft"] == 12
    assert output["writes"] == 3


def test_a_bad_step_is_refused_naming_the_field(h: Harness) -> None:
    for event, field in (
        ({"step": "dance"}, "step"),
        ({"step": "judge", "name": "x", "at": "yesterday"}, "at"),
        ({"step": "list", "input": {"at": "2026-12-01T09:00:00"}}, "at"),  # no offset
    ):
        with pytest.raises(InvalidInput) as refused:
            h.stack.invoke("WatchFunction", event)
        assert field in {e["field"].split(".")[0] for e in refused.value.errors}, refused.value.errors
