"""The reconcile steps' logic: plan a desired set, register one endpoint, summarize.

``register`` compares the desired spec with the record (spec hash) and creates, updates, leaves alone
or deletes the endpoint in Cognigy, then writes the record and its audit event in one transaction.
It never creates a duplicate: before any create it looks the name up in Cognigy, so a retried or
re-run execution adopts what a lost response created. Transient failures are raised for the state
machine to retry; throttling is raised with the seconds to wait; rejections are results.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import Field, ValidationError

from cognigy_webhooks.errors import (
    CognigyAuthError,
    CognigyForbidden,
    CognigyNotFound,
    CognigyRejected,
    CognigyThrottled,
    CognigyWebhooksError,
    InvalidSpec,
)
from cognigy_webhooks.loopguard import inject_loop_prevention_headers
from cognigy_webhooks.models import (
    EndpointProbeReport,
    WebhookEndpoint,
    _Model,
    parse_endpoint,
)
from cognigy_webhooks.observability import logger
from cognigy_webhooks.records import AuditEvent, EndpointRecord, Outcome, ProbeSummary, utcnow
from cognigy_webhooks.secrets import plain_secret_fields, reference_target

Action = Literal["apply", "delete", "probe_failed", "fail"]
DEFAULT_THROTTLE_WAIT = 5


# --- plan ------------------------------------------------------------------------------------------


class PlanItem(_Model):
    action: Literal["apply", "delete"]
    endpoint: dict[str, Any]


class Plan(_Model):
    items: list[PlanItem] = Field(default_factory=list)
    invalid: list[dict[str, Any]] = Field(default_factory=list)
    execution_id: str | None = None
    source: str = "cli"
    prune: bool = False


def plan(
    execution_input: dict[str, Any],
    *,
    recorded_names: Callable[[], list[str]],
    load_desired: Callable[[dict[str, Any]], dict[str, Any]],
    execution_id: str | None = None,
) -> Plan:
    """Validate each desired endpoint on its own (one bad spec never stops the others), refuse plain
    secrets (they must be stored in Secrets Manager before an execution starts), list deletions."""
    if not isinstance(execution_input, dict):
        raise InvalidSpec([{"field": "input", "message": "must be an object"}])
    source = str(execution_input.get("source") or "cli")
    prune = execution_input.get("prune", False)
    if not isinstance(prune, bool):
        raise InvalidSpec([{"field": "prune", "message": "must be true or false"}])
    if "desiredRef" in execution_input:
        ref = execution_input["desiredRef"]
        if not isinstance(ref, dict) or not ref.get("key"):
            raise InvalidSpec(
                [{"field": "desiredRef", "message": "must name a key (and optionally versionId)"}]
            )
        desired = load_desired(ref)
    elif "desired" in execution_input:
        desired = execution_input["desired"]
    else:
        raise InvalidSpec([{"field": "desired", "message": "give desired (inline) or desiredRef"}])
    raw_endpoints = desired.get("endpoints") if isinstance(desired, dict) else None
    if not isinstance(raw_endpoints, list):
        raise InvalidSpec([{"field": "desired.endpoints", "message": "must be a list"}])

    result = Plan(execution_id=execution_id, source=source, prune=prune)
    seen: set[str] = set()
    for index, raw in enumerate(raw_endpoints):
        label = raw.get("name") if isinstance(raw, dict) and isinstance(raw.get("name"), str) else f"#{index}"
        try:
            if isinstance(raw, dict) and (plain := _plain_secret_field(raw)):
                raise InvalidSpec(
                    [{"field": plain, "message": "store secrets in Secrets Manager and pass their ARN"}]
                )
            spec = parse_endpoint(raw)
        except InvalidSpec as exc:
            result.invalid.append(
                {"name": label, "outcome": "failed", "reason": "invalid_spec", "detail": str(exc)[:500]}
            )
            continue
        if spec.name in seen:
            result.invalid.append(
                {
                    "name": spec.name,
                    "outcome": "failed",
                    "reason": "invalid_spec",
                    "detail": "name declared twice",
                }
            )
            continue
        seen.add(spec.name)
        result.items.append(PlanItem(action="apply", endpoint=spec_to_state(spec)))
    if prune:
        invalid_names = {i["name"] for i in result.invalid}
        for name in recorded_names():
            if name not in seen and name not in invalid_names:
                result.items.append(PlanItem(action="delete", endpoint={"name": name}))
    return result


def _plain_secret_field(raw: dict[str, Any]) -> str | None:
    """The first field of a raw spec that holds a secret in clear (execution state must not)."""
    found = plain_secret_fields(raw)
    return found[0] if found else None


def spec_to_state(spec: WebhookEndpoint) -> dict[str, Any]:
    """The spec as execution state may carry it: no secret values (ARNs only)."""
    return spec.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"signature_secret"})


# --- register ----------------------------------------------------------------------------------------


class RegisterRequest(_Model):
    action: Action
    endpoint: dict[str, Any]
    probe: EndpointProbeReport | None = None
    error: dict[str, Any] | None = None
    execution_id: str | None = None
    source: str | None = None


class RegisterResult(_Model):
    name: str
    outcome: Outcome
    reason: str | None = None
    detail: str | None = None
    webhook_id: str | None = None
    tls_version: str | None = None
    latency_ms: float | None = None
    status_code: int | None = None


class CognigyApi(Protocol):
    """What register needs from :class:`cognigy_webhooks.cognigy.CognigyClient`."""

    async def create_webhook(
        self, endpoint: WebhookEndpoint, *, signature_secret: str | None = None
    ) -> Any: ...
    async def update_webhook(
        self, webhook_id: str, endpoint: WebhookEndpoint, *, signature_secret: str | None = None
    ) -> Any: ...
    async def delete_webhook(self, webhook_id: str) -> bool: ...
    async def find_by_name(self, name: str) -> Any: ...


class RecordStore(Protocol):
    def get_record(self, name: str) -> EndpointRecord | None: ...
    def commit(
        self, *, name: str, record: EndpointRecord | None, audit: AuditEvent, expected_version: int | None
    ) -> None: ...


class Limiter(Protocol):
    async def acquire(self, n: int = 1) -> None: ...


@dataclass
class RegisterDeps:
    store: RecordStore
    cognigy: CognigyApi
    limiter: Limiter
    resolve_secret: Callable[[str], str]
    retention_days: int = 400
    clock: Callable[[], float] = time.perf_counter


async def with_rotated_key(
    read_key: Callable[[bool], str], run: Callable[[str], Awaitable[RegisterResult]]
) -> RegisterResult:
    """Run with the (possibly cached) Cognigy API key; on a 401, re-read it once past the cache and run
    again only when it changed (a rotation the cache had not seen). The same key refused is final."""
    key = read_key(False)
    try:
        return await run(key)
    except CognigyAuthError:
        fresh = read_key(True)
        if fresh == key:
            raise
        return await run(fresh)


def limiter_bucket(api_key: str) -> str:
    """The shared rate-limit bucket of one Cognigy API key (a fingerprint, never the key)."""
    return "cognigy:" + hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:16]


def parse_register_request(event: Any) -> RegisterRequest:
    try:
        return RegisterRequest.model_validate(event)
    except ValidationError as exc:
        raise InvalidSpec.from_validation_error(exc) from None


def throttled_for_state_machine(exc: CognigyThrottled) -> CognigyThrottled:
    """Re-state a throttle so the ASL can read the wait: errorMessage is JSON with whole seconds."""
    seconds = DEFAULT_THROTTLE_WAIT if exc.retry_after is None else max(1, math.ceil(exc.retry_after))
    return CognigyThrottled(
        json.dumps({"retryAfterSeconds": seconds, "message": str(exc)}), retry_after=float(seconds)
    )


async def register(request: RegisterRequest, deps: RegisterDeps) -> RegisterResult:
    name = str(request.endpoint.get("name", ""))
    if not name:
        raise InvalidSpec([{"field": "endpoint.name", "message": "is required"}])
    if request.action == "apply":
        return await _apply(request, deps)
    if request.action == "delete":
        return await _delete(name, request, deps)
    if request.action == "probe_failed":
        return _record_probe_failure(name, request, deps)
    return _record_failure(name, request, deps)


def _event(request: RegisterRequest, name: str, **fields: Any) -> AuditEvent:
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


def _with_probe(record: EndpointRecord, probe: EndpointProbeReport | None) -> EndpointRecord:
    if probe is None:
        return record
    return record.model_copy(
        update={
            "last_probe": ProbeSummary.from_report(probe),
            "probe_count": record.probe_count + 1,
            "probe_successes": record.probe_successes + (1 if probe.passed else 0),
        }
    )


async def _apply(request: RegisterRequest, deps: RegisterDeps) -> RegisterResult:
    try:
        spec = parse_endpoint(request.endpoint)
    except InvalidSpec as exc:
        return _finish_failure(request.endpoint.get("name", "?"), request, deps, "invalid_spec", str(exc))
    name = spec.name
    # What Cognigy is told: secrets resolved (signature secret, secret header values, Basic auth). The
    # hash covers the resolved values, so a rotation behind the same ARN is drift too.
    secret = deps.resolve_secret(spec.signature_secret_arn) if spec.signature_secret_arn else None
    for_cognigy = resolve_for_cognigy(spec, deps.resolve_secret)
    desired_hash = for_cognigy.spec_hash(resolved_secret=secret)
    existing = deps.store.get_record(name)
    base = existing or EndpointRecord(name=name)
    record = _with_probe(base, request.probe)
    status = "registered" if spec.is_active else "inactive"

    if existing and existing.webhook_id and existing.spec_hash == desired_hash and existing.status == status:
        outcome: Outcome = "unchanged"
        action, webhook_id, status_code, cognigy_ms = "unchanged", existing.webhook_id, None, None
    else:
        api = deps.cognigy
        started = deps.clock()
        try:
            if existing and existing.webhook_id:
                await deps.limiter.acquire(1)
                try:
                    remote = await api.update_webhook(
                        existing.webhook_id, for_cognigy, signature_secret=secret
                    )
                    outcome, status_code = "updated", 200
                except CognigyNotFound:  # deleted behind our back: create it again (after a look-up)
                    remote, outcome, status_code = await _create_once(api, for_cognigy, secret, deps)
            else:
                remote, outcome, status_code = await _create_once(api, for_cognigy, secret, deps)
        except CognigyThrottled as exc:
            raise throttled_for_state_machine(exc) from None
        except (CognigyAuthError, CognigyForbidden) as exc:
            # audit only: the record stays as it was (record=None with the existing version would
            # DELETE it, losing the webhook id of an endpoint Cognigy still holds)
            _commit(
                deps,
                name,
                None,
                None,
                _event(
                    request,
                    name,
                    action="failure",
                    outcome="failed",
                    reason=_reason(exc),
                    detail=str(exc),
                    status_code=exc.status_code,
                ),
            )
            raise
        except CognigyRejected as exc:
            detail = _rejection_detail(exc)
            failed = record.model_copy(
                update=_last(request, "failed", _reason(exc), failed=not record.webhook_id)
            )
            _commit(
                deps,
                name,
                existing,
                failed.model_copy(update={"spec": spec.public_view()}),
                _event(
                    request,
                    name,
                    action="failure",
                    outcome="failed",
                    reason=_reason(exc),
                    detail=detail,
                    status_code=exc.status_code,
                    webhook_id=record.webhook_id,
                ),
            )
            return _result(
                request,
                name=name,
                outcome="failed",
                reason=_reason(exc),
                detail=detail,
                webhook_id=record.webhook_id,
                status_code=exc.status_code,
            )
        cognigy_ms = round((deps.clock() - started) * 1000, 2)
        webhook_id = str(remote.id)
        action = "register" if outcome == "created" else ("deactivate" if not spec.is_active else "update")

    new_record = record.model_copy(
        update={
            "webhook_id": webhook_id,
            "spec_hash": desired_hash,
            "spec": spec.public_view(),
            "status": status,
            **_last(request, outcome, None),
        }
    )
    event = _event(
        request,
        name,
        action=action,
        outcome=outcome,
        webhook_id=webhook_id,
        status_code=status_code,
        cognigy_latency_ms=cognigy_ms,
        success_rate=new_record.success_rate,
    )
    _commit(deps, name, existing, new_record, event)
    return _result(
        request,
        name=name,
        outcome=outcome,
        webhook_id=webhook_id,
        status_code=status_code,
        detail="; ".join(request.probe.warnings) if request.probe and request.probe.warnings else None,
    )


def _result(request: RegisterRequest, **fields: Any) -> RegisterResult:
    """The task's result, with the probe's TLS version and latency when there was a probe."""
    probe = request.probe.primary if request.probe else None
    if probe is not None:
        fields.setdefault("tls_version", probe.tls_version)
        fields.setdefault("latency_ms", probe.timings_ms.total)
    return RegisterResult(**fields)


def resolve_for_cognigy(spec: WebhookEndpoint, resolve: Callable[[str], str]) -> WebhookEndpoint:
    """The spec as Cognigy is told it: the loop-prevention headers added (deterministic, so the
    hash stays put), header secret references resolved and Basic auth turned into the
    ``Authorization`` header Cognigy sends with each delivery. Never stored, never logged."""
    spec = inject_loop_prevention_headers(spec)
    headers = {}
    for key, value in spec.headers.items():
        target = reference_target(value)
        headers[key] = resolve(target) if target is not None else value
    if spec.basic_auth is not None:
        auth = spec.basic_auth
        password = (
            auth.password.get_secret_value() if auth.password is not None else resolve(str(auth.password_arn))
        )
        token = base64.b64encode(f"{auth.username}:{password}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
    if headers == spec.headers:
        return spec
    return spec.model_copy(update={"headers": headers})


async def _create_once(
    api: CognigyApi, spec: WebhookEndpoint, secret: str | None, deps: RegisterDeps
) -> tuple[Any, Outcome, int]:
    """Look the name up first (adopting what a lost response created), then create. One limiter write
    covers both calls."""
    await deps.limiter.acquire(2)
    found = await api.find_by_name(spec.name)
    if found is not None:
        logger.info(
            "adopting existing Cognigy webhook", extra={"endpoint": spec.name, "webhook_id": found.id}
        )
        remote = await api.update_webhook(str(found.id), spec, signature_secret=secret)
        return remote, "created", 200
    return await api.create_webhook(spec, signature_secret=secret), "created", 201


async def _delete(name: str, request: RegisterRequest, deps: RegisterDeps) -> RegisterResult:
    existing = deps.store.get_record(name)
    webhook_id = existing.webhook_id if existing else None
    status_code = None
    if webhook_id:
        api = deps.cognigy
        await deps.limiter.acquire(1)
        try:
            gone = await api.delete_webhook(webhook_id)
        except CognigyThrottled as exc:
            raise throttled_for_state_machine(exc) from None
        except CognigyRejected as exc:
            return _finish_failure(
                name, request, deps, _reason(exc), _rejection_detail(exc), existing=existing
            )
        status_code = 204 if gone else 404
    event = _event(
        request,
        name,
        action="delete",
        outcome="deleted",
        webhook_id=webhook_id,
        status_code=status_code,
        endpoint_url=(existing.spec.get("url") if existing else None),
    )
    _commit(deps, name, existing, None, event)
    return RegisterResult(name=name, outcome="deleted", webhook_id=webhook_id, status_code=status_code)


def _record_probe_failure(name: str, request: RegisterRequest, deps: RegisterDeps) -> RegisterResult:
    probe = request.probe
    reason = f"probe_{probe.reason.value}" if probe else "probe_failed"
    detail = (probe.primary.detail if probe else None) or (probe.reason.value if probe else None)
    return _finish_failure(name, request, deps, reason, detail, action="probe")


def _record_failure(name: str, request: RegisterRequest, deps: RegisterDeps) -> RegisterResult:
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
    return _finish_failure(name, request, deps, _snake(error_name), detail[:500])


def _finish_failure(
    name: str,
    request: RegisterRequest,
    deps: RegisterDeps,
    reason: str,
    detail: str | None,
    *,
    action: str = "failure",
    existing: EndpointRecord | None = None,
) -> RegisterResult:
    existing = existing or deps.store.get_record(name)
    record = _with_probe(existing or EndpointRecord(name=name), request.probe)
    record = record.model_copy(update=_last(request, "failed", reason, failed=not record.webhook_id))
    if not record.spec:
        record = record.model_copy(update={"spec": _public_spec(request.endpoint)})
    event = _event(
        request,
        name,
        action=action,
        outcome="failed",
        reason=reason,
        detail=detail,
        webhook_id=record.webhook_id,
        success_rate=record.success_rate,
    )
    _commit(deps, name, existing, record, event)
    return _result(
        request, name=name, outcome="failed", reason=reason, detail=detail, webhook_id=record.webhook_id
    )


def _public_spec(raw: dict[str, Any]) -> dict[str, Any]:
    try:
        return parse_endpoint(raw).public_view()
    except InvalidSpec:
        return {"name": raw.get("name")}


def _last(
    request: RegisterRequest, outcome: Outcome, reason: str | None, *, failed: bool = False
) -> dict[str, Any]:
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


def _commit(
    deps: RegisterDeps,
    name: str,
    existing: EndpointRecord | None,
    record: EndpointRecord | None,
    event: AuditEvent,
) -> None:
    if record is not None:
        record = record.model_copy(update={"version": (existing.version + 1) if existing else 1})
    deps.store.commit(
        name=name,
        record=record,
        audit=event.with_retention(deps.retention_days),
        expected_version=existing.version if existing else None,
    )


def _reason(exc: CognigyWebhooksError) -> str:
    return {
        "CognigyAuthError": "cognigy_auth",
        "CognigyForbidden": "cognigy_forbidden",
        "CognigyNotFound": "cognigy_not_found",
        "CognigyRejected": "cognigy_rejected",
    }.get(type(exc).__name__, _snake(type(exc).__name__))


def _rejection_detail(exc: CognigyRejected) -> str:
    if exc.field_errors:
        parts = [
            f"{e.get('field') or e.get('loc') or '?'}: {e.get('message') or e.get('msg') or ''}"
            for e in exc.field_errors
        ]
        return "; ".join(parts)[:500]
    return str(exc)[:500]


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name.replace(".", "_")):
        if ch.isupper() and i and name[i - 1].islower():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


# --- summarize -----------------------------------------------------------------------------------------


class Summary(_Model):
    execution_id: str | None = None
    source: str | None = None
    created: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    deleted: list[str] = Field(default_factory=list)
    failed: list[dict[str, Any]] = Field(default_factory=list)
    results: list[RegisterResult] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)


def summarize(
    results: list[dict[str, Any]],
    invalid: list[dict[str, Any]],
    *,
    execution_id: str | None,
    source: str | None,
) -> Summary:
    summary = Summary(execution_id=execution_id, source=source)
    for raw in [*results, *invalid]:
        try:
            result = RegisterResult.model_validate(raw)
        except ValidationError:
            result = RegisterResult(
                name=str((raw or {}).get("name", "?")), outcome="failed", reason="bad_result"
            )
        summary.results.append(result)
        if result.outcome == "failed":
            summary.failed.append({"name": result.name, "reason": result.reason, "detail": result.detail})
        else:
            getattr(summary, result.outcome).append(result.name)
    summary.counts = {
        k: len(getattr(summary, k)) for k in ("created", "updated", "unchanged", "deleted", "failed")
    }
    return summary
