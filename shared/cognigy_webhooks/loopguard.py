"""Callback-loop prevention: the tutorial's headers, our own loop marks, and reading the marks back.

Two sets of headers, under two names:

- :func:`inject_loop_prevention_headers` is the tutorial's public function: ``headers`` in, a new
  ``dict`` out, with the tutorial's four headers added (``X-Cognigy-Webhook-Source: bot-integration``,
  ``X-Request-Id``, ``X-Correlation-Id``, ``Prevent-Loop: true``). The tutorial stamped fresh uuids
  on every call, so every spec looked changed to drift detection; here both ids are uuid5 values
  derived from the given headers, so the same input gives the same output on every run.
- :func:`with_loop_marks` is the project's: a copy of a :class:`WebhookEndpoint` carrying our marks
  (``X-Cogwh-Origin``, ``X-Cogwh-Loop-Id``, ``X-Cogwh-Hop``), derived from the endpoint's name alone.
  The reconcile engine applies it to every endpoint it registers; the receiver reads the marks back
  with :func:`read_loop_headers` and stops a delivery that came back round.

Both are deterministic and idempotent (applying twice gives what applying once gave), never change
their input, and replace a header of one of their names given in any letter case instead of
duplicating it. Every header they add is public by construction (``secrets.BUILTIN_PUBLIC_HEADERS``).

Standard library only at import time (the receiver imports :func:`read_loop_headers` on its cold
path; ``errors`` and ``secrets`` are standard library only too); pydantic is imported by
:func:`with_loop_marks` only, the model type for type checkers only.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cognigy_webhooks.errors import InvalidSpec
from cognigy_webhooks.headers import wanted_values
from cognigy_webhooks.secrets import public_header_names, reference_target

if TYPE_CHECKING:  # pragma: no cover
    from cognigy_webhooks.models import WebhookEndpoint

__all__ = [
    "CORRELATION_ID_HEADER",
    "LOOP_HOP_HEADER",
    "LOOP_ID_HEADER",
    "LOOP_ORIGIN",
    "LOOP_ORIGIN_HEADER",
    "PREVENT_LOOP_HEADER",
    "REQUEST_ID_HEADER",
    "SOURCE_HEADER",
    "SOURCE_VALUE",
    "TUTORIAL_HEADERS",
    "LoopInfo",
    "inject_loop_prevention_headers",
    "loop_id_for",
    "read_loop_headers",
    "with_loop_marks",
]

# --- the project's loop marks --------------------------------------------------------------------

LOOP_ORIGIN_HEADER = "X-Cogwh-Origin"
LOOP_ID_HEADER = "X-Cogwh-Loop-Id"
LOOP_HOP_HEADER = "X-Cogwh-Hop"
LOOP_ORIGIN = "cognigy-webhooks"
FIRST_HOP = 1

# --- the tutorial's loop-prevention headers --------------------------------------------------------

SOURCE_HEADER = "X-Cognigy-Webhook-Source"
SOURCE_VALUE = "bot-integration"
REQUEST_ID_HEADER = "X-Request-Id"
CORRELATION_ID_HEADER = "X-Correlation-Id"
PREVENT_LOOP_HEADER = "Prevent-Loop"
#: The names :func:`inject_loop_prevention_headers` sets, in the order it adds them.
TUTORIAL_HEADERS = (SOURCE_HEADER, REQUEST_ID_HEADER, CORRELATION_ID_HEADER, PREVENT_LOOP_HEADER)
#: The namespace of the tutorial's derived ids (uuid5).
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:cognigy-webhooks:loop-prevention")

_OURS = {name.lower() for name in (LOOP_ORIGIN_HEADER, LOOP_ID_HEADER, LOOP_HOP_HEADER)}
_TUTORIALS = {name.lower() for name in TUTORIAL_HEADERS}
_MAX_VALUE_LENGTH = 128
_MAX_HOP_DIGITS = 6


def _refuse(field: str, message: str) -> InvalidSpec:
    return InvalidSpec([{"field": field, "message": message}])


def _user_headers(headers: object) -> dict[str, str]:
    """The caller's headers as a plain dict, without the tutorial's own (any letter case); checked."""
    if not isinstance(headers, Mapping):
        hint = (
            ": for the project's loop marks on an endpoint use with_loop_marks(endpoint)"
            if hasattr(type(headers), "model_fields") and hasattr(headers, "headers")
            else ""
        )
        raise _refuse("headers", f"must be a mapping of header names to string values{hint}")
    kept: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in headers.items():
        if not isinstance(name, str) or not name:
            raise _refuse("headers", "every header name must be a non-empty string")
        shown = name if len(name) <= 60 else name[:59] + "…"
        if not isinstance(value, str):
            raise _refuse(f"headers.{shown}", "must be a string")  # the value is never echoed
        lowered = name.lower()
        if lowered in _TUTORIALS:
            continue  # replaced below: given in any case, never duplicated
        if lowered in seen:
            raise _refuse(f"headers.{shown}", "is given twice (header names ignore letter case)")
        seen.add(lowered)
        kept[name] = value
    return kept


def _derived_ids(headers: Mapping[str, str], public_headers: Iterable[str]) -> tuple[str, str]:
    """(request id, correlation id): uuid5 over the headers' canonical form.

    The canonical form is the sorted, lower-cased header names (but the project's loop marks, which
    :func:`with_loop_marks` may have added) with the values of the public ones
    (declared in ``public_headers``, or built in) and of secret references. Every other value is a
    secret by the house rule (``cognigy_webhooks.secrets``) and never feeds an id: an id is sent to
    and logged by third parties, and must not be a hash someone could test a guessed secret against.
    """
    public = public_header_names(list(public_headers))
    doc = sorted(
        [name.lower(), value if (name.lower() in public or reference_target(value) is not None) else None]
        for name, value in headers.items()
        if name.lower() not in _OURS  # marks added by with_loop_marks do not change the ids either
    )
    canonical = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    return (
        str(uuid.uuid5(ID_NAMESPACE, "request-id:" + canonical)),
        str(uuid.uuid5(ID_NAMESPACE, "correlation-id:" + canonical)),
    )


def inject_loop_prevention_headers(
    headers: Mapping[str, str], *, public_headers: Iterable[str] = ()
) -> dict[str, str]:
    """The tutorial's function: a new dict holding ``headers`` and the tutorial's four headers.

    ``X-Cognigy-Webhook-Source: bot-integration`` and ``Prevent-Loop: true`` mark the delivery as the
    bot integration's own; ``X-Request-Id`` and ``X-Correlation-Id`` are uuid5 values derived from the
    given headers (their names, and the values of headers declared in ``public_headers``: every
    other value may be a secret and is left out of the ids), so a spec built from the same headers
    hashes the same on every run. The caller's headers come first, in their order, then the four.

    Deterministic and idempotent: the tutorial's own headers in the input (any letter case) are
    dropped before the ids are derived, then set again, so ``inject(inject(h)) == inject(h)``. The
    input is never changed. Raises :class:`~cognigy_webhooks.errors.InvalidSpec` (naming the header,
    never echoing a value) when ``headers`` is not a mapping of strings to strings or names a header
    twice in different letter cases. Header syntax (tokens, CR/LF, limits) is checked where the
    headers are used, by :class:`~cognigy_webhooks.models.WebhookEndpoint`.
    """
    if isinstance(public_headers, str | bytes):
        raise _refuse("public_headers", "must be a list of header names, not a single string")
    result = _user_headers(headers)
    request_id, correlation_id = _derived_ids(result, public_headers)
    result[SOURCE_HEADER] = SOURCE_VALUE
    result[REQUEST_ID_HEADER] = request_id
    result[CORRELATION_ID_HEADER] = correlation_id
    result[PREVENT_LOOP_HEADER] = "true"
    return result


def loop_id_for(name: str) -> str:
    """The loop id of an endpoint: the first 16 hex characters of sha256(name)."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]


def with_loop_marks(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """A copy of ``endpoint`` carrying the project's loop marks (origin, loop id, hop 1).

    Deterministic (derived from the name only) and idempotent: applying it twice gives the same spec
    and the same ``spec_hash()`` as applying it once. A user header with one of these names, in
    any letter case, is replaced, never duplicated; every other header (the tutorial's included) is
    kept as it is. The copy is validated like any spec, so the header limits still hold
    (:class:`~cognigy_webhooks.errors.InvalidSpec` if they no longer do). The given endpoint is not
    changed.
    """
    from pydantic import ValidationError  # pydantic only when a spec is built

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


def read_loop_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> LoopInfo:
    """Read the loop headers from a request's headers: a Mapping (names compared without regard to
    case), a multi-valued mapping (httpx, Starlette) or (name, value) pairs, text or bytes. The
    first usable value of each wins. Never raises: garbage reads as None."""
    found: dict[str, str] = {}
    values = wanted_values(headers, _OURS, strict=False) or {}
    for name, candidates in values.items():
        for value in candidates:  # the first usable value wins
            cleaned = _clean(value)
            if cleaned is not None:
                found[name] = cleaned
                break
    return LoopInfo(
        origin=found.get(LOOP_ORIGIN_HEADER.lower()),
        loop_id=found.get(LOOP_ID_HEADER.lower()),
        hop=_parse_hop(found.get(LOOP_HOP_HEADER.lower())),
    )
