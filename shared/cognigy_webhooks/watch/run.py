"""The watch state machine's steps, wired: which records to watch, one endpoint's judgement, the summary.

The watch (``statemachine/watch.asl.json``) lists its targets once
(:func:`cognigy_webhooks.watch.fanout.list_targets`: the records :func:`watchable` names, each as
:func:`probe_view` has it), then runs for every target, in a child execution of its Distributed Map,
the probe function (the reconcile's own probe step) and :func:`judge`, then counts the judgements
(:func:`summarize`, read back from the map's result files by :mod:`cognigy_webhooks.watch.fanout`).

:func:`judge` is one watch of one endpoint: read its record, apply the rules
(:func:`cognigy_webhooks.watch.decide`) to the probe's report at the watch's time ``at``, and then

1. **Cognigy**, only when the decision carries an action (deactivate, reactivate, switch the URL): ONE
   update of the endpoint, telling Cognigy the spec as the watch now has it served
   (:func:`~cognigy_webhooks.reconcile.register.told_to_cognigy` with the new watch state: the same
   computation as the register step's, so the next apply finds the endpoint up to date and does not
   undo the failover), under the shared rate limit. The connection (and the API key) is opened only
   then: a watch where nothing changes makes no Cognigy call. A 404 (the endpoint was deleted outside
   the product) is a ``Drift Detected`` transition; the next apply makes the endpoint again.
2. **The operations bus**: one event per transition (``detail-type`` = the transition's), put BEFORE
   the record is written. A failure after the put makes the step retry, which decides again from the
   unchanged record and puts the same events again with the same ``eventId``: at least once, never
   lost, repeats recognisable.
3. **The record and the audit log**: the record's new watch state, last probe and probe counts, and
   one audit event per transition, in ONE transaction (one conditional Put when nothing changed
   state). Conditioned on the record's version: a record changed meanwhile (an apply) makes the step
   retry (:class:`~cognigy_webhooks.errors.RecordConflict`) and decide again on what is there now.

A retry of a judgement already written changes nothing (the rules refuse a watch time at or before
the state's ``lastWatchAt``); so does a second run of the same child (an EXPRESS child runs at least
once): the same decision from the same record, the same events with the same ``eventId``, one write.
Nothing here holds a secret: the spec is the record's public view, its secrets resolved only into
what Cognigy is told, never into a result, an event or a record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar

from pydantic import AwareDatetime, Field, ValidationError

from cognigy_webhooks.errors import CognigyNotFound, InvalidInput, InvalidSpec
from cognigy_webhooks.models import EndpointProbeReport, WebhookEndpoint, _Model, parse_endpoint
from cognigy_webhooks.models.records import AuditEvent, EndpointRecord, ProbeSummary, utcnow
from cognigy_webhooks.models.watch import (
    CognigyAction,
    Decision,
    DetailType,
    EndpointUrls,
    HealthRules,
    HealthState,
    Transition,
    WatchState,
)
from cognigy_webhooks.reconcile.register import standing_watch, told_to_cognigy
from cognigy_webhooks.secrets import REDACTED
from cognigy_webhooks.watch.rules import decide

__all__ = [
    "SOURCE",
    "JudgeRequest",
    "JudgeResult",
    "ListRequest",
    "WatchDeps",
    "WatchStore",
    "WatchSummary",
    "judge",
    "parse_model",
    "probe_view",
    "summarize",
    "watchable",
]

#: The audit events' ``source`` and the bus events' ``source`` suffix.
SOURCE = "watch"
T = TypeVar("T")
M = TypeVar("M", bound=_Model)


def parse_model(model: type[M], event: Any, what: str) -> M:
    """``event`` as ``model``; :class:`InvalidInput` naming each field at fault (never a value)."""
    try:
        return model.model_validate(event)
    except ValidationError as exc:
        raise InvalidInput(
            [
                {"field": ".".join(str(p) for p in err["loc"]) or what, "message": err["msg"]}
                for err in exc.errors(include_input=False, include_url=False)
            ]
        ) from None


# --- shapes -------------------------------------------------------------------------------------------


class ListRequest(_Model):
    """The watch's input: ``at`` (the time the rules judge at; default the execution's start time,
    given for drills and tests that compress time) and ``names`` (only these endpoints; default all)."""

    at: AwareDatetime | None = None
    names: list[str] | None = Field(default=None, max_length=1000)
    started_at: AwareDatetime | None = None  # $$.Execution.StartTime
    execution_id: str | None = None
    execution_name: str | None = Field(default=None, max_length=80)  # $$.Execution.Name
    tolerated_failure_percentage: float | None = Field(default=None, ge=0, le=100)  # the template's


class JudgeRequest(_Model):
    """One endpoint's judgement: its name, the probe's report (None when the probe step failed:
    ``probeError`` holds the caught error's name), the watch's ``at``."""

    name: str
    at: AwareDatetime
    probe: EndpointProbeReport | None = None
    probe_error: dict[str, Any] | None = None
    execution_id: str | None = None


Outcome = Literal["unchanged", "changed", "skipped", "not_probed", "failed"]


class JudgeResult(_Model):
    """What the summary counts: ``outcome`` (``changed`` = at least one transition), the state after
    the watch, the transitions' detail-types, the Cognigy calls and DynamoDB items written, and the
    fewest certificate days left among the endpoint's URLs."""

    name: str
    outcome: Outcome
    state: HealthState | None = None
    transitions: list[str] = Field(default_factory=list)
    cognigy_calls: int = 0
    writes: int = 0
    cert_days_left: int | None = None
    reason: str | None = None


class WatchSummary(_Model):
    """One watch execution's summary (``cogwh watch-now`` prints it). As the execution's output it is
    bounded (:func:`cognigy_webhooks.watch.fanout.bounded`): ``truncated`` when ``results`` holds only
    the endpoints worth a look, the whole summary at ``summaryRef`` ({bucket, key})."""

    at: datetime
    watched: int = 0
    healthy: int = 0
    unhealthy: int = 0
    deactivated: int = 0
    not_probed: int = 0
    skipped: int = 0
    failed: int = 0
    transitions: dict[str, int] = Field(default_factory=dict)
    cognigy_calls: int = 0
    writes: int = 0
    min_cert_days_left: int | None = None
    results: list[JudgeResult] = Field(default_factory=list)
    truncated: bool = False
    summary_ref: dict[str, str] | None = None


# --- dependencies -------------------------------------------------------------------------------------


class Stored(Protocol):
    @property
    def record(self) -> EndpointRecord | None: ...


class WatchStore(Protocol):
    """The records (:class:`cognigy_webhooks.dal.records.Store`)."""

    def read(self, name: str) -> Stored: ...
    def iter_records(self) -> Iterable[EndpointRecord]: ...
    def write_watch(
        self, *, name: str, record: EndpointRecord, events: Sequence[AuditEvent], expected_version: int
    ) -> int: ...


class Connection(Protocol):
    """One Cognigy connection (:class:`cognigy_webhooks.reconcile.session.Connection`)."""

    @property
    def api(self) -> Any: ...
    @property
    def limiter(self) -> Any: ...


@dataclass
class WatchDeps:
    """``with_cognigy`` runs work on a Cognigy connection opened for it (the session's
    ``with_rotated_key``; called only when a decision needs Cognigy); ``publish`` puts
    ``(detail_type, detail)`` events on the operations bus; ``dialect`` is ``endpoints`` or
    ``tutorial``; ``stack`` names the stack in every event."""

    store: WatchStore
    rules: HealthRules
    publish: Callable[[Sequence[tuple[str, Mapping[str, Any]]]], int]
    with_cognigy: Callable[[Callable[[Any], Awaitable[Any]]], Awaitable[Any]]
    resolve_secret: Callable[[str], str]
    dialect: str = "endpoints"
    stack: str = "cognigy-webhooks"
    retention_days: int = 400


# --- list ---------------------------------------------------------------------------------------------


def watchable(record: EndpointRecord) -> bool:
    """A record the watch re-probes: registered in Cognigy (its webhook id known) and meant to be
    active (``status`` registered; one the watch deactivated stays registered). An endpoint its owner
    declared inactive, or that failed to register, is not watched."""
    return record.status == "registered" and bool(record.webhook_id)


#: What of a spec the probe reads: the rest stays in the record (the execution's state stays small).
PROBE_FIELDS = ("name", "url", "fallbackUrls", "timeoutMs")


def probe_view(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a stored spec the probe step needs (its URLs and timeout), nothing else."""
    return {key: spec[key] for key in PROBE_FIELDS if spec.get(key) not in (None, [])}


# --- judge --------------------------------------------------------------------------------------------


def _event_id(name: str, at: datetime, index: int, transition: Transition) -> str:
    raw = f"{name}|{at.isoformat()}|{index}|{transition.detail_type.value}"
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def _cert_days_left(probe: EndpointProbeReport) -> int | None:
    days = [r.cert_days_left for r in (probe.primary, *probe.fallbacks) if r.cert_days_left is not None]
    return min(days) if days else None


def _result(name: str, outcome: Outcome, **fields: Any) -> dict[str, Any]:
    return JudgeResult(name=name, outcome=outcome, **fields).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )


async def _act(
    deps: WatchDeps, record: EndpointRecord, spec: WebhookEndpoint, state: WatchState
) -> tuple[str, int | None, int | None]:
    """Tell Cognigy ``spec`` as ``state`` has it served: (the new specHash, lastChanged, status)."""
    endpoints = deps.dialect == "endpoints"
    told, secret, digest = told_to_cognigy(spec, deps.resolve_secret, endpoints=endpoints, watch=state)
    if REDACTED in told.headers.values():
        raise InvalidSpec(
            [
                {
                    "field": "headers",
                    "message": "the record holds a redacted header value: apply the endpoint again",
                }
            ]
        )

    async def work(connection: Any) -> tuple[str, int | None, int | None]:
        api = connection.api.scoped(record.project_id) if endpoints else connection.api
        await connection.limiter.acquire(1)
        remote = await api.update_webhook(str(record.webhook_id), told, signature_secret=secret)
        return digest, getattr(remote, "last_changed", None), 200

    result: tuple[str, int | None, int | None] = await deps.with_cognigy(work)
    return result


def _detail(
    deps: WatchDeps, record: EndpointRecord, transition: Transition, event_id: str, request: JudgeRequest
) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "eventId": event_id,
        "stack": deps.stack,
        "name": record.name,
        "webhookId": record.webhook_id,
        "projectId": record.project_id,
        "fromState": transition.from_state.value,
        "state": transition.to_state.value,
        "reason": transition.reason,
        "url": transition.url,
        "fromUrl": transition.from_url,
        "toUrl": transition.to_url,
        "threshold": transition.threshold,
        "daysLeft": transition.days_left,
        "watchedAt": request.at.isoformat(),
        "executionId": request.execution_id,
    }
    return {key: value for key, value in detail.items() if value is not None}


async def judge(request: JudgeRequest, deps: WatchDeps) -> dict[str, Any]:
    """One watch of one endpoint (see the module docstring). Returns a :class:`JudgeResult` (JSON)."""
    name = request.name
    stored = deps.store.read(name)
    record = stored.record
    if record is None or not watchable(record):
        return _result(name, "skipped", reason="not an active registered endpoint any more")
    try:
        spec = parse_endpoint(record.spec)
    except InvalidSpec:
        return _result(name, "skipped", reason="the record's spec does not parse: apply the endpoint again")
    probe = request.probe
    if probe is None:
        error = (request.probe_error or {}).get("Error", "unknown")
        return _result(name, "not_probed", state=_state_of(record), reason=f"the probe step failed: {error}")
    if probe.primary.url != spec.url:
        return _result(name, "skipped", reason="the endpoint's URL changed since this watch began")

    urls = EndpointUrls(primary=spec.url, fallbacks=tuple(spec.fallback_urls))
    state = standing_watch(record, spec) or WatchState()
    decision: Decision = decide(state, urls, probe, deps.rules, request.at)
    days_left = _cert_days_left(probe)
    if not decision.observed:  # a retry of a watch already written, or a clock gone back
        return _result(name, "unchanged", state=state.state, cert_days_left=days_left)

    transitions = list(decision.transitions)
    update: dict[str, Any] = {"watch": decision.state}
    calls = 0
    cognigy_status: int | None = None
    if decision.action is not None:
        calls = 1
        try:
            digest, last_changed, cognigy_status = await _act(deps, record, spec, decision.state)
        except CognigyNotFound:
            transitions.append(_drift(record, decision))
        else:
            update["spec_hash"] = digest
            if deps.dialect == "endpoints":
                update["last_changed"] = last_changed if last_changed is not None else record.last_changed

    events: list[AuditEvent] = []
    bus: list[tuple[str, Mapping[str, Any]]] = []
    primary = probe.primary
    for index, transition in enumerate(transitions):
        event_id = _event_id(name, request.at, index, transition)
        acted = decision.action is not None and transition.detail_type is not DetailType.CERTIFICATE_EXPIRING
        events.append(
            AuditEvent(
                name=name,
                event_id=event_id,
                action=transition.detail_type.action,
                outcome=transition.to_state.value,
                reason=transition.detail_type.action,
                detail=transition.reason[:500],
                webhook_id=record.webhook_id,
                latency_ms=primary.timings_ms.total,
                tls_version=primary.tls_version,
                probe_status_code=primary.status_code,
                status_code=cognigy_status if acted else None,
                endpoint_url=transition.to_url or transition.url or spec.url,
                execution_id=request.execution_id,
                source=SOURCE,
            ).with_retention(deps.retention_days)
        )
        bus.append((transition.detail_type.value, _detail(deps, record, transition, event_id, request)))
    if bus:
        deps.publish(bus)

    new_record = record.model_copy(
        update={
            **update,
            "last_probe": ProbeSummary.from_report(probe),
            "probe_count": record.probe_count + 1,
            "probe_successes": record.probe_successes + (1 if probe.passed else 0),
            "updated_at": utcnow(),
            "version": record.version + 1,
        }
    )
    writes = deps.store.write_watch(
        name=name, record=new_record, events=events, expected_version=record.version
    )
    return _result(
        name,
        "changed" if transitions else "unchanged",
        state=decision.state.state,
        transitions=[t.detail_type.value for t in transitions],
        cognigy_calls=calls,
        writes=writes,
        cert_days_left=days_left,
    )


def _state_of(record: EndpointRecord) -> HealthState:
    return record.watch.state if record.watch is not None else HealthState.HEALTHY


def _drift(record: EndpointRecord, decision: Decision) -> Transition:
    action: CognigyAction | None = decision.action
    what = action.kind.replace("_", " ") if action is not None else "change"
    return Transition(
        detail_type=DetailType.DRIFT_DETECTED,
        reason=(
            f"Cognigy no longer holds endpoint {record.webhook_id} (deleted outside the product): "
            f"could not {what} it; the next apply makes it again"
        ),
        from_state=decision.state.state,
        to_state=decision.state.state,
    )


# --- summarize ----------------------------------------------------------------------------------------


def summarize(at: datetime, results: Sequence[Mapping[str, Any]]) -> WatchSummary:
    """Count one watch's results (a failed judgement is a result with ``outcome: failed``)."""
    summary = WatchSummary(at=at)
    for raw in results:
        result = JudgeResult.model_validate(raw)
        summary.results.append(result)
        if result.outcome == "failed":
            summary.failed += 1
            continue
        if result.outcome == "skipped":
            summary.skipped += 1
            continue
        summary.watched += 1
        if result.outcome == "not_probed":
            summary.not_probed += 1
        state = result.state or HealthState.HEALTHY
        if state is HealthState.HEALTHY:
            summary.healthy += 1
        elif state is HealthState.UNHEALTHY:
            summary.unhealthy += 1
        else:
            summary.deactivated += 1
        for detail_type in result.transitions:
            summary.transitions[detail_type] = summary.transitions.get(detail_type, 0) + 1
        summary.cognigy_calls += result.cognigy_calls
        summary.writes += result.writes
        if result.cert_days_left is not None:
            low = summary.min_cert_days_left
            summary.min_cert_days_left = (
                result.cert_days_left if low is None else min(low, result.cert_days_left)
            )
    return summary
