"""What a Cognigy.AI Flow output says: the fields of a delivery that consumers filter on, read
leniently from whatever shape the body has.

A real webhook Endpoint POSTs once per Flow output, with the body::

    {"userId": "...", "sessionId": "...",
     "AIOutput": {"text": "...", "data": {...}, "traceId": "...", "disableSensitiveLogging": false,
                  "source": "bot"}}

(``disableSensitiveLogging`` may sit at the top level instead). An output transformer may reshape the
body into anything JSON (fields flattened to the top, another object, a list, a bare string), so
:func:`output_fields` never raises and never refuses: it takes what it finds and leaves out what it
does not. Where each field is looked for, first match wins:

- ``userId``: the top level, then ``AIOutput``; a string of 1-256 characters (an integer is taken as
  its decimal text, like the ``sessionId``), else left out;
- ``sessionId``: :func:`~cognigy_webhooks.receiving.payloads.conversation_of` (the top level, then
  under ``data``, then under a single root object: the conversation the loop guard counts), then
  ``AIOutput``; the same bounds;
- ``text``: ``AIOutput.text``, then the top level; a string (of any length the body allows), else
  left out (Cognigy sends ``null`` for an output with data only);
- ``data``: ``AIOutput.data``, then the top level; any JSON value but ``null``;
- ``traceId``: ``AIOutput.traceId``, then the top level; 1-256 printable characters, else left out
  (it feeds the replay key: see :mod:`cognigy_webhooks.receiving.auth`);
- ``disableSensitiveLogging``: ``AIOutput``, then the top level; a boolean, else left out.

"A single root object" is the one value of a one-key object (an XML document as
:func:`~cognigy_webhooks.receiving.payloads.parse_xml` makes it, or a transformer's wrapper), looked at
after the top level. Values are the body's own (not copied): the caller renders them, it does not
change them. Nothing here reads headers: Cognigy sends none of its own, and the Authorization header
never reaches the hand-off.

Standard library only (the receiver's cold start).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cognigy_webhooks.receiving.payloads import conversation_of

__all__ = ["MAX_ID_LENGTH", "output_fields", "trace_id_of"]

#: The longest ``userId``, ``sessionId`` and ``traceId`` taken (Cognigy bounds user and session ids at
#: 256 characters on the way in).
MAX_ID_LENGTH = 256

_OUTPUT = "AIOutput"


def _is_mapping(value: object) -> bool:
    return type(value) is dict or isinstance(value, Mapping)  # the ABC check only for what is not a dict


def _places(payload: Any) -> list[tuple[Mapping[str, Any], Mapping[str, Any] | None]]:
    """The objects a field may sit in: the top level with its ``AIOutput``, then (for a one-key
    object) its one value with that value's ``AIOutput``."""
    if not _is_mapping(payload):
        return []
    outer: list[Mapping[str, Any]] = [payload]
    if len(payload) == 1:
        (only,) = payload.values()
        if _is_mapping(only):
            outer.append(only)
    places: list[tuple[Mapping[str, Any], Mapping[str, Any] | None]] = []
    for level in outer:
        inner = level.get(_OUTPUT)
        places.append((level, inner if _is_mapping(inner) else None))
    return places


def _order(
    places: list[tuple[Mapping[str, Any], Mapping[str, Any] | None]], *, output_first: bool
) -> list[Mapping[str, Any]]:
    ordered: list[Mapping[str, Any]] = []
    for level, inner in places:
        pair = (inner, level) if output_first else (level, inner)
        ordered.extend(place for place in pair if place is not None)
    return ordered


def _identifier(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH:
        return value
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _any(value: Any) -> Any:
    return value


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _first(levels: list[Mapping[str, Any]], key: str, accept: Callable[[Any], Any]) -> Any:
    """The first accepted value of ``key``; a value ``accept`` maps to None does not count."""
    for level in levels:
        if key in level:
            found = accept(level[key])
            if found is not None:
                return found
    return None


def _trace_id(value: Any) -> str | None:
    """1-256 printable characters (no control character, no lone surrogate: it is hashed as UTF-8)."""
    if isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH and value.isprintable():
        return value
    return None


def trace_id_of(payload: Any) -> str | None:
    """The output's ``traceId`` (``AIOutput.traceId``, else at the top level), or None when absent or
    not 1-256 printable characters."""
    found: str | None = _first(_order(_places(payload), output_first=True), "traceId", _trace_id)
    return found


#: The fields read from the output's own object first (then the level around it), with their test.
_OUTPUT_FIRST: tuple[tuple[str, Callable[[Any], Any]], ...] = (
    ("text", _text),
    ("data", _any),
    ("traceId", _trace_id),
    ("disableSensitiveLogging", _flag),
)


def output_fields(payload: Any) -> dict[str, Any]:
    """The fields of a Flow output found in ``payload`` (parsed JSON or XML), by their event names:
    ``userId``, ``sessionId``, ``text``, ``data``, ``traceId``, ``disableSensitiveLogging``; a field
    not found, or not of its type, is left out. Never raises."""
    if type(payload) is dict and len(payload) != 1:
        return _object_fields(payload)  # Cognigy's own shape: the same answer, fewer steps
    return _fields_in(payload)


def _fields_in(payload: Any) -> dict[str, Any]:
    """:func:`output_fields` for any shape."""
    places = _places(payload)
    if not places:  # not an object: nothing to find (conversation_of looks in objects only)
        return {}
    ids = _order(places, output_first=False)  # userId, sessionId: at the top in Cognigy's body
    fields: dict[str, Any] = {}
    user = _first(ids, "userId", _identifier)
    if user is not None:
        fields["userId"] = user
    session = conversation_of(payload)
    if session is None:
        session = _first(ids, "sessionId", _identifier)
    if session is not None:
        fields["sessionId"] = session
    levels = _order(places, output_first=True)  # text, data, traceId: AIOutput's own first
    for key, accept in _OUTPUT_FIRST:
        found = _first(levels, key, accept)
        if found is not None:
            fields[key] = found
    return fields


def _object_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """:func:`_fields_in` for an object of other than one key (no single root to look into): the top
    level and its ``AIOutput``, the tests of :func:`_identifier`, :func:`_trace_id`... written out (one
    delivery, one call)."""
    inner = payload.get(_OUTPUT)
    if inner is not None and not _is_mapping(inner):
        inner = None
    ids = (payload,) if inner is None else (payload, inner)  # userId, sessionId: the top level first
    levels = (payload,) if inner is None else (inner, payload)  # the others: AIOutput's own first
    fields: dict[str, Any] = {}
    for level in ids:
        user = _identifier(level.get("userId"))
        if user is not None:
            fields["userId"] = user
            break
    session = conversation_of(payload)  # the top level (as _identifier reads it), then under data
    if session is None and inner is not None:
        session = _identifier(inner.get("sessionId"))
    if session is not None:
        fields["sessionId"] = session
    for level in levels:
        text = level.get("text")
        if isinstance(text, str):
            fields["text"] = text
            break
    for level in levels:
        data = level.get("data")
        if data is not None:
            fields["data"] = data
            break
    for level in levels:
        trace = level.get("traceId")
        if isinstance(trace, str) and 0 < len(trace) <= MAX_ID_LENGTH and trace.isprintable():
            fields["traceId"] = trace
            break
    for level in levels:
        flag = level.get("disableSensitiveLogging")
        if isinstance(flag, bool):
            fields["disableSensitiveLogging"] = flag
            break
    return fields
