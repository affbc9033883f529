"""The audit sync's logic without AWS: stream records -> audit logs -> a real HTTPS monitoring platform
on 127.0.0.1, and exactly the records whose events did not arrive reported as batch item failures."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from cognigy_webhooks.audit_sync import (
    AuditSync,
    client_ssl_context,
    plan_batch,
    undelivered,
)
from cognigy_webhooks.errors import InvalidSettings, InvalidSpec
from cognigy_webhooks.models import WebhookAuditLog
from cognigy_webhooks.monitoring import SyncResult
from cognigy_webhooks.observability import SERVICE
from cognigy_webhooks.settings import AuditSyncSettings
from cogwh.certs import LocalCA
from tests.support.monitoring_platform import HOLD, WIRE_FIELDS, MonitoringPlatform, serve_platform

SAMPLE = Path(__file__).resolve().parents[2] / "events" / "audit_sync.json"
TOKEN = "mon-tok-" + "Q7x9" * 8


def sample() -> dict[str, Any]:
    event = json.loads(SAMPLE.read_text(encoding="utf-8"))
    assert isinstance(event, dict)
    return event


def sequences(event: dict[str, Any]) -> list[str]:
    return [r["dynamodb"]["SequenceNumber"] for r in event["Records"]]


def inserts_only(n: int) -> dict[str, Any]:
    """n INSERT records (copies of the sample's first, each its own event id and sequence number)."""
    base = sample()["Records"][0]
    records = []
    for i in range(n):
        record = copy.deepcopy(base)
        record["dynamodb"]["SequenceNumber"] = f"2000000000000000000{i:05d}"
        record["dynamodb"]["NewImage"]["eventId"] = {"S": f"{i:032x}"}
        record["dynamodb"]["NewImage"]["webhookId"] = {"S": f"wh-{i}"}
        records.append(record)
    return {"Records": records}


class Context:
    """A Lambda context with a given remaining time."""

    def __init__(self, remaining_s: float = 60.0) -> None:
        self.remaining_s = remaining_s
        self.function_name = "audit-sync"
        self.memory_limit_in_mb = 256
        self.invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:audit-sync"
        self.aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return int(self.remaining_s * 1000)


class Tokens:
    """The token source: records whether each read was forced."""

    def __init__(self, value: str | None = TOKEN) -> None:
        self.value = value
        self.forced: list[bool] = []

    def __call__(self, *, force: bool) -> str | None:
        self.forced.append(force)
        return self.value


@pytest.fixture(scope="module")
def served(local_ca: LocalCA) -> Iterator[tuple[MonitoringPlatform, str]]:
    with serve_platform(local_ca) as platform_and_url:
        yield platform_and_url


@pytest.fixture
def platform(served: tuple[MonitoringPlatform, str]) -> MonitoringPlatform:
    served[0].reset()
    return served[0]


@pytest.fixture
def url(served: tuple[MonitoringPlatform, str]) -> str:
    return served[1]


def make_sync(url: str, local_ca: LocalCA, tokens: Tokens | None = None, **kwargs: Any) -> AuditSync:
    options: dict[str, Any] = {"max_attempts": 2, "base_delay": 0.0, "max_delay": 0.0, "deadline_margin": 0.2}
    options.update(kwargs)
    return AuditSync(
        url, token=tokens or Tokens(), verify=client_ssl_context(str(local_ca.ca_file)), **options
    )


# --- reading the stream ----------------------------------------------------------------------------


def test_the_sample_event_gives_two_audit_logs_and_skips_the_ttl_removal() -> None:
    planned = plan_batch(sample())

    assert [p.event_name for p in planned] == ["INSERT", "INSERT", "REMOVE"]
    assert planned[2].skipped == "expired (TTL)"
    assert planned[2].log is None
    first, second = planned[0].log, planned[1].log
    assert first is not None
    assert second is not None
    assert first.model_dump(mode="json", by_alias=True) == {
        "eventId": sample()["Records"][0]["dynamodb"]["NewImage"]["eventId"]["S"],
        "webhookId": "6630a1f2e4b0c1d2e3f4a5b6",
        "action": "register",
        "timestamp": "2024-05-01T12:00:00.125000Z",
        "latencyMs": 84.31,
        "successRate": 1.0,
        "tlsVersion": "TLSv1.3",
        "statusCode": 201,
        "endpointUrl": "https://hooks.example.com/cognigy/orders",
    }
    assert (second.action, second.webhook_id, second.endpoint_url) == (
        "probe",
        None,
        "https://crm.example.com/hooks/cognigy",
    )


def test_removals_and_edits_are_not_sent() -> None:
    event = sample()
    deleted = copy.deepcopy(event["Records"][2])
    del deleted["userIdentity"]  # a delete by a user, not TTL
    modified = copy.deepcopy(event["Records"][0])
    modified["eventName"] = "MODIFY"

    planned = plan_batch({"Records": [deleted, modified]})

    assert [(p.skipped, p.log, p.error) for p in planned] == [
        ("deleted", None, None),
        ("modified (sent when it was written)", None, None),
    ]


def test_unreadable_records_are_kept_with_a_reason_naming_the_field() -> None:
    good = sample()["Records"][0]

    def variant(change: Any) -> dict[str, Any]:
        record = copy.deepcopy(good)
        change(record)
        return record

    records = [
        variant(lambda r: r["dynamodb"].pop("NewImage")),  # a KEYS_ONLY stream
        variant(lambda r: r["dynamodb"]["NewImage"].pop("action")),
        variant(lambda r: r["dynamodb"]["NewImage"].update(successRate={"N": "7"})),
        variant(lambda r: r["dynamodb"]["NewImage"].update(timestamp={"BOGUS": "x"})),
        variant(lambda r: r.update(eventName="TRUNCATE")),
        variant(lambda r: r["dynamodb"]["NewImage"].update(addedByANewerWriter={"S": "ok"})),
        variant(lambda r: r["dynamodb"]["NewImage"].pop("timestamp")),  # never misdated as "now"
        variant(lambda r: r["dynamodb"]["NewImage"].update(latencyMs={"N": "not-a-number"})),
        variant(lambda r: r["dynamodb"]["NewImage"].update(latencyMs={"N": "Infinity"})),
    ]
    for i, record in enumerate(records):
        record["dynamodb"]["SequenceNumber"] = str(900 + i)

    planned = plan_batch({"Records": records})

    errors = [p.error for p in planned]
    assert errors[0] == "Records[0].dynamodb.NewImage: missing (the stream must carry NEW_IMAGE)"
    assert errors[1] == "Records[1]: NewImage.action: is required"
    assert errors[2] is not None
    assert errors[2].startswith("Records[2]: NewImage.successRate:")
    assert errors[3] == "Records[3]: NewImage: not DynamoDB JSON (TypeError)"
    assert errors[4] == "Records[4].eventName: not INSERT, MODIFY or REMOVE"
    assert errors[5] is None  # an attribute this reader does not know is left out, not a failure
    assert planned[5].log is not None
    assert planned[5].log.action == "register"
    assert errors[6] == "Records[6]: NewImage.timestamp: is required"
    assert errors[7] == "Records[7]: NewImage.latencyMs: is not a finite number"
    assert errors[8] == "Records[8]: NewImage: not DynamoDB JSON (OverflowError)"


def test_an_event_that_is_no_stream_batch_is_refused_by_field() -> None:
    with pytest.raises(InvalidSpec) as no_records:
        plan_batch({"Items": []})
    assert no_records.value.errors == [
        {"field": "Records", "message": "a DynamoDB stream event needs a Records list"}
    ]
    record = sample()["Records"][1]
    del record["dynamodb"]["SequenceNumber"]
    with pytest.raises(InvalidSpec) as no_sequence:
        plan_batch({"Records": [sample()["Records"][0], record]})
    assert no_sequence.value.errors == [
        {"field": "Records[1].dynamodb.SequenceNumber", "message": "is required"}
    ]


def test_undelivered_maps_each_unacknowledged_event_to_its_record() -> None:
    planned = plan_batch(inserts_only(4))
    logs = [p.log for p in planned]
    assert all(isinstance(log, WebhookAuditLog) for log in logs)

    assert undelivered(planned, SyncResult(sent=4), unknown="?") == {}
    partial = SyncResult(sent=2, failed=[logs[1], logs[3]], last_error="HTTP 503 (after 2 attempts)")  # type: ignore[list-item]
    assert undelivered(planned, partial, unknown="?") == {
        planned[
            1
        ].sequence_number: "not acknowledged by the monitoring platform (HTTP 503 (after 2 attempts))",
        planned[
            3
        ].sequence_number: "not acknowledged by the monitoring platform (HTTP 503 (after 2 attempts))",
    }
    # an equal copy is not one of ours: nothing can be trusted, every record is reported
    copied = SyncResult(sent=3, failed=[logs[0].model_copy()], last_error="HTTP 400")  # type: ignore[union-attr]
    assert set(undelivered(planned, copied, unknown="?")) == {p.sequence_number for p in planned}
    assert undelivered(planned, None, unknown="timed out") == {
        p.sequence_number: "timed out" for p in planned
    }


# --- delivering ------------------------------------------------------------------------------------


def test_new_audit_events_reach_the_platform_and_the_batch_succeeds(
    platform: MonitoringPlatform, url: str, local_ca: LocalCA
) -> None:
    tokens = Tokens()
    sync = make_sync(url, local_ca, tokens)

    response = sync.handle(sample(), Context())

    assert response == {"batchItemFailures": []}
    assert len(platform.received) == 1
    request = platform.received[0]
    assert request.header("authorization") == [f"Bearer {TOKEN}"]
    assert len(request.header("idempotency-key")[0]) == 32
    assert request.header("x-api-key") == []
    events = request.body["events"]
    assert [e["action"] for e in events] == ["register", "probe"]
    assert all(set(e) == WIRE_FIELDS for e in events)
    assert tokens.forced == [False]


def test_only_the_records_whose_events_failed_are_reported(
    platform: MonitoringPlatform, url: str, local_ca: LocalCA
) -> None:
    # Given one event per request: the first accepted, the second refused (a 4xx for that batch
    # alone), the third refused once (503) and then accepted
    event = inserts_only(3)
    platform.reset(200, 422, 503, 200)
    sync = make_sync(url, local_ca, batch_size=1)

    # When
    response = sync.handle(event, Context())

    # Then exactly the second record is reported; the others arrived
    assert response == {"batchItemFailures": [{"itemIdentifier": sequences(event)[1]}]}
    assert [e["webhookId"] for e in platform.accepted] == ["wh-0", "wh-2"]


def test_when_retries_run_out_the_rest_of_the_batch_is_reported_too(
    platform: MonitoringPlatform, url: str, local_ca: LocalCA
) -> None:
    # The second event's attempts all fail (503): the sync stops there, so the third is unsent too
    event = inserts_only(3)
    platform.reset(200, 503, 503)
    sync = make_sync(url, local_ca, batch_size=1)

    response = sync.handle(event, Context())

    assert response == {"batchItemFailures": [{"itemIdentifier": s} for s in sequences(event)[1:]]}
    assert [e["webhookId"] for e in platform.accepted] == ["wh-0"]
    assert len(platform.received) == 3


def test_a_platform_that_stops_the_sync_fails_every_record_it_did_not_take(
    platform: MonitoringPlatform, url: str, local_ca: LocalCA
) -> None:
    # 401 stops the sync: every event from there on is unsent; the TTL removal is no failure
    event = sample()
    platform.reset(401)
    tokens = Tokens()
    sync = make_sync(url, local_ca, tokens)

    response = sync.handle(event, Context())

    assert response == {"batchItemFailures": [{"itemIdentifier": s} for s in sequences(event)[:2]]}
    assert platform.accepted == []
    # the token may have rotated: the next invocation reads it afresh, then trusts its cache again
    platform.reset()
    assert sync.handle(event, Context()) == {"batchItemFailures": []}
    assert sync.handle(event, Context()) == {"batchItemFailures": []}
    assert tokens.forced == [False, True, False]


def test_when_every_record_fails_the_invocation_fails(
    platform: MonitoringPlatform, url: str, local_ca: LocalCA
) -> None:
    # A function error: Lambda retries the batch and BisectBatchOnFunctionError splits it
    platform.reset(503, 503)
    sync = make_sync(url, local_ca)

    with pytest.raises(BatchProcessingError) as failed:
        sync.handle(inserts_only(2), Context())

    assert len(failed.value.child_exceptions) == 2
    assert "HTTP 503 (after 2 attempts)" in str(failed.value)
    assert len(platform.received) == 2


def test_an_unreadable_record_is_reported_and_the_rest_still_sent(
    platform: MonitoringPlatform, url: str, local_ca: LocalCA
) -> None:
    event = inserts_only(3)
    event["Records"][1]["dynamodb"]["NewImage"].pop("outcome")
    sync = make_sync(url, local_ca)

    response = sync.handle(event, Context())

    assert response == {"batchItemFailures": [{"itemIdentifier": sequences(event)[1]}]}
    assert [e["webhookId"] for e in platform.accepted] == ["wh-0", "wh-2"]


def test_running_out_of_time_counts_every_unanswered_event_as_not_delivered(
    platform: MonitoringPlatform, url: str, local_ca: LocalCA
) -> None:
    # The platform holds the request; the invocation has 0.5 s left and keeps a 0.2 s margin
    event = sample()
    platform.reset(HOLD)
    sync = make_sync(url, local_ca, deadline_margin=0.2)

    try:
        response = sync.handle(event, Context(remaining_s=0.5))
    finally:
        platform.release()
        platform.wait_for_requests(1)  # the held request is answered before the next test begins

    assert response == {"batchItemFailures": [{"itemIdentifier": s} for s in sequences(event)[:2]]}


@pytest.mark.anyio
async def test_it_runs_inside_a_caller_s_event_loop(
    platform: MonitoringPlatform, url: str, local_ca: LocalCA
) -> None:
    # An async caller hands the synchronous handler to a thread (as the local stack's stream workers
    # call it: outside any loop, since they deliver after the write, not inside the writer's call).
    sync = make_sync(url, local_ca)

    response = await anyio.to_thread.run_sync(sync.handle, sample(), Context())

    assert response == {"batchItemFailures": []}
    assert len(platform.accepted) == 2


@pytest.mark.anyio
async def test_called_inside_a_running_loop_it_refuses_before_sending_anything(
    platform: MonitoringPlatform, url: str, local_ca: LocalCA
) -> None:
    tokens = Tokens()
    sync = make_sync(url, local_ca, tokens)

    with pytest.raises(RuntimeError, match="call it from a thread"):
        sync.handle(sample(), Context())

    assert platform.received == []
    assert tokens.forced == []  # not even the token was read


def test_without_a_token_no_authorization_is_sent(
    platform: MonitoringPlatform, url: str, local_ca: LocalCA
) -> None:
    sync = AuditSync(url, verify=client_ssl_context(str(local_ca.ca_file)))

    assert sync.handle(sample(), Context()) == {"batchItemFailures": []}
    assert platform.received[0].header("authorization") == []


def test_an_untrusted_platform_certificate_is_a_failure_not_a_loss(
    platform: MonitoringPlatform, url: str
) -> None:
    sync = AuditSync(url, token=Tokens(), max_attempts=1)  # public roots only: the local CA is unknown

    response = sync.handle(sample(), Context())

    assert response == {"batchItemFailures": [{"itemIdentifier": s} for s in sequences(sample())[:2]]}
    assert platform.received == []


def test_no_token_in_logs_or_in_the_events(platform: MonitoringPlatform, url: str, local_ca: LocalCA) -> None:
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage() + " " + repr(vars(record)))

    service = logging.getLogger(SERVICE)
    capture = Capture(logging.DEBUG)
    previous = service.level
    service.addHandler(capture)
    service.setLevel(logging.DEBUG)
    try:
        platform.reset(200, 401)
        sync = make_sync(url, local_ca, batch_size=1)
        sync.handle(sample(), Context())
    finally:
        service.removeHandler(capture)
        service.setLevel(previous)

    assert any("not delivered" in line for line in lines), "the failure was logged"
    assert not [line for line in lines if TOKEN in line]
    received = platform.everything_received()
    assert received.count(TOKEN) == len(platform.received) == 2  # once per request: its Authorization
    assert all(TOKEN not in r.raw_body for r in platform.received)
    assert TOKEN not in repr(sync)


# --- settings --------------------------------------------------------------------------------------


def test_settings_read_the_function_s_own_variables() -> None:
    settings = AuditSyncSettings.from_env(
        {
            "MONITORING_URL": "https://ingest.example.com/v1/audit",
            "MONITORING_TOKEN_SECRET": "arn:aws:secretsmanager:eu-central-1:123456789012:secret:mon-AbCdEf",
            "MONITORING_CA_BUNDLE": "",
        }
    )

    assert settings.monitoring_url == "https://ingest.example.com/v1/audit"
    assert settings.monitoring_ca_bundle == ""
    assert (settings.batch_size, settings.max_attempts, settings.timeout) == (100, 3, 10.0)


@pytest.mark.parametrize(
    ("environ", "field", "message"),
    [
        ({}, "MONITORING_URL", "Field required"),
        ({"MONITORING_URL": "ftp://ingest.example.com"}, "MONITORING_URL", "String should match pattern"),
        (
            {"MONITORING_URL": "https://svc:hunter2@ingest.example.com/x"},
            "MONITORING_URL",
            "must not carry credentials: put the token in MONITORING_TOKEN_SECRET",
        ),
        (
            {"MONITORING_URL": "http://ingest.example.com/x", "MONITORING_TOKEN_SECRET": "mon-token"},
            "MONITORING_URL",
            "must be https when MONITORING_TOKEN_SECRET is set",
        ),
        ({"MONITORING_URL": "https://[::1/x"}, "MONITORING_URL", "is not a valid URL"),
        (
            {
                "MONITORING_URL": "https://a.example",
                "MONITORING_BASE_DELAY_SECONDS": "5",
                "MONITORING_MAX_DELAY_SECONDS": "1",
            },
            "MONITORING_BASE_DELAY_SECONDS",
            "must not exceed MONITORING_MAX_DELAY_SECONDS",
        ),
        (
            {"MONITORING_URL": "https://a.example", "MONITORING_BATCH_SIZE": "0"},
            "MONITORING_BATCH_SIZE",
            "Input should be greater",
        ),
    ],
)
def test_bad_settings_name_the_variable(environ: dict[str, str], field: str, message: str) -> None:
    with pytest.raises(InvalidSettings) as refused:
        AuditSyncSettings.from_env(environ)

    assert [e["variable"] for e in refused.value.errors] == [field]
    assert refused.value.errors[0]["message"].startswith(message)
    assert "hunter2" not in str(refused.value)


def test_plain_http_is_allowed_to_a_loopback_platform_with_a_token() -> None:
    settings = AuditSyncSettings.from_env(
        {"MONITORING_URL": "http://127.0.0.1:8080/ingest", "MONITORING_TOKEN_SECRET": "mon-token"}
    )
    assert settings.monitoring_token_secret == "mon-token"
