"""The audit table's stream -> the user's monitoring platform, none lost.

One invocation gets a batch of stream records of one shard, in order. Each record is one of:

- ``INSERT`` with a ``NewImage``: a new audit event. Its ``WebhookAuditLog`` fields are sent.
- ``REMOVE``: TTL expiry (``userIdentity`` is the DynamoDB service) or a delete. Nothing new happened
  to an endpoint: not sent.
- ``MODIFY``: the audit log is append-only (every writer puts with ``attribute_not_exists(sk)``), so
  this is an edit of an event that was sent when it was written: not sent again.
- unreadable (no ``NewImage``, or not an audit event): reported as failed, so the stream's retries,
  bisection and finally its OnFailure queue keep it (the queue's alarm tells an operator). Never dropped.

The events to send go to :func:`sync_to_monitoring_platform` in one call (its batches, retries and
Idempotency-Key per batch). Every event it does not acknowledge is mapped back to its record's sequence
number, and Powertools' ``BatchProcessor`` with ``process_partial_response`` reports exactly those
records as ``batchItemFailures``; when every record failed it raises instead (a function error, which
``BisectBatchOnFunctionError`` splits). Lambda resumes the shard from the lowest failed sequence number,
so records after it that were delivered are delivered again: at least once, never lost.

One invocation spends at most the Lambda's remaining time less a margin on the platform. When that runs
out, every event whose answer is not known counts as not delivered.

:meth:`AuditSync.handle` is synchronous and runs its own event loop, as Lambda calls a handler: outside
any loop. Called inside a running loop it raises ``RuntimeError`` before anything is sent (an async
caller hands it to a thread).
"""

from __future__ import annotations

import asyncio
import math
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import httpx
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from pydantic import SecretStr, ValidationError
from pydantic.alias_generators import to_camel

from cognigy_webhooks.backoff import Backoff
from cognigy_webhooks.dal.schema import from_item
from cognigy_webhooks.errors import (
    AuditEventNotDelivered,
    InvalidSpec,
    InvalidStreamRecord,
)
from cognigy_webhooks.models import WebhookAuditLog
from cognigy_webhooks.models.records import AuditEvent
from cognigy_webhooks.monitoring import SyncResult, sync_to_monitoring_platform
from cognigy_webhooks.net.tls import client_ssl_context
from cognigy_webhooks.observability import logger

__all__ = [
    "AuditEventNotDelivered",
    "AuditSync",
    "BatchOutcome",
    "PlannedRecord",
    "audit_log_from_image",
    "plan_batch",
    "undelivered",
]

#: ``userIdentity.principalId`` of a REMOVE that DynamoDB's TTL made.
TTL_PRINCIPAL = "dynamodb.amazonaws.com"
#: The attributes an audit item may hold (AuditEvent's camelCase names); others (``sk``, attributes a
#: newer writer adds) are left out, so a reader older than a writer never turns an item into a failure.
_AUDIT_ATTRIBUTES = frozenset(field.alias or name for name, field in AuditEvent.model_fields.items())
#: What an audit item always holds (``timestamp`` too: a default "now" would misdate the event).
_REQUIRED_ATTRIBUTES = ("name", "timestamp", "action", "outcome")
#: Most sequence numbers one log line lists.
_LOGGED_SEQUENCES = 50

Sleep = Callable[[float], Awaitable[Any]]


class TokenSource(Protocol):
    """The monitoring platform's token: ``force`` re-reads it (after a failure: it may have rotated)."""

    def __call__(self, *, force: bool) -> str | None: ...


class Metrics(Protocol):
    def add_metric(self, name: str, unit: Any, value: float, resolution: Any = ...) -> None: ...


@dataclass(frozen=True, slots=True)
class PlannedRecord:
    """What one stream record comes to: ``log`` to send, ``skipped`` (why not sent) or ``error``
    (why it cannot be read: reported as failed)."""

    sequence_number: str
    event_name: str
    log: WebhookAuditLog | None = None
    skipped: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """One invocation: how many records, how many events sent and skipped, and the records reported as
    failed (sequence number -> why)."""

    records: int
    sent: int
    skipped: int
    failures: Mapping[str, str]
    requests: int = 0


# --- reading the stream ----------------------------------------------------------------------------


def audit_log_from_image(image: Mapping[str, Any]) -> WebhookAuditLog:
    """An audit item's NewImage (DynamoDB JSON) -> the fields the platform gets. Raises
    :class:`InvalidSpec` naming each attribute at fault (never echoing a value)."""
    try:
        data = from_item(dict(image))
    except (TypeError, ValueError, KeyError, AttributeError, ArithmeticError) as exc:
        problem = {"field": "NewImage", "message": f"not DynamoDB JSON ({type(exc).__name__})"}
        raise InvalidStreamRecord([problem]) from None
    known = {key: value for key, value in data.items() if key in _AUDIT_ATTRIBUTES}
    problems = [
        {"field": f"NewImage.{key}", "message": "is required"}
        for key in _REQUIRED_ATTRIBUTES
        if key not in known
    ]
    problems += [
        {"field": f"NewImage.{key}", "message": "is not a finite number"}
        for key, value in known.items()
        if isinstance(value, float) and not math.isfinite(value)
    ]
    if problems:
        raise InvalidStreamRecord(problems)
    try:
        return AuditEvent.model_validate(known).to_webhook_audit_log()
    except ValidationError as exc:
        errors = InvalidStreamRecord.from_validation_error(exc).errors
        # the item's attribute names (camelCase), whichever model (field names or aliases) refused it
        named = [{**e, "field": "NewImage." + ".".join(map(to_camel, e["field"].split(".")))} for e in errors]
        raise InvalidStreamRecord(named) from None


def _plan_record(raw: Any, index: int) -> PlannedRecord:
    where = f"Records[{index}]"
    record: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    stream = record.get("dynamodb")
    stream = stream if isinstance(stream, Mapping) else {}
    sequence = stream.get("SequenceNumber")
    if not isinstance(sequence, str) or not sequence:
        # Without it the record cannot be reported alone: the whole batch fails (and is retried).
        raise InvalidStreamRecord([{"field": f"{where}.dynamodb.SequenceNumber", "message": "is required"}])
    event_name = str(record.get("eventName") or "")
    if event_name == "REMOVE":
        identity = record.get("userIdentity")
        expired = isinstance(identity, Mapping) and identity.get("principalId") == TTL_PRINCIPAL
        return PlannedRecord(sequence, event_name, skipped="expired (TTL)" if expired else "deleted")
    if event_name == "MODIFY":
        return PlannedRecord(sequence, event_name, skipped="modified (sent when it was written)")
    if event_name != "INSERT":
        return PlannedRecord(sequence, event_name, error=f"{where}.eventName: not INSERT, MODIFY or REMOVE")
    image = stream.get("NewImage")
    if not isinstance(image, Mapping):
        missing = f"{where}.dynamodb.NewImage: missing (the stream must carry NEW_IMAGE)"
        return PlannedRecord(sequence, event_name, error=missing)
    try:
        return PlannedRecord(sequence, event_name, log=audit_log_from_image(image))
    except InvalidSpec as exc:
        return PlannedRecord(sequence, event_name, error=f"{where}: {exc}")


def plan_batch(event: Any) -> list[PlannedRecord]:
    """Every record of a DynamoDB stream event, in order. Raises :class:`InvalidSpec` when the event is
    not one (no ``Records`` list, a record without a sequence number)."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        raise InvalidStreamRecord(
            [{"field": "Records", "message": "a DynamoDB stream event needs a Records list"}]
        )
    return [_plan_record(raw, index) for index, raw in enumerate(records)]


def undelivered(sent: Sequence[PlannedRecord], result: SyncResult | None, *, unknown: str) -> dict[str, str]:
    """Sequence number -> why, for every sent record whose event the platform did not acknowledge.

    ``result`` None means the outcome is unknown (time ran out): all of them. The sync returns the very
    objects it was given; should it ever return others, every record counts as not delivered."""
    if result is None:
        return {p.sequence_number: unknown for p in sent}
    if not result.failed:
        return {}
    why = f"not acknowledged by the monitoring platform ({result.last_error or 'no answer'})"
    by_identity = {id(p.log): p.sequence_number for p in sent}
    failures: dict[str, str] = {}
    for log in result.failed:
        sequence = by_identity.get(id(log))
        if sequence is None:
            return {p.sequence_number: why for p in sent}
        failures[sequence] = why
    return failures


# --- the sync --------------------------------------------------------------------------------------


def _outside_any_loop() -> None:
    """Refuse to start inside a running event loop (``asyncio.run`` could not run there)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        "AuditSync is synchronous and runs its own event loop: call it from a thread, "
        "not inside a running event loop"
    )


class AuditSync:
    """Sends a stream batch's new audit events to the monitoring platform and reports the records
    whose events did not arrive. Safe to share between threads (no state per invocation is kept)."""

    def __init__(
        self,
        monitoring_url: str,
        *,
        token: TokenSource | None = None,
        batch_size: int = 100,
        max_attempts: int = 3,
        base_delay: float = 0.5,
        max_delay: float = 10.0,
        timeout: float = 10.0,
        verify: ssl.SSLContext | None = None,
        deadline_margin: float = 3.0,
        sleep: Sleep | None = None,
        metrics: Metrics | None = None,
        retry: Backoff | None = None,
    ) -> None:
        self.monitoring_url = monitoring_url
        self._token = token
        self.batch_size = batch_size
        # the retry settings (and sleep) as one value, down to the monitoring sync
        self.retry = retry or Backoff(max_attempts, base_delay, max_delay, sleep)
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        self._verify = verify if verify is not None else client_ssl_context()
        self.deadline_margin = deadline_margin
        self._metrics = metrics
        self._refresh_token = False

    def __repr__(self) -> str:
        return f"AuditSync(batch_size={self.batch_size}, max_attempts={self.retry.max_attempts})"

    # -- one invocation --------------------------------------------------------------------------

    def handle(self, event: Any, context: Any = None) -> PartialItemFailureResponse:
        """The Lambda's answer for one stream batch: ``{"batchItemFailures": [...]}``. Raises
        ``BatchProcessingError`` when every record failed, and :class:`InvalidSpec` for an event that
        is not a DynamoDB stream batch."""
        outcome = self.sync(event, context)
        processor = BatchProcessor(event_type=EventType.DynamoDBStreams)

        def record_handler(record: DynamoDBRecord) -> None:
            stream = record.dynamodb
            sequence = stream.sequence_number if stream is not None else None
            why = outcome.failures.get(sequence or "")
            if why is not None:
                raise AuditEventNotDelivered(f"record {sequence}: {why}")

        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )

    def sync(self, event: Any, context: Any = None) -> BatchOutcome:
        """Send the batch's new audit events; returns what became of each record."""
        _outside_any_loop()
        planned = plan_batch(event)
        failures = {p.sequence_number: p.error for p in planned if p.error is not None}
        for p in planned:
            if p.error is not None:
                logger.error(
                    "unreadable audit stream record",
                    extra={"sequence_number": p.sequence_number, "error": p.error},
                )
        to_send = [p for p in planned if p.log is not None]
        skipped = sum(1 for p in planned if p.skipped is not None)
        requests = 0
        if to_send:
            budget = self._budget(context)
            token = self._read_token()
            result = asyncio.run(self._deliver(to_send, token, budget))
            requests = result.requests if result is not None else 0
            lost = undelivered(to_send, result, unknown=f"no answer within this invocation's {budget:.1f} s")
            failures.update(lost)
            self._refresh_token = bool(lost)  # the token may have rotated: re-read it next time
        outcome = BatchOutcome(
            records=len(planned),
            sent=sum(1 for p in to_send if p.sequence_number not in failures),
            skipped=skipped,
            failures=failures,
            requests=requests,
        )
        self._report(outcome)
        return outcome

    def _budget(self, context: Any) -> float:
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        if remaining is None:
            return float("inf")
        return max(0.0, remaining() / 1000.0 - self.deadline_margin)

    def _read_token(self) -> SecretStr | None:
        if self._token is None:
            return None
        value = self._token(force=self._refresh_token)
        return None if value is None else SecretStr(value.strip())

    async def _deliver(
        self, to_send: Sequence[PlannedRecord], token: SecretStr | None, budget: float
    ) -> SyncResult | None:
        logs = [p.log for p in to_send if p.log is not None]
        http = httpx.AsyncClient(timeout=self._timeout, verify=self._verify, follow_redirects=False)
        async with http:
            with anyio.move_on_after(budget):
                return await sync_to_monitoring_platform(
                    logs,
                    self.monitoring_url,
                    api_token=token,
                    client=http,
                    batch_size=self.batch_size,
                    retry=self.retry,
                )
        return None

    def _report(self, outcome: BatchOutcome) -> None:
        failed = len(outcome.failures)
        extra: dict[str, Any] = {
            "records": outcome.records,
            "sent": outcome.sent,
            "skipped": outcome.skipped,
            "failed": failed,
            "requests": outcome.requests,
        }
        if failed:
            sequences = list(outcome.failures)
            extra["failed_sequence_numbers"] = sequences[:_LOGGED_SEQUENCES]
            extra["error"] = next(iter(outcome.failures.values()))
            logger.warning("audit events not delivered: reported for retry", extra=extra)
        else:
            logger.info("audit events synced", extra=extra)
        if self._metrics is not None:
            for name, value in (
                ("AuditEventsSent", outcome.sent),
                ("AuditEventsSkipped", outcome.skipped),
                ("AuditEventsFailed", failed),
            ):
                self._metrics.add_metric(name=name, unit="Count", value=value)
