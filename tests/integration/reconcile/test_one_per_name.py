"""Never two webhooks for one name (issue 8), through the local stack and the real ASL: a clean re-apply
finds the orphans of ours that Cognigy holds under a name (the plan's one listing) and removes them,
leaves and reports the ones it cannot attribute, re-creates a webhook deleted behind our back; prune
takes the orphans with it; a create whose answer was lost and whose retries ran out is recorded as
maybe applied and adopted by the next apply; a 409 after a lost create is adopted; and a webhook gone
behind our back (update -> 404) is looked up before it is created again."""

from __future__ import annotations

import json
from typing import Any

from cognigy_webhooks.loopguard import loop_id_for
from tests.integration.reconcile.harness import Harness

WEBHOOKS = "/api/v2/webhooks"


def plant(h: Harness, name: str, *, ours: bool, url: str | None = None) -> str:
    """Put a second webhook under ``name`` straight into the simulator (with or without our marks)."""
    h.sim.set_config({"allow_duplicate_names": True})
    headers = (
        {"X-Cogwh-Origin": "cognigy-webhooks", "X-Cogwh-Loop-Id": loop_id_for(name), "X-Cogwh-Hop": "1"}
        if ours
        else {"X-Team": "someone-else"}
    )
    status, webhook = h.sim.create({"name": name, "url": url or h.url(name), "headers": headers})
    assert status == 201
    return str(webhook["id"])


def calls_since(h: Harness, seq: int) -> list[tuple[str, str, str | None, int | None]]:
    """(method, path, ?name=, status) of every request the simulator received after ``seq``."""
    return [
        (r["method"], r["path"], r["query"].get("name"), r["status"])
        for r in h.sim.requests
        if r["seq"] > seq
    ]


def last_seq(h: Harness) -> int:
    requests = h.sim.requests
    return requests[-1]["seq"] if requests else 0


def test_a_clean_reapply_removes_an_orphan_of_ours_and_reports_a_foreign_one(h: Harness) -> None:
    # Given an endpoint applied once, then two more webhooks under its name in Cognigy: one carrying
    # our marks (an orphan a racing or re-sent create left), one made by someone else
    spec = h.endpoint("twice-hook")
    h.apply([spec])
    [recorded] = h.sim.webhooks_named("twice-hook")
    orphan = plant(h, "twice-hook", ours=True)
    foreign = plant(h, "twice-hook", ours=False, url="https://elsewhere.example.test/hook")
    seq = last_seq(h)

    # When the same set is applied again
    applied = h.apply([spec])

    # Then the orphan is gone, the recorded webhook and the foreign one are left, and the result says so
    assert [w["id"] for w in h.sim.webhooks_named("twice-hook")] == [recorded["id"], foreign]
    result = applied.result("twice-hook")
    assert (result["outcome"], result["webhookId"]) == ("unchanged", recorded["id"])
    assert orphan in result["detail"]
    assert foreign in result["detail"]
    assert "do not carry this stack's marks" in result["detail"]
    # one listing for the execution, then (duplicates seen) one look-up by name and the DELETE
    assert calls_since(h, seq) == [
        ("GET", WEBHOOKS, None, 200),
        ("GET", WEBHOOKS, "twice-hook", 200),
        ("DELETE", f"{WEBHOOKS}/{orphan}", None, 204),
    ]
    # each removal has its own audit event, next to the apply's own
    events = h.audit("twice-hook")
    assert [e.action for e in events] == ["register", "orphan_removed", "unchanged"]
    removed = events[1]
    assert (removed.outcome, removed.webhook_id, removed.status_code) == ("deleted", orphan, 204)
    assert foreign in (events[2].detail or "")
    record = h.record("twice-hook")
    assert record is not None
    assert record.webhook_id == recorded["id"]

    # and the next re-apply removes nothing more, but still reports what it leaves
    again = h.apply([spec])
    assert again.result("twice-hook")["outcome"] == "unchanged"
    assert foreign in again.result("twice-hook")["detail"]
    assert h.sim.count(method="DELETE") == 1


def test_a_webhook_deleted_behind_our_back_is_created_again_by_a_clean_reapply(h: Harness) -> None:
    spec = h.endpoint("vanished-hook")
    h.apply([spec])
    [first] = h.sim.webhooks_named("vanished-hook")
    assert h.sim.delete(first["id"])
    seq = last_seq(h)

    applied = h.apply([spec])

    [second] = h.sim.webhooks_named("vanished-hook")
    result = applied.result("vanished-hook")
    assert (result["outcome"], result["webhookId"], result["statusCode"]) == ("created", second["id"], 201)
    # the listing showed the recorded id missing: looked up by name, then created; no blind PATCH
    assert calls_since(h, seq) == [
        ("GET", WEBHOOKS, None, 200),
        ("GET", WEBHOOKS, "vanished-hook", 200),
        ("POST", WEBHOOKS, None, 201),
    ]
    record = h.record("vanished-hook")
    assert record is not None
    assert record.webhook_id == second["id"]


def test_update_then_404_looks_the_name_up_before_creating(h: Harness) -> None:
    # Given a recorded webhook deleted behind our back, and a plan that could not list Cognigy
    h.apply([h.endpoint("gone-hook")])
    [first] = h.sim.webhooks_named("gone-hook")
    assert h.sim.delete(first["id"])
    h.sim.set_faults({"script": ["5xx"]})  # the plan's one listing fails: no drift is seen there
    seq = last_seq(h)

    # When a changed spec is applied
    applied = h.apply([h.endpoint("gone-hook", timeoutMs=6000)])

    # Then the update met a 404, and the name was looked up before anything was created
    assert calls_since(h, seq) == [
        ("GET", WEBHOOKS, None, 503),
        ("PATCH", f"{WEBHOOKS}/{first['id']}", None, 404),
        ("GET", WEBHOOKS, "gone-hook", 200),
        ("POST", WEBHOOKS, None, 201),
    ]
    [second] = h.sim.webhooks_named("gone-hook")
    assert applied.result("gone-hook")["outcome"] == "created"
    assert applied.result("gone-hook")["webhookId"] == second["id"]


def test_update_then_404_adopts_what_the_look_up_finds(h: Harness) -> None:
    # Given the recorded webhook replaced behind our back by another carrying our marks
    h.apply([h.endpoint("moved-hook")])
    [first] = h.sim.webhooks_named("moved-hook")
    replacement = plant(h, "moved-hook", ours=True)
    assert h.sim.delete(first["id"])
    h.sim.set_faults({"script": ["5xx"]})  # no listing: the PATCH is what finds out
    creates = h.sim.count(method="POST")

    applied = h.apply([h.endpoint("moved-hook", timeoutMs=6000)])

    assert (applied.result("moved-hook")["outcome"], applied.result("moved-hook")["webhookId"]) == (
        "created",
        replacement,
    )
    assert h.sim.count(method="POST") == creates  # adopted, not created
    assert [w["id"] for w in h.sim.webhooks_named("moved-hook")] == [replacement]


def test_prune_removes_the_orphans_of_ours_with_the_endpoint(h: Harness) -> None:
    h.apply([h.endpoint("keep-me"), h.endpoint("drop-me")])
    [dropped] = h.sim.webhooks_named("drop-me")
    orphan = plant(h, "drop-me", ours=True)
    foreign = plant(h, "drop-me", ours=False, url="https://elsewhere.example.test/hook")

    applied = h.apply([h.endpoint("keep-me")], prune=True)

    result = applied.result("drop-me")
    assert (result["outcome"], result["webhookId"]) == ("deleted", dropped["id"])
    assert foreign in result["detail"]
    assert [w["id"] for w in h.sim.webhooks_named("drop-me")] == [foreign]
    assert h.record("drop-me") is None
    events = h.audit("drop-me")
    assert [e.action for e in events] == ["register", "orphan_removed", "delete"]
    assert events[1].webhook_id == orphan


def test_a_create_whose_retries_ran_out_is_recorded_as_maybe_applied_and_adopted_next(h: Harness) -> None:
    # Given Cognigy stores the create but the answer is lost, and stays down for every retry
    h.sim.set_faults({"script": ["pass", "drop_after", "5xx", "5xx", "5xx", "5xx"]})

    applied = h.apply([h.endpoint("maybe-hook")])

    # Then the register task's retries ran out, and Cognigy does hold the webhook
    assert [f["error"] for f in applied.task_failures()] == ["CognigyUnavailable"] * 5
    [webhook] = h.sim.webhooks_named("maybe-hook")
    # the outcome says the webhook may exist and what happens next
    result = applied.result("maybe-hook")
    assert (result["outcome"], result["reason"]) == ("failed", "cognigy_unavailable")
    assert result["createMaybeApplied"] is True
    assert "may exist" in result["detail"]
    assert "the next apply looks the name up and adopts it" in result["detail"]
    failed = {"name": "maybe-hook", "reason": "cognigy_unavailable", "detail": result["detail"]}
    assert failed in applied.summary["failed"]
    # and the record keeps what is known
    record = h.record("maybe-hook")
    assert record is not None
    assert (record.status, record.webhook_id, record.create_maybe_applied) == ("failed", None, True)
    [event] = h.audit("maybe-hook")
    assert "may exist" in (event.detail or "")

    # When Cognigy is back and the set is applied again
    seq = last_seq(h)
    again = h.apply([h.endpoint("maybe-hook")])

    # Then the webhook is adopted (looked up, then PATCHed), never created a second time
    adopted = again.result("maybe-hook")
    assert (adopted["outcome"], adopted["webhookId"]) == ("created", webhook["id"])
    assert "adopted" in adopted["detail"]
    assert [c for c in calls_since(h, seq) if c[0] != "GET"] == [
        ("PATCH", f"{WEBHOOKS}/{webhook['id']}", None, 200)
    ]
    assert h.sim.create_attempts_by_name["maybe-hook"] == 1
    record = h.record("maybe-hook")
    assert record is not None
    assert (record.status, record.webhook_id, record.create_maybe_applied) == (
        "registered",
        webhook["id"],
        None,
    )


def test_a_409_after_a_lost_create_is_adopted_by_the_register_task(h: Harness) -> None:
    # Given a create whose answer is lost, and a retry whose look-up does not show it yet (a listing
    # that has not caught up): the retry's create gets 409 from Cognigy
    h.sim.set_faults({"script": ["pass", "drop_after", "stale", "pass"]})

    applied = h.apply([h.endpoint("late-listing-hook")])

    # Then the 409 was followed by a look-up and the webhook adopted: one webhook, recorded
    [webhook] = h.sim.webhooks_named("late-listing-hook")
    result = applied.result("late-listing-hook")
    assert (result["outcome"], result["webhookId"]) == ("created", webhook["id"])
    methods = [(r["method"], r["status"]) for r in h.sim.requests]
    assert methods == [
        ("GET", 200),
        ("POST", None),
        ("GET", 200),
        ("POST", 409),
        ("GET", 200),
        ("PATCH", 200),
    ]
    record = h.record("late-listing-hook")
    assert record is not None
    assert record.webhook_id == webhook["id"]


def test_a_live_claim_of_another_execution_holds_the_create_back(h: Harness) -> None:
    # Given another execution holds the name's create claim (and keeps it past every retry here)
    h.store.claim("claimed-hook", token="someone-else", expected_version=None, lease_seconds=600)

    applied = h.apply([h.endpoint("claimed-hook")])

    # Then nothing reached Cognigy: the task was retried on EndpointClaimed, then reported
    errors = [f["error"] for f in applied.task_failures()]
    assert errors == ["EndpointClaimed"] * 7  # the first attempt and its 6 retries
    assert h.sim.create_attempts_by_name["claimed-hook"] == 0
    assert h.sim.count(method="GET") == 0
    result = applied.result("claimed-hook")
    assert (result["outcome"], result["reason"]) == ("failed", "endpoint_claimed")
    assert "another execution" in result["detail"]
    # the claim holder's item is untouched (no record written over it), the failure audited
    assert h.record("claimed-hook") is None
    assert h.store.read("claimed-hook").claimed
    [event] = h.audit("claimed-hook")
    assert (event.action, event.reason) == ("failure", "endpoint_claimed")


def test_an_expired_claim_is_taken_over(h: Harness) -> None:
    # Given a claim left by a holder that died long ago (its lease ended)
    past = type(h.store)(
        h.stack.client("dynamodb"),
        endpoints_table=h.store.endpoints_table,
        audit_table=h.store.audit_table,
        clock=lambda: 1_000_000.0,
    )
    past.claim("orphaned-claim", token="dead-holder", expected_version=None, lease_seconds=90)

    applied = h.apply([h.endpoint("orphaned-claim")])

    assert applied.result("orphaned-claim")["outcome"] == "created"
    assert len(h.sim.webhooks_named("orphaned-claim")) == 1
    stored = h.store.read("orphaned-claim")
    assert stored.record is not None
    assert not stored.claimed
    raw = [i for i in h.raw_items("EndpointsTableName") if i["name"]["S"] == "orphaned-claim"]
    assert [sorted(k for k in i if k.startswith(("createClaim", "createMaybe"))) for i in raw] == [[]]


def test_no_claim_is_left_behind(h: Harness) -> None:
    # Every path that claims gives the claim back: created, rejected (422), throttled then created
    h.sim.set_faults({"script": ["pass", "429"], "retry_after_s": 1})
    applied = h.apply([h.endpoint("fine-hook"), h.endpoint("bad-hook", headers={"X-Cognigy-Route": "x"})])

    assert applied.result("fine-hook")["outcome"] == "created"
    assert applied.result("bad-hook")["reason"] == "cognigy_rejected"
    items: list[dict[str, Any]] = h.raw_items("EndpointsTableName")
    assert sorted(i["name"]["S"] for i in items) == ["bad-hook", "fine-hook"]
    leftovers = {i["name"]["S"]: [k for k in i if k.startswith("createClaim")] for i in items}
    assert leftovers == {"bad-hook": [], "fine-hook": []}, json.dumps(leftovers)
