"""The tutorial's audit record (what the monitoring platform receives)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field

from cognigy_webhooks.models.base import _Model


class WebhookAuditLog(_Model):
    """The tutorial's audit record, filled with real values. ``event_id`` (ours) lets a monitoring
    platform drop the duplicates an at-least-once stream delivery can produce."""

    event_id: str | None = None
    webhook_id: str | None = None
    action: str
    timestamp: datetime = Field(default_factory=lambda: datetime.now(UTC))
    latency_ms: float | None = None
    success_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    tls_version: str | None = None
    status_code: int | None = None
    endpoint_url: str | None = None
