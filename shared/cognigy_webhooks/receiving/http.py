"""The receiver's HTTP side: an API Gateway (REST, v1 proxy) event becomes a :class:`DeliveryRequest`,
and every answer is a :class:`Reply` rendered back into a proxy response.

- The body: raw bytes (base64 decoded when API Gateway marks it so); its size is checked before it is
  decoded and again after (413); a body that is not text or not base64 is a 400.
- Headers: by lower-cased name, every value kept in order; more values than any real request holds,
  or a name or value that is not valid text, is a 400.
- Replies: 202/200 carry ``{deliveryId, status}``; the others ``{message}`` (``limitBytes`` on a 413);
  a 503 says ``Retry-After``, a 401 ``WWW-Authenticate``. ``reason`` is machine-readable and safe to
  log (no secret, no signature, no credential).

Standard library only (the receiver's cold start).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any, NamedTuple

__all__ = ["UNAVAILABLE", "DeliveryRequest", "Reply", "bad_request", "parse_api_event", "unauthorized"]

_MAX_HEADER_PAIRS = 500
RETRY_AFTER_SECONDS = 5


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


def unauthorized(reason: str) -> Reply:
    return Reply(401, "rejected", reason, "Unauthorized")


def bad_request(reason: str, message: str) -> Reply:
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
        return bad_request("not_an_event", "Not an API Gateway proxy request")
    params = event.get("pathParameters")
    name = params.get("name") if isinstance(params, Mapping) else None
    pairs = _header_pairs(event)
    if pairs is None:
        return bad_request("too_many_headers", "Too many headers")
    if not all(_is_text(key) and _is_text(value) for key, value in pairs):
        return bad_request("bad_header", "A header is not valid text")
    headers: dict[str, list[str]] = {}
    for key, value in pairs:
        headers.setdefault(key.strip(" \t").lower(), []).append(value)
    raw = event.get("body")
    encoded = event.get("isBase64Encoded") is True
    body: bytes
    if raw is None:
        body = b""
    elif not isinstance(raw, str):
        return bad_request("bad_body", "The body is not text or base64")
    elif encoded:
        if len(raw) > 4 * (max_body_bytes // 3 + 1) + 8:
            return _too_large(max_body_bytes)
        try:
            body = base64.b64decode(raw.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error, ValueError):
            return bad_request("bad_base64", "The body is marked base64 but is not")
    else:
        if len(raw) > max_body_bytes:  # every character is at least one byte
            return _too_large(max_body_bytes)
        try:
            body = raw.encode("utf-8")
        except UnicodeEncodeError:
            return bad_request("bad_body", "The body is not valid text")
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
