"""The register step: decide -> call Cognigy -> record, for one endpoint.

``register`` compares the desired spec with the record (spec hash) and creates, updates, leaves alone
or deletes the endpoint in Cognigy, then writes the record and its audit event in one transaction
(:mod:`cognigy_webhooks.reconcile.recording`). One webhook per name, under concurrency too:

- What to call is decided by the one registration engine,
  :class:`~cognigy_webhooks.reconcile.adopt.Placement` in its reconcile mode: before anything is
  created the name is looked up (and a recorded name whenever the plan's listing saw duplicates
  under it or no longer saw its webhook, when an update meets a 404, and when a create of ours may
  have been applied unrecorded); it keeps the recorded webhook or adopts one (a lost create's, a
  racing execution's), creates only when Cognigy holds none, and adopts after a 409 to the create.
  Otherwise a re-apply makes no Cognigy call for it.
- Every look-up happens under the name's create claim (:mod:`cognigy_webhooks.reconcile.claim`):
  another execution holding it makes this one raise
  :class:`~cognigy_webhooks.errors.EndpointClaimed` (retried; the retry finds that execution's
  record). The commit of the outcome clears the claim; every failure releases it. A name the plan's
  complete listing saw free (Endpoints) is created without taking the claim: the commit is
  conditioned on the name being still unclaimed, and a race it lost is settled by this task
  (:mod:`cognigy_webhooks.reconcile.race`), so a first apply writes the record and its audit event
  alone.
- After a look-up, the other webhooks that carry our marks are removed (each audited as
  ``orphan_removed``) and the ones that do not are reported (left alone).
- A create that may have been applied (its answer lost) marks the item ``createMaybeApplied``; if the
  retries run out, the failure record keeps the mark and the outcome says the webhook may exist and
  that the next apply adopts it (it looks the name up first: never a blind second create).

Two dialects, one engine (the API adapter's ``dialect``): for Cognigy.AI's Endpoints
(:mod:`cognigy_webhooks.cognigy.endpoints`) the spec is told as an Endpoint of its project (Basic
auth's password resolved into ``settings``; no marks: Endpoints carry no headers, so what is ours is
what our records name), the plan's complete listing spares the look-up of a name it saw free, an
endpoint whose ``lastChanged`` moved is read and only its drift repaired (audited as
``drift_repaired``, as is one deleted outside the product and made again), and the record keeps the
project, ``lastChanged`` and the ARN of the endpoint's URLToken, which is stored in Secrets Manager
(``deps.store_secret``), never in the record.

Transient failures are raised for the state machine to retry; throttling is raised with the seconds
to wait (:func:`~cognigy_webhooks.reconcile.throttle.throttled_for_state_machine`); a refused API key
is audited and raised; rejections are results.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr

from cognigy_webhooks.cognigy.endpoints import endpoint_hash
from cognigy_webhooks.errors import (
    CognigyAuthError,
    CognigyForbidden,
    CognigyRejected,
    CognigyThrottled,
    InvalidSpec,
    RecordConflict,
)
from cognigy_webhooks.loopguard import with_loop_marks
from cognigy_webhooks.models import WebhookEndpoint, parse_endpoint
from cognigy_webhooks.models.records import EndpointRecord, Outcome
from cognigy_webhooks.models.watch import HealthState, WatchState
from cognigy_webhooks.reconcile.adopt import Known, Placed, Placement, first_step
from cognigy_webhooks.reconcile.claim import NameClaim
from cognigy_webhooks.reconcile.names import describe_left, is_ours, sort_out
from cognigy_webhooks.reconcile.race import mark_maybe_applied, settle_lost_commit
from cognigy_webhooks.reconcile.recording import (
    audit_event,
    base_record,
    commit,
    finish_failure,
    last_fields,
    record_failure,
    record_probe_failure,
    refusal_event,
    rejection_detail,
    task_result,
    with_probe,
)
from cognigy_webhooks.reconcile.task import RegisterDeps, RegisterRequest, RegisterResult, Stored
from cognigy_webhooks.reconcile.throttle import throttled_for_state_machine
from cognigy_webhooks.secrets import reference_target

__all__ = [
    "register",
    "resolve_basic_auth",
    "resolve_for_cognigy",
    "serving_spec",
    "standing_watch",
    "told_to_cognigy",
]


async def register(request: RegisterRequest, deps: RegisterDeps) -> RegisterResult:
    name = str(request.endpoint.get("name", ""))
    if not name:
        raise InvalidSpec([{"field": "endpoint.name", "message": "is required"}])
    if request.action == "apply":
        return await _apply(request, deps)
    if request.action == "delete":
        return await _delete(name, request, deps)
    if request.action == "probe_failed":
        return record_probe_failure(name, request, deps)
    return record_failure(name, request, deps)


def _is_endpoints(api: Any) -> bool:
    return getattr(api, "dialect", "tutorial") == "endpoints"


def _project_of(spec: WebhookEndpoint) -> str | None:
    return spec.cognigy.project_id if spec.cognigy is not None else None


def resolve_basic_auth(spec: WebhookEndpoint, resolve: Callable[[str], str]) -> WebhookEndpoint:
    """The spec as a Cognigy.AI Endpoint is told it: Basic auth's password resolved from its ARN
    (Cognigy sends it with each delivery). Never stored, never logged."""
    auth = spec.basic_auth
    if auth is None or auth.password is not None or auth.password_arn is None:
        return spec
    resolved = auth.model_copy(
        update={"password": SecretStr(resolve(auth.password_arn)), "password_arn": None}
    )
    return spec.model_copy(update={"basic_auth": resolved})


def standing_watch(record: EndpointRecord | None, spec: WebhookEndpoint) -> WatchState | None:
    """The watch's state that still holds for ``spec``: the record's, unless the spec's primary URL
    changed since (a new URL starts with a clean slate: healthy, served at its primary)."""
    if record is None or record.watch is None or record.spec.get("url") != spec.url:
        return None
    return record.watch


def serving_spec(spec: WebhookEndpoint, watch: WatchState | None) -> WebhookEndpoint:
    """``spec`` as the watch has Cognigy serve it: at the fallback it failed over to (the primary
    then becomes the first fallback, for the tutorial's API, which takes fallbacks) and inactive while
    the watch holds it deactivated. The spec itself when the watch changed nothing."""
    if watch is None:
        return spec
    update: dict[str, Any] = {}
    current = watch.current_url
    if current is not None and current != spec.url and current in spec.fallback_urls:
        update["url"] = current
        update["fallback_urls"] = [spec.url, *(u for u in spec.fallback_urls if u != current)]
    if watch.state is HealthState.DEACTIVATED and spec.is_active:
        update["is_active"] = False
    return spec.model_copy(update=update) if update else spec


def told_to_cognigy(
    spec: WebhookEndpoint,
    resolve: Callable[[str], str],
    *,
    endpoints: bool,
    watch: WatchState | None = None,
) -> tuple[WebhookEndpoint, str | None, str]:
    """What Cognigy is told for ``spec`` in its dialect: the spec as the watch has it served
    (:func:`serving_spec`: a failover's URL, a deactivation) with its secrets resolved, the signature
    secret (tutorial), and the ``specHash`` the record keeps (it covers the resolved values, so a
    rotation behind the same ARN is drift too). The plan's preview and the watch compute the same."""
    spec = serving_spec(spec, watch)
    secret = resolve(spec.signature_secret_arn) if spec.signature_secret_arn else None
    if endpoints:
        told = resolve_basic_auth(spec, resolve)
        return told, secret, endpoint_hash(told)
    told = resolve_for_cognigy(spec, resolve)
    return told, secret, told.spec_hash(resolved_secret=secret)


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


# --- apply -------------------------------------------------------------------------------------------


async def _apply(request: RegisterRequest, deps: RegisterDeps) -> RegisterResult:
    try:
        spec = parse_endpoint(request.endpoint)
    except InvalidSpec as exc:
        return finish_failure(request.endpoint.get("name", "?"), request, deps, "invalid_spec", str(exc))
    name = spec.name
    endpoints = _is_endpoints(deps.cognigy)
    api = deps.cognigy.scoped(_project_of(spec)) if endpoints else deps.cognigy
    stored = deps.store.read(name)
    existing = stored.record
    # What Cognigy is told: the spec as the watch has it served (a failover's URL, a deactivation),
    # secrets resolved (signature secret, secret header values, Basic auth). The hash covers the
    # resolved values, so a rotation behind the same ARN is drift too.
    watch = standing_watch(existing, spec)
    for_cognigy, secret, desired_hash = told_to_cognigy(
        spec, deps.resolve_secret, endpoints=endpoints, watch=watch
    )
    record = with_probe(base_record(name, stored), request.probe)
    status = "registered" if spec.is_active else "inactive"
    recorded_id = existing.webhook_id if existing else None
    held = request.cognigy if request.cognigy is not None and request.cognigy.listed else None
    # the plan's listing no longer saw the recorded endpoint: deleted outside the product
    vanished = endpoints and held is not None and recorded_id is not None and recorded_id not in held.ids
    listed_changed = held.last_changed.get(recorded_id) if held is not None and recorded_id else None
    known = Known(
        recorded_id=recorded_id,
        up_to_date=bool(existing and existing.spec_hash == desired_hash and existing.status == status),
        maybe_applied=stored.create_maybe_applied,
        in_doubt=_in_doubt(held, recorded_id, endpoints=endpoints),
        listed_absent=endpoints
        and held is not None
        and not held.ids
        and not stored.create_maybe_applied
        and not stored.claimed,
        moved=endpoints
        and listed_changed is not None
        and (existing.last_changed if existing else None) != listed_changed,
    )
    claim = NameClaim(deps.store, name, stored)
    placement = Placement(
        api, for_cognigy, known=known, secret=secret, limiter=deps.limiter, before_look_up=claim.take
    )
    claim_free = first_step(known) == "create"  # created at once, the commit is the claim (race.py)

    started = deps.clock()
    cognigy_ms: float | None = None
    try:
        try:
            placed = await placement.attempt()
            notes = await _tidy_up(name, placed, stored, request, deps)
            token_arn = _keep_url_token(name, placed, existing, deps)
        except BaseException as exc:
            maybe = placement.failed(exc)
            if maybe and claim_free and claim.token is None:
                await mark_maybe_applied(name, claim, deps)
            else:
                claim.release(maybe_applied=maybe)
            raise
        if placed.webhook is not None:  # Cognigy was called
            cognigy_ms = round((deps.clock() - started) * 1000, 2)
    except CognigyThrottled as exc:
        raise throttled_for_state_machine(exc) from None
    except (CognigyAuthError, CognigyForbidden) as exc:
        # audit only: the record stays as it was (record=None with the existing version would
        # DELETE it, losing the webhook id of an endpoint Cognigy still holds)
        commit(deps, name, None, None, refusal_event(request, name, exc, str(exc)))
        raise
    except CognigyRejected as exc:
        detail = rejection_detail(exc)
        failed = record.model_copy(
            update=last_fields(request, "failed", exc.reason, failed=not record.webhook_id)
        )
        event = refusal_event(request, name, exc, detail, webhook_id=record.webhook_id)
        commit(deps, name, existing, failed.model_copy(update={"spec": spec.public_view()}), event)
        return task_result(
            request,
            name=name,
            outcome="failed",
            reason=exc.reason,
            detail=detail,
            webhook_id=record.webhook_id,
            status_code=exc.status_code,
            create_maybe_applied=record.create_maybe_applied,
        )

    # The record's outcome: a webhook adopted instead of a second one counts as created.
    outcome: Outcome = "created" if placed.outcome == "adopted" else placed.outcome
    action = {"created": "register", "unchanged": "unchanged"}.get(
        outcome, "deactivate" if not spec.is_active else "update"
    )
    if placed.drift:
        action = "drift_repaired"
        notes.insert(0, f"changed outside the product ({', '.join(placed.drift)}): repaired")
    elif vanished and placed.outcome in ("created", "adopted"):
        action = "drift_repaired"
        notes.insert(0, f"endpoint {recorded_id} was deleted outside the product: {placed.outcome} again")
    extra: dict[str, Any] = {}
    if endpoints:
        remote = placed.webhook
        extra = {
            "project_id": _project_of(spec),
            "last_changed": getattr(remote, "last_changed", None)
            if remote is not None
            else (existing.last_changed if existing else None),
            "url_token_arn": token_arn,
        }
    new_record = record.model_copy(
        update={
            "webhook_id": placed.webhook_id,
            "spec_hash": desired_hash,
            "spec": spec.public_view(),
            "status": status,
            "create_maybe_applied": None,  # the webhook is recorded now
            "watch": watch,  # reset when the primary URL changed
            **extra,
            **last_fields(request, outcome, None),
        }
    )
    warnings = list(request.probe.warnings) if request.probe and request.probe.warnings else []
    note = "; ".join([*notes, *warnings]) or None
    event = audit_event(
        request,
        name,
        action=action,
        outcome=outcome,
        webhook_id=placed.webhook_id,
        status_code=placed.status_code,
        cognigy_latency_ms=cognigy_ms,
        success_rate=new_record.success_rate,
        detail=note[:500] if note and notes else None,
    )
    unclaimed = claim_free and claim.token is None and placed.outcome == "created"
    try:
        commit(deps, name, existing, new_record, event, claim_token=claim.token, unclaimed_create=unclaimed)
    except RecordConflict:
        if not unclaimed:
            claim.release(maybe_applied=placed.outcome == "created")
            raise
        now = await settle_lost_commit(
            name, placed, claim, request, deps, api, stored_token=token_arn is not None
        )  # raises unless ours is still the only one: then it is committed under the claim
        try:
            commit(deps, name, now.record, new_record, event, claim_token=claim.token)
        except BaseException:
            claim.release(maybe_applied=True)
            raise
    except BaseException:
        if unclaimed:
            await mark_maybe_applied(name, claim, deps)  # the commit may have been applied or not
        else:
            claim.release(maybe_applied=placed.outcome == "created")
        raise
    return task_result(
        request,
        name=name,
        outcome=outcome,
        webhook_id=placed.webhook_id,
        status_code=placed.status_code,
        detail=note,
    )


def _in_doubt(held: Any, recorded_id: str | None, *, endpoints: bool) -> bool:
    """Whether the plan's listing says the name must be looked up: it saw duplicates under the name,
    or no longer saw the recorded webhook, or (Endpoints, whose listing is complete) saw one under a
    name nothing records, to adopt after a look-up."""
    if held is None:
        return False
    if len(held.ids) > 1:
        return True
    if recorded_id is None and endpoints:
        return bool(held.ids)
    return recorded_id not in held.ids


def _keep_url_token(name: str, placed: Placed, existing: Any, deps: RegisterDeps) -> str | None:
    """The ARN of the endpoint's URLToken: stored in Secrets Manager when Cognigy answered one for an
    endpoint the record does not know yet (created, adopted, re-made), else the recorded ARN."""
    recorded = existing.url_token_arn if existing is not None else None
    token = getattr(placed.webhook, "url_token", None) if placed.webhook is not None else None
    same = existing is not None and existing.webhook_id == placed.webhook_id
    if token is None or deps.store_secret is None or (same and recorded is not None):
        return recorded if same else None
    return deps.store_secret(name, "url-token", token.get_secret_value())


async def _tidy_up(
    name: str, placed: Placed, stored: Stored, request: RegisterRequest, deps: RegisterDeps
) -> list[str]:
    """After a look-up: remove our orphans (each audited), and say what was adopted and left."""
    found = placed.found
    notes: list[str] = []
    if placed.outcome == "adopted":
        if placed.after_conflict:
            notes.append("adopted the webhook holding the name (Cognigy answered 409 to the create)")
        elif stored.create_maybe_applied:
            notes.append("adopted the webhook an earlier create, whose answer was lost, had made")
    if found is None:
        return notes
    removed = []
    for orphan in found.orphans:
        await deps.limiter.acquire(1)
        gone = await deps.cognigy.delete_webhook(str(orphan.id))
        removed.append(str(orphan.id))
        detail = f"a second webhook named {name!r} with this stack's marks; kept {placed.webhook_id}"
        _audit_orphan(deps, request, name, str(orphan.id), gone, detail)
    if removed:
        notes.append(
            f"removed {len(removed)} orphan webhook(s) of this stack named {name!r} "
            f"(ids {', '.join(removed[:10])}); kept {placed.webhook_id}"
        )
    if left := describe_left(name, found.foreign, marks=getattr(deps.cognigy, "marks", True)):
        notes.append(left)
    return notes


def _audit_orphan(
    deps: RegisterDeps,
    request: RegisterRequest,
    name: str,
    webhook_id: str,
    gone: bool,
    detail: str,
    **fields: Any,
) -> None:
    event = audit_event(
        request,
        name,
        action="orphan_removed",
        outcome="deleted",
        webhook_id=webhook_id,
        status_code=204 if gone else 404,
        detail=detail,
        **fields,
    )
    commit(deps, name, None, None, event)


# --- delete ------------------------------------------------------------------------------------------


async def _delete(name: str, request: RegisterRequest, deps: RegisterDeps) -> RegisterResult:
    """Delete the recorded webhook and the record. When the plan's listing saw more under the name
    (or a create of ours may have been applied), the name is looked up under its claim and every
    webhook of ours is removed with it; those we cannot attribute are left and reported."""
    stored = deps.store.read(name)
    existing = stored.record
    webhook_id = existing.webhook_id if existing else None
    url = existing.spec.get("url") if existing else None
    held = request.cognigy if request.cognigy is not None and request.cognigy.listed else None
    more = stored.create_maybe_applied or (held is not None and any(i != webhook_id for i in held.ids))
    status_code = None
    claim = NameClaim(deps.store, name, stored)
    notes: list[str] = []
    api = deps.cognigy
    if _is_endpoints(api):  # Endpoints live in a project: the one the record says
        api = api.scoped(existing.project_id if existing else None)
    try:
        extra: list[Any] = []
        if more:
            claim.take()
            await deps.limiter.acquire(1)
            found = sort_out(
                await api.list_webhooks(name), name, webhook_id, marks=getattr(api, "marks", True)
            )
            keep, foreign, extra = found.keep, list(found.foreign), list(found.orphans)
            if keep is not None and str(keep.id) != webhook_id:  # the recorded one is gone
                (extra if is_ours(keep, name) else foreign).insert(0, keep)
            if left := describe_left(name, foreign, marks=getattr(api, "marks", True)):
                notes.append(left)
        if webhook_id:
            await deps.limiter.acquire(1)
            gone = await api.delete_webhook(webhook_id)
            status_code = 204 if gone else 404
        for orphan in extra:
            await deps.limiter.acquire(1)
            gone = await api.delete_webhook(str(orphan.id))
            detail = f"another webhook named {name!r} with this stack's marks, deleted with it"
            _audit_orphan(deps, request, name, str(orphan.id), gone, detail, endpoint_url=url)
        if extra:
            notes.insert(0, f"removed {len(extra)} orphan webhook(s) of this stack named {name!r} too")
        event = audit_event(
            request,
            name,
            action="delete",
            outcome="deleted",
            webhook_id=webhook_id,
            status_code=status_code,
            endpoint_url=url,
            detail="; ".join(notes)[:500] or None,
        )
        commit(deps, name, existing, None, event, claim_token=claim.token if existing else None)
        if existing is None:  # nothing was recorded: only the claim (if taken) to drop
            claim.release(maybe_applied=False)
        claim.handed_over()
    except CognigyThrottled as exc:
        claim.release(maybe_applied=False)
        raise throttled_for_state_machine(exc) from None
    except CognigyRejected as exc:
        claim.release(maybe_applied=False)
        return finish_failure(name, request, deps, exc.reason, rejection_detail(exc), stored=stored)
    except BaseException:
        claim.release(maybe_applied=False)
        raise
    return RegisterResult(
        name=name,
        outcome="deleted",
        webhook_id=webhook_id,
        status_code=status_code,
        detail="; ".join(notes) or None,
    )
