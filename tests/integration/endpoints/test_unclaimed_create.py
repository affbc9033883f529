"""A name the plan's complete listing saw free is created without taking its create claim (issue 13,
item 3): the record and its audit event are a first apply's only writes to the EndpointsTable and
the AuditTable, and one endpoint per name still holds under concurrency, settled by the creator
(cognigy_webhooks.reconcile.race), through the local stack (template.yaml, the real ASL and handlers
on moto) and the simulator's Endpoints.

The races are staged at the one moment that matters: another execution's DynamoDB writes (its claim,
its record) are made while the simulator handles our create, before its answer leaves, exactly as a
racing execution would have made them; and, end to end, two applies of the same set at once."""

from __future__ import annotations

import collections
import contextlib
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from cognigy_webhooks.dal.records import Store
from cognigy_webhooks.dal.secretsmanager import put_secret, secret_name
from cognigy_webhooks.errors import RecordConflict
from cognigy_webhooks.models.records import AuditEvent, EndpointRecord
from cogwh.demo import DEMO_PROJECT_ID
from cogwh.sim_endpoints import ENDPOINTS_PATH, EndpointStore
from tests.integration.reconcile.harness import Applied, Harness

BLOCK = {"projectId": DEMO_PROJECT_ID}
EVENTS = Path(__file__).resolve().parents[3] / "events"
WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")


def _ep(h: Harness, name: str) -> dict[str, Any]:
    spec = h.endpoint(name)
    spec.pop("timeoutMs", None)
    return spec


def _register_event(name: str) -> dict[str, Any]:
    """events/register_apply_endpoints.json for ``name``: the listing saw nothing under it."""
    event: dict[str, Any] = json.loads((EVENTS / "register_apply_endpoints.json").read_text(encoding="utf-8"))
    event["endpoint"]["name"] = event["probe"]["name"] = name
    assert event["cognigy"] == {"listed": True, "ids": [], "lastChanged": {}}
    return event


@contextlib.contextmanager
def dynamodb_writes() -> Iterator[collections.Counter[str]]:
    """Every DynamoDB write item moto receives, by ``<operation> <table>`` (refused ones too)."""
    from moto.dynamodb.responses import DynamoHandler

    counted: collections.Counter[str] = collections.Counter()

    def wrap(operation: str, original: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def counting(handler: Any) -> Any:
            body = handler.body
            if operation == "transact_write_items":
                for entry in body.get("TransactItems", []):
                    for kind in ("Put", "Update", "Delete"):
                        if kind in entry:
                            counted[f"Transact{kind} {entry[kind]['TableName']}"] += 1
            else:
                counted[f"{operation} {body.get('TableName')}"] += 1
            return original(handler)

        return counting

    with contextlib.ExitStack() as patches:
        for operation in WRITES:
            original = getattr(DynamoHandler, operation)
            patches.enter_context(mock.patch.object(DynamoHandler, operation, wrap(operation, original)))
        yield counted


Create = Callable[[dict[str, Any], str], dict[str, Any]]


@contextlib.contextmanager
def while_creating(cognigy: EndpointStore, rival: Callable[[dict[str, Any], Create], None]) -> Iterator[None]:
    """Run ``rival`` with the endpoint the simulator just made for a create (and the store's own
    create), before the create is answered."""
    original = cognigy.create

    def create(body: dict[str, Any], user: str) -> dict[str, Any]:
        made = original(body, user)
        rival(made, original)
        return made

    with mock.patch.object(cognigy, "create", create):
        yield


def _store(h: Harness) -> Store:
    return Store(
        h.stack.client("dynamodb"), endpoints_table=h.store.endpoints_table, audit_table=h.store.audit_table
    )


def _rival_records(h: Harness, name: str, webhook_id: str, *, token_arn: str | None = None) -> None:
    """What another execution does after it looked the name up and made or adopted ``webhook_id``:
    claim the name, then commit its record (clearing the claim)."""
    store = _store(h)
    store.claim(name, token="rival", expected_version=None, lease_seconds=90)
    record = EndpointRecord(
        name=name,
        webhook_id=webhook_id,
        status="registered",
        project_id=DEMO_PROJECT_ID,
        url_token_arn=token_arn,
        version=1,
    )
    audit = AuditEvent(name=name, action="register", outcome="created", webhook_id=webhook_id)
    store.commit(name=name, record=record, audit=audit, expected_version=None, claim_token="rival")


def _stack_name(h: Harness) -> str:
    return h.stack.environment("RegisterFunction")["STACK_NAME"]


def _posts(h: Harness) -> list[dict[str, Any]]:
    return [r for r in h.sim.requests if r["method"] == "POST" and r["path"] == ENDPOINTS_PATH]


def test_a_first_apply_writes_the_record_and_its_audit_event_alone_no_claim(h: Harness) -> None:
    names = [f"two-writes-{i}" for i in range(4)]
    with dynamodb_writes() as writes:
        run = h.apply([_ep(h, n) for n in names], cognigy=BLOCK)
    assert run.summary["created"] == names
    tables = {k: v for k, v in writes.items() if "RateLimitTable" not in k}
    assert tables == {
        f"TransactPut {h.store.endpoints_table}": 4,  # the record...
        f"TransactPut {h.store.audit_table}": 4,  # ...and its audit event, in one transaction
    }
    assert sum(v for k, v in writes.items() if "RateLimitTable" in k) <= 4  # the budget's: no more
    for name in names:
        item = next(i for i in h.raw_items("EndpointsTableName") if i["name"]["S"] == name)
        assert "createClaim" not in item
        assert "createClaimExpiresAt" not in item


def test_when_another_execution_adopted_our_create_its_record_stands_and_nothing_is_deleted(
    h: Harness, cognigy: EndpointStore
) -> None:
    name = "adopted-by-rival"
    staged = while_creating(cognigy, lambda made, _: _rival_records(h, name, made["_id"]))
    with staged, pytest.raises(RecordConflict, match="recorded the endpoint made"):
        h.stack.invoke("RegisterFunction", _register_event(name))
    (endpoint,) = cognigy.named(name)
    record = h.record(name)
    assert record is not None
    assert record.webhook_id == endpoint["_id"]
    assert not any(r["method"] == "DELETE" for r in h.sim.requests)
    assert not h.store.read(name).claimed  # given back
    # the state machine's retry goes on from that record: the same endpoint, no second one
    again = h.stack.invoke("RegisterFunction", _register_event(name))
    assert (again["outcome"], again["webhookId"]) in {
        ("unchanged", endpoint["_id"]),
        ("updated", endpoint["_id"]),
    }
    assert [e["_id"] for e in cognigy.named(name)] == [endpoint["_id"]]


def test_when_another_execution_made_the_name_ours_is_removed_and_its_token_put_back(
    h: Harness, cognigy: EndpointStore
) -> None:
    name = "made-by-rival"
    theirs: dict[str, Any] = {}
    ours: list[str] = []
    secrets = h.stack.client("secretsmanager")

    def rival(made: dict[str, Any], create: Create) -> None:  # it made its own and recorded it
        ours.append(made["_id"])
        body = {
            "projectId": DEMO_PROJECT_ID,
            "name": name,
            "channel": "webhook",
            "settings": {"webhookUrl": "x"},
        }
        theirs.update(create(body, "0" * 24))
        arn = put_secret(secrets, secret_name(_stack_name(h), name, "url-token"), theirs["URLToken"])
        _rival_records(h, name, theirs["_id"], token_arn=arn)

    with while_creating(cognigy, rival), pytest.raises(RecordConflict, match="another execution made"):
        h.stack.invoke("RegisterFunction", _register_event(name))

    assert [e["_id"] for e in cognigy.named(name)] == [theirs["_id"]]  # ours is gone
    assert ("DELETE", f"{ENDPOINTS_PATH}/{ours[0]}") in [(r["method"], r["path"]) for r in h.sim.requests]
    removed = [e for e in h.audit(name) if e.action == "orphan_removed"]
    assert [(e.webhook_id, e.outcome) for e in removed] == [(ours[0], "deleted")]
    record = h.record(name)
    assert record is not None
    assert record.webhook_id == theirs["_id"]
    assert record.url_token_arn is not None
    # our create wrote its URLToken over theirs; the recorded endpoint's is back
    assert secrets.get_secret_value(SecretId=record.url_token_arn)["SecretString"] == theirs["URLToken"]
    assert not h.store.read(name).claimed
    again = h.stack.invoke("RegisterFunction", _register_event(name))
    assert again["webhookId"] == theirs["_id"]
    assert [e["_id"] for e in cognigy.named(name)] == [theirs["_id"]]


def test_a_claim_left_expired_on_a_free_name_is_taken_over_and_ours_recorded(
    h: Harness, cognigy: EndpointStore
) -> None:
    name = "stale-claim"
    past = Store(
        h.stack.client("dynamodb"),
        endpoints_table=h.store.endpoints_table,
        audit_table=h.store.audit_table,
        clock=lambda: 1_000_000.0,  # a holder that died long ago
    )
    past.claim(name, token="dead", expected_version=None, lease_seconds=90)
    result = h.stack.invoke("RegisterFunction", _register_event(name))
    (endpoint,) = cognigy.named(name)
    assert (result["outcome"], result["webhookId"]) == ("created", endpoint["_id"])
    assert len(_posts(h)) == 1
    assert not any(r["method"] == "DELETE" for r in h.sim.requests)
    stored = h.store.read(name)
    assert stored.record is not None
    assert stored.record.webhook_id == endpoint["_id"]
    assert not stored.claimed


def test_two_applies_at_once_leave_one_endpoint_per_name_and_the_losers_remove_their_own(
    h: Harness, cognigy: EndpointStore
) -> None:
    # Given a Cognigy that answers slowly, so both plans list every name free before either creates
    names = ["race-a", "race-b", "race-c"]
    h.sim.set_faults({"slow_ms": 150})
    desired = [_ep(h, n) for n in names]
    made: dict[str, list[str]] = collections.defaultdict(list)

    # When the same set is applied twice at once (a CLI apply and a deploy-triggered one)
    with (
        while_creating(cognigy, lambda endpoint, _: made[endpoint["name"]].append(endpoint["_id"])),
        ThreadPoolExecutor(2) as pool,
    ):
        runs: list[Applied] = list(
            pool.map(lambda s: h.apply(desired, cognigy=BLOCK, source=s), ["cli", "deploy"])
        )
    h.sim.set_faults({"slow_ms": 0})

    # Then each name holds exactly one endpoint, the one recorded; every other one made was removed
    for name in names:
        (kept,) = cognigy.named(name)
        record = h.record(name)
        assert record is not None
        assert record.webhook_id == kept["_id"]
        removed = [e.webhook_id for e in h.audit(name) if e.action == "orphan_removed"]
        assert sorted(removed) == sorted(m for m in made[name] if m != kept["_id"])
        assert sorted(run.result(name)["outcome"] for run in runs) in (
            ["created", "unchanged"],
            ["created", "updated"],
        )
        assert {run.result(name)["webhookId"] for run in runs} == {kept["_id"]}
        token = h.stack.client("secretsmanager").get_secret_value(SecretId=record.url_token_arn)
        assert token["SecretString"] == kept["URLToken"]
    assert any(len(made[n]) == 2 for n in names)  # the race did happen
    # and a clean re-apply finds nothing to create or remove
    again = h.apply(desired, cognigy=BLOCK)
    assert again.summary["unchanged"] == names
    assert [len(cognigy.named(n)) for n in names] == [1, 1, 1]


def test_a_commit_that_failed_for_another_reason_marks_the_name_and_the_retry_adopts_ours(
    h: Harness, cognigy: EndpointStore
) -> None:
    from moto.core.exceptions import JsonRESTError
    from moto.dynamodb.responses import DynamoHandler

    name = "commit-failed"
    original = DynamoHandler.transact_write_items
    failed: list[str] = []

    def once(handler: Any) -> Any:  # DynamoDB fails the first record + audit transaction
        if not failed:
            failed.append("once")
            raise JsonRESTError("InternalServerError", "DynamoDB is having a bad moment")
        return original(handler)

    with mock.patch.object(DynamoHandler, "transact_write_items", once):
        run = h.apply([_ep(h, name)], cognigy=BLOCK)
    assert failed
    (endpoint,) = cognigy.named(name)
    assert (run.result(name)["outcome"], run.result(name)["webhookId"]) == ("created", endpoint["_id"])
    assert len(_posts(h)) == 1  # the retry looked the name up and adopted ours: never a second POST
    assert [f["error"] for f in run.task_failures()] == ["StoreError"]
