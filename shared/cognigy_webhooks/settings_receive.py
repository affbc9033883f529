"""The receive function's environment, checked at cold start (logic never reads ``os.environ``).

A NamedTuple (immutable, typed), not a pydantic model nor a dataclass: the receiver's cold start is
measured against ``import boto3`` alone; pydantic would cost more than the whole budget, and a frozen
dataclass costs about 2 ms to create at import where a NamedTuple costs 0.1 ms. Bad values raise the same
:class:`~cognigy_webhooks.errors.InvalidSpec` as the other functions' settings, naming the variable
and never echoing its value.

Every variable but the shared table names is prefixed ``RECEIVE_`` (or is the bus name): on the local
stack all functions share one ``os.environ``, so names must not collide with other functions' values.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from cognigy_webhooks.errors import InvalidSpec

__all__ = ["ReceiveSettings"]


class _Var(NamedTuple):
    env: str
    parse: Callable[[str], Any]
    rule: str  # what a good value is, for the error message


def _int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text.strip())
        if not low <= value <= high:
            raise ValueError
        return value

    return parse


def _float(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = float(text.strip())
        if not low <= value <= high:  # also refuses NaN
            raise ValueError
        return value

    return parse


def _name(text: str) -> str:
    text = text.strip()
    if len(text) < 3:
        raise ValueError
    return text


#: The largest body the delivery ledger can hold: a DynamoDB item is at most 400 KB, and the item
#: keeps the body beside about 1 KB of attributes.
MAX_BODY_BYTES = 384 * 1024


class ReceiveSettings(NamedTuple):
    """What the receiver needs to know. Defaults are the issue's (256 KiB body cap, 300 s tolerance)."""

    endpoints_table: str
    audit_table: str
    deliveries_table: str
    bus_name: str
    #: Largest body accepted; bigger ones get 413 before any HMAC is computed.
    max_body_bytes: int = 256 * 1024
    #: How far a signature timestamp may be from now, both ways.
    tolerance_seconds: int = 300
    #: How long a delivery (and its replay-ledger entry) is kept: a replayed signature is recognised
    #: for this long, not only within the tolerance.
    retention_days: int = 30
    #: Audit events' TTL (the stack-wide AUDIT_RETENTION_DAYS).
    audit_retention_days: int = 400
    #: How long an endpoint record is cached (and an unknown name remembered: a fifth of it).
    record_cache_seconds: float = 30.0
    #: Secrets Manager values are cached this long (Powertools Parameters max_age).
    secret_max_age: int = 300
    #: At most one forced secret re-fetch per secret in this many seconds: a flood of forgeries must
    #: not become a flood of Secrets Manager calls, yet a forgery just before a rotation must not keep
    #: the new secret out for long (Cognigy's retry comes after it).
    secret_refresh_seconds: float = 2.0
    #: A delivery whose hop header is above this is a loop (508).
    loop_max_hops: int = 3
    #: Sliding window over which deliveries of one conversation are counted...
    loop_window_seconds: int = 60
    #: ...and how many the window may hold before the next one is a loop (508).
    loop_max_per_window: int = 20
    #: A claim left unfinished this long (a crashed invocation) may be taken over by a retry.
    claim_lease_seconds: int = 60
    #: How long a duplicate waits for the first delivery still in flight before answering 503.
    inflight_wait_seconds: float = 2.0
    #: Rejection logs and audit items: a burst of this many, then this many per second (the rest are
    #: counted and summarised); metrics count every rejection.
    reject_report_burst: int = 20
    reject_report_per_second: float = 1.0
    #: EventBridge ``source`` of published deliveries.
    event_source: str = "cognigy-webhooks"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ReceiveSettings:
        """Read the environment; every missing or bad variable is named in one InvalidSpec."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        errors: list[dict[str, str]] = []
        for field in cls._fields:
            var = _VARS[field]
            raw = env.get(var.env)
            if raw is None or raw == "":
                if field in cls._field_defaults:
                    continue  # keep the default
                errors.append({"field": var.env, "message": "is required"})
                continue
            try:
                values[field] = var.parse(raw)
            except (ValueError, OverflowError):
                errors.append({"field": var.env, "message": f"must be {var.rule}"})
        if errors:
            raise InvalidSpec(errors)
        return cls(**values)


_VARS: dict[str, _Var] = {
    "endpoints_table": _Var("ENDPOINTS_TABLE", _name, "a table name"),
    "audit_table": _Var("AUDIT_TABLE", _name, "a table name"),
    "deliveries_table": _Var("DELIVERIES_TABLE", _name, "a table name"),
    "bus_name": _Var("DELIVERY_BUS_NAME", _name, "an event bus name"),
    "max_body_bytes": _Var(
        "RECEIVE_MAX_BODY_BYTES", _int(1, MAX_BODY_BYTES), f"an integer 1..{MAX_BODY_BYTES}"
    ),
    "tolerance_seconds": _Var("RECEIVE_TOLERANCE_SECONDS", _int(1, 86400), "an integer 1..86400"),
    "retention_days": _Var("RECEIVE_RETENTION_DAYS", _int(1, 3650), "an integer 1..3650"),
    "audit_retention_days": _Var("AUDIT_RETENTION_DAYS", _int(1, 36500), "an integer 1..36500"),
    "record_cache_seconds": _Var("RECEIVE_RECORD_CACHE_SECONDS", _float(0, 3600), "a number 0..3600"),
    "secret_max_age": _Var("RECEIVE_SECRET_MAX_AGE_SECONDS", _int(0, 86400), "an integer 0..86400"),
    "secret_refresh_seconds": _Var("RECEIVE_SECRET_REFRESH_SECONDS", _float(0, 3600), "a number 0..3600"),
    "loop_max_hops": _Var("RECEIVE_LOOP_MAX_HOPS", _int(1, 1000), "an integer 1..1000"),
    "loop_window_seconds": _Var("RECEIVE_LOOP_WINDOW_SECONDS", _int(1, 86400), "an integer 1..86400"),
    "loop_max_per_window": _Var("RECEIVE_LOOP_MAX_PER_WINDOW", _int(1, 1_000_000), "an integer >= 1"),
    "claim_lease_seconds": _Var("RECEIVE_CLAIM_LEASE_SECONDS", _int(1, 86400), "an integer 1..86400"),
    "inflight_wait_seconds": _Var("RECEIVE_INFLIGHT_WAIT_SECONDS", _float(0, 25), "a number 0..25"),
    "reject_report_burst": _Var("RECEIVE_REJECT_REPORT_BURST", _int(0, 100_000), "an integer >= 0"),
    "reject_report_per_second": _Var("RECEIVE_REJECT_REPORT_PER_SECOND", _float(0, 100_000), "a number >= 0"),
    "event_source": _Var("RECEIVE_EVENT_SOURCE", _name, "an EventBridge source (3+ characters)"),
}
