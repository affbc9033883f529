"""Callback-loop prevention: mark what Cognigy delivers for us, and read the marks back.

Every endpoint we register carries three headers that Cognigy sends with each delivery. A receiver
that sees its own origin (and a loop id it knows) on an incoming request can tell that a delivery
came back round, and stop it instead of feeding it in again.

The tutorial stamped a fresh uuid on every run, so every spec looked changed to drift detection.
Here the values are derived from the endpoint name alone: applying the headers is deterministic
and idempotent, and ``spec_hash()`` is the same on every run.

Standard library only at import time (the receiver imports :func:`read_loop_headers` on its cold
path); the model type is imported for type checkers only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from cognigy_webhooks.models import WebhookEndpoint

__all__ = [
    "LOOP_HOP_HEADER",
    "LOOP_ID_HEADER",
    "LOOP_ORIGIN",
    "LOOP_ORIGIN_HEADER",
    "LoopInfo",
    "inject_loop_prevention_headers",
    "loop_id_for",
    "read_loop_headers",
]

LOOP_ORIGIN_HEADER = "X-Cogwh-Origin"
LOOP_ID_HEADER = "X-Cogwh-Loop-Id"
LOOP_HOP_HEADER = "X-Cogwh-Hop"
LOOP_ORIGIN = "cognigy-webhooks"
FIRST_HOP = 1

_OURS = {name.lower() for name in (LOOP_ORIGIN_HEADER, LOOP_ID_HEADER, LOOP_HOP_HEADER)}
_MAX_VALUE_LENGTH = 128
_MAX_HOP_DIGITS = 6
_MAX_HEADERS_SCANNED = 1000


def loop_id_for(name: str) -> str:
    """The loop id of an endpoint: the first 16 hex characters of sha256(name)."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]


def inject_loop_prevention_headers(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """A copy of ``endpoint`` carrying the loop headers (origin, loop id, hop 1).

    Deterministic (derived from the name only) and idempotent: applying it twice gives the same spec
    and the same ``spec_hash()`` as applying it once. A user header with one of these names, in
    any letter case, is replaced, never duplicated. The copy is validated like any spec, so the
    header limits still hold (:class:`~cognigy_webhooks.errors.InvalidSpec` if they no longer do).
    The given endpoint is not changed.
    """
    from pydantic import ValidationError  # pydantic only when a spec is built

    from cognigy_webhooks.errors import InvalidSpec

    headers = {name: value for name, value in endpoint.headers.items() if name.lower() not in _OURS}
    headers[LOOP_ORIGIN_HEADER] = LOOP_ORIGIN
    headers[LOOP_ID_HEADER] = loop_id_for(endpoint.name)
    headers[LOOP_HOP_HEADER] = str(FIRST_HOP)
    model = type(endpoint)
    data = {name: getattr(endpoint, name) for name in model.model_fields}
    data["headers"] = headers
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidSpec.from_validation_error(exc) from None


@dataclass(frozen=True, slots=True)
class LoopInfo:
    """The loop headers of an incoming request; each is None when absent or unusable."""

    origin: str | None
    loop_id: str | None
    hop: int | None

    @property
    def from_us(self) -> bool:
        """True when the request carries our origin mark (it was delivered to an endpoint we set up)."""
        return self.origin == LOOP_ORIGIN

    def matches(self, endpoint_name: str) -> bool:
        """True when the request carries our origin and the loop id of ``endpoint_name``."""
        return self.from_us and self.loop_id == loop_id_for(endpoint_name)


def _clean(value: object) -> str | None:
    """A header value as short, visible ASCII text (surrounding spaces trimmed), else None."""
    if isinstance(value, bytes | bytearray):
        if len(value) > _MAX_VALUE_LENGTH + 16:
            return None
        try:
            value = bytes(value).decode("ascii")
        except UnicodeDecodeError:
            return None
    if not isinstance(value, str) or len(value) > _MAX_VALUE_LENGTH + 16:
        return None
    value = value.strip(" \t")
    if not value or len(value) > _MAX_VALUE_LENGTH:
        return None
    if not all("\x21" <= ch <= "\x7e" for ch in value):
        return None
    return value


def _parse_hop(value: str | None) -> int | None:
    if value is None or len(value) > _MAX_HOP_DIGITS or not all("0" <= ch <= "9" for ch in value):
        return None
    return int(value)


def _pairs(headers: object) -> Iterable[Any]:
    if isinstance(headers, Mapping):
        multi = getattr(headers, "multi_items", None)
        return multi() if callable(multi) else headers.items()
    if isinstance(headers, Iterable) and not isinstance(headers, str | bytes | bytearray):
        return headers
    return ()


def read_loop_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> LoopInfo:
    """Read the loop headers from a request's headers: a Mapping (names compared without regard to
    case), a multi-valued mapping (httpx, Starlette) or (name, value) pairs, text or bytes. The
    first usable value of each wins. Never raises: garbage reads as None."""
    found: dict[str, str] = {}
    try:
        for count, pair in enumerate(_pairs(headers)):
            if count >= _MAX_HEADERS_SCANNED or len(found) == len(_OURS):
                break
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                continue
            name, value = pair
            if isinstance(name, bytes | bytearray):
                name = bytes(name).decode("latin-1")
            if not isinstance(name, str):
                continue
            lowered = name.strip(" \t").lower()
            if lowered in _OURS and lowered not in found:
                cleaned = _clean(value)
                if cleaned is not None:
                    found[lowered] = cleaned
    except Exception:  # a hostile mapping: trust none of it
        found = {}
    return LoopInfo(
        origin=found.get(LOOP_ORIGIN_HEADER.lower()),
        loop_id=found.get(LOOP_ID_HEADER.lower()),
        hop=_parse_hop(found.get(LOOP_HOP_HEADER.lower())),
    )
