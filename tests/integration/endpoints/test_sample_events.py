"""The endpoints dialect's sample events (events/plan_endpoints.json, events/register_apply_endpoints.json),
given to their handlers as Lambda would, through the local stack speaking Cognigy.AI's Endpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cognigy_webhooks.reconcile import RegisterResult
from cogwh.demo import DEMO_PROJECT_ID
from cogwh.sim_endpoints import EndpointStore
from tests.integration.reconcile.harness import Harness
from tests.integration.reconcile.test_sample_events import planned_items

EVENTS = Path(__file__).resolve().parents[3] / "events"


def sample(name: str) -> dict[str, Any]:
    loaded = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_plan_sample_spreads_the_cognigy_block_and_lists_the_project_once(h: Harness) -> None:
    event = sample("plan_endpoints.json")
    assert event["input"]["desired"]["cognigy"]["projectId"] == DEMO_PROJECT_ID
    output = h.stack.invoke("PlanFunction", event)
    assert output["invalid"] == []
    assert output["listing"] == "complete"
    items = planned_items(h, output)
    endpoints = {item["endpoint"]["name"]: item for item in items}
    assert endpoints["bot-outputs"]["endpoint"]["cognigy"] == {"projectId": DEMO_PROJECT_ID, "localeId": ""}
    assert endpoints["handover-webhook"]["endpoint"]["cognigy"]["flowId"].startswith("3f2b7c1e")
    assert all(item["cognigy"]["listed"] and item["cognigy"]["ids"] == [] for item in items)
    assert [(r["method"], r["path"]) for r in h.sim.requests] == [("GET", "/new/v2.0/endpoints")]


def test_register_sample_creates_an_endpoint_with_one_call_and_records_its_token_arn(
    h: Harness, cognigy: EndpointStore
) -> None:
    event = sample("register_apply_endpoints.json")
    created = RegisterResult.model_validate(h.stack.invoke("RegisterFunction", event))
    assert (created.outcome, created.status_code) == ("created", 201)
    assert [r["method"] for r in h.sim.requests] == ["POST"]
    (endpoint,) = cognigy.named("bot-outputs")
    record = h.record("bot-outputs")
    assert record is not None
    assert record.webhook_id == endpoint["_id"]
    assert record.url_token_arn is not None
    assert endpoint["URLToken"] not in json.dumps(h.raw_items("EndpointsTableName"))
