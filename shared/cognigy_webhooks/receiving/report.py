"""Rejections and failures reported without letting a flood flood anything: logs and audit items go
through token buckets (one per endpoint and action; what a bucket refuses is counted and summarised
with the next report that passes), metrics count every reply.

Standard library only (the receiver's cold start).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from cognigy_webhooks.dal.audit import AuditLog
from cognigy_webhooks.errors import DeliveryStoreError
from cognigy_webhooks.receiving.http import Reply

__all__ = ["DeliveryMetrics", "RejectionReporter"]


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
    "accepted": "DeliveriesAccepted",
    "duplicate": "DeliveriesDuplicate",
    "rejected": "DeliveriesRejected",
    "loop": "LoopsDetected",
    "unavailable": "DeliveriesFailed",
}


class DeliveryMetrics:
    """One count per reply by outcome, and per rejection reason (``RejectedSignatureMismatch``...),
    flushed at once (EMF). Metrics never cost a delivery its answer."""

    def __init__(self, metrics: Any, log: Any) -> None:
        self._metrics = metrics
        self._log = log
        self._lock = threading.Lock()

    def count(self, reply: Reply) -> None:
        if self._metrics is None:
            return
        names = [_OUTCOME_METRICS.get(reply.outcome, "DeliveriesRejected")]
        if reply.outcome in ("rejected", "loop"):
            names.append("Rejected" + "".join(part.capitalize() for part in reply.reason.split("_")))
        try:
            with self._lock:
                for metric in names:
                    self._metrics.add_metric(name=metric, unit="Count", value=1)
                self._metrics.flush_metrics()
        except Exception:
            self._log.debug("metrics flush failed")
