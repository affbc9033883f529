"""The watch, on demand, and the health of every endpoint: what ``cogwh watch-now``, ``cogwh health``
and the management API's ``POST /watches``, ``GET /watches/{id}`` and ``GET /health`` share.

- :func:`start_watch` starts one execution of the watch state machine (its input: ``at``, the time
  the rules judge at, for drills and tests that compress time; ``names``, only these endpoints);
  :func:`describe_watch` reads where it stands and, once it ended, its summary: the execution's
  output, bounded (past :data:`~cognigy_webhooks.watch.fanout.INLINE_RESULTS` endpoints it is
  ``truncated``), completed from the whole summary the watch wrote to the config bucket
  (``summaryRef``, under ``watch/`` only) when it can be read, the bounded one otherwise.
- :func:`health` reads every record (the ``ByType`` index, a page at a time) and says each one's
  health as the watch last saw it (:class:`EndpointHealth`): ``state`` (``healthy``, ``unhealthy``
  or ``deactivated``), the URL Cognigy is told (``currentUrl``: a fallback after a failover), the last
  probe, TLS, certificate days left, consecutive failures.

A stack deployed before the watch existed has no watch state machine:
:class:`~cognigy_webhooks.errors.NotFound` naming it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import AwareDatetime, Field, ValidationError

from cognigy_webhooks.dal.executions import Executions
from cognigy_webhooks.dal.run_files import RunFiles
from cognigy_webhooks.errors import InvalidInput, NotFound, StoreError
from cognigy_webhooks.models import _Model
from cognigy_webhooks.models.records import EndpointRecord
from cognigy_webhooks.models.watch import HealthState
from cognigy_webhooks.ops.access import StackAccess
from cognigy_webhooks.watch.fanout import FOLDER
from cognigy_webhooks.watch.run import WatchSummary, watchable

__all__ = [
    "EndpointHealth",
    "HealthPage",
    "WatchStarted",
    "WatchView",
    "describe_watch",
    "health",
    "health_of",
    "start_watch",
]

#: The most endpoints one watch started on demand may name.
MAX_NAMES = 1000


class WatchStarted(_Model):
    """A watch started: its id (the execution's name), ARN and the time its rules judge at (None:
    the execution's start time)."""

    watch_id: str
    execution_arn: str
    at: datetime | None = None


class WatchView(_Model):
    """Where a watch stands: ``status`` (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED) and, once it
    succeeded, its summary."""

    watch_id: str
    execution_arn: str
    status: str
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    error: str | None = None
    summary: WatchSummary | None = None


class EndpointHealth(_Model):
    """One endpoint's health (``cogwh health --json`` prints one per endpoint).

    ``state``: ``healthy``, ``unhealthy`` or ``deactivated`` (the watch's; an endpoint declared
    inactive, or never registered, is ``deactivated``/``unhealthy`` with ``watched`` False);
    ``currentUrl``: where Cognigy delivers (a fallback after a failover); ``certDaysLeft``: the
    current URL's certificate; ``consecutiveFailures``: failed watches in a row."""

    name: str
    state: HealthState
    watched: bool
    status: str
    current_url: str | None = None
    failed_over: bool = False
    last_probe_at: datetime | None = None
    last_probe_reason: str | None = None
    tls_version: str | None = None
    latency_ms: float | None = None
    cert_days_left: int | None = None
    consecutive_failures: int = 0
    first_failure_at: datetime | None = None
    last_watch_at: datetime | None = None


class HealthPage(_Model):
    items: list[EndpointHealth] = Field(default_factory=list)
    next_cursor: str | None = None


def _watches(access: StackAccess) -> Executions:
    if access.watches is None:
        raise NotFound(
            "this stack has no watch state machine (deployed before the watch: deploy it again)",
            field="watch",
        )
    return access.watches


def start_watch(
    access: StackAccess,
    *,
    at: datetime | str | None = None,
    names: Sequence[str] | None = None,
    source: str = "cli",
) -> WatchStarted:
    """Start one watch now. ``at`` (aware; ISO text accepted) judges as if at that time; ``names``
    limits it to those endpoints (each must name a record: :class:`NotFound` otherwise).
    :class:`InvalidInput` naming ``at`` or ``names``."""
    when: datetime | None = None
    if at is not None:
        try:
            when = _At.model_validate({"at": at}).at
        except ValidationError:
            raise InvalidInput(
                [{"field": "at", "message": "must be an ISO 8601 date-time with a UTC offset"}]
            ) from None
    execution_input: dict[str, object] = {}
    if when is not None:
        execution_input["at"] = when.isoformat()
    if names is not None:
        wanted = list(dict.fromkeys(names))
        if not wanted or len(wanted) > MAX_NAMES or not all(isinstance(n, str) and n for n in wanted):
            raise InvalidInput([{"field": "names", "message": f"must list 1 to {MAX_NAMES} endpoint names"}])
        missing = [n for n in wanted if access.store.get_record(n) is None]
        if missing:
            raise NotFound(f"no endpoint named {', '.join(repr(n) for n in missing[:5])}", field="names")
        execution_input["names"] = wanted
    executions = _watches(access)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    name = f"{source}-{stamp}-{uuid.uuid4().hex[:12]}"[:80]
    arn, _started = executions.start(execution_input, name=name)
    return WatchStarted(watch_id=name, execution_arn=arn, at=when)


class _At(_Model):
    at: AwareDatetime


def describe_watch(access: StackAccess, watch: str) -> WatchView:
    """Where a watch stands (by id or ARN); its summary once it succeeded."""
    executions = _watches(access)
    status = executions.describe(executions.arn_of(watch))
    summary = None
    if status.status == "SUCCEEDED" and status.output:
        try:
            summary = WatchSummary.model_validate(json.loads(status.output))
        except (ValueError, ValidationError):
            summary = None
    if summary is not None and summary.truncated:
        summary = _whole(access, summary)
    return WatchView(
        watch_id=status.name or status.execution_arn.rsplit(":", 1)[-1],
        execution_arn=status.execution_arn,
        status=status.status,
        started_at=status.start_date,
        stopped_at=status.stop_date,
        error=status.error or None,
        summary=summary,
    )


def _whole(access: StackAccess, summary: WatchSummary) -> WatchSummary:
    """The whole summary a bounded one names (``summaryRef``: this stack's config bucket, under
    ``watch/``); the bounded one when it names another place or cannot be read (expired, no access)."""
    ref = summary.summary_ref or {}
    bucket, key = ref.get("bucket"), ref.get("key")
    store = access.desired_sets
    if bucket != store.bucket or not isinstance(key, str) or not key.startswith(f"{FOLDER}/"):
        return summary
    try:
        whole = RunFiles(store.client, store.bucket).get_json(key)
        return WatchSummary.model_validate(whole).model_copy(update={"summary_ref": dict(ref)})
    except (StoreError, ValidationError):
        return summary


def health_of(record: EndpointRecord) -> EndpointHealth:
    """One record's health as the watch last saw it."""
    spec_url = record.spec.get("url") if isinstance(record.spec.get("url"), str) else None
    watch = record.watch if record.watch is not None and spec_url is not None else None
    current = (watch.current_url if watch is not None else None) or spec_url
    watched = watchable(record)
    if watched:
        state = watch.state if watch is not None else HealthState.HEALTHY
    elif record.status == "inactive":
        state = HealthState.DEACTIVATED
    else:
        state = HealthState.UNHEALTHY
    probe = record.last_probe
    days = probe.cert_days_left if probe is not None else None
    if watch is not None and current in watch.certificates:
        known = watch.certificates[current].days_left
        days = known if known is not None else days
    return EndpointHealth(
        name=record.name,
        state=state,
        watched=watched,
        status=record.status,
        current_url=current,
        failed_over=bool(watch is not None and watch.current_url and watch.current_url != spec_url),
        last_probe_at=probe.probed_at if probe is not None else None,
        last_probe_reason=probe.reason if probe is not None else None,
        tls_version=probe.tls_version if probe is not None else None,
        latency_ms=probe.latency_ms if probe is not None else None,
        cert_days_left=days,
        consecutive_failures=watch.consecutive_failures if watch is not None else 0,
        first_failure_at=watch.first_failure_at if watch is not None else None,
        last_watch_at=watch.last_watch_at if watch is not None else None,
    )


def health(access: StackAccess, *, limit: int = 100, cursor: str | None = None) -> HealthPage:
    """One page of every endpoint's health, in name order."""
    page = access.store.page_records(limit=limit, cursor=cursor)
    return HealthPage(items=[health_of(record) for record in page.items], next_cursor=page.next_cursor)
