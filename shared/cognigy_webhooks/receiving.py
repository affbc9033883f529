"""The delivery pipeline: what the receive function does with each of Cognigy's deliveries.

Steps, each only when the earlier ones passed:

1. the API Gateway (REST, v1 proxy) event becomes a request: raw body bytes (base64 decoded when API
   Gateway marks it so), headers by lower-cased name with every value kept (each valid text) .. else 400
2. the body size, before any lookup or HMAC ............................................. else 413
3. the endpoint record (cached briefly); unknown, inactive and unauthenticated endpoints get the
   same 401 as a failed authentication, so names cannot be probed
4. authentication over the raw bytes: the tutorial's signature header, Standard Webhooks, and/or HTTP
   Basic auth; current and previous secret (a rotation), one forced re-fetch on a mismatch .. 401
5. the content type against the endpoint's payloadFormat ................................. else 415
6. the content, in full and before anything is claimed, so that a content problem never claims
   anything and the same body always gets the same answer ..................................... else 400
   - ``payload_invalid``: the body does not parse (JSON: UTF-8, no NaN/Infinity; XML: well-formed,
     no DTD or entity, an ``encoding=`` that can be read);
   - ``payload_unrepresentable``: it parses, but past a bound (JSON nesting over
     :data:`MAX_JSON_DEPTH` = 64 levels, checked on the bytes before parsing; XML deeper than 64
     elements or over 20,000 of them), or into what the hand-off (JSON in UTF-8) cannot carry: a lone
     surrogate (``"\\ud83d"``) in a key or string, a number that is not finite (``1e400``). The detail
     that will be published (slimmed when too big for EventBridge) is rendered here, and exactly that
     text is published later.
7. the hop header above its bound ......................................................... 508
8. the claim in the delivery ledger: the first delivery with this replay key stores it; every other
   is a duplicate, answered 200 with the first one's id and with no second side effect once the
   first is handed on. While the first is still in flight, the duplicate waits for it (at most
   ``inflight_wait_seconds``, reading the ledger on a fixed schedule): published -> 200, stopped as a
   loop -> 508, given back -> this one claims and hands it on, still in flight -> 503 ``in_flight``
   (Cognigy retries; a claim whose invocation died is taken over after its lease). A duplicate is
   never acknowledged for a delivery that may not be handed on. The replay key never depends on the
   secret that verified it (see :mod:`cognigy_webhooks.delivery_store`)
9. the conversation's sliding-window count above its bound ................................ 508
10. hand-off: publish to the EventBridge bus, mark the delivery published ................. 202

After a won claim, every exit either publishes exactly once or releases the claim: whatever is raised
before the event is out (a failing count, bus or mark, a bug, even a BaseException) gives the claim
back before it propagates (503), so Cognigy's retry is processed afresh instead of being answered
``200 duplicate`` for a delivery never handed on. Once the event is out the answer is 202, whatever
fails next (marking it, logging, metrics).

Rejections are audited (reason only: never a secret, a signature or a credential) and counted in
metrics; logs and audit items are rate-limited (the rest are counted and summarised) so a flood
cannot flood them. Nothing a client sends produces a 500, nor a 5xx of any kind when AWS is up:
failures of AWS itself answer 503 (Cognigy retries), anything unexpected too, with the details in the
(bounded) logs only.

This module must not import pydantic or httpx (the receiver's cold start); see ``bench/receive.py``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import logging
import math
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from cognigy_webhooks.delivery_store import (
    STATE_CLAIMED,
    STATE_LOOPED,
    STATE_PUBLISHED,
    AuditLog,
    DeliveryBus,
    DeliveryLedger,
    DeliveryStoreError,
    EndpointAuth,
    EndpointDirectory,
    LazyClients,
    SecretVersions,
    delivery_id_for,
    iso_time,
)
from cognigy_webhooks.loopguard import LOOP_HOP_HEADER, LOOP_ID_HEADER, LOOP_ORIGIN_HEADER, read_loop_headers
from cognigy_webhooks.settings_receive import ReceiveSettings
from cognigy_webhooks.signing import (
    STANDARD_ID_HEADER,
    STANDARD_SIGNATURE_HEADER,
    STANDARD_TIMESTAMP_HEADER,
    Refusal,
    Verification,
    verify_cognigy_signature,
    verify_standard_webhook,
)

__all__ = [
    "MAX_JSON_DEPTH",
    "DeliveryRequest",
    "PayloadRefused",
    "Receiver",
    "RejectionReporter",
    "Reply",
    "XmlRefused",
    "conversation_of",
    "json_nesting_exceeds",
    "parse_api_event",
    "parse_payload",
    "parse_xml",
    "representation_problem",
]

#: Names as the models allow them (3-100 characters); anything else is unknown without a lookup.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{1,98}[A-Za-z0-9._-]")
_MAX_HEADER_PAIRS = 500
_MAX_CONVERSATION_LENGTH = 256
UNKNOWN_ENDPOINT = "_unknown"
RETRY_AFTER_SECONDS = 5

_log = logging.getLogger("cognigy-webhooks")


# --- replies ------------------------------------------------------------------------------------


class Reply(NamedTuple):
    """What the receiver answers. ``reason`` is machine-readable and safe to log (no secret, no
    signature, no credential); ``outcome`` is accepted | duplicate | rejected | loop | unavailable."""

    status: int
    outcome: str
    reason: str
    message: str = ""
    delivery_id: str | None = None
    limit: int | None = None

    def body(self) -> dict[str, Any]:
        if self.outcome in ("accepted", "duplicate"):
            return {"deliveryId": self.delivery_id, "status": self.outcome}
        body: dict[str, Any] = {"message": self.message}
        if self.limit is not None:
            body["limitBytes"] = self.limit
        return body

    def to_api_gateway(self) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "Cache-Control": "no-store"}
        if self.status == 503:
            headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="cognigy-webhooks", charset="UTF-8"'
        return {
            "statusCode": self.status,
            "headers": headers,
            "body": json.dumps(self.body(), separators=(",", ":")),
            "isBase64Encoded": False,
        }


def _unauthorized(reason: str) -> Reply:
    return Reply(401, "rejected", reason, "Unauthorized")


def _bad_request(reason: str, message: str) -> Reply:
    return Reply(400, "rejected", reason, message)


UNAVAILABLE = Reply(503, "unavailable", "unavailable", "Temporarily unavailable; retry later")


# --- the request --------------------------------------------------------------------------------


class DeliveryRequest(NamedTuple):
    """A delivery as received: the endpoint name from the path, every header (names lower-cased, all
    values kept, in order) and the raw body bytes."""

    name: str | None
    headers: Mapping[str, tuple[str, ...]]
    body: bytes
    request_id: str | None = None

    def values(self, name: str) -> tuple[str, ...]:
        return self.headers.get(name.lower(), ())

    def pairs(self, *names: str) -> list[tuple[str, str]]:
        return [(n, v) for n in (x.lower() for x in names) for v in self.headers.get(n, ())]


def _header_pairs(event: Mapping[str, Any]) -> list[tuple[str, str]] | None:
    """(name, value) pairs from multiValueHeaders, plus any name only ``headers`` has. None when the
    event holds more header values than any real request."""
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    multi = event.get("multiValueHeaders")
    if isinstance(multi, Mapping):
        for name, values in multi.items():
            if not isinstance(name, str) or not isinstance(values, list | tuple):
                continue
            seen.add(name.lower())
            for value in values:
                if isinstance(value, str):
                    pairs.append((name, value))
            if len(pairs) > _MAX_HEADER_PAIRS:
                return None
    single = event.get("headers")
    if isinstance(single, Mapping):
        for name, value in single.items():
            if isinstance(name, str) and isinstance(value, str) and name.lower() not in seen:
                pairs.append((name, value))
            if len(pairs) > _MAX_HEADER_PAIRS:
                return None
    return pairs


def _is_text(value: str) -> bool:
    """Encodable as UTF-8 (no lone surrogate): what HTTP can carry and DynamoDB can store."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_api_event(event: object, *, max_body_bytes: int) -> DeliveryRequest | Reply:
    """An API Gateway REST proxy event -> the request, or the reply refusing it (400, 413). The body
    size is checked before the body is decoded, and again after."""
    if not isinstance(event, Mapping):
        return _bad_request("not_an_event", "Not an API Gateway proxy request")
    params = event.get("pathParameters")
    name = params.get("name") if isinstance(params, Mapping) else None
    pairs = _header_pairs(event)
    if pairs is None:
        return _bad_request("too_many_headers", "Too many headers")
    if not all(_is_text(key) and _is_text(value) for key, value in pairs):
        return _bad_request("bad_header", "A header is not valid text")
    headers: dict[str, list[str]] = {}
    for key, value in pairs:
        headers.setdefault(key.strip(" \t").lower(), []).append(value)
    raw = event.get("body")
    encoded = event.get("isBase64Encoded") is True
    body: bytes
    if raw is None:
        body = b""
    elif not isinstance(raw, str):
        return _bad_request("bad_body", "The body is not text or base64")
    elif encoded:
        if len(raw) > 4 * (max_body_bytes // 3 + 1) + 8:
            return _too_large(max_body_bytes)
        try:
            body = base64.b64decode(raw.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error, ValueError):
            return _bad_request("bad_base64", "The body is marked base64 but is not")
    else:
        if len(raw) > max_body_bytes:  # every character is at least one byte
            return _too_large(max_body_bytes)
        try:
            body = raw.encode("utf-8")
        except UnicodeEncodeError:
            return _bad_request("bad_body", "The body is not valid text")
    if len(body) > max_body_bytes:
        return _too_large(max_body_bytes)
    context = event.get("requestContext")
    request_id = context.get("requestId") if isinstance(context, Mapping) else None
    return DeliveryRequest(
        name=name if isinstance(name, str) else None,
        headers={k: tuple(v) for k, v in headers.items()},
        body=body,
        request_id=request_id if isinstance(request_id, str) else None,
    )


def _too_large(limit: int) -> Reply:
    return Reply(413, "rejected", "payload_too_large", "Payload too large", limit=limit)


# --- payloads -----------------------------------------------------------------------------------

PAYLOAD_INVALID = "payload_invalid"
PAYLOAD_UNREPRESENTABLE = "payload_unrepresentable"
#: Deepest nesting of a JSON body (objects and arrays, the outermost counting 1), checked on the bytes
#: before parsing, so that the answer never depends on how much stack the parser happens to have.
MAX_JSON_DEPTH = 64


class PayloadRefused(ValueError):
    """A signed body that is not handed on. ``reason`` is ``payload_invalid`` (it does not parse as the
    endpoint's payloadFormat) or ``payload_unrepresentable`` (it parses, but beyond the documented
    bounds, or into something the hand-off, JSON in UTF-8, cannot carry). ``message`` names the
    problem and never echoes the content. A function of the body alone: the same body is always
    refused the same way."""

    def __init__(self, message: str, *, reason: str = PAYLOAD_INVALID) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class XmlRefused(PayloadRefused):
    """The XML body is malformed, declares an encoding that cannot be read, uses what a delivery never
    needs (a DTD, entities), or exceeds the depth or element bound (``payload_unrepresentable``)."""


_XML_MAX_DEPTH = 64
_XML_MAX_ELEMENTS = 20_000
#: The XML document as plain data nests at most this deep: the root mapping, then per element its
#: mapping and the list of a repeated child.
_XML_MAX_DATA_DEPTH = 2 * _XML_MAX_DEPTH + 1


def parse_xml(body: bytes) -> dict[str, Any]:
    """Parse an XML delivery into plain data: ``{root: value}`` where an element with only text is its
    text (None when empty), and an element with attributes or children is a dict (``@name`` for
    attributes, ``#text`` for text, a list for a repeated child). DTDs and entities are refused (no
    entity expansion, no external fetch); depth and element count are bounded.

    Raises :class:`XmlRefused` for every problem with the content, whatever expat raised for it
    (ExpatError, LookupError for an unknown ``encoding=``, ValueError for a multi-byte one...)."""
    from xml.parsers import expat  # only XML endpoints pay for it

    parser = expat.ParserCreate()
    root: dict[str, Any] = {}
    stack: list[tuple[str, dict[str, Any], list[str]]] = [("", root, [])]
    count = 0

    def refuse(*_args: Any) -> None:
        raise XmlRefused("DTDs and entities are not accepted")

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal count
        count += 1
        if len(stack) > _XML_MAX_DEPTH:
            raise XmlRefused(
                f"The body nests deeper than {_XML_MAX_DEPTH} elements", reason=PAYLOAD_UNREPRESENTABLE
            )
        if count > _XML_MAX_ELEMENTS:
            raise XmlRefused(
                f"The body has more than {_XML_MAX_ELEMENTS} elements", reason=PAYLOAD_UNREPRESENTABLE
            )
        stack.append((tag, {f"@{k}": v for k, v in attrs.items()}, []))

    def end(tag: str) -> None:
        _tag, node, text_parts = stack.pop()
        text = "".join(text_parts).strip()
        value: Any
        if node:
            if text:
                node["#text"] = text
            value = node
        else:
            value = text or None
        parent = stack[-1][1]
        if tag in parent:
            existing = parent[tag]
            if isinstance(existing, list) and getattr(existing, "_repeated", False):
                existing.append(value)
            else:
                repeated = _Repeated([existing, value])
                parent[tag] = repeated
        else:
            parent[tag] = value

    def chars(data: str) -> None:
        stack[-1][2].append(data)

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse  # type: ignore[assignment]
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(body, True)
    except XmlRefused:
        raise
    except expat.ExpatError as exc:
        raise XmlRefused("The body is not well-formed XML") from exc
    except (LookupError, ValueError) as exc:  # the encoding handler: unknown, multi-byte, undecodable
        raise XmlRefused("The body declares an encoding that cannot be read") from exc
    except Exception as exc:  # whatever else the parser raises on content is still the content's
        raise XmlRefused("The body is not well-formed XML") from exc
    if len(root) != 1:
        raise XmlRefused("The body is not well-formed XML")
    return _plain(root)


class _Repeated(list[Any]):
    """A list made for repeated XML children (so a child's own list value is never extended)."""

    _repeated = True


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_UNESCAPED_KEEP = bytes(b for b in range(256) if b not in b'[]{}"')


def json_nesting_exceeds(body: bytes, limit: int) -> bool:
    """Whether the JSON text ``body`` nests objects and arrays deeper than ``limit`` (the outermost
    counting 1; brackets inside strings do not count). Exact for valid JSON, deterministic for any
    bytes; linear, C-speed but for one pass over the brackets, and it never recurses."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    # escaped backslashes, then escaped quotes: what is left of the quotes delimits strings
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(unescaped.translate(None, _UNESCAPED_KEEP).split(b'"')[::2])
    depth = 0
    for byte in outside:
        if byte in b"[{":
            depth += 1
            if depth > limit:
                return True
        elif depth:
            depth -= 1
    return False


def _parse_json(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadRefused("The body is not valid JSON") from None
    if json_nesting_exceeds(body, MAX_JSON_DEPTH):
        raise PayloadRefused(_DEEP.format(MAX_JSON_DEPTH), reason=PAYLOAD_UNREPRESENTABLE)
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):  # RecursionError: not within MAX_JSON_DEPTH, kept as a guard
        raise PayloadRefused("The body is not valid JSON") from None


_LONE_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")
_DEEP = "The body nests deeper than {} levels"
_KEY = "The body holds an object key that is not a string"
_SURROGATE = "The body holds a lone surrogate (an unpaired \\ud800-\\udfff escape) in a string"
_NOT_FINITE = "The body holds a number that JSON cannot carry (too large: not finite)"
_OTHER = "The body holds a value that JSON cannot carry"
_UNRENDERABLE = "The body cannot be handed on as JSON"


def _scalar_problem(value: Any) -> str | None:
    if isinstance(value, str):
        if not value.isascii() and _LONE_SURROGATE_RE.search(value) is not None:
            return _SURROGATE
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else _NOT_FINITE
    if value is None or isinstance(value, int):  # bool is an int
        return None
    return _OTHER


def representation_problem(payload: Any, *, max_depth: int) -> str | None:
    """What keeps parsed ``payload`` from being handed on as JSON in UTF-8, or None: nesting deeper
    than ``max_depth`` (the outermost object or array counting 1), an object key that is not a string,
    a lone surrogate in a key or a string (a ``\\ud83d`` escape without its pair), a number that is
    not finite (``1e400`` parses as infinity), or a value of another type. Iterative (no recursion,
    whatever the depth) and in a fixed order, so the same payload always gets the same message."""
    pending: list[tuple[Any, int]] = [(payload, 0)]
    while pending:
        value, depth = pending.pop()
        if not isinstance(value, dict | list):
            problem = _scalar_problem(value)
            if problem is not None:
                return problem
            continue
        depth += 1
        if depth > max_depth:
            return _DEEP.format(max_depth)
        children = value.values() if isinstance(value, dict) else value
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, str):
                    return _KEY
                if not key.isascii() and _LONE_SURROGATE_RE.search(key) is not None:
                    return _SURROGATE
        for child in children:
            if isinstance(child, dict | list):
                pending.append((child, depth))
            else:
                problem = _scalar_problem(child)
                if problem is not None:
                    return problem
    return None


def parse_payload(body: bytes, payload_format: str) -> Any:
    """The body as plain data. Raises :class:`PayloadRefused` (a 400 with its reason) for every
    problem with the content that parsing can see: not valid, deeper than the bound (JSON: checked on
    the bytes first, so the answer never depends on the parser's stack), and for XML anything
    :func:`representation_problem` finds (keys are always strings there, but it is checked)."""
    if payload_format != "XML":
        return _parse_json(body)
    payload = parse_xml(body)
    problem = representation_problem(payload, max_depth=_XML_MAX_DATA_DEPTH)
    if problem is not None:
        raise PayloadRefused(problem, reason=PAYLOAD_UNREPRESENTABLE)
    return payload


def payload_max_depth(payload_format: str) -> int:
    """How deep a parsed payload of this format may nest as plain data."""
    return _XML_MAX_DATA_DEPTH if payload_format == "XML" else MAX_JSON_DEPTH


def conversation_of(payload: Any) -> str | None:
    """Cognigy's ``sessionId`` in a delivery: at the top, under ``data``, or under the XML root."""
    candidates: list[Any] = [payload]
    if isinstance(payload, dict):
        candidates.append(payload.get("data"))
        if len(payload) == 1:  # an XML document: {root: {...}}
            candidates.append(next(iter(payload.values())))
    for candidate in candidates:
        if isinstance(candidate, dict):
            value = candidate.get("sessionId")
            if isinstance(value, bool):
                continue
            if isinstance(value, int):
                value = str(value)
            if isinstance(value, str) and 0 < len(value) <= _MAX_CONVERSATION_LENGTH:
                return value
    return None


_MEDIA_TYPES = {
    "JSON": ("application/json", "+json", "application/json"),
    "XML": ("application/xml", "+xml", "application/xml or text/xml"),
}


def media_type_matches(values: tuple[str, ...], payload_format: str) -> bool:
    """One Content-Type that fits the endpoint's payloadFormat (charset, when given, must be UTF-8 for
    JSON; XML declares its own encoding)."""
    if len(values) != 1:
        return False
    media, _, params = values[0].partition(";")
    media = media.strip(" \t").lower()
    exact, suffix, _label = _MEDIA_TYPES.get(payload_format, _MEDIA_TYPES["JSON"])
    if payload_format == "XML":
        fits = media in (exact, "text/xml") or (media.startswith("application/") and media.endswith(suffix))
    else:
        fits = media == exact or (media.startswith("application/") and media.endswith(suffix))
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip(" \t").lower() == "charset" and value.strip(" \t\"'").lower() not in (
                "utf-8",
                "utf8",
            ):
                return False
    return fits


# --- rejections: audit, logs, bounded -----------------------------------------------------------


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


# --- authentication -----------------------------------------------------------------------------

_REFUSAL_REASONS = {
    Refusal.MISSING: "signature_missing",
    Refusal.MALFORMED: "signature_malformed",
    Refusal.BAD_ENCODING: "signature_malformed",
    Refusal.STALE: "timestamp_stale",
    Refusal.FUTURE: "timestamp_future",
    Refusal.MISMATCH: "signature_mismatch",
    Refusal.NO_SECRET: "secret_unusable",
}


#: A failure that a secret rotated since it was cached could explain (worth one forced re-fetch).
_REFRESH_REASONS = frozenset({"signature_mismatch", "credentials_mismatch", "secret_unusable"})


class _Auth(NamedTuple):
    ok: bool
    reason: str
    replay_kind: str = ""
    replay_key: str | bytes = b""


def _body_key(body: bytes) -> _Auth:
    """The replay key of a scheme that authenticates the body alone (the tutorial's signature, Basic
    auth): its SHA-256, whichever secret version verified it and whatever unsigned timestamp came
    with it."""
    return _Auth(True, "ok", "body-sha256", hashlib.sha256(body).hexdigest())


def _basic_credentials(values: tuple[str, ...]) -> tuple[bytes, bytes] | str:
    if not values:
        return "authorization_missing"
    if len(values) > 1:
        return "authorization_duplicated"
    scheme, _, token = values[0].strip(" \t").partition(" ")
    if scheme.lower() != "basic" or not token or len(token) > 4096:
        return "authorization_malformed"
    try:
        decoded = base64.b64decode(token.strip(" \t").encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return "authorization_malformed"
    user, colon, password = decoded.partition(b":")
    if not colon:
        return "authorization_malformed"
    return user, password


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


# --- the receiver -------------------------------------------------------------------------------

_IN_FLIGHT = "This delivery is still being handed on; retry later"


def inflight_waits(total: float) -> tuple[float, ...]:
    """The pauses a duplicate makes while the first delivery is in flight: 20 ms doubling up to
    250 ms, adding up to ``total`` seconds (a fixed schedule: the number of ledger reads is bounded)."""
    waits: list[float] = []
    delay, left = 0.02, total
    while left > 1e-9:
        step = round(min(delay, left), 6)
        waits.append(step)
        left -= step
        delay = min(delay * 2, 0.25)
    return tuple(waits)


def _state_of(item: Mapping[str, Any]) -> str:
    value = item.get("state")
    text = value.get("S") if isinstance(value, Mapping) else None
    return text if isinstance(text, str) else STATE_CLAIMED


class Receiver:
    """The pipeline with its collaborators. Thread-safe: concurrent invocations may share one."""

    def __init__(
        self,
        settings: ReceiveSettings,
        *,
        directory: EndpointDirectory,
        secrets: SecretVersions,
        ledger: DeliveryLedger,
        bus: DeliveryBus,
        audit: AuditLog,
        log: Any = None,
        metrics: Any = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.settings = settings
        self.sleep = sleep
        self._inflight_waits = inflight_waits(settings.inflight_wait_seconds)
        self.directory = directory
        self.secrets = secrets
        self.ledger = ledger
        self.bus = bus
        self.audit = audit
        self.log = log if log is not None else _log
        self.metrics = metrics
        self.clock = clock
        self.reporter = RejectionReporter(
            audit, self.log, burst=settings.reject_report_burst, per_second=settings.reject_report_per_second
        )
        self._metrics_lock = threading.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: ReceiveSettings,
        *,
        clients: LazyClients | None = None,
        log: Any = None,
        metrics: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> Receiver:
        """Wire the AWS collaborators from the settings (clients are made on first use)."""
        clients = clients or LazyClients()
        return cls(
            settings,
            directory=EndpointDirectory(clients, settings.endpoints_table, ttl=settings.record_cache_seconds),
            secrets=SecretVersions(
                clients, max_age=settings.secret_max_age, refresh_seconds=settings.secret_refresh_seconds
            ),
            ledger=DeliveryLedger(clients, settings.deliveries_table),
            bus=DeliveryBus(clients, settings.bus_name, source=settings.event_source),
            audit=AuditLog(clients, settings.audit_table, retention_days=settings.audit_retention_days),
            log=log,
            metrics=metrics,
            clock=clock,
        )

    # --- entry points ----------------------------------------------------------------------------

    def handle_event(self, event: object) -> dict[str, Any]:
        """An API Gateway proxy event in, a proxy response out. Never answers 500 and raises no
        Exception (a BaseException propagates, after the claim, if any, was given back)."""
        reply = self.receive(event)
        self._count(reply)
        return reply.to_api_gateway()

    def receive(self, event: object) -> Reply:
        try:
            return self._receive(event)
        except DeliveryStoreError as exc:
            self._quietly(self.reporter.failure, str(exc))
        except Exception as exc:  # a bug must not become a 500 (nor a traceback in the response)
            self._quietly(self.reporter.failure, f"unexpected {type(exc).__name__}", exc_info=True)
        return UNAVAILABLE

    # --- the steps -------------------------------------------------------------------------------

    def _receive(self, event: object) -> Reply:
        settings = self.settings
        request = parse_api_event(event, max_body_bytes=settings.max_body_bytes)
        if isinstance(request, Reply):
            return self._reject(None, request)
        now = self.clock()

        name = request.name
        endpoint = self.directory.get(name) if name is not None and _NAME_RE.fullmatch(name) else None
        if endpoint is None or not endpoint.accepts_deliveries:
            reason = "endpoint_unknown" if endpoint is None else "endpoint_not_accepting"
            return self._reject(endpoint, _unauthorized(reason), requested=name)

        auth = self._authenticate(endpoint, request, now)
        if not auth.ok:
            return self._reject(endpoint, _unauthorized(auth.reason))

        if not media_type_matches(request.values("content-type"), endpoint.payload_format):
            label = _MEDIA_TYPES[endpoint.payload_format][2]
            return self._reject(
                endpoint, Reply(415, "rejected", "unsupported_media_type", f"This endpoint takes {label}")
            )
        # the content, in full, before anything is claimed: the body parses, and the very detail that
        # will be published renders (a content problem is a 400, the same one every time)
        try:
            payload = parse_payload(request.body, endpoint.payload_format)
        except PayloadRefused as exc:
            return self._reject(endpoint, _bad_request(exc.reason, exc.message))
        conversation = conversation_of(payload)
        delivery_id = delivery_id_for(endpoint.name, auth.replay_kind, auth.replay_key)
        loop = read_loop_headers(request.pairs(*_LOOP_HEADER_NAMES))
        detail_doc: dict[str, Any] = {
            "endpoint": endpoint.name,
            "deliveryId": delivery_id,
            "payloadFormat": endpoint.payload_format,
            "receivedAt": iso_time(now),
            "payload": payload,
        }
        if conversation is not None:
            detail_doc["sessionId"] = conversation
        if loop.hop is not None:
            detail_doc["hop"] = loop.hop
        try:
            detail = self.bus.render(detail_doc)
        except (ValueError, TypeError, RecursionError):  # UnicodeEncodeError, a non-finite number...
            problem = representation_problem(payload, max_depth=payload_max_depth(endpoint.payload_format))
            reply = _bad_request(PAYLOAD_UNREPRESENTABLE, problem or _UNRENDERABLE)
            return self._reject(endpoint, reply)

        if loop.hop is not None and loop.hop > settings.loop_max_hops:
            reply = Reply(508, "loop", "hop_limit", "Loop detected")
            return self._reject(endpoint, reply, action="loop_detected", detail=f"hop {loop.hop}")

        token = os.urandom(12).hex()
        item: dict[str, Any] = {
            "deliveryId": {"S": delivery_id},
            "endpoint": {"S": endpoint.name},
            "receivedAt": {"S": iso_time(now)},
            "replayKind": {"S": auth.replay_kind},
            "payloadFormat": {"S": endpoint.payload_format},
            "contentType": {"S": request.values("content-type")[0][:256]},
            "body": {"B": request.body},
            "expiresAt": {"N": str(int(now + settings.retention_days * 86400))},
        }
        if conversation is not None:
            item["sessionId"] = {"S": conversation}
        if loop.hop is not None:
            item["hop"] = {"N": str(loop.hop)}
        claim = self.ledger.claim(delivery_id, item, token=token, now=now, lease=settings.claim_lease_seconds)
        state = None if claim.won else claim.state
        for delay in self._inflight_waits:
            if state != STATE_CLAIMED:
                break
            # the first delivery is still being handed on (or its invocation died): wait for it
            # rather than acknowledge what may never be published
            self.sleep(delay)
            current = self.ledger.get(delivery_id)
            if current is None:  # it gave its claim back: this one hands the delivery on
                claim = self.ledger.claim(
                    delivery_id, item, token=token, now=now, lease=settings.claim_lease_seconds
                )
                state = None if claim.won else claim.state
            else:
                state = _state_of(current)
        if state is None:
            return self._hand_on(endpoint, delivery_id, token, conversation, detail, now)
        if state == STATE_LOOPED:
            return self._reject(endpoint, Reply(508, "loop", "loop_repeated", "Loop detected", delivery_id))
        if state == STATE_CLAIMED:  # still not handed on: Cognigy must come back (after the lease at worst)
            return Reply(503, "unavailable", "in_flight", _IN_FLIGHT, delivery_id)
        return Reply(200, "duplicate", "duplicate", delivery_id=delivery_id)

    def _hand_on(
        self,
        endpoint: EndpointAuth,
        delivery_id: str,
        token: str,
        conversation: str | None,
        detail: str,
        now: float,
    ) -> Reply:
        """Everything after a won claim. Until the event is out, whatever is raised (BaseException
        included) releases the claim before it propagates, so Cognigy's retry is processed afresh
        rather than answered ``200 duplicate`` for a delivery never handed on. Once the event is out
        the answer is 202 whatever fails next (marking it, logging, metrics)."""
        settings = self.settings
        looped: int | None = None
        try:
            if conversation is not None:
                count = self.ledger.count_conversation(
                    endpoint.name, conversation, now=now, window=settings.loop_window_seconds
                )
                if count > settings.loop_max_per_window:
                    self.ledger.finish(delivery_id, token=token, state=STATE_LOOPED, now=now)
                    looped = count
            if looped is None:
                self.bus.publish_rendered(detail)
        except BaseException:
            self._release(delivery_id, token)
            raise
        if looped is not None:  # decided and recorded: reporting it cannot change the answer
            reply = Reply(508, "loop", "conversation_limit", "Loop detected", delivery_id)
            note = f"{looped} deliveries of one conversation within {settings.loop_window_seconds} s"
            self._quietly(self._reject, endpoint, reply, action="loop_detected", detail=note)
            return reply
        # the event is out: answer 202. Marking it is tried twice; when it still fails, a retry within
        # the lease is answered 503 (in flight) and one after it publishes again, with the same
        # deliveryId (consumers dedupe on it): at least once, never acknowledged and lost
        for attempt in (1, 2):
            try:
                self.ledger.finish(delivery_id, token=token, state=STATE_PUBLISHED, now=now)
                break
            except Exception as exc:
                if attempt == 2:
                    why = (
                        str(exc)
                        if isinstance(exc, DeliveryStoreError)
                        else f"unexpected {type(exc).__name__}"
                    )
                    self._quietly(
                        self.reporter.failure, f"delivery {delivery_id} published but not marked: {why}"
                    )
        self._quietly(
            self.log.info, "delivery accepted", extra={"endpoint": endpoint.name, "deliveryId": delivery_id}
        )
        return Reply(202, "accepted", "accepted", delivery_id=delivery_id)

    def _release(self, delivery_id: str, token: str) -> None:
        """Give the claim back; a failure here leaves it to the lease (never hides what was raised)."""
        try:
            self.ledger.release(delivery_id, token=token)
        except Exception as exc:
            self._quietly(self.reporter.failure, f"delivery {delivery_id} not released: {type(exc).__name__}")

    def _quietly(self, report: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Logging, auditing and metrics never cost a delivery its answer."""
        try:
            report(*args, **kwargs)
        except Exception:
            with contextlib.suppress(Exception):
                self.log.debug("reporting failed")

    def _authenticate(self, endpoint: EndpointAuth, request: DeliveryRequest, now: float) -> _Auth:
        result = _Auth(False, "no_authentication")
        if endpoint.has_signature:
            result = self._with_refresh(
                endpoint.signature_secret_arn,
                lambda secrets: self._check_signature(endpoint, request, secrets, now),
            )
            if not result.ok:
                return result
        if endpoint.has_basic_auth:
            basic = self._with_refresh(
                endpoint.basic_password_arn, lambda secrets: self._check_basic(endpoint, request, secrets)
            )
            if not basic.ok or not endpoint.has_signature:
                return basic
        return result

    def _with_refresh(
        self, secret_arn: str | None, check: Callable[[tuple[str | bytes, ...]], _Auth]
    ) -> _Auth:
        """Check with the cached secret versions; on a mismatch, once, with freshly fetched ones (a
        rotation that happened since they were cached)."""
        assert secret_arn is not None
        secrets = self.secrets.get(secret_arn)
        result = check(secrets)
        if not result.ok and result.reason in (
            "signature_mismatch",
            "credentials_mismatch",
            "secret_unusable",
        ):
            fresh = self.secrets.refresh(secret_arn)
            if fresh is not None and fresh != secrets:
                result = check(fresh)
        return result

    def _check_signature(
        self, endpoint: EndpointAuth, request: DeliveryRequest, secrets: tuple[str | bytes, ...], now: float
    ) -> _Auth:
        tolerance = self.settings.tolerance_seconds
        verification: Verification
        if endpoint.scheme == "standard":
            pairs = request.pairs(STANDARD_ID_HEADER, STANDARD_TIMESTAMP_HEADER, STANDARD_SIGNATURE_HEADER)
            verification = verify_standard_webhook(
                request.body, pairs, secrets, tolerance_seconds=tolerance, now=now
            )
            if verification.ok and verification.message_id is not None:
                return _Auth(True, "ok", "webhook-id", verification.message_id)
        else:
            values = request.values(endpoint.signature_header or "")
            if len(values) > 1:
                return _Auth(False, "signature_duplicated")
            verification = verify_cognigy_signature(
                request.body, values[0] if values else None, secrets, tolerance_seconds=tolerance, now=now
            )
            if verification.ok:  # the signature covers the body alone: the body is the key
                return _body_key(request.body)
        return _Auth(False, _REFUSAL_REASONS.get(verification.reason, "signature_invalid"))

    def _check_basic(
        self, endpoint: EndpointAuth, request: DeliveryRequest, passwords: tuple[str | bytes, ...]
    ) -> _Auth:
        credentials = _basic_credentials(request.values("authorization"))
        if isinstance(credentials, str):
            return _Auth(False, credentials)
        if not passwords:
            return _Auth(False, "secret_unusable")
        user, password = credentials
        user_ok = hmac.compare_digest(user, _as_bytes(endpoint.basic_username or ""))
        password_ok = False
        for candidate in passwords:  # every version compared: the time does not tell which matched
            password_ok |= hmac.compare_digest(password, _as_bytes(candidate))
        if not (user_ok and password_ok):
            return _Auth(False, "credentials_mismatch")
        return _body_key(request.body)

    # --- reporting -------------------------------------------------------------------------------

    def _reject(
        self,
        endpoint: EndpointAuth | None,
        reply: Reply,
        *,
        action: str = "delivery_rejected",
        detail: str | None = None,
        requested: str | None = None,
    ) -> Reply:
        if endpoint is not None:
            name = endpoint.name
        else:
            name = UNKNOWN_ENDPOINT
            if requested is not None:
                shown = requested if _NAME_RE.fullmatch(requested) else "(not a valid name)"
                detail = f"requested endpoint {shown}"
        self.reporter.report(name=name, action=action, reply=reply, detail=detail)
        return reply

    def _count(self, reply: Reply) -> None:
        if self.metrics is None:
            return
        names = [_OUTCOME_METRICS.get(reply.outcome, "DeliveriesRejected")]
        if reply.outcome in ("rejected", "loop"):
            names.append("Rejected" + "".join(part.capitalize() for part in reply.reason.split("_")))
        try:
            with self._metrics_lock:
                for metric in names:
                    self.metrics.add_metric(name=metric, unit="Count", value=1)
                self.metrics.flush_metrics()
        except Exception:  # metrics must never cost a delivery
            self.log.debug("metrics flush failed")


_OUTCOME_METRICS = {
    "accepted": "DeliveriesAccepted",
    "duplicate": "DeliveriesDuplicate",
    "rejected": "DeliveriesRejected",
    "loop": "LoopsDetected",
    "unavailable": "DeliveriesFailed",
}
_LOOP_HEADER_NAMES = (LOOP_ORIGIN_HEADER, LOOP_ID_HEADER, LOOP_HOP_HEADER)
