"""The tables' attribute names, and the one codec between plain data and DynamoDB attribute values.

THE place that knows what the items of EndpointsTable, AuditTable and DeliveriesTable are made of:
every reader and writer takes its attribute names from here (the register task's
:class:`~cognigy_webhooks.dal.records.Store`, the receiver's endpoint lookup, ledger and audit
writer, the audit sync), and converts with :func:`to_item` / :func:`from_item`. Standard library
only: the receiver imports it at cold start.

- **EndpointsTable** (key ``name``; index ``ByType`` on ``recordType`` + ``name``): one item per
  endpoint name, holding the record (:class:`Endpoint`: the attributes of
  ``models.records.EndpointRecord``, camelCase as the model dumps them by alias; ``spec`` is
  ``WebhookEndpoint.public_view()``, of which the receiver reads :class:`Spec`'s fields) and, while an
  execution creates its webhook, the create claim's two attributes. An item without ``recordType``
  holds only a claim: no record, never listed.
- **AuditTable** (key ``name`` + ``sk``, TTL ``expiresAt``, a stream of new images): one item per
  lifecycle or delivery event (:class:`Audit`: the attributes of ``models.records.AuditEvent``)
  plus its sort key ``sk`` = ``<timestamp with microseconds, Z>#<eventId>``
  (:func:`audit_sort_key`): time order, never two events on one key.
- **DeliveriesTable** (key ``pk``, TTL ``expiresAt``): ``d#<delivery id>``, one delivery and its
  replay-ledger entry (:class:`Delivery`), and ``l#<endpoint>#<conversation digest>``, a
  conversation's counts in sub-buckets ``b<n>`` (see :mod:`cognigy_webhooks.dal.deliveries`).

The codec: :func:`to_item` takes JSON-able data (what ``model_dump(mode="json")`` gives) to attribute
values exactly as boto3's ``TypeSerializer`` does after a JSON round trip (numbers as Decimals in
DynamoDB's context, a top-level None dropped, a nested one kept as NULL); :func:`from_item` is the
way back, numbers plain (int when integral, else float) and binaries as ``bytes``.
``tests/unit/test_dal_schema.py`` holds both to boto3's and every name to the models and to
template.yaml.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow
from typing import Any, Final

__all__ = [
    "Audit",
    "Delivery",
    "Endpoint",
    "Spec",
    "audit_item",
    "audit_sort_key",
    "delivery_audit_item",
    "delivery_item",
    "from_item",
    "iso_time",
    "record_fields",
    "text",
    "to_item",
]


class Endpoint:
    """EndpointsTable: the record's attributes (``EndpointRecord`` by alias) and the create claim's."""

    NAME: Final = "name"  # the table's key
    RECORD_TYPE: Final = "recordType"  # the ByType index's key; absent on an item holding only a claim
    WEBHOOK_ID: Final = "webhookId"
    SPEC_HASH: Final = "specHash"
    SPEC: Final = "spec"
    STATUS: Final = "status"
    LAST_OUTCOME: Final = "lastOutcome"
    LAST_REASON: Final = "lastReason"
    LAST_EXECUTION_ID: Final = "lastExecutionId"
    LAST_SOURCE: Final = "lastSource"
    LAST_PROBE: Final = "lastProbe"
    PROBE_COUNT: Final = "probeCount"
    PROBE_SUCCESSES: Final = "probeSuccesses"
    CREATE_MAYBE_APPLIED: Final = "createMaybeApplied"  # also kept on an item holding only a claim
    CREATED_AT: Final = "createdAt"
    UPDATED_AT: Final = "updatedAt"
    VERSION: Final = "version"  # every write is conditioned on it
    # the endpoints dialect: Cognigy.AI's project, lastChanged, the URLToken's secret ARN (never the token)
    PROJECT_ID: Final = "projectId"
    LAST_CHANGED: Final = "lastChanged"
    URL_TOKEN_ARN: Final = "urlTokenArn"
    WATCH: Final = "watch"  # the watch's state (models.watch.WatchState), None until the first watch
    # the create claim (the protocol's, not the record's: see dal.records)
    CLAIM_TOKEN: Final = "createClaim"
    CLAIM_EXPIRES: Final = "createClaimExpiresAt"

    BY_TYPE_INDEX: Final = "ByType"
    TYPE_ENDPOINT: Final = "endpoint"  # recordType of an endpoint record (EndpointRecord.record_type)

    RECORD_ATTRIBUTES: Final = frozenset(
        {
            NAME,
            RECORD_TYPE,
            WEBHOOK_ID,
            SPEC_HASH,
            SPEC,
            STATUS,
            LAST_OUTCOME,
            LAST_REASON,
            LAST_EXECUTION_ID,
            LAST_SOURCE,
            LAST_PROBE,
            PROBE_COUNT,
            PROBE_SUCCESSES,
            CREATE_MAYBE_APPLIED,
            CREATED_AT,
            UPDATED_AT,
            VERSION,
            PROJECT_ID,
            LAST_CHANGED,
            URL_TOKEN_ARN,
            WATCH,
        }
    )
    CLAIM_ATTRIBUTES: Final = (CLAIM_TOKEN, CLAIM_EXPIRES)


class Spec:
    """The fields of a stored spec (``WebhookEndpoint.public_view()``) that the receiver reads."""

    IS_ACTIVE: Final = "isActive"
    PAYLOAD_FORMAT: Final = "payloadFormat"
    SIGNATURE_SCHEME: Final = "signatureScheme"
    SIGNATURE_HEADER: Final = "signatureHeader"
    SIGNATURE_SECRET_ARN: Final = "signatureSecretArn"
    BASIC_AUTH: Final = "basicAuth"
    BASIC_USERNAME: Final = "username"  # inside basicAuth
    BASIC_PASSWORD_ARN: Final = "passwordArn"  # inside basicAuth


class Audit:
    """AuditTable: an audit event's attributes (``AuditEvent`` by alias) and the sort key."""

    NAME: Final = "name"  # the table's partition key: the endpoint's name
    SK: Final = "sk"  # the sort key (audit_sort_key)
    EVENT_ID: Final = "eventId"
    TIMESTAMP: Final = "timestamp"
    ACTION: Final = "action"
    OUTCOME: Final = "outcome"
    REASON: Final = "reason"
    DETAIL: Final = "detail"
    WEBHOOK_ID: Final = "webhookId"
    LATENCY_MS: Final = "latencyMs"
    COGNIGY_LATENCY_MS: Final = "cognigyLatencyMs"
    SUCCESS_RATE: Final = "successRate"
    TLS_VERSION: Final = "tlsVersion"
    STATUS_CODE: Final = "statusCode"
    PROBE_STATUS_CODE: Final = "probeStatusCode"
    ENDPOINT_URL: Final = "endpointUrl"
    EXECUTION_ID: Final = "executionId"
    SOURCE: Final = "source"
    TRACE_ID: Final = "traceId"  # Cognigy's id of a refused request (its RFC 7807 body)
    EXPIRES_AT: Final = "expiresAt"  # the table's TTL

    EVENT_ATTRIBUTES: Final = frozenset(
        {
            NAME,
            EVENT_ID,
            TIMESTAMP,
            ACTION,
            OUTCOME,
            REASON,
            DETAIL,
            WEBHOOK_ID,
            LATENCY_MS,
            COGNIGY_LATENCY_MS,
            SUCCESS_RATE,
            TLS_VERSION,
            STATUS_CODE,
            PROBE_STATUS_CODE,
            ENDPOINT_URL,
            EXECUTION_ID,
            SOURCE,
            TRACE_ID,
            EXPIRES_AT,
        }
    )
    #: ``source`` of the receiver's events (rejections, loops).
    SOURCE_DELIVERY: Final = "delivery"


class Delivery:
    """DeliveriesTable: a delivery (and its ledger entry), and a conversation's loop counters."""

    PK: Final = "pk"  # the table's key: DELIVERY_PREFIX + delivery id, or CONVERSATION_PREFIX + ...
    EXPIRES_AT: Final = "expiresAt"  # the table's TTL
    DELIVERY_PREFIX: Final = "d#"
    CONVERSATION_PREFIX: Final = "l#"
    COUNT_PREFIX: Final = "b"  # a conversation's sub-bucket: b<window step number>
    # a delivery
    DELIVERY_ID: Final = "deliveryId"
    ENDPOINT: Final = "endpoint"
    RECEIVED_AT: Final = "receivedAt"
    REPLAY_KIND: Final = "replayKind"
    PAYLOAD_FORMAT: Final = "payloadFormat"
    CONTENT_TYPE: Final = "contentType"
    BODY: Final = "body"
    SESSION_ID: Final = "sessionId"
    HOP: Final = "hop"
    # its ledger entry
    STATE: Final = "state"  # STATE_CLAIMED -> STATE_PUBLISHED (or STATE_LOOPED)
    CLAIMED_AT: Final = "claimedAt"
    CLAIM_TOKEN: Final = "claimToken"
    FINISHED_AT: Final = "finishedAt"

    STATE_CLAIMED: Final = "claimed"
    STATE_PUBLISHED: Final = "published"
    STATE_LOOPED: Final = "looped"


# --- timestamps and keys -----------------------------------------------------------------------------


_SECOND: list[tuple[int, str]] = [(-1, "")]  # the last second formatted (the receiver stamps many in one)
_LAST: list[tuple[float, str]] = [(-1.0, "")]  # the last time formatted, and its text


def iso_time(seconds: float) -> str:
    """UTC ISO-8601 with microseconds and ``Z``, as the audit sort key and the receiver write times.
    The same text as ``datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")``
    (microseconds rounded half to even), the date and time formatted once per second."""
    last = _LAST[0]
    if last[0] == seconds:  # the receiver stamps a delivery and its record with the same time
        return last[1]
    if seconds < 0:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fraction, whole = math.modf(seconds)
    second, micro = int(whole), round(fraction * 1e6)
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    held = _SECOND[0]
    if held[0] != second:
        held = _SECOND[0] = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    text = f"{held[1]}.{micro:06d}Z"
    _LAST[0] = (seconds, text)
    return text


def audit_sort_key(stamp: str, event_id: str) -> str:
    """An audit item's ``sk``: its timestamp (:func:`iso_time` form) then its event id, so events sort
    by time and two in one microsecond never collide (``AuditEvent.sk`` is the same)."""
    return f"{stamp}#{event_id}"


# --- the codec -------------------------------------------------------------------------------------

#: DynamoDB's number context (as boto3's): 38 digits, exponent -128..126, nothing rounded silently.
_NUMBERS = Context(Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow])


_TEN_TO_38 = 10**38  # an int below it in magnitude is its own text as a DynamoDB number


def _value(value: Any) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | Decimal):
        number = str(_NUMBERS.create_decimal(value))
        if number in ("Infinity", "-Infinity", "NaN", "sNaN"):
            raise TypeError("Infinity and NaN are not DynamoDB numbers")
        return {"N": number}
    if isinstance(value, float):
        raise TypeError("floats must be Decimals (to_item converts JSON numbers)")
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bytes | bytearray):
        return {"B": bytes(value)}
    if isinstance(value, Mapping):
        return {"M": {str(k): _value(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [_value(v) for v in value]}
    raise TypeError(f"a {type(value).__name__} is not a DynamoDB value")


def to_item(data: Mapping[str, Any]) -> dict[str, Any]:
    """Plain JSON-able data -> DynamoDB attribute values (floats become Decimals, None is dropped)."""
    clean = json.loads(json.dumps(data), parse_float=Decimal)
    return {k: _value(v) for k, v in clean.items() if v is not None}


def _number(text: str) -> int | float:
    value = _NUMBERS.create_decimal(text)  # as boto3 reads it (a malformed N reads as NaN)
    return int(value) if value == value.to_integral_value() else float(value)


def _plain(value: Any) -> Any:
    if not isinstance(value, Mapping) or len(value) != 1:
        raise TypeError("not a DynamoDB attribute value")
    [(kind, inner)] = value.items()
    if kind == "S":
        return str(inner)
    if kind == "N":
        return _number(str(inner))
    if kind == "BOOL":
        return bool(inner)
    if kind == "NULL":
        return None
    if kind == "B":
        return bytes(inner)
    if kind == "M":
        return {str(k): _plain(v) for k, v in inner.items()}
    if kind == "L":
        return [_plain(v) for v in inner]
    if kind == "SS":
        return {str(v) for v in inner}
    if kind == "NS":
        return {_number(str(v)) for v in inner}
    if kind == "BS":
        return {bytes(v) for v in inner}
    raise TypeError(f"DynamoDB type {kind!r} is not supported")


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute values -> plain data (numbers int when integral, else float; B as bytes).
    ``TypeError`` (``ValueError`` for a bad number) when ``item`` is not made of attribute values."""
    return {str(k): _plain(v) for k, v in item.items()}


def text(data: Mapping[str, Any], key: str) -> str | None:
    """``data[key]`` when it is a non-empty string, else None (a reader's tolerant look)."""
    value = data.get(key)
    return value if isinstance(value, str) and value else None


# --- items -------------------------------------------------------------------------------------------


def record_fields(data: dict[str, Any]) -> dict[str, Any] | None:
    """An EndpointsTable item's plain data (:func:`from_item`) -> the record's fields, the create
    claim's attributes taken out; None when the item holds no record (only a claim, or the mark a
    failed claim holder left). Changes ``data``."""
    for attribute in Endpoint.CLAIM_ATTRIBUTES:
        data.pop(attribute, None)
    if Endpoint.RECORD_TYPE not in data:
        return None
    return data


def audit_item(event: Mapping[str, Any], *, sk: str) -> dict[str, Any]:
    """An AuditTable item from an audit event's plain fields (``AuditEvent`` dumped by alias, or
    :func:`delivery_audit_item`'s) and its sort key."""
    return to_item({**event, Audit.SK: sk})


def delivery_audit_item(
    *,
    name: str,
    event_id: str,
    now: float,
    action: str,
    outcome: str,
    reason: str,
    retention_days: int,
    status_code: int | None = None,
    detail: str | None = None,
) -> dict[str, Any]:
    """The AuditTable item of one of the receiver's events (a rejection, a loop): the fields of an
    ``AuditEvent`` with ``source`` ``delivery``, kept ``retention_days`` days."""
    stamp = iso_time(now)
    event = {
        Audit.NAME: name,
        Audit.EVENT_ID: event_id,
        Audit.TIMESTAMP: stamp,
        Audit.ACTION: action,
        Audit.OUTCOME: outcome,
        Audit.REASON: reason,
        Audit.SOURCE: Audit.SOURCE_DELIVERY,
        Audit.EXPIRES_AT: int(now + retention_days * 86400),
        Audit.STATUS_CODE: status_code,
        Audit.DETAIL: detail or None,
    }
    return audit_item(event, sk=audit_sort_key(stamp, event_id))


def delivery_item(
    *,
    delivery_id: str,
    endpoint: str,
    now: float,
    replay_kind: str,
    payload_format: str,
    content_type: str,
    body: bytes,
    retention_days: int,
    session_id: str | None = None,
    hop: int | None = None,
) -> dict[str, Any]:
    """A delivery's own attributes (DeliveriesTable; the ledger adds the key and the claim's), kept
    ``retention_days`` days; the content type is kept to its first 256 characters. (Attribute values
    made directly, as :func:`to_item` makes them for these types: one per delivery received.)"""
    expires = int(now + retention_days * 86400)
    item: dict[str, Any] = {
        Delivery.DELIVERY_ID: {"S": delivery_id},
        Delivery.ENDPOINT: {"S": endpoint},
        Delivery.RECEIVED_AT: {"S": iso_time(now)},
        Delivery.REPLAY_KIND: {"S": replay_kind},
        Delivery.PAYLOAD_FORMAT: {"S": payload_format},
        Delivery.CONTENT_TYPE: {"S": content_type[:256]},
        Delivery.BODY: {"B": bytes(body)},
        Delivery.EXPIRES_AT: {"N": str(expires)} if abs(expires) < _TEN_TO_38 else _value(expires),
    }
    if session_id is not None:
        item[Delivery.SESSION_ID] = {"S": session_id}
    if hop is not None:
        item[Delivery.HOP] = _value(hop)
    return item
