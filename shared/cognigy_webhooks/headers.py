"""Reading a request's headers whatever shape they come in: a Mapping, a multi-valued mapping
(``multi_items()``: httpx, Starlette) or (name, value) pairs, text or bytes (ASGI's raw headers).

:func:`wanted_values` is the one walk over them (the signature verifier and the loop guard both use
it): names compared case-insensitively after trimming, every value kept in order, bounded, and never
raising on hostile input. Standard library only (the receiver's cold start).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MAX_HEADERS_SCANNED", "wanted_values"]

MAX_HEADERS_SCANNED = 1000
_OWS = " \t"


def _pairs(headers: object) -> Iterable[Any] | None:
    if isinstance(headers, Mapping):
        multi = getattr(headers, "multi_items", None)
        return multi() if callable(multi) else headers.items()
    if isinstance(headers, Iterable) and not isinstance(headers, str | bytes | bytearray):
        return headers
    return None


def wanted_values(
    headers: object, wanted: Iterable[str], *, strict: bool
) -> dict[str, list[str | bytes]] | None:
    """Every value of each wanted header (lower-cased names in, lower-cased keys out).

    ``strict``: anything that is not a real request's headers (not a mapping or pairs, an item that is
    not a pair, more than :data:`MAX_HEADERS_SCANNED` of them, a mapping that raises) gives None, for
    a verifier that must refuse rather than guess. Not strict: such items are skipped, the scan stops
    at the bound with what it found, and a mapping that raises gives no values at all."""
    found: dict[str, list[str | bytes]] = {name.lower(): [] for name in wanted}
    try:
        pairs = _pairs(headers)
        if pairs is None:
            return None if strict else found
        for count, pair in enumerate(pairs):
            if count >= MAX_HEADERS_SCANNED:
                if strict:
                    return None
                break
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                if strict:
                    return None
                continue
            name, value = pair
            if isinstance(name, bytes | bytearray):
                name = bytes(name).decode("latin-1")
            if not isinstance(name, str) or not isinstance(value, str | bytes | bytearray):
                continue
            lowered = name.strip(_OWS).lower()
            if lowered in found:
                found[lowered].append(bytes(value) if isinstance(value, bytearray) else value)
    except Exception:  # a hostile mapping: refuse (strict) or trust none of it
        return None if strict else {name: [] for name in found}
    return found
