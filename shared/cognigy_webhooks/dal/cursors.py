"""Opaque page cursors: where a paged listing goes on, as a token a client hands back unchanged.

A cursor is URL-safe base64 (no padding) of compact JSON ``{"k": <listing>, ...the position}``: the
listing it belongs to (``records``, ``audit``, ``executions``) and the few plain strings that say
where the next page starts (a record's name; an audit event's endpoint and sort key; Step Functions'
own ``nextToken``). It names positions only, never a value of a record, so it holds no secret; it
is not signed, because any position a client could forge is one it may list anyway.

:func:`decode` refuses anything else with :class:`~cognigy_webhooks.errors.InvalidInput` naming the
field ``cursor`` (never echoing it): not base64, not JSON, another listing's cursor, a field missing,
not a string, or longer than :data:`MAX_CURSOR_LENGTH`. Standard library only.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence

from cognigy_webhooks.errors import InvalidInput

__all__ = ["MAX_CURSOR_LENGTH", "decode", "encode"]

#: The longest cursor accepted (Step Functions' tokens are at most 1024 characters; ours far less).
MAX_CURSOR_LENGTH = 4096


def encode(listing: str, position: Mapping[str, str]) -> str:
    """The cursor of ``position`` in ``listing``."""
    doc = {"k": listing, **position}
    raw = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _refused(message: str) -> InvalidInput:
    return InvalidInput([{"field": "cursor", "message": message}])


def decode(listing: str, cursor: str, fields: Sequence[str]) -> dict[str, str]:
    """The position a cursor of ``listing`` holds (``fields``, each a non-empty string);
    :class:`InvalidInput` naming ``cursor`` when it is no such cursor."""
    if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR_LENGTH:
        raise _refused(f"must be a nextCursor this listing gave (at most {MAX_CURSOR_LENGTH} characters)")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        doc = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError):
        raise _refused("is not a cursor (give back a nextCursor unchanged)") from None
    if not isinstance(doc, dict) or doc.get("k") != listing:
        raise _refused(f"is not a cursor of this listing ({listing})")
    position: dict[str, str] = {}
    for name in fields:
        value = doc.get(name)
        if not isinstance(value, str) or not value:
            raise _refused("is damaged (give back a nextCursor unchanged)")
        position[name] = value
    return position
