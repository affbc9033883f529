"""The audit sync through the local stack: template.yaml with MonitoringUrl set (its Condition brings in
AuditSyncFunction, the stream event source mapping and the dead-letter queue), the real reconcile state
machine writing audit events, the audit table's stream delivering them to the handler, and a real
monitoring platform over HTTPS (a LocalCA certificate) on 127.0.0.1.

The local stack delivers one stream record per call, after the write (``stack.drain_streams()`` waits
for it), and never retries (LOCAL-STACK.md), so batches of several records - the partial failures - are
handed to the same handler through ``stack.invoke``, built from the items the audit table really holds.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from cognigy_webhooks.dal.records import Store
from cognigy_webhooks.models.records import AuditEvent
from cognigy_webhooks.observability import SERVICE, logger
from cogwh import ops
from cogwh.demo import API_KEY_SECRET_NAME, ROOT, LocalWorld, local_world
from cogwh.localstack import LocalStack
from cogwh.localstack.template import Template
from tests.support.monitoring_platform import MonitoringPlatform, serve_platform

TOKEN_SECRET_NAME = "cogwh-local/monitoring-token"
TOKEN = "mon-" + secrets.token_urlsafe(24)
SIGNATURE_SECRET = "sig-" + secrets.token_urlsafe(32)
BATCH_SIZE = 2  # events per request to the platform (MONITORING_BATCH_SIZE), so batches can half-fail


class _Capture(logging.Handler):
    """The functions' log records, formatted as their JSON lines, plus each record's raw attributes."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        try:
            formatted = logger.registered_formatter.format(record)
        except Exception:
            formatted = record.getMessage()
        self.lines.append(formatted + "\n" + repr(vars(record)))

    def summaries(self) -> list[dict[str, Any]]:
        """What each audit sync invocation reported (records, sent, skipped, failed)."""
        return [
            {k: getattr(r, k) for k in ("records", "sent", "skipped", "failed")}
            for r in self.records
            if r.getMessage() in ("audit events synced", "audit events not delivered: reported for retry")
        ]


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with local_world(rate_per_minute=60_000, burst=1_000) as local:
        yield local


@pytest.fixture(scope="module")
def served(world: LocalWorld) -> Iterator[tuple[MonitoringPlatform, str]]:
    with serve_platform(world.ca) as platform_and_url:
        yield platform_and_url


@pytest.fixture(scope="module")
def stack(world: LocalWorld, served: tuple[MonitoringPlatform, str]) -> Iterator[LocalStack]:
    parameters = {
        **world.stack_parameters(),
        "CognigyRequestsPerMinute": "60000",
        "CognigyBurst": "1000",
        "MonitoringUrl": served[1],
        "MonitoringTokenSecretArn": TOKEN_SECRET_NAME,
        "MonitoringCaBundle": str(world.ca.ca_file),
    }
    # the function's own knobs: one retry at once (no backoff to wait through), small platform batches
    knobs = {
        "MONITORING_MAX_ATTEMPTS": "2",
        "MONITORING_BASE_DELAY_SECONDS": "0",
        "MONITORING_MAX_DELAY_SECONDS": "0",
        "MONITORING_BATCH_SIZE": str(BATCH_SIZE),
    }
    with LocalStack(ROOT, parameters=parameters, extra_env=knobs, time_factor=0.0) as local:
        sm = local.client("secretsmanager")
        sm.create_secret(Name=API_KEY_SECRET_NAME, SecretString=world.api_key)
        sm.create_secret(Name=TOKEN_SECRET_NAME, SecretString=TOKEN)
        yield local


@pytest.fixture
def platform(served: tuple[MonitoringPlatform, str]) -> MonitoringPlatform:
    served[0].reset()
    return served[0]


@pytest.fixture
def store(stack: LocalStack) -> Store:
    return Store(
        stack.client("dynamodb"),
        endpoints_table=stack.outputs["EndpointsTableName"],
        audit_table=stack.outputs["AuditTableName"],
    )


@pytest.fixture
def captured() -> Iterator[_Capture]:
    capture = _Capture()
    service = logging.getLogger(SERVICE)
    level = service.level
    service.setLevel(logging.DEBUG)
    service.addHandler(capture)
    try:
        yield capture
    finally:
        service.removeHandler(capture)
        service.setLevel(level)


def audit_items(stack: LocalStack, name: str) -> list[dict[str, Any]]:
    """The endpoint's audit items exactly as DynamoDB holds them (a Query on the key), oldest first."""
    response = stack.client("dynamodb").query(
        TableName=stack.outputs["AuditTableName"],
        KeyConditionExpression="#n = :n",
        ExpressionAttributeNames={"#n": "name"},
        ExpressionAttributeValues={":n": {"S": name}},
    )
    return list(response["Items"])


def stream_event(stack: LocalStack, items: list[dict[str, Any]], *, ttl_removals: int = 0) -> dict[str, Any]:
    """A stream batch as Lambda gets it from this stack's audit table: an INSERT per item (its stored
    image as NewImage), then REMOVEs made by TTL for the first ``ttl_removals`` items."""
    arn = stack.attribute("AuditTable", "StreamArn")
    records = []
    for i, item in enumerate(items + items[:ttl_removals]):
        removal = i >= len(items)
        body: dict[str, Any] = {
            "ApproximateCreationDateTime": 1714564800 + i,
            "Keys": {"name": item["name"], "sk": item["sk"]},
            "SequenceNumber": f"{4_000_000_000_000_000_000 + i}",
            "SizeBytes": len(json.dumps(item)),
            "StreamViewType": "NEW_IMAGE",
        }
        record: dict[str, Any] = {
            "eventID": f"{i:032x}",
            "eventName": "REMOVE" if removal else "INSERT",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": stack.region,
            "dynamodb": body,
            "eventSourceARN": arn,
        }
        if removal:
            record["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
        else:
            body["NewImage"] = item
        records.append(record)
    return {"Records": records}


def wire(event: AuditEvent) -> dict[str, Any]:
    return event.to_webhook_audit_log().model_dump(mode="json", by_alias=True)


def put_audit(stack: LocalStack, store: Store, name: str, n: int) -> list[AuditEvent]:
    """n audit events for ``name``, each written alone (a PutItem: one stream delivery each), their
    stream deliveries done when this returns."""
    events = [
        AuditEvent(
            name=name, action="probe", outcome="failed", reason=f"r{i}", webhook_id=f"wh-{i}"
        ).with_retention(1)
        for i in range(n)
    ]
    for event in events:
        store.commit(name=name, record=None, audit=event, expected_version=None)
    stack.drain_streams()
    return events


# --- the Condition -----------------------------------------------------------------------------------


def test_the_audit_sync_is_in_the_stack_only_when_a_monitoring_url_is_given() -> None:
    def active(**parameters: str) -> dict[str, bool]:
        template = Template(
            ROOT / "template.yaml",
            stack_name="s",
            region="eu-central-1",
            account_id="123456789012",
            parameters={
                "CognigyApiKeySecretArn": "arn:aws:secretsmanager:eu-central-1:1:secret:k",
                **parameters,
            },
        )
        ids = ("AuditSyncFunction", "AuditSyncDeadLetterQueue", "AuditSyncDeadLetterAlarm")
        flags = {lid: template.is_active(lid) for lid in ids}
        flags["token policy"] = template.condition("AuditSyncHasToken", "test")
        return flags

    assert set(active().values()) == {False}
    on = active(MonitoringUrl="https://ingest.example.com/audit")
    assert on == {
        "AuditSyncFunction": True,
        "AuditSyncDeadLetterQueue": True,
        "AuditSyncDeadLetterAlarm": True,
        "token policy": False,
    }
    assert active(MonitoringUrl="https://ingest.example.com/audit", MonitoringTokenSecretArn="arn:x")[
        "token policy"
    ]


def test_the_stack_wires_the_stream_to_the_function(stack: LocalStack) -> None:
    mappings = stack.client("lambda").list_event_source_mappings(
        FunctionName=stack.physical_id("AuditSyncFunction")
    )["EventSourceMappings"]

    assert len(mappings) == 1
    assert mappings[0]["EventSourceArn"] == stack.attribute("AuditTable", "StreamArn")
    assert mappings[0]["StartingPosition"] == "TRIM_HORIZON"
    assert mappings[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = stack.outputs["AuditSyncDeadLetterQueueUrl"]
    attributes = stack.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])[
        "Attributes"
    ]
    assert attributes["MessageRetentionPeriod"] == str(14 * 24 * 3600)


# --- end to end --------------------------------------------------------------------------------------


def test_audit_writes_reach_the_platform_and_no_secret_does(
    stack: LocalStack,
    world: LocalWorld,
    platform: MonitoringPlatform,
    store: Store,
    captured: _Capture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Given a reconcile that creates a signed endpoint and records a failed probe for a down one
    signed = {
        "name": "audit-signed",
        "url": f"https://localhost:{world.ports['PORT_TLS13']}/hooks/audit-signed",
        "signatureHeader": "X-Cognigy-Signature",
        "signatureSecret": SIGNATURE_SECRET,
        "timeoutMs": 5000,
    }
    down = {
        "name": "audit-down",
        "url": f"https://localhost:{world.ports['PORT_DOWN']}/hooks/x",
        "timeoutMs": 2000,
    }

    # When it runs through the real state machine
    run = ops.apply(stack, {"endpoints": [signed, down]}, wait=stack.wait_execution)
    stack.drain_streams()

    # Then every audit event it wrote reached the platform, over HTTPS, with the platform's own token
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    written = [*store.audit_for("audit-signed", newest_first=False), *store.audit_for("audit-down")]
    assert [(e.name, e.action, e.outcome) for e in written] == [
        ("audit-signed", "register", "created"),
        ("audit-down", "probe", "failed"),
    ]
    received = platform.wait_for_events(len(written))
    assert sorted(received, key=json.dumps) == sorted((wire(e) for e in written), key=json.dumps)
    by_action = {e["action"]: e for e in received}
    assert by_action["register"]["tlsVersion"] == "TLSv1.3"
    assert by_action["register"]["webhookId"] == written[0].webhook_id
    assert all(r.header("authorization") == [f"Bearer {TOKEN}"] for r in platform.received)
    assert all(r.header("x-api-key") == [] for r in platform.received)
    assert any(s == {"records": 1, "sent": 1, "skipped": 0, "failed": 0} for s in captured.summaries())

    # and no secret went anywhere it should not: the token only in Authorization headers, the
    # Cognigy API key and the signature secret nowhere - not at the platform, not in any log
    stored = json.dumps(
        stack.client("secretsmanager").get_secret_value(SecretId=TOKEN_SECRET_NAME)["SecretString"]
    )
    assert TOKEN in stored  # the values really are in play (the checks below are not vacuous)
    assert any(s["SecretString"] == SIGNATURE_SECRET for s in _secret_values(stack))
    at_platform = platform.everything_received()
    assert at_platform.count(TOKEN) == len(platform.received)
    assert all(TOKEN not in r.raw_body for r in platform.received)
    out, err = capfd.readouterr()
    for secret in (world.api_key, SIGNATURE_SECRET):
        assert secret not in at_platform
    logs = "\n".join([*captured.lines, out, err])
    assert "audit events synced" in logs
    for secret in (world.api_key, SIGNATURE_SECRET, TOKEN):
        assert secret not in logs


def _secret_values(stack: LocalStack) -> list[dict[str, Any]]:
    sm = stack.client("secretsmanager")
    return [dict(sm.get_secret_value(SecretId=s["ARN"])) for s in sm.list_secrets()["SecretList"]]


def test_removals_through_the_stream_are_not_sent(
    stack: LocalStack, platform: MonitoringPlatform, store: Store, captured: _Capture
) -> None:
    # Given one audit event written (and sent)
    [event] = put_audit(stack, store, "audit-removed", 1)
    assert platform.wait_for_events(1) == [wire(event)]

    # When its item goes (TTL never fires in moto: a delete makes the same REMOVE record)
    stack.client("dynamodb").delete_item(
        TableName=stack.outputs["AuditTableName"], Key={"name": {"S": event.name}, "sk": {"S": event.sk}}
    )
    stack.drain_streams()

    # Then the handler saw the REMOVE and sent nothing for it
    assert captured.summaries()[-1] == {"records": 1, "sent": 0, "skipped": 1, "failed": 0}
    assert len(platform.received) == 1


def test_ttl_expiry_in_a_batch_is_skipped_and_succeeds(
    stack: LocalStack, platform: MonitoringPlatform, store: Store
) -> None:
    put_audit(stack, store, "audit-expiring", 2)
    items = audit_items(stack, "audit-expiring")
    platform.reset()

    response = stack.invoke("AuditSyncFunction", stream_event(stack, items[:1], ttl_removals=1))

    assert response == {"batchItemFailures": []}
    assert len(platform.accepted) == 1  # the INSERT only; the TTL REMOVE of the same item is not sent


# --- failures: reported exactly, and nothing lost --------------------------------------------------


def test_a_failing_platform_gets_exactly_its_records_reported_and_the_retry_delivers_them(
    stack: LocalStack, platform: MonitoringPlatform, store: Store
) -> None:
    # Given a batch of five stored audit events and a TTL removal; the platform takes events in
    # requests of two: it accepts the first request, refuses the second (422: that batch alone),
    # and accepts the third
    written = put_audit(stack, store, "audit-partial", 5)
    items = audit_items(stack, "audit-partial")
    event = stream_event(stack, items, ttl_removals=1)
    sequence = [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]
    platform.reset(200, 422, 200)

    # When the handler gets the batch
    response = stack.invoke("AuditSyncFunction", event)

    # Then exactly the records of the refused request (the 3rd and 4th) are reported
    assert response == {
        "batchItemFailures": [{"itemIdentifier": sequence[2]}, {"itemIdentifier": sequence[3]}]
    }
    assert [e["webhookId"] for e in platform.accepted] == [
        "wh-0",
        "wh-1",
        "wh-4",
    ]

    # When Lambda retries from the lowest reported record (the platform healthy again)
    platform.reset()
    retry = {"Records": event["Records"][2:]}
    assert stack.invoke("AuditSyncFunction", retry) == {"batchItemFailures": []}

    # Then the two that failed arrived: none lost
    assert {e["webhookId"] for e in platform.accepted} >= {"wh-2", "wh-3"}
    assert [wire(e) for e in written[2:4]] == platform.accepted[:2]


def test_when_nothing_arrives_the_invocation_fails_for_lambda_to_retry(
    stack: LocalStack, platform: MonitoringPlatform, store: Store, captured: _Capture
) -> None:
    # Given every attempt refused (503 twice: the function's two attempts for the one request)
    put_audit(stack, store, "audit-outage", 2)
    items = audit_items(stack, "audit-outage")
    platform.reset(503, 503)

    # When / Then: a function error (Lambda retries the batch; BisectBatchOnFunctionError splits it)
    with pytest.raises(BatchProcessingError) as failed:
        stack.invoke("AuditSyncFunction", stream_event(stack, items))

    assert len(failed.value.child_exceptions) == 2
    assert "HTTP 503 (after 2 attempts)" in str(failed.value)
    assert platform.accepted == []
    assert captured.summaries()[-1] == {"records": 2, "sent": 0, "skipped": 0, "failed": 2}


def test_a_live_delivery_the_platform_refuses_is_reported_by_its_sequence_number(
    stack: LocalStack, platform: MonitoringPlatform, store: Store, captured: _Capture
) -> None:
    # Through the real stream: the handler fails the record (the local stack, unlike Lambda, does
    # not retry it - see the module docstring); its warning names the record for the operator
    platform.reset(503, 503)
    put_audit(stack, store, "audit-live-outage", 1)

    warnings = [
        r for r in captured.records if r.getMessage() == "audit events not delivered: reported for retry"
    ]
    assert len(warnings) == 1
    assert len(warnings[0].failed_sequence_numbers) == 1  # type: ignore[attr-defined]
    assert "HTTP 503 (after 2 attempts)" in warnings[0].error  # type: ignore[attr-defined]
    assert platform.wait_for_requests(2) == 2
