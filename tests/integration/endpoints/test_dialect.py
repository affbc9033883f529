"""The endpoints dialect end to end: the reconcile state machine (the real ASL on moto) registering
Cognigy.AI webhook Endpoints in the simulator's ``/new/v2.0/endpoints``, one engine for both dialects.

Covers issue 10's items 1-4: the mapping (name, settings.webhookUrl, Basic auth, active, channel,
flowId/localeId), the plan's refusals, one listing per project per apply (a name the listing saw free
is created without a look-up; a re-apply with nothing changed costs the listing pages alone), adoption
(and its refusal when several match), drift (changed or deleted outside) repaired and audited, prune
limited to what is recorded, RFC 7807 errors with their traceId in the audit, a lost create resolved
by listing again, and the URLToken kept in Secrets Manager only.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cogwh.demo import DEMO_PROJECT_ID
from cogwh.sim_endpoints import ENDPOINTS_PATH, EndpointStore
from tests.integration.reconcile.harness import Harness

BLOCK = {"projectId": DEMO_PROJECT_ID}
FLOW = "3f2b7c1e-9a4d-4e8b-b6a1-0c2d3e4f5a6b"
PASSWORD = "s3cret-basic-password-for-the-demo"


def _ep(h: Harness, name: str, **fields: Any) -> dict[str, Any]:
    spec = h.endpoint(name, **fields)
    spec.pop("timeoutMs", None)
    return spec


def _writes(h: Harness) -> int:
    return h.cognigy_writes()


def _calls(h: Harness, method: str) -> int:
    return sum(1 for r in h.sim.requests if r["method"] == method and r["path"].startswith(ENDPOINTS_PATH))


def _other(cognigy: EndpointStore, name: str, url: str = "https://elsewhere.example.com/x") -> dict[str, Any]:
    body = {"projectId": DEMO_PROJECT_ID, "name": name, "channel": "webhook", "settings": {"webhookUrl": url}}
    return cognigy.create(body, "0" * 24)


def test_a_first_apply_creates_endpoints_with_one_call_each_and_records_what_cognigy_answered(
    h: Harness, cognigy: EndpointStore
) -> None:
    for i in range(3):  # the project holds others, which are left alone
        _other(cognigy, f"someone-elses-{i}")
    desired = [
        _ep(h, "orders-hook", basicAuth={"username": "cognigy", "password": PASSWORD}),
        _ep(h, "flow-hook", cognigy={"flowId": FLOW, "localeId": ""}, isActive=False),
    ]
    run = h.apply(desired, cognigy=BLOCK)
    assert {r["name"]: r["outcome"] for r in run.summary["results"]} == {
        "orders-hook": "created",
        "flow-hook": "created",
    }
    # one listing page for the project, then one POST per endpoint: no per-name look-up
    assert _calls(h, "GET") == 1
    assert _calls(h, "POST") == 2
    (orders,) = cognigy.named("orders-hook")
    assert orders["channel"] == "webhook"
    assert orders["settings"]["webhookUrl"] == h.url("orders-hook")
    assert orders["settings"]["basicAuthUser"] == "cognigy"
    assert cognigy.password_digest(orders["_id"]) == hashlib.sha256(PASSWORD.encode()).hexdigest()
    (flow,) = cognigy.named("flow-hook")
    assert flow["flowId"] == FLOW
    assert flow["active"] is False
    record = h.record("orders-hook")
    assert record is not None
    assert record.webhook_id == orders["_id"]
    assert record.project_id == DEMO_PROJECT_ID
    assert record.last_changed == orders["lastChanged"]
    assert record.url_token_arn
    token = h.stack.client("secretsmanager").get_secret_value(SecretId=record.url_token_arn)["SecretString"]
    assert token == orders["URLToken"]
    # the URLToken and the password are nowhere but Secrets Manager and Cognigy
    stored = json.dumps(h.raw_items("EndpointsTableName")) + json.dumps(h.raw_items("AuditTableName"))
    stored += json.dumps(run.history, default=str)
    assert orders["URLToken"] not in stored
    assert flow["URLToken"] not in stored
    assert PASSWORD not in stored
    assert len(cognigy.endpoints) == 5


def test_a_re_apply_with_nothing_changed_costs_the_listing_alone(h: Harness, cognigy: EndpointStore) -> None:
    desired = [_ep(h, f"hook-{i}") for i in range(3)]
    h.apply(desired, cognigy=BLOCK)
    before = len(h.sim.requests)
    run = h.apply(desired, cognigy=BLOCK)
    assert {r["outcome"] for r in run.summary["results"]} == {"unchanged"}
    after = h.sim.requests[before:]
    assert [(r["method"], r["path"]) for r in after] == [("GET", ENDPOINTS_PATH)]


def test_an_endpoint_changed_outside_is_read_and_repaired_and_audited_as_drift(
    h: Harness, cognigy: EndpointStore
) -> None:
    desired = [_ep(h, "drifty-hook"), _ep(h, "touched-hook")]
    h.apply(desired, cognigy=BLOCK)
    (drifty,) = cognigy.named("drifty-hook")
    (touched,) = cognigy.named("touched-hook")
    cognigy.update(drifty["_id"], {"settings": {"webhookUrl": "https://changed.example.com/x"}}, "1" * 24)
    cognigy.update(touched["_id"], {"name": "touched-hook"}, "1" * 24)  # moved, not changed
    before = len(h.sim.requests)
    run = h.apply(desired, cognigy=BLOCK)
    results = {r["name"]: r for r in run.summary["results"]}
    assert results["drifty-hook"]["outcome"] == "updated"
    assert results["touched-hook"]["outcome"] == "unchanged"
    calls = sorted((r["method"], r["path"]) for r in h.sim.requests[before:])
    assert calls == sorted(
        [
            ("GET", ENDPOINTS_PATH),
            ("GET", f"{ENDPOINTS_PATH}/{drifty['_id']}"),
            ("GET", f"{ENDPOINTS_PATH}/{touched['_id']}"),
            ("PATCH", f"{ENDPOINTS_PATH}/{drifty['_id']}"),
        ]
    )
    assert cognigy.named("drifty-hook")[0]["settings"]["webhookUrl"] == h.url("drifty-hook")
    actions = [e.action for e in h.audit("drifty-hook")]
    assert actions[-1] == "drift_repaired"
    assert "settings.webhookUrl" in str(h.audit("drifty-hook")[-1].detail)
    # both records know the new lastChanged: the next apply reads nothing
    before = len(h.sim.requests)
    h.apply(desired, cognigy=BLOCK)
    assert [r["method"] for r in h.sim.requests[before:]] == ["GET"]


def test_an_endpoint_deleted_outside_is_made_again_and_audited_as_drift(
    h: Harness, cognigy: EndpointStore
) -> None:
    h.apply([_ep(h, "gone-hook")], cognigy=BLOCK)
    (first,) = cognigy.named("gone-hook")
    cognigy.delete(first["_id"])
    run = h.apply([_ep(h, "gone-hook")], cognigy=BLOCK)
    assert run.result("gone-hook")["outcome"] == "created"
    (second,) = cognigy.named("gone-hook")
    assert second["_id"] != first["_id"]
    record = h.record("gone-hook")
    assert record is not None
    assert record.webhook_id == second["_id"]
    event = h.audit("gone-hook")[-1]
    assert event.action == "drift_repaired"
    assert "deleted outside" in str(event.detail)


def test_an_existing_endpoint_of_the_name_is_adopted_and_several_are_refused(
    h: Harness, cognigy: EndpointStore
) -> None:
    existing = _other(cognigy, "adopt-me")
    _other(cognigy, "twice")
    _other(cognigy, "twice")
    run = h.apply([_ep(h, "adopt-me"), _ep(h, "twice")], cognigy=BLOCK)
    assert run.result("adopt-me")["outcome"] == "created"
    assert [e["_id"] for e in cognigy.named("adopt-me")] == [existing["_id"]]
    assert cognigy.named("adopt-me")[0]["settings"]["webhookUrl"] == h.url("adopt-me")
    twice = run.result("twice")
    assert (twice["outcome"], twice["reason"]) == ("failed", "cognigy_name_ambiguous")
    assert "delete or rename" in twice["detail"]
    assert len(cognigy.named("twice")) == 2
    assert _calls(h, "POST") == 0


def test_prune_deletes_only_what_is_recorded_as_ours(h: Harness, cognigy: EndpointStore) -> None:
    _other(cognigy, "not-ours")
    h.apply([_ep(h, "keep-hook"), _ep(h, "drop-hook")], cognigy=BLOCK)
    run = h.apply([_ep(h, "keep-hook")], cognigy=BLOCK, prune=True)
    assert run.result("drop-hook")["outcome"] == "deleted"
    assert sorted(e["name"] for e in cognigy.endpoints.values()) == ["keep-hook", "not-ours"]


def test_what_an_endpoint_cannot_honour_is_refused_by_the_plan_naming_the_field(h: Harness) -> None:
    desired = [
        _ep(h, "put-hook", method="PUT"),
        _ep(h, "header-hook", headers={"X-Team": "a"}, publicHeaders=["X-Team"]),
        _ep(h, "xml-hook", payloadFormat="XML"),
        _ep(h, "retry-hook", retryPolicy={"maxRetries": 1, "retryIntervalMs": 2000}),
        _ep(h, "signed-hook", signatureHeader="X-Sig", signatureSecret="x" * 40),
        {**_ep(h, "no-project-hook"), "cognigy": {"projectId": ""}},
        _ep(h, "fine-hook", method="POST", payloadFormat="JSON"),
    ]
    run = h.apply(desired, cognigy=BLOCK)
    results = {r["name"]: r for r in run.summary["results"]}
    assert results["fine-hook"]["outcome"] == "created"
    for name, field in [
        ("put-hook", "method"),
        ("header-hook", "headers"),
        ("xml-hook", "payloadFormat"),
        ("retry-hook", "retryPolicy"),
        ("signed-hook", "signatureHeader"),
        ("no-project-hook", "cognigy.projectId"),
    ]:
        assert results[name]["reason"] == "invalid_spec", name
        assert field in results[name]["detail"], (name, results[name]["detail"])
    assert "basicAuth" in results["header-hook"]["detail"]
    assert _calls(h, "POST") == 1


def test_a_refusal_keeps_cognigys_trace_id_in_the_audit(h: Harness) -> None:
    run = h.apply([_ep(h, "lost-project-hook", cognigy={"projectId": "f" * 24})], cognigy=BLOCK)
    result = run.result("lost-project-hook")
    assert result["outcome"] == "failed"
    assert result["reason"] == "cognigy_not_found"
    event = h.audit("lost-project-hook")[-1]
    assert event.trace_id
    assert event.trace_id in str(result["detail"])


def test_a_create_whose_answer_was_lost_is_resolved_by_listing_again_never_a_second_post(
    h: Harness, cognigy: EndpointStore
) -> None:
    h.sim.set_faults({"drop_after_create": True})
    run = h.apply([_ep(h, "lossy-hook")], cognigy=BLOCK)
    h.sim.set_faults({"drop_after_create": False})
    assert run.result("lossy-hook")["outcome"] == "created"
    assert len(cognigy.named("lossy-hook")) == 1
    assert _calls(h, "POST") == 1
    record = h.record("lossy-hook")
    assert record is not None
    assert record.webhook_id == cognigy.named("lossy-hook")[0]["_id"]
    assert record.url_token_arn  # the listing's item carries the URLToken too


def test_a_second_endpoint_of_a_recorded_name_is_left_alone_and_named(
    h: Harness, cognigy: EndpointStore
) -> None:
    h.apply([_ep(h, "dup-hook")], cognigy=BLOCK)
    (ours,) = cognigy.named("dup-hook")
    theirs = _other(cognigy, "dup-hook")
    run = h.apply([_ep(h, "dup-hook")], cognigy=BLOCK)
    result = run.result("dup-hook")
    assert result["outcome"] == "unchanged"
    assert result["webhookId"] == ours["_id"]
    assert theirs["_id"] in result["detail"]
    assert "no record of this stack names" in result["detail"]
    assert {e["_id"] for e in cognigy.named("dup-hook")} == {ours["_id"], theirs["_id"]}
