"""The reconcile steps' logic: plan a desired set, register one endpoint, summarize.

``plan`` validates the desired set and, when something of it is recorded, lists Cognigy ONCE for the
whole execution (all pages, through the shared rate limiter): each item carries the webhook ids its
name holds there (:class:`CognigyHeld`; a failed listing only leaves them out).

``register`` compares the desired spec with the record (spec hash) and creates, updates, leaves alone
or deletes the endpoint in Cognigy, then writes the record and its audit event in one transaction.
One webhook per name, under concurrency too:

- Before anything is created, the name is *settled* under its create claim (one conditional write on
  the record's item, see :mod:`cognigy_webhooks.store`): look the name up, keep the recorded webhook
  or adopt one (a lost create's, a racing execution's), create only when Cognigy holds none, remove
  the other webhooks that carry our marks (each audited as ``orphan_removed``) and report the ones
  that do not (left alone). A 409 to the create is looked up again and adopted. Another execution
  holding the claim makes this one raise :class:`~cognigy_webhooks.errors.EndpointClaimed`
  (retried; the retry finds that execution's record). The commit of the outcome clears the claim;
  every failure releases it; a holder that died leaves it to its lease.
- A recorded endpoint is settled the same way when the plan's listing saw duplicates under its
  name or no longer saw its webhook (drift), when an update meets a 404, and when a create of ours
  may have been applied unrecorded; otherwise a re-apply makes no Cognigy call for it.
- A create that may have been applied (its answer lost) marks the item ``createMaybeApplied``; if the
  retries run out, the failure record keeps the mark and the outcome says the webhook may exist and
  that the next apply adopts it (it looks the name up first: never a blind second create).

Transient failures are raised for the state machine to retry; throttling is raised with the seconds
to wait (Retry-After plus a whole-second jitter); rejections are results.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import Field, ValidationError

from cognigy_webhooks.errors import (
    CognigyAuthError,
    CognigyForbidden,
    CognigyNotFound,
    CognigyRejected,
    CognigyThrottled,
    CognigyUnavailable,
    CognigyWebhooksError,
    EndpointClaimed,
    InvalidSpec,
)
from cognigy_webhooks.loopguard import with_loop_marks
from cognigy_webhooks.models import (
    EndpointProbeReport,
    WebhookEndpoint,
    _Model,
    parse_endpoint,
)
from cognigy_webhooks.models.records import AuditEvent, EndpointRecord, Outcome, ProbeSummary, utcnow
from cognigy_webhooks.observability import logger
from cognigy_webhooks.secrets import plain_secret_fields, reference_target
from cognigy_webhooks.webhook_names import describe_left, is_ours, sort_out

Action = Literal["apply", "delete", "probe_failed", "fail"]
DEFAULT_THROTTLE_WAIT = 5
# How long a create claim holds: longer than the register function's Timeout (60 s in template.yaml),
# so a holder still running never loses it; one that died frees it this long after it claimed.
CREATE_CLAIM_LEASE_SECONDS = 90.0


# --- plan ------------------------------------------------------------------------------------------


class CognigyHeld(_Model):
    """What the plan's one listing of Cognigy saw under an item's name. ``listed`` False: there was
    no listing (nothing of the plan was recorded yet, or the listing failed): register then acts on
    its record alone, as before."""

    listed: bool = False
    ids: list[str] = Field(default_factory=list)


class PlanItem(_Model):
    action: Literal["apply", "delete"]
    endpoint: dict[str, Any]
    cognigy: CognigyHeld = Field(default_factory=CognigyHeld)


class Plan(_Model):
    items: list[PlanItem] = Field(default_factory=list)
    invalid: list[dict[str, Any]] = Field(default_factory=list)
    execution_id: str | None = None
    source: str = "cli"
    prune: bool = False
    listing: str = "not needed"  # the one Cognigy listing: "complete", "not needed" or why it failed


Inventory = Callable[[list[str]], Mapping[str, list[str]]]


def plan(
    execution_input: dict[str, Any],
    *,
    recorded_names: Callable[[], list[str]],
    load_desired: Callable[[dict[str, Any]], dict[str, Any]],
    execution_id: str | None = None,
    inventory: Inventory | None = None,
) -> Plan:
    """Validate each desired endpoint on its own (one bad spec never stops the others), refuse plain
    secrets (they must be stored in Secrets Manager before an execution starts), list deletions.

    ``inventory(names)`` lists Cognigy once (all pages) and gives the webhook ids each name holds;
    it is called only when some name of the plan is recorded (a first apply needs no listing: every
    create looks its name up under the name's claim anyway). Each item then carries what Cognigy
    holds under its name (:class:`CognigyHeld`), so register looks a name up only when it holds
    duplicates or lacks the recorded id. A failed listing never stops the plan: the items go
    without (``listed`` False) and ``listing`` says why."""
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
    recorded = recorded_names() if prune or inventory is not None else []
    if prune:
        invalid_names = {i["name"] for i in result.invalid}
        for name in recorded:
            if name not in seen and name not in invalid_names:
                result.items.append(PlanItem(action="delete", endpoint={"name": name}))
    names = [str(item.endpoint["name"]) for item in result.items]
    if inventory is not None and set(names) & set(recorded):
        try:
            held = inventory(names)
        except (CognigyWebhooksError, TimeoutError) as exc:
            result.listing = f"failed ({type(exc).__name__}): orphans and drift are not looked for"
            logger.warning("listing Cognigy failed", extra={"error": type(exc).__name__})
        else:
            result.listing = "complete"
            for item in result.items:
                ids = list(held.get(str(item.endpoint["name"]), []))
                item.cognigy = CognigyHeld(listed=True, ids=ids)
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


class CognigyApi(Protocol):
    """What register needs from :class:`cognigy_webhooks.cognigy.CognigyClient`."""

    async def create_webhook(
        self, endpoint: WebhookEndpoint, *, signature_secret: str | None = None
    ) -> Any: ...
    async def update_webhook(
        self, webhook_id: str, endpoint: WebhookEndpoint, *, signature_secret: str | None = None
    ) -> Any: ...
    async def delete_webhook(self, webhook_id: str) -> bool: ...
    async def list_webhooks(self, name: str | None = None) -> list[Any]: ...


class Stored(Protocol):
    """What the store says about a name (:class:`cognigy_webhooks.store.StoredEndpoint`)."""

    @property
    def record(self) -> EndpointRecord | None: ...
    @property
    def create_maybe_applied(self) -> bool: ...


class RecordStore(Protocol):
    """The records, the audit log and the create claim (:class:`cognigy_webhooks.store.Store`)."""

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


def throttle_jitter_bound(seconds: int) -> int:
    """The most whole seconds of jitter added to a wait of ``seconds``: a fifth of it, 1 to 30."""
    return max(1, min(30, math.ceil(seconds / 5)))


def throttled_for_state_machine(exc: CognigyThrottled, rng: random.Random | None = None) -> CognigyThrottled:
    """Re-state a throttle so the ASL can read the wait: errorMessage is JSON with whole seconds,
    ``retryAfterSeconds`` (what Cognigy or the shared limiter asked for, rounded up; 5 when it gave
    nothing usable) and ``waitSeconds``, what the Wait state waits: that plus a whole-second jitter
    from 0 to :func:`throttle_jitter_bound`, so Map workers throttled together do not all come back
    in the same second. ``rng`` is injectable (tests); the default is a process-wide one."""
    seconds = DEFAULT_THROTTLE_WAIT if exc.retry_after is None else max(1, math.ceil(exc.retry_after))
    wait = seconds + (rng or _JITTER).randint(0, throttle_jitter_bound(seconds))
    return CognigyThrottled(
        json.dumps({"retryAfterSeconds": seconds, "waitSeconds": wait, "message": str(exc)}),
        retry_after=float(wait),
    )


_JITTER = random.Random()


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


@dataclass
class _Settled:
    """What Cognigy holds for an endpoint after register acted on it."""

    webhook_id: str
    outcome: Outcome
    status_code: int | None
    notes: list[str]
    claim_token: str | None = None  # the create claim, still held until the record is committed
    created: bool = False  # a webhook was created (it exists in Cognigy before the record says so)


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
    stored = deps.store.read(name)
    existing = stored.record
    record = _with_probe(_base_record(name, stored), request.probe)
    status = "registered" if spec.is_active else "inactive"
    recorded_id = existing.webhook_id if existing else None
    same = bool(existing and existing.spec_hash == desired_hash and existing.status == status)
    held = request.cognigy if request.cognigy is not None and request.cognigy.listed else None
    # Look the name up (under its claim) before anything is created, and whenever the plan's listing
    # saw duplicates or no longer saw the recorded webhook; else act on the record alone.
    settle = (
        recorded_id is None
        or stored.create_maybe_applied
        or (held is not None and (recorded_id not in held.ids or len(held.ids) > 1))
    )

    api = deps.cognigy
    started = deps.clock()
    cognigy_ms: float | None = None
    try:
        if not settle and same:
            done = _Settled(str(recorded_id), "unchanged", None, [])
        else:
            if not settle:
                await deps.limiter.acquire(1)
                try:
                    remote = await api.update_webhook(str(recorded_id), for_cognigy, signature_secret=secret)
                    done = _Settled(str(remote.id), "updated", 200, [])
                except CognigyNotFound:  # deleted behind our back: settle the name (look-up first)
                    settle = True
            if settle:
                done = await _settle(
                    name,
                    for_cognigy,
                    secret,
                    recorded_id=recorded_id,
                    same=same,
                    stored=stored,
                    request=request,
                    deps=deps,
                )
            cognigy_ms = round((deps.clock() - started) * 1000, 2)
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
            create_maybe_applied=record.create_maybe_applied,
        )

    outcome = done.outcome
    action = {"created": "register", "unchanged": "unchanged"}.get(
        outcome, "deactivate" if not spec.is_active else "update"
    )
    new_record = record.model_copy(
        update={
            "webhook_id": done.webhook_id,
            "spec_hash": desired_hash,
            "spec": spec.public_view(),
            "status": status,
            "create_maybe_applied": None,  # the webhook is recorded now
            **_last(request, outcome, None),
        }
    )
    warnings = list(request.probe.warnings) if request.probe and request.probe.warnings else []
    note = "; ".join([*done.notes, *warnings]) or None
    event = _event(
        request,
        name,
        action=action,
        outcome=outcome,
        webhook_id=done.webhook_id,
        status_code=done.status_code,
        cognigy_latency_ms=cognigy_ms,
        success_rate=new_record.success_rate,
        detail=note[:500] if note and done.notes else None,
    )
    try:
        _commit(deps, name, existing, new_record, event, claim_token=done.claim_token)
    except BaseException:
        if done.claim_token is not None:
            _release(deps, name, done.claim_token, maybe_applied=done.created, stored=stored)
        raise
    return _result(
        request,
        name=name,
        outcome=outcome,
        webhook_id=done.webhook_id,
        status_code=done.status_code,
        detail=note,
    )


def _base_record(name: str, stored: Stored) -> EndpointRecord:
    """The record to build on: the stored one, or a new one; marked when a create of ours may have
    been applied without being recorded (the mark may sit on an item that holds no record yet)."""
    record = stored.record or EndpointRecord(name=name)
    if stored.create_maybe_applied and not record.create_maybe_applied:
        record = record.model_copy(update={"create_maybe_applied": True})
    return record


async def _settle(
    name: str,
    spec: WebhookEndpoint,
    secret: str | None,
    *,
    recorded_id: str | None,
    same: bool,
    stored: Stored,
    request: RegisterRequest,
    deps: RegisterDeps,
) -> _Settled:
    """Make Cognigy hold exactly one webhook of ours under ``name``, under the name's create claim:
    look the name up, keep the recorded webhook (or adopt one), create only when there is none, then
    remove our orphans (each audited) and report the same-named webhooks we cannot attribute. Returns
    with the claim still held: the caller's commit clears it. Any failure releases it (marking the
    item when a create may have been applied)."""
    api = deps.cognigy
    token = uuid.uuid4().hex
    existing = stored.record
    deps.store.claim(
        name,
        token=token,
        expected_version=existing.version if existing else None,
        lease_seconds=CREATE_CLAIM_LEASE_SECONDS,
    )
    sent_create = created = False
    outcome: Outcome
    try:
        await deps.limiter.acquire(2)  # the look-up and the create or update after it
        found = sort_out(await api.list_webhooks(name), name, recorded_id)
        notes: list[str] = []
        if found.keep is None:
            sent_create = True
            try:
                remote = await api.create_webhook(spec, signature_secret=secret)
                created = True
                webhook_id, outcome, status_code = str(remote.id), "created", 201
            except CognigyRejected as exc:
                if exc.status_code != 409:
                    raise
                # The name is taken after all: a create of ours whose answer was lost and that the
                # look-up did not show yet. Look again and adopt it; never create a second.
                await deps.limiter.acquire(2)
                found = sort_out(await api.list_webhooks(name), name, recorded_id)
                if found.keep is None:
                    raise
                remote = await api.update_webhook(str(found.keep.id), spec, signature_secret=secret)
                webhook_id, outcome, status_code = str(remote.id), "created", 200
                notes.append("adopted the webhook holding the name (Cognigy answered 409 to the create)")
        elif str(found.keep.id) == recorded_id and same:
            webhook_id, outcome, status_code = str(recorded_id), "unchanged", None
        else:
            remote = await api.update_webhook(str(found.keep.id), spec, signature_secret=secret)
            webhook_id, status_code = str(remote.id), 200
            outcome = "updated" if webhook_id == recorded_id else "created"
            if outcome == "created":
                logger.info(
                    "adopting existing Cognigy webhook", extra={"endpoint": name, "webhook_id": webhook_id}
                )
                if stored.create_maybe_applied:
                    notes.append("adopted the webhook an earlier create, whose answer was lost, had made")
        removed = []
        for orphan in found.orphans:
            await deps.limiter.acquire(1)
            gone = await api.delete_webhook(str(orphan.id))
            removed.append(str(orphan.id))
            _commit(
                deps,
                name,
                None,
                None,
                _event(
                    request,
                    name,
                    action="orphan_removed",
                    outcome="deleted",
                    webhook_id=str(orphan.id),
                    status_code=204 if gone else 404,
                    detail=f"a second webhook named {name!r} with this stack's marks; kept {webhook_id}",
                ),
            )
        if removed:
            notes.append(
                f"removed {len(removed)} orphan webhook(s) of this stack named {name!r} "
                f"(ids {', '.join(removed[:10])}); kept {webhook_id}"
            )
        if left := describe_left(name, found.foreign):
            notes.append(left)
        return _Settled(webhook_id, outcome, status_code, notes, claim_token=token, created=created)
    except BaseException as exc:
        maybe = created or (
            sent_create
            and not isinstance(exc, CognigyThrottled | CognigyRejected | CognigyAuthError | CognigyForbidden)
            and not (isinstance(exc, CognigyUnavailable) and not exc.maybe_applied)
        )
        _release(deps, name, token, maybe_applied=maybe, stored=stored)
        raise


def _release(deps: RegisterDeps, name: str, token: str, *, maybe_applied: bool, stored: Stored) -> None:
    """Give the create claim back after a failure; when that fails too, its lease frees it."""
    try:
        deps.store.release(
            name,
            token=token,
            create_maybe_applied=maybe_applied,
            drop_item=stored.record is None and not stored.create_maybe_applied,
        )
    except CognigyWebhooksError as exc:
        logger.warning(
            "the create claim could not be released; its lease frees it",
            extra={"endpoint": name, "error": type(exc).__name__},
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
    spec = with_loop_marks(spec)
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


async def _delete(name: str, request: RegisterRequest, deps: RegisterDeps) -> RegisterResult:
    """Delete the recorded webhook and the record. When the plan's listing saw more under the name
    (or a create of ours may have been applied), the name is looked up under its claim and every
    webhook of ours is removed with it; those we cannot attribute are left and reported."""
    stored = deps.store.read(name)
    existing = stored.record
    webhook_id = existing.webhook_id if existing else None
    held = request.cognigy if request.cognigy is not None and request.cognigy.listed else None
    more = stored.create_maybe_applied or (held is not None and any(i != webhook_id for i in held.ids))
    status_code = None
    token: str | None = None
    notes: list[str] = []
    api = deps.cognigy
    try:
        extra: list[Any] = []
        if more:
            mine = uuid.uuid4().hex
            deps.store.claim(
                name,
                token=mine,
                expected_version=existing.version if existing else None,
                lease_seconds=CREATE_CLAIM_LEASE_SECONDS,
            )
            token = mine  # held from here on: every way out below gives it back
            await deps.limiter.acquire(1)
            found = sort_out(await api.list_webhooks(name), name, webhook_id)
            keep, foreign, extra = found.keep, list(found.foreign), list(found.orphans)
            if keep is not None and str(keep.id) != webhook_id:  # the recorded one is gone
                (extra if is_ours(keep, name) else foreign).insert(0, keep)
            if left := describe_left(name, foreign):
                notes.append(left)
        if webhook_id:
            await deps.limiter.acquire(1)
            gone = await api.delete_webhook(webhook_id)
            status_code = 204 if gone else 404
        for orphan in extra:
            await deps.limiter.acquire(1)
            gone = await api.delete_webhook(str(orphan.id))
            _commit(
                deps,
                name,
                None,
                None,
                _event(
                    request,
                    name,
                    action="orphan_removed",
                    outcome="deleted",
                    webhook_id=str(orphan.id),
                    status_code=204 if gone else 404,
                    detail=f"another webhook named {name!r} with this stack's marks, deleted with it",
                    endpoint_url=(existing.spec.get("url") if existing else None),
                ),
            )
        if extra:
            notes.insert(0, f"removed {len(extra)} orphan webhook(s) of this stack named {name!r} too")
        event = _event(
            request,
            name,
            action="delete",
            outcome="deleted",
            webhook_id=webhook_id,
            status_code=status_code,
            endpoint_url=(existing.spec.get("url") if existing else None),
            detail="; ".join(notes)[:500] or None,
        )
        _commit(deps, name, existing, None, event, claim_token=token if existing else None)
        if token is not None and existing is None:  # nothing was recorded: only the claim to drop
            _release(deps, name, token, maybe_applied=False, stored=stored)
        token = None
    except CognigyThrottled as exc:
        _release_if_held(deps, name, token, stored)
        raise throttled_for_state_machine(exc) from None
    except CognigyRejected as exc:
        _release_if_held(deps, name, token, stored)
        return _finish_failure(name, request, deps, _reason(exc), _rejection_detail(exc), stored=stored)
    except BaseException:
        _release_if_held(deps, name, token, stored)
        raise
    return RegisterResult(
        name=name,
        outcome="deleted",
        webhook_id=webhook_id,
        status_code=status_code,
        detail="; ".join(notes) or None,
    )


def _release_if_held(deps: RegisterDeps, name: str, token: str | None, stored: Stored) -> None:
    if token is not None:
        _release(deps, name, token, maybe_applied=False, stored=stored)


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
    if error_name == EndpointClaimed.__name__:
        # Another execution held the name's claim all along: that one records the outcome. Audit only.
        reason = _snake(error_name)
        detail = f"{detail[:300]}; another execution was registering this endpoint: its record says how"
        event = _event(request, name, action="failure", outcome="failed", reason=reason, detail=detail)
        _commit(deps, name, None, None, event)
        return _result(request, name=name, outcome="failed", reason=reason, detail=detail)
    return _finish_failure(name, request, deps, _snake(error_name), detail[:500])


MAYBE_APPLIED_NOTE = (
    "a create was sent to Cognigy and may have been applied: the webhook may exist there although "
    "this record does not name it yet (its deliveries are refused until then); the next apply looks "
    "the name up and adopts it, never creating a second"
)


def _finish_failure(
    name: str,
    request: RegisterRequest,
    deps: RegisterDeps,
    reason: str,
    detail: str | None,
    *,
    action: str = "failure",
    stored: Stored | None = None,
) -> RegisterResult:
    stored = stored or deps.store.read(name)
    existing = stored.record
    record = _with_probe(_base_record(name, stored), request.probe)
    record = record.model_copy(update=_last(request, "failed", reason, failed=not record.webhook_id))
    if not record.spec:
        record = record.model_copy(update={"spec": _public_spec(request.endpoint)})
    if record.create_maybe_applied:
        detail = f"{detail}; {MAYBE_APPLIED_NOTE}" if detail else MAYBE_APPLIED_NOTE
    event = _event(
        request,
        name,
        action=action,
        outcome="failed",
        reason=reason,
        detail=detail[:1000] if detail else None,
        webhook_id=record.webhook_id,
        success_rate=record.success_rate,
    )
    _commit(deps, name, existing, record, event)
    return _result(
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
    *,
    claim_token: str | None = None,
) -> None:
    if record is not None:
        record = record.model_copy(update={"version": (existing.version + 1) if existing else 1})
    deps.store.commit(
        name=name,
        record=record,
        audit=event.with_retention(deps.retention_days),
        expected_version=existing.version if existing else None,
        claim_token=claim_token,
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
