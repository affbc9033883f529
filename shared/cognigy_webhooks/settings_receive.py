"""The receive function's environment, checked at cold start (logic never reads ``os.environ``).

A NamedTuple (immutable, typed), not a pydantic model nor a dataclass: the receiver's cold start is
measured against ``import boto3`` alone; pydantic would cost more than the whole budget, and a frozen
dataclass costs about 2 ms to create at import where a NamedTuple costs 0.1 ms. Each field names its
variable and rule once, with settings_base's ``Env`` (the base every function's settings share). A bad
or missing value raises :class:`~cognigy_webhooks.settings_base.InvalidReceiveSettings`, an
:class:`~cognigy_webhooks.errors.InvalidSettings` (also an ``InvalidSpec``, as it was), naming every
variable at fault and never echoing its value.

Names are the template's: the function has an environment of its own (on Lambda, and on the local stack).
"""

# No ``from __future__ import annotations``: the fields' Annotated metadata (their Env) is read from
# the class's annotations, evaluated once when the class is made.

from collections.abc import Mapping
from typing import Annotated, NamedTuple, Self

from cognigy_webhooks.settings_base import (
    Env,
    InvalidReceiveSettings,
    declared,
    integer,
    name,
    number,
    parsed,
)

__all__ = ["MAX_BODY_BYTES", "ReceiveSettings"]

#: The largest body the delivery ledger can hold: a DynamoDB item is at most 400 KB, and the item
#: keeps the body beside about 1 KB of attributes.
MAX_BODY_BYTES = 384 * 1024

_TABLE = name("a table name")


class ReceiveSettings(NamedTuple):
    """What the receiver needs to know. Defaults are the issue's (256 KiB body cap, 300 s tolerance)."""

    endpoints_table: Annotated[str, Env("ENDPOINTS_TABLE", _TABLE)]
    audit_table: Annotated[str, Env("AUDIT_TABLE", _TABLE)]
    deliveries_table: Annotated[str, Env("DELIVERIES_TABLE", _TABLE)]
    bus_name: Annotated[str, Env("DELIVERY_BUS_NAME", name("an event bus name"))]
    #: Largest body accepted; bigger ones get 413 before any HMAC is computed.
    max_body_bytes: Annotated[int, Env("MAX_BODY_BYTES", integer(1, MAX_BODY_BYTES))] = 256 * 1024
    #: How far a signature timestamp may be from now, both ways.
    tolerance_seconds: Annotated[int, Env("SIGNATURE_TOLERANCE_SECONDS", integer(1, 86400))] = 300
    #: How long a delivery (and its replay-ledger entry) is kept: a replayed signature is recognised
    #: for this long, not only within the tolerance.
    retention_days: Annotated[int, Env("DELIVERY_RETENTION_DAYS", integer(1, 3650))] = 30
    #: Audit events' TTL (the stack-wide AUDIT_RETENTION_DAYS).
    audit_retention_days: Annotated[int, Env("AUDIT_RETENTION_DAYS", integer(1, 36500))] = 400
    #: How long an endpoint record is cached (and an unknown name remembered: a fifth of it).
    record_cache_seconds: Annotated[float, Env("RECORD_CACHE_SECONDS", number(0, 3600))] = 30.0
    #: Secrets Manager values are cached this long (Powertools Parameters max_age).
    secret_max_age: Annotated[int, Env("SECRET_MAX_AGE_SECONDS", integer(0, 86400))] = 300
    #: At most one forced secret re-fetch per secret in this many seconds: a flood of forgeries must
    #: not become a flood of Secrets Manager calls, yet a forgery just before a rotation must not keep
    #: the new secret out for long (Cognigy's retry comes after it).
    secret_refresh_seconds: Annotated[float, Env("SECRET_REFRESH_SECONDS", number(0, 3600))] = 2.0
    #: A delivery whose hop header is above this is a loop (508).
    loop_max_hops: Annotated[int, Env("LOOP_MAX_HOPS", integer(1, 1000))] = 3
    #: Sliding window over which deliveries of one conversation are counted...
    loop_window_seconds: Annotated[int, Env("LOOP_WINDOW_SECONDS", integer(1, 86400))] = 60
    #: ...and how many the window may hold before the next one is a loop (508).
    loop_max_per_window: Annotated[
        int, Env("LOOP_MAX_PER_WINDOW", integer(1, 1_000_000, "an integer >= 1"))
    ] = 20
    #: A claim left unfinished this long (a crashed invocation) may be taken over by a retry.
    claim_lease_seconds: Annotated[int, Env("CLAIM_LEASE_SECONDS", integer(1, 86400))] = 60
    #: How long a duplicate waits for the first delivery still in flight before answering 503.
    inflight_wait_seconds: Annotated[float, Env("INFLIGHT_WAIT_SECONDS", number(0, 25))] = 2.0
    #: Rejection logs and audit items: a burst of this many, then this many per second (the rest are
    #: counted and summarised); metrics count every rejection.
    reject_report_burst: Annotated[
        int, Env("REJECT_REPORT_BURST", integer(0, 100_000, "an integer >= 0"))
    ] = 20
    reject_report_per_second: Annotated[
        float, Env("REJECT_REPORT_PER_SECOND", number(0, 100_000, "a number >= 0"))
    ] = 1.0
    #: EventBridge ``source`` of published deliveries.
    event_source: Annotated[
        str, Env("DELIVERY_EVENT_SOURCE", name("an EventBridge source (3+ characters)"))
    ] = "cognigy-webhooks"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Read the environment (default ``os.environ``); every missing or bad variable is named in
        one :class:`~cognigy_webhooks.settings_base.InvalidReceiveSettings`."""
        required = [field for field in cls._fields if field not in cls._field_defaults]
        return cls(**parsed(_VARIABLES, required, environ, InvalidReceiveSettings))

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable a field is read from."""
        return _VARIABLES[field].name


_VARIABLES = declared(
    "ReceiveSettings",
    {field: getattr(hint, "__metadata__", ()) for field, hint in ReceiveSettings.__annotations__.items()},
)
