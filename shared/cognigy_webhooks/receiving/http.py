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

import binascii
import json
from collections.abc import Mapping
from typing import Any, NamedTuple, cast

__all__ = ["UNAVAILABLE", "DeliveryRequest", "Reply", "bad_request", "parse_api_event", "unauthorized"]

_MAX_HEADER_PAIRS = 500
RETRY_AFTER_SECONDS = 5
_REPLY_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}


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
        headers = dict(_REPLY_HEADERS)
        if self.status == 503:
            headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="cognigy-webhooks", charset="UTF-8"'
        delivery_id = self.delivery_id
        if (
            self.outcome in ("accepted", "duplicate")
            and delivery_id is not None
            and delivery_id.isascii()
            and delivery_id.isalnum()
        ):
            # what json.dumps writes for these two keys, when the id needs no escaping (ours: hex)
            body = f'{{"deliveryId":"{delivery_id}","status":"{self.outcome}"}}'
        else:
            body = json.dumps(self.body(), separators=(",", ":"))
        return {"statusCode": self.status, "headers": headers, "body": body, "isBase64Encoded": False}


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


def _is_text(value: str) -> bool:
    """Encodable as UTF-8 (no lone surrogate): what HTTP can carry and DynamoDB can store."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _headers(event: Mapping[str, Any]) -> tuple[dict[str, tuple[str, ...]], bool] | None:
    """Every header value of the event by lower-cased name, in order: ``multiValueHeaders``, then any
    name only ``headers`` has; with whether all of them are text. None when the event holds more
    header values than any real request."""
    values: dict[str, tuple[str, ...]] = {}
    count = 0
    text = True
    listed = True  # every name of multiValueHeaders came as text with a list of values
    multi = event.get("multiValueHeaders")
    if type(multi) is dict or isinstance(multi, Mapping):
        for name, found in multi.items():
            if not (type(found) is list or isinstance(found, list | tuple)) or not isinstance(name, str):
                listed = False
                continue
            key = name.lower().strip(" \t")
            name_text = name.isascii() or _is_text(name)
            for value in found:
                if type(value) is str or isinstance(value, str):
                    if not (name_text and (value.isascii() or _is_text(value))):
                        text = False
                    held = values.get(key)
                    values[key] = (value,) if held is None else (*held, value)
                    count += 1
            if count > _MAX_HEADER_PAIRS:
                return None
    else:
        multi = None
    single = event.get("headers")
    if type(single) is dict or isinstance(single, Mapping):
        if listed and multi is not None and single.keys() <= multi.keys():
            return values, text  # every name is one multiValueHeaders has: nothing to add
        seen = (
            {n.lower() for n, f in multi.items() if isinstance(n, str) and isinstance(f, list | tuple)}
            if multi is not None
            else set()
        )
        for name, value in single.items():
            if isinstance(name, str) and isinstance(value, str) and name.lower() not in seen:
                if not (name.isascii() and value.isascii()) and not (_is_text(name) and _is_text(value)):
                    text = False
                key = name.strip(" \t").lower()
                held = values.get(key)
                values[key] = (value,) if held is None else (*held, value)
                count += 1
            if count > _MAX_HEADER_PAIRS:
                return None
    return values, text


def parse_api_event(event: object, *, max_body_bytes: int) -> DeliveryRequest | Reply:
    """An API Gateway REST proxy event -> the request, or the reply refusing it (400, 413). The body
    size is checked before the body is decoded, and again after."""
    if not (type(event) is dict or isinstance(event, Mapping)):
        return bad_request("not_an_event", "Not an API Gateway proxy request")
    event = cast(Mapping[str, Any], event)
    params = event.get("pathParameters")
    name = params.get("name") if type(params) is dict or isinstance(params, Mapping) else None
    found = _headers(event)
    if found is None:
        return bad_request("too_many_headers", "Too many headers")
    headers, text = found
    if not text:
        return bad_request("bad_header", "A header is not valid text")
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
            body = binascii.a2b_base64(raw, strict_mode=True)  # base64.b64decode(raw, validate=True)
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
    request_id = context.get("requestId") if type(context) is dict or isinstance(context, Mapping) else None
    return DeliveryRequest(
        name if isinstance(name, str) else None,
        headers,
        body,
        request_id if isinstance(request_id, str) else None,
    )


def _too_large(limit: int) -> Reply:
    return Reply(413, "rejected", "payload_too_large", "Payload too large", limit=limit)
