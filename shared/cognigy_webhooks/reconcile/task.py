"""The register task's shapes and what it depends on: its request and result, and Protocols for the
store, the Cognigy client and the shared rate limiter.

The request is what the reconcile state machine hands one endpoint's register step (the plan's item
with the probe's report, or a caught failure); the result is what the summarize step counts. Both
are camelCase JSON in execution state. A request that does not parse is an
:class:`~cognigy_webhooks.errors.InvalidSpec` naming the fields at fault.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from cognigy_webhooks.errors import InvalidSpec
from cognigy_webhooks.models import EndpointProbeReport, _Model
from cognigy_webhooks.models.records import AuditEvent, EndpointRecord, Outcome
from cognigy_webhooks.reconcile.adopt import Limiter, WebhookApi
from cognigy_webhooks.reconcile.plan import CognigyHeld

__all__ = [
    "Action",
    "CognigyApi",
    "Limiter",
    "RecordStore",
    "RegisterDeps",
    "RegisterRequest",
    "RegisterResult",
    "Stored",
    "parse_register_request",
]

Action = Literal["apply", "delete", "probe_failed", "fail"]


class RegisterRequest(_Model):
    action: Action
    endpoint: dict[str, Any]
    probe: EndpointProbeReport | None = None
    error: dict[str, Any] | None = None
    execution_id: str | None = None
    source: str | None = None
    cognigy: CognigyHeld | None = None


class RegisterResult(_Model):
    name: str
    outcome: Outcome
    reason: str | None = None
    detail: str | None = None
    webhook_id: str | None = None
    tls_version: str | None = None
    latency_ms: float | None = None
    status_code: int | None = None
    create_maybe_applied: bool | None = None


def parse_register_request(event: Any) -> RegisterRequest:
    try:
        return RegisterRequest.model_validate(event)
    except ValidationError as exc:
        raise InvalidSpec.from_validation_error(exc) from None


class CognigyApi(WebhookApi, Protocol):
    """What register needs from :class:`cognigy_webhooks.cognigy.CognigyClient`: the engine's calls
    (create, update, list) and delete."""

    async def delete_webhook(self, webhook_id: str) -> bool: ...
    def scoped(self, project_id: str | None) -> Any: ...


class Stored(Protocol):
    """What the store says about a name (:class:`cognigy_webhooks.dal.records.StoredEndpoint`)."""

    @property
    def record(self) -> EndpointRecord | None: ...
    @property
    def claimed(self) -> bool: ...
    @property
    def create_maybe_applied(self) -> bool: ...


class RecordStore(Protocol):
    """The records, the audit log and the create claim (:class:`cognigy_webhooks.dal.records.Store`)."""

    def read(self, name: str) -> Stored: ...
    def claim(self, name: str, *, token: str, expected_version: int | None, lease_seconds: float) -> None: ...
    def release(self, name: str, *, token: str, create_maybe_applied: bool, drop_item: bool) -> bool: ...
    def commit(
        self,
        *,
        name: str,
        record: EndpointRecord | None,
        audit: AuditEvent,
        expected_version: int | None,
        claim_token: str | None = None,
        unclaimed_create: bool = False,
    ) -> None: ...


@dataclass
class RegisterDeps:
    store: RecordStore
    cognigy: CognigyApi
    limiter: Limiter
    resolve_secret: Callable[[str], str]
    retention_days: int = 400
    clock: Callable[[], float] = time.perf_counter
    # how the task waits for another execution's create claim after losing a race (race.py)
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
    # (endpoint name, kind, value) -> the ARN of the secret stored (an Endpoint's URLToken); None
    # keeps no URLToken (its ARN is then not recorded)
    store_secret: Callable[[str, str, str], str] | None = None
