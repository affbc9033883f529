"""Rejections and failures reported without letting a flood flood anything: logs and audit items go
through token buckets (one per endpoint and action; what a bucket refuses is counted and summarised
with the next report that passes), metrics count every reply.

Per reply, one EMF document (:class:`~cognigy_webhooks.emf.CountsDocument`, made once per outcome,
reason and status) and one flush of the injected metrics (names from
:mod:`cognigy_webhooks.metric_names`): ``Deliveries`` by ``Status`` (the HTTP status answered), the
outcome's count (``DeliveriesAccepted``, ``DeliveriesDuplicate``, ``DeliveriesRejected``,
``LoopsDetected``, ``DeliveriesFailed``), the reason's for a refusal or a loop
(``RejectedSignatureMismatch``...), ``LoopStops`` for every 508 and ``Replays`` for every delivery
whose replay key was already claimed (200 duplicate, 503 in flight, 508 a re-send of a loop).

Standard library only (the receiver's cold start).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from cognigy_webhooks.dal.audit import AuditLog
from cognigy_webhooks.emf import CountsDocument
from cognigy_webhooks.errors import DeliveryStoreError
from cognigy_webhooks.metric_names import MetricName, rejection_metric
from cognigy_webhooks.receiving.http import Reply

__all__ = ["DeliveryMetrics", "MetricsSink", "RejectionReporter"]


class _Bucket:
    __slots__ = ("stamp", "suppressed", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp
        self.suppressed: dict[str, int] = {}


class RejectionReporter:
    """Logs and audits rejections through token buckets, one per (endpoint, action): a burst of
    ``burst``, then ``per_second``. What a bucket refuses is counted by reason and summarised with the
    next report that passes. A flood on one endpoint (or on unknown names, which all count as
    ``_unknown``) never silences another endpoint's reports. The buckets are bounded in number.
    Metrics are not limited here: they count every rejection."""

    MAX_BUCKETS = 1024

    def __init__(
        self,
        audit: AuditLog | None,
        log: Any,
        *,
        burst: int,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._audit = audit
        self._log = log
        self.burst = float(burst)
        self.per_second = per_second
        self._clock = clock
        self._wall = wall
        self._buckets: OrderedDict[tuple[str, str], _Bucket] = OrderedDict()
        self._lock = threading.Lock()
        self.emitted = 0
        self.suppressed_total = 0

    def _take(self, key: tuple[str, str], reason: str) -> dict[str, int] | None:
        """A token (and the suppressed counts to summarise), or None after counting ``reason``."""
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(self.burst, now)
                while len(self._buckets) > self.MAX_BUCKETS:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(key)
                bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.per_second)
                bucket.stamp = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                summary, bucket.suppressed = bucket.suppressed, {}
                self.emitted += 1
                return summary
            bucket.suppressed[reason] = bucket.suppressed.get(reason, 0) + 1
            self.suppressed_total += 1
            return None

    def report(self, *, name: str, action: str, reply: Reply, detail: str | None = None) -> None:
        summary = self._take((name, action), reply.reason)
        if summary is None:
            return
        suppressed = sum(summary.values())
        note = detail
        if suppressed:
            counts = ", ".join(f"{reason}={n}" for reason, n in sorted(summary.items()))
            note = f"{detail + '; ' if detail else ''}{suppressed} earlier rejections not logged ({counts})"
        self._log.warning(
            "delivery rejected",
            extra={
                "endpoint": name,
                "action": action,
                "reason": reply.reason,
                "status": reply.status,
                "suppressed": suppressed,
            },
        )
        if self._audit is None:
            return
        try:
            self._audit.put(
                name=name,
                action=action,
                outcome="rejected",
                reason=reply.reason,
                status_code=reply.status,
                detail=note,
                now=self._wall(),
            )
        except DeliveryStoreError as exc:
            self._log.warning("audit write failed", extra={"endpoint": name, "error": str(exc)})

    def failure(self, message: str, *, exc_info: bool = False) -> None:
        """Our own failure (503): logged, bounded by the same bucket; never audited."""
        if self._take(("", "failure"), "unavailable") is not None:
            self._log.error("delivery not processed", extra={"error": message}, exc_info=exc_info)


_OUTCOME_METRICS = {
    "accepted": MetricName.DELIVERIES_ACCEPTED,
    "duplicate": MetricName.DELIVERIES_DUPLICATE,
    "rejected": MetricName.DELIVERIES_REJECTED,
    "loop": MetricName.LOOPS_DETECTED,
    "unavailable": MetricName.DELIVERIES_FAILED,
}
#: The reasons of a delivery whose replay key was already claimed (see the pipeline's step 8).
_REPLAY_REASONS = frozenset({"duplicate", "in_flight", "loop_repeated"})


class MetricsSink(Protocol):
    """What the receiver counts into (cognigy_webhooks.observability.metrics)."""

    def add_document(self, document: CountsDocument) -> None: ...

    def flush_metrics(self) -> None: ...


class DeliveryMetrics:
    """The counts of one reply (see the module docstring) as one EMF document, made once per
    (outcome, reason, status) and flushed at once. Metrics never cost a delivery its answer: a failing
    sink, or a reply outside the registry's names, is logged at debug level."""

    #: Replies are a closed set of (outcome, reason, status); the bound is only a guard.
    MAX_DOCUMENTS = 256

    def __init__(self, metrics: MetricsSink | None, log: Any) -> None:
        self._metrics = metrics
        self._log = log
        self._documents: dict[tuple[str, str, int], CountsDocument] = {}

    @staticmethod
    def names_of(reply: Reply) -> tuple[str, ...]:
        """The plain counts of a reply (``Deliveries`` by ``Status`` comes beside them)."""
        found = [str(_OUTCOME_METRICS.get(reply.outcome, MetricName.DELIVERIES_REJECTED))]
        if reply.outcome in ("rejected", "loop"):
            found.append(rejection_metric(reply.reason))
        if reply.outcome == "loop":
            found.append(str(MetricName.LOOP_STOPS))
        if reply.reason in _REPLAY_REASONS:
            found.append(str(MetricName.REPLAYS))
        return tuple(found)

    def document_of(self, reply: Reply) -> CountsDocument:
        key = (reply.outcome, reply.reason, reply.status)
        document = self._documents.get(key)
        if document is None:
            document = CountsDocument(
                self.names_of(reply), dimensional=(MetricName.DELIVERIES, {"Status": reply.status})
            )
            if len(self._documents) < self.MAX_DOCUMENTS:
                self._documents[key] = document
        return document

    def count(self, reply: Reply) -> None:
        if self._metrics is None:
            return
        try:
            self._metrics.add_document(self.document_of(reply))
            self._metrics.flush_metrics()
        except Exception:
            self._log.debug("metrics flush failed")
