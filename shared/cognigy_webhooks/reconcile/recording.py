"""What the register task writes: records, audit events and its result, failures included.

Every outcome is written as the endpoint's record and one audit event in ONE transaction
(:meth:`~cognigy_webhooks.dal.records.Store.commit`, optimistic on the record's version, optionally
clearing the name's create claim). A failure is a result, not an exception: the record keeps the
webhook id it had (``status`` becomes ``failed`` only when it has none), its ``lastReason`` says why
(the error's own ``reason``; for an error the state machine caught, that of the class it names:
:func:`~cognigy_webhooks.errors.reason_for_error_name`), and when a create of ours may have been
applied unrecorded the record keeps its ``createMaybeApplied`` mark and the detail says so
(:data:`MAYBE_APPLIED_NOTE`). The task's result carries the probe's TLS version and latency when
there was a probe.
"""

from __future__ import annotations

import json
from typing import Any

from cognigy_webhooks.errors import (
    CognigyError,
    CognigyRejected,
    EndpointClaimed,
    InvalidSpec,
    reason_for_error_name,
)
from cognigy_webhooks.models import EndpointProbeReport, parse_endpoint
from cognigy_webhooks.models.records import AuditEvent, EndpointRecord, Outcome, ProbeSummary, utcnow
from cognigy_webhooks.reconcile.task import RegisterDeps, RegisterRequest, RegisterResult, Stored

__all__ = [
    "MAYBE_APPLIED_NOTE",
    "audit_event",
    "base_record",
    "commit",
    "finish_failure",
    "last_fields",
    "record_failure",
    "record_probe_failure",
    "refusal_event",
    "rejection_detail",
    "task_result",
    "with_probe",
]

MAYBE_APPLIED_NOTE = (
    "a create was sent to Cognigy and may have been applied: the webhook may exist there although "
    "this record does not name it yet (its deliveries are refused until then); the next apply looks "
    "the name up and adopts it, never creating a second"
)


def audit_event(request: RegisterRequest, name: str, **fields: Any) -> AuditEvent:
    """An audit event about ``name`` for this request (execution, source, URL, the probe's figures)."""
    probe = request.probe.primary if request.probe else None
    base: dict[str, Any] = {
        "name": name,
        "execution_id": request.execution_id,
        "source": request.source,
        "endpoint_url": request.endpoint.get("url"),
    }
    if probe is not None:
        base.update(
            latency_ms=probe.timings_ms.total,
            tls_version=probe.tls_version,
            probe_status_code=probe.status_code,
        )
    base.update(fields)
    return AuditEvent(**base)


def refusal_event(
    request: RegisterRequest, name: str, exc: CognigyError, detail: str, **fields: Any
) -> AuditEvent:
    """The audit event of a call Cognigy refused (``exc``: its reason and HTTP status)."""
    return audit_event(
        request,
        name,
        action="failure",
        outcome="failed",
        reason=exc.reason,
        detail=detail,
        status_code=exc.status_code,
        trace_id=exc.trace_id,
        **fields,
    )


def with_probe(record: EndpointRecord, probe: EndpointProbeReport | None) -> EndpointRecord:
    """The record with the probe counted in (last probe, probe and success counts)."""
    if probe is None:
        return record
    return record.model_copy(
        update={
            "last_probe": ProbeSummary.from_report(probe),
            "probe_count": record.probe_count + 1,
            "probe_successes": record.probe_successes + (1 if probe.passed else 0),
        }
    )


def base_record(name: str, stored: Stored) -> EndpointRecord:
    """The record to build on: the stored one, or a new one; marked when a create of ours may have
    been applied without being recorded (the mark may sit on an item that holds no record yet)."""
    record = stored.record or EndpointRecord(name=name)
    if stored.create_maybe_applied and not record.create_maybe_applied:
        record = record.model_copy(update={"create_maybe_applied": True})
    return record


def last_fields(
    request: RegisterRequest, outcome: Outcome, reason: str | None, *, failed: bool = False
) -> dict[str, Any]:
    """The record's ``last*`` fields for this outcome (and ``status: failed`` when ``failed``)."""
    update: dict[str, Any] = {
        "last_outcome": outcome,
        "last_reason": reason,
        "last_execution_id": request.execution_id,
        "last_source": request.source,
        "updated_at": utcnow(),
    }
    if failed:
        update["status"] = "failed"
    return update


def commit(
    deps: RegisterDeps,
    name: str,
    existing: EndpointRecord | None,
    record: EndpointRecord | None,
    event: AuditEvent,
    *,
    claim_token: str | None = None,
    unclaimed_create: bool = False,
) -> None:
    """Write ``record`` (None: the audit event alone, or with ``existing`` a delete) and ``event`` in
    one transaction, expecting ``existing``'s version (``claim_token``, ``unclaimed_create``: see
    :meth:`~cognigy_webhooks.dal.records.Store.commit`)."""
    if record is not None:
        record = record.model_copy(update={"version": (existing.version + 1) if existing else 1})
    deps.store.commit(
        name=name,
        record=record,
        audit=event.with_retention(deps.retention_days),
        expected_version=existing.version if existing else None,
        claim_token=claim_token,
        unclaimed_create=unclaimed_create,
    )


def task_result(request: RegisterRequest, **fields: Any) -> RegisterResult:
    """The task's result, with the probe's TLS version and latency when there was a probe."""
    probe = request.probe.primary if request.probe else None
    if probe is not None:
        fields.setdefault("tls_version", probe.tls_version)
        fields.setdefault("latency_ms", probe.timings_ms.total)
    return RegisterResult(**fields)


def record_probe_failure(name: str, request: RegisterRequest, deps: RegisterDeps) -> RegisterResult:
    """The probe refused the endpoint: record why (``probe_<reason>``); Cognigy is not called."""
    probe = request.probe
    reason = f"probe_{probe.reason.value}" if probe else "probe_failed"
    detail = (probe.primary.detail if probe else None) or (probe.reason.value if probe else None)
    return finish_failure(name, request, deps, reason, detail, action="probe")


def record_failure(name: str, request: RegisterRequest, deps: RegisterDeps) -> RegisterResult:
    """A failure the state machine caught (its retries ran out): record it from the error's name and
    cause. ``EndpointClaimed`` is audited only: the execution that held the claim records the outcome."""
    error = request.error or {}
    error_name = str(error.get("Error") or "Unknown")
    detail = error_name
    try:
        cause = json.loads(error.get("Cause") or "{}")
        message = cause.get("errorMessage") if isinstance(cause, dict) else None
        if message:
            detail = f"{error_name}: {message}"
    except ValueError:
        pass
    if error_name == EndpointClaimed.__name__:
        # Another execution held the name's claim all along: that one records the outcome. Audit only.
        reason = reason_for_error_name(error_name)
        detail = f"{detail[:300]}; another execution was registering this endpoint: its record says how"
        event = audit_event(request, name, action="failure", outcome="failed", reason=reason, detail=detail)
        commit(deps, name, None, None, event)
        return task_result(request, name=name, outcome="failed", reason=reason, detail=detail)
    return finish_failure(name, request, deps, reason_for_error_name(error_name), detail[:500])


def finish_failure(
    name: str,
    request: RegisterRequest,
    deps: RegisterDeps,
    reason: str,
    detail: str | None,
    *,
    action: str = "failure",
    stored: Stored | None = None,
) -> RegisterResult:
    """Record a failure (the record keeps its webhook id; see the module docstring) and return it."""
    stored = stored or deps.store.read(name)
    existing = stored.record
    record = with_probe(base_record(name, stored), request.probe)
    record = record.model_copy(update=last_fields(request, "failed", reason, failed=not record.webhook_id))
    if not record.spec:
        record = record.model_copy(update={"spec": _public_spec(request.endpoint)})
    if record.create_maybe_applied:
        detail = f"{detail}; {MAYBE_APPLIED_NOTE}" if detail else MAYBE_APPLIED_NOTE
    event = audit_event(
        request,
        name,
        action=action,
        outcome="failed",
        reason=reason,
        detail=detail[:1000] if detail else None,
        webhook_id=record.webhook_id,
        success_rate=record.success_rate,
    )
    commit(deps, name, existing, record, event)
    return task_result(
        request,
        name=name,
        outcome="failed",
        reason=reason,
        detail=detail,
        webhook_id=record.webhook_id,
        create_maybe_applied=record.create_maybe_applied,
    )


def _public_spec(raw: dict[str, Any]) -> dict[str, Any]:
    try:
        return parse_endpoint(raw).public_view()
    except InvalidSpec:
        return {"name": raw.get("name")}


def rejection_detail(exc: CognigyRejected) -> str:
    """What Cognigy refused, field by field when it named them."""
    if exc.field_errors:
        parts = [
            f"{e.get('field') or e.get('loc') or '?'}: {e.get('message') or e.get('msg') or ''}"
            for e in exc.field_errors
        ]
        return "; ".join(parts)[:500]
    return str(exc)[:500]
