"""What DynamoDB keeps: the endpoint record and the audit event (declarative, no I/O).

Neither ever holds a secret: the spec is stored as :meth:`WebhookEndpoint.public_view` (secret ARNs
name, they do not reveal; sensitive header values are redacted).

``createMaybeApplied`` on a record says that a create was sent to Cognigy and may have been applied
without its answer ever arriving (a timeout, a reset, a 5xx): Cognigy may hold a live webhook this
record does not name yet. The next apply looks the name up and adopts it (never a blind second
create); the write that records the webhook id clears the flag. The create claim's own attributes
(see :mod:`cognigy_webhooks.dal.records`) live on the same DynamoDB item but are not part of the record;
the attribute names are :mod:`cognigy_webhooks.dal.schema`'s.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field

from cognigy_webhooks.models.audit import WebhookAuditLog
from cognigy_webhooks.models.base import _Model
from cognigy_webhooks.models.probe import EndpointProbeReport
from cognigy_webhooks.models.watch import WatchState

Outcome = Literal["created", "updated", "unchanged", "deleted", "failed"]
Status = Literal["registered", "inactive", "failed"]
RECORD_TYPE = "endpoint"


def utcnow() -> datetime:
    return datetime.now(UTC)


class ProbeSummary(_Model):
    """The last probe, as the record keeps it."""

    passed: bool
    reason: str
    tls_version: str | None = None
    latency_ms: float | None = None
    status_code: int | None = None
    cert_days_left: int | None = None
    probed_at: datetime

    @classmethod
    def from_report(cls, report: EndpointProbeReport) -> ProbeSummary:
        primary = report.primary
        return cls(
            passed=report.passed,
            reason=report.reason.value,
            tls_version=primary.tls_version,
            latency_ms=primary.timings_ms.total,
            status_code=primary.status_code,
            cert_days_left=primary.cert_days_left,
            probed_at=primary.probed_at,
        )


class EndpointRecord(_Model):
    """One endpoint as this stack knows it (EndpointsTable, key ``name``)."""

    name: str
    record_type: str = RECORD_TYPE
    webhook_id: str | None = None
    spec_hash: str | None = None
    spec: dict[str, Any] = Field(default_factory=dict)
    status: Status = "failed"
    last_outcome: Outcome | None = None
    last_reason: str | None = None
    last_execution_id: str | None = None
    last_source: str | None = None
    last_probe: ProbeSummary | None = None
    probe_count: Annotated[int, Field(ge=0)] = 0
    probe_successes: Annotated[int, Field(ge=0)] = 0
    create_maybe_applied: bool | None = None
    # The endpoints dialect (Cognigy.AI's /new/v2.0/endpoints): the project the endpoint lives in,
    # its ``lastChanged`` (unix ms) as Cognigy answered our last write or read, and the Secrets
    # Manager ARN of its URLToken (the token itself lets anyone send input into the bot: never here).
    project_id: str | None = None
    last_changed: int | None = None
    url_token_arn: str | None = None
    # The watch's state (cognigy_webhooks.watch): health, consecutive counts, the URL Cognigy is told
    # (a fallback after a failover), certificate facts. None until the first watch; reset by an apply
    # that changes the primary URL.
    watch: WatchState | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    version: Annotated[int, Field(ge=0)] = 0

    @property
    def success_rate(self) -> float | None:
        return None if self.probe_count == 0 else self.probe_successes / self.probe_count


class AuditEvent(_Model):
    """One lifecycle action (AuditTable, key ``name`` + ``sk``). Carries the tutorial's WebhookAuditLog
    fields, filled with real values, plus execution id, source and outcome."""

    name: str
    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    timestamp: datetime = Field(default_factory=utcnow)
    action: str
    outcome: str
    reason: str | None = None
    detail: str | None = None
    webhook_id: str | None = None
    latency_ms: float | None = None
    cognigy_latency_ms: float | None = None
    success_rate: float | None = None
    tls_version: str | None = None
    status_code: int | None = None
    probe_status_code: int | None = None
    endpoint_url: str | None = None
    execution_id: str | None = None
    source: str | None = None
    # Cognigy's traceId of a refused request (its RFC 7807 error body): what Cognigy's support asks for
    trace_id: str | None = None
    expires_at: int | None = None

    @property
    def sk(self) -> str:
        """Sort key: time order, then the event id so two events in one microsecond never collide."""
        return f"{self.timestamp.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{self.event_id}"

    def with_retention(self, days: int) -> AuditEvent:
        return self.model_copy(
            update={"expires_at": int((self.timestamp + timedelta(days=days)).timestamp())}
        )

    def to_webhook_audit_log(self) -> WebhookAuditLog:
        return WebhookAuditLog(
            event_id=self.event_id,
            webhook_id=self.webhook_id,
            action=self.action,
            timestamp=self.timestamp,
            latency_ms=self.latency_ms,
            success_rate=self.success_rate,
            tls_version=self.tls_version,
            status_code=self.status_code,
            endpoint_url=self.endpoint_url,
        )
