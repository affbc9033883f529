"""Every metric the product emits: its name, unit, dimensions and emitter, in one registry.

The contract: a metric's name is a :class:`MetricName` (the one place a name is spelled), and
:data:`METRICS` says for each its unit, its own dimensions (besides the two every metric carries:
``service`` = ``cognigy-webhooks`` and ``stack`` = the stack's name, see
:mod:`cognigy_webhooks.observability`) and who emits it. The template's alarms and its
dashboard name only these metrics, with these dimensions (``tests/unit/test_alarms_dashboard.py``);
every one of them is emitted somewhere (``tests/unit/test_metrics.py``). All live in the
``CognigyWebhooks`` namespace (:data:`METRICS_NAMESPACE`).

One family is named by pattern rather than listed: the receiver counts each rejection reason as
``Rejected`` + the reason in CamelCase (``signature_mismatch`` -> ``RejectedSignatureMismatch``), the
reasons being the receiving package's (:func:`rejection_metric`, :func:`is_registered`).

What is emitted is checked against the registry by :func:`metric_spec` (the name),
:func:`dimension_values` (exactly the metric's own dimensions, each a short text or an integer) and
:func:`metric_value` (a finite number): a ``ValueError`` naming the metric otherwise.

Standard library only: the receiver imports it (its cold start).
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = [
    "METRICS",
    "METRICS_NAMESPACE",
    "REJECTION_PREFIX",
    "REJECTION_SPEC",
    "SERVICE",
    "MetricName",
    "MetricSpec",
    "dimension_values",
    "is_registered",
    "is_rejection_metric",
    "metric_spec",
    "metric_value",
    "rejection_metric",
]

SERVICE: Final = "cognigy-webhooks"
METRICS_NAMESPACE: Final = "CognigyWebhooks"


class MetricName(enum.StrEnum):
    """A metric's name as CloudWatch shows it (see :data:`METRICS` for what each one means)."""

    # probe task (functions/probe)
    PROBE_REQUESTED = "ProbeRequested"
    PROBE_PASSED = "ProbePassed"
    PROBE_FAILED = "ProbeFailed"
    PROBE_LATENCY = "ProbeLatency"
    PROBE_RESULT = "ProbeResult"
    # reconcile summary (functions/summarize): Endpoints + the outcome
    ENDPOINTS_CREATED = "EndpointsCreated"
    ENDPOINTS_UPDATED = "EndpointsUpdated"
    ENDPOINTS_UNCHANGED = "EndpointsUnchanged"
    ENDPOINTS_DELETED = "EndpointsDeleted"
    ENDPOINTS_FAILED = "EndpointsFailed"
    # every request to Cognigy's management API (cognigy.client.CognigyHttp._request)
    COGNIGY_CALLS = "CognigyCalls"
    COGNIGY_THROTTLES = "CognigyThrottles"
    COGNIGY_AUTH_FAILURES = "CognigyAuthFailures"
    # receiver (functions/receive, receiving.report)
    DELIVERIES = "Deliveries"
    DELIVERIES_ACCEPTED = "DeliveriesAccepted"
    DELIVERIES_DUPLICATE = "DeliveriesDuplicate"
    DELIVERIES_REJECTED = "DeliveriesRejected"
    DELIVERIES_FAILED = "DeliveriesFailed"
    LOOPS_DETECTED = "LoopsDetected"
    LOOP_STOPS = "LoopStops"
    REPLAYS = "Replays"
    # audit sync (functions/audit_sync)
    AUDIT_EVENTS_SENT = "AuditEventsSent"
    AUDIT_EVENTS_SKIPPED = "AuditEventsSkipped"
    AUDIT_EVENTS_FAILED = "AuditEventsFailed"
    # watch (functions/watch, its summary step)
    ENDPOINTS_WATCHED = "EndpointsWatched"
    ENDPOINTS_UNHEALTHY = "EndpointsUnhealthy"
    ENDPOINTS_DEACTIVATED = "EndpointsDeactivated"
    WATCH_TRANSITIONS = "WatchTransitions"
    CERTIFICATE_MIN_DAYS_LEFT = "CertificateMinDaysLeft"


@dataclass(frozen=True)
class MetricSpec:
    """What a metric is. ``unit`` is CloudWatch's; ``dimensions`` are its own, besides ``service`` and
    ``stack`` (each value from a closed set: never an id, a URL or anything secret); ``emitter`` is
    the function that emits it; ``doc`` says what one data point means."""

    unit: str
    emitter: str
    doc: str
    dimensions: tuple[str, ...] = ()


_C = "Count"

METRICS: Final[dict[MetricName, MetricSpec]] = {
    MetricName.PROBE_REQUESTED: MetricSpec(
        _C, "probe", "one probe task (an endpoint: its url and fallbacks)"
    ),
    MetricName.PROBE_PASSED: MetricSpec(_C, "probe", "a probe whose endpoint passed"),
    MetricName.PROBE_FAILED: MetricSpec(_C, "probe", "a probe whose endpoint failed"),
    MetricName.PROBE_LATENCY: MetricSpec(
        "Milliseconds",
        "probe",
        "the primary URL's whole probe (DNS, connect, TLS, answer), when it got that far",
    ),
    MetricName.PROBE_RESULT: MetricSpec(
        _C,
        "probe",
        "a probe's verdict by reason (ok, connection_refused, certificate_invalid, ...: ProbeReason)",
        ("Reason",),
    ),
    MetricName.ENDPOINTS_CREATED: MetricSpec(_C, "summarize", "endpoints a reconcile created in Cognigy"),
    MetricName.ENDPOINTS_UPDATED: MetricSpec(_C, "summarize", "endpoints a reconcile updated"),
    MetricName.ENDPOINTS_UNCHANGED: MetricSpec(_C, "summarize", "endpoints a reconcile left as they were"),
    MetricName.ENDPOINTS_DELETED: MetricSpec(_C, "summarize", "endpoints a reconcile deleted"),
    MetricName.ENDPOINTS_FAILED: MetricSpec(
        _C, "summarize", "endpoints a reconcile failed on (invalid ones too)"
    ),
    MetricName.COGNIGY_CALLS: MetricSpec(
        _C, "register, plan, watch", "one request to Cognigy's management API (answered or not)"
    ),
    MetricName.COGNIGY_THROTTLES: MetricSpec(
        _C, "register, plan, watch", "a Cognigy answer 429 (rate limited)"
    ),
    MetricName.COGNIGY_AUTH_FAILURES: MetricSpec(
        _C,
        "register, plan, watch",
        "a Cognigy answer 401 or 403: the API key is wrong, revoked or lacks rights",
    ),
    MetricName.DELIVERIES: MetricSpec(
        _C,
        "receive",
        "one delivery answered, by the HTTP status answered (202, 200, 401, 508, 503...)",
        ("Status",),
    ),
    MetricName.DELIVERIES_ACCEPTED: MetricSpec(_C, "receive", "a delivery handed on (202)"),
    MetricName.DELIVERIES_DUPLICATE: MetricSpec(_C, "receive", "a delivery answered as a duplicate (200)"),
    MetricName.DELIVERIES_REJECTED: MetricSpec(
        _C, "receive", "a delivery refused (4xx); the reason: Rejected*"
    ),
    MetricName.DELIVERIES_FAILED: MetricSpec(
        _C,
        "receive",
        "a delivery answered 503 (AWS failing, or its first copy still in flight): Cognigy retries",
    ),
    MetricName.LOOPS_DETECTED: MetricSpec(_C, "receive", "a delivery stopped as a loop (508)"),
    MetricName.LOOP_STOPS: MetricSpec(
        _C,
        "receive",
        "a delivery stopped as a loop (508: hop limit, conversation limit, or a re-send of one)",
    ),
    MetricName.REPLAYS: MetricSpec(
        _C,
        "receive",
        "a delivery whose replay key was already claimed: a retry or a re-send (200 duplicate, 503 while the "
        "first is in flight, 508 when the first was stopped as a loop); replays outside the signature's "
        "tolerance are RejectedTimestampStale",
    ),
    MetricName.AUDIT_EVENTS_SENT: MetricSpec(
        _C, "audit_sync", "audit events sent to the monitoring platform"
    ),
    MetricName.AUDIT_EVENTS_SKIPPED: MetricSpec(
        _C, "audit_sync", "stream records that were not audit events"
    ),
    MetricName.AUDIT_EVENTS_FAILED: MetricSpec(_C, "audit_sync", "audit events reported back for a retry"),
    MetricName.ENDPOINTS_WATCHED: MetricSpec(_C, "watch", "endpoints one watch re-probed"),
    MetricName.ENDPOINTS_UNHEALTHY: MetricSpec(
        _C, "watch", "gauge per watch: endpoints unhealthy or deactivated after it"
    ),
    MetricName.ENDPOINTS_DEACTIVATED: MetricSpec(_C, "watch", "endpoints one watch deactivated in Cognigy"),
    MetricName.WATCH_TRANSITIONS: MetricSpec(
        _C,
        "watch",
        "health transitions of one watch, by event detail-type (Endpoint Unhealthy...)",
        ("DetailType",),
    ),
    MetricName.CERTIFICATE_MIN_DAYS_LEFT: MetricSpec(
        _C,
        "watch",
        "gauge per watch: the fewest days any watched URL's certificate has left (absent: none had one)",
    ),
}

#: The receiver's per-reason rejection counts: ``Rejected`` + the reason in CamelCase.
REJECTION_PREFIX: Final = "Rejected"
_REASON = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_REJECTION = re.compile(REJECTION_PREFIX + r"(?:[A-Z][a-z0-9]*)+")


#: What each metric of the rejection family is (a name made by :func:`rejection_metric`).
REJECTION_SPEC: Final = MetricSpec(
    _C, "receive", "a delivery refused (4xx) or stopped as a loop (508) for the reason its name says"
)


def is_rejection_metric(name: str) -> bool:
    """Whether ``name`` is of the receiver's rejection family (``Rejected`` + a reason in CamelCase)."""
    return bool(_REJECTION.fullmatch(name))


def rejection_metric(reason: str) -> str:
    """The metric counting deliveries refused for ``reason`` (``signature_mismatch`` ->
    ``RejectedSignatureMismatch``); a reason that is not snake_case raises ``ValueError``."""
    if not _REASON.fullmatch(reason):
        raise ValueError(f"not a rejection reason: {reason!r}")
    return REJECTION_PREFIX + "".join(part.capitalize() for part in reason.split("_"))


def is_registered(name: str) -> bool:
    """Whether ``name`` is a metric of the registry (or of the receiver's rejection family)."""
    return name in METRICS or is_rejection_metric(name)


def metric_spec(name: MetricName | str) -> tuple[MetricName, MetricSpec]:
    """The registry's member and spec for ``name`` (``ValueError`` when it is not a metric of it)."""
    try:
        member = MetricName(name)
    except ValueError:
        raise ValueError(
            f"{name!r} is not a metric of the registry (cognigy_webhooks.metric_names)"
        ) from None
    return member, METRICS[member]


def dimension_values(
    name: MetricName, spec: MetricSpec, given: Mapping[str, object] | None
) -> dict[str, str]:
    """``given`` as the metric's own dimension values, in the registry's order: exactly its own
    dimensions, each a short non-empty text or an integer (``ValueError`` otherwise)."""
    given = given or {}
    if set(given) != set(spec.dimensions):
        raise ValueError(f"{name} takes the dimensions {list(spec.dimensions)}, not {sorted(given)}")
    out: dict[str, str] = {}
    for key in spec.dimensions:
        value = given[key]
        text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
        if not text.strip() or len(text) > 250:
            raise ValueError(f"{name}: dimension {key} must be a short non-empty text or an integer")
        out[key] = text
    return out


def metric_value(name: MetricName, value: object) -> float:
    """``value`` as a data point of ``name`` (``ValueError`` unless a finite number, bool excluded)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name}: the value must be a finite number")
    return float(value)
