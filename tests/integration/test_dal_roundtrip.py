"""One schema, two sides, real tables: a record the register task's Store writes is read by the
receiver's endpoint lookup as the spec says, and an audit event the receiver writes reads back through
the Store as an AuditEvent. The tables are template.yaml's own, on the local stack (moto)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from cognigy_webhooks.dal.audit import AuditLog
from cognigy_webhooks.dal.clients import LazyClients
from cognigy_webhooks.dal.endpoints import EndpointAuth, EndpointDirectory
from cognigy_webhooks.dal.records import Store
from cognigy_webhooks.models import WebhookEndpoint
from cognigy_webhooks.models.records import AuditEvent, EndpointRecord
from tests.support.receiver import ReceiverWorld, receiver_stack, unique

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:cognigy-webhooks/rxtest/{}-AbCdEf"


@pytest.fixture(scope="module")
def rx() -> Iterator[ReceiverWorld]:
    yield from receiver_stack()


def _store(rx: ReceiverWorld) -> Store:
    return Store(rx.ddb, endpoints_table=rx.endpoints_table, audit_table=rx.audit_table)


def _event(name: str, **fields: Any) -> AuditEvent:
    return AuditEvent(name=name, action="register", outcome="created", reason="created", **fields)


SPECS: list[tuple[dict[str, Any], str, dict[str, Any]]] = [
    # (spec beyond name and url, the record's status, what the receiver must read)
    (
        {"signatureHeader": "X-Cognigy-Signature", "signatureSecretArn": ARN.format("sig")},
        "registered",
        {"scheme": "cognigy", "signature_header": "X-Cognigy-Signature", "accepts_deliveries": True},
    ),
    (
        {
            "signatureScheme": "standard",
            "signatureHeader": "webhook-signature",
            "signatureSecretArn": ARN.format("std"),
            "payloadFormat": "XML",
        },
        "registered",
        {"scheme": "standard", "payload_format": "XML", "accepts_deliveries": True},
    ),
    (
        {"basicAuth": {"username": "cognigy", "passwordArn": ARN.format("basic")}},
        "registered",
        {"basic_username": "cognigy", "basic_password_arn": ARN.format("basic"), "accepts_deliveries": True},
    ),
    (
        {"isActive": False, "signatureHeader": "X-Sig", "signatureSecretArn": ARN.format("off")},
        "inactive",
        {"active": False, "status": "inactive", "accepts_deliveries": False},
    ),
    ({}, "failed", {"status": "failed", "has_signature": False, "accepts_deliveries": False}),
]


@pytest.mark.parametrize(("extra", "status", "expected"), SPECS)
def test_a_record_written_by_the_register_task_is_read_by_the_receiver(
    rx: ReceiverWorld, extra: dict[str, Any], status: str, expected: dict[str, Any]
) -> None:
    # Given a record committed by the register task's Store (spec as WebhookEndpoint.public_view())
    name = unique("rt")
    spec = WebhookEndpoint.model_validate(
        {"name": name, "url": f"https://hooks.example.test/{name}", **extra}
    )
    record = EndpointRecord(name=name, spec=spec.public_view(), status=status, webhook_id="wh-1", version=1)  # type: ignore[arg-type]
    _store(rx).commit(name=name, record=record, audit=_event(name), expected_version=None)
    # When the receiver looks the endpoint up
    auth = EndpointDirectory(LazyClients(rx.stack.client), rx.endpoints_table).get(name)
    # Then it reads what the spec says
    assert auth == EndpointAuth(
        name=name,
        status=status,
        active=spec.is_active,
        payload_format=spec.payload_format.value,
        scheme=spec.signature_scheme.value,
        signature_header=spec.signature_header,
        signature_secret_arn=spec.signature_secret_arn,
        basic_username=spec.basic_auth.username if spec.basic_auth else None,
        basic_password_arn=spec.basic_auth.password_arn if spec.basic_auth else None,
    )
    for attribute, value in expected.items():
        assert getattr(auth, attribute) == value, attribute


def test_a_claim_alone_is_no_endpoint_for_the_receiver(rx: ReceiverWorld) -> None:
    name = unique("claimed")
    _store(rx).claim(name, token="t", expected_version=None, lease_seconds=60)
    assert EndpointDirectory(LazyClients(rx.stack.client), rx.endpoints_table).get(name) is None


def test_an_audit_event_written_by_the_receiver_reads_back_through_the_store(rx: ReceiverWorld) -> None:
    # Given a rejection and a loop audited by the receiver
    name = unique("audited")
    log = AuditLog(LazyClients(rx.stack.client), rx.audit_table, retention_days=7)
    now = time.time()
    first = log.put(
        name=name,
        action="delivery_rejected",
        outcome="rejected",
        reason="signature_mismatch",
        now=now,
        status_code=401,
    )
    second = log.put(
        name=name, action="loop_detected", outcome="loop", reason="hop_limit", now=now + 1, detail="hop 4"
    )
    # When the Store reads the endpoint's audit log
    events = _store(rx).audit_for(name, newest_first=False)
    # Then both are AuditEvents with what the receiver wrote
    assert [e.event_id for e in events] == [first, second]
    rejected, looped = events
    assert (rejected.action, rejected.outcome, rejected.reason, rejected.status_code, rejected.detail) == (
        "delivery_rejected",
        "rejected",
        "signature_mismatch",
        401,
        None,
    )
    assert (looped.action, looped.reason, looped.detail, looped.status_code) == (
        "loop_detected",
        "hop_limit",
        "hop 4",
        None,
    )
    assert {e.source for e in events} == {"delivery"}
    assert abs(rejected.timestamp.timestamp() - now) < 1e-5
    assert rejected.expires_at == int(now + 7 * 86400)
    # and the item's sort key is the one AuditEvent computes
    items = rx.ddb.query(
        TableName=rx.audit_table,
        KeyConditionExpression="#n = :n",
        ExpressionAttributeNames={"#n": "name"},
        ExpressionAttributeValues={":n": {"S": name}},
    )["Items"]
    assert sorted(i["sk"]["S"] for i in items) == [rejected.sk, looped.sk]


def test_the_stores_own_audit_events_and_the_receivers_share_one_log(rx: ReceiverWorld) -> None:
    name = unique("shared")
    store = _store(rx)
    store.commit(name=name, record=None, audit=_event(name, execution_id="exec-1"), expected_version=None)
    AuditLog(LazyClients(rx.stack.client), rx.audit_table, retention_days=1).put(
        name=name, action="delivery_rejected", outcome="rejected", reason="endpoint_unknown", now=time.time()
    )
    assert [e.source for e in store.audit_for(name)] == ["delivery", None]
