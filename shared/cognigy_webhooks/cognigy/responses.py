"""THE mapping from Cognigy's HTTP outcomes to the typed errors of :mod:`cognigy_webhooks.errors`
(:func:`map_cognigy_error`), with ``Retry-After`` read in both forms (:func:`parse_retry_after`) and
every secret the request carried scrubbed from what the server said before it is quoted."""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Iterable, Sequence
from datetime import UTC
from typing import Any

import httpx

from cognigy_webhooks.errors import (
    CognigyAuthError,
    CognigyError,
    CognigyForbidden,
    CognigyNotFound,
    CognigyRejected,
    CognigyThrottled,
    CognigyUnavailable,
)
from cognigy_webhooks.secrets import scrub_line

__all__ = ["map_cognigy_error", "parse_retry_after"]

_MAX_DETAIL = 300


_DELTA_SECONDS = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,6})?")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP-date.

    Absent, empty, negative or unparseable values give None; a date in the past gives 0.0.
    ``now`` (epoch seconds) defaults to the current time.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _DELTA_SECONDS.fullmatch(text):
        return float(text)
    if not any(ch.isalpha() for ch in text):  # e.g. "-5", "1e3": not delta-seconds, not a date
        return None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a zone-less date is read as UTC
        when = when.replace(tzinfo=UTC)
    delay = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(delay):
        return None
    return max(0.0, delay)


def _scrub(text: str, secrets: Sequence[str]) -> str:
    return scrub_line(text, secrets, limit=_MAX_DETAIL)  # every form of every secret, one line


def response_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        return None


def _detail(body: Any, secrets: Sequence[str]) -> str:
    """What the server said: the tutorial's ``message``/``error``, or RFC 7807's ``detail`` (else its
    ``title``)."""
    if isinstance(body, dict):
        for key in ("message", "error", "detail", "title"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return _scrub(value, secrets)
    return ""


def _field_errors(body: Any, secrets: Sequence[str]) -> list[dict[str, Any]]:
    """The server's field errors, reduced to ``{"field", "message"}`` (values the server may echo,
    such as a rejected secret, are dropped)."""
    if not isinstance(body, dict):
        return []
    items: list[Any] = next(
        (body[k] for k in ("fieldErrors", "errors", "details") if isinstance(body.get(k), list)),
        [],
    )
    found: list[dict[str, Any]] = []
    for item in items[:50]:
        if not isinstance(item, dict):
            continue
        field = item.get("field", item.get("path", item.get("loc", "")))
        if isinstance(field, list):
            field = ".".join(str(p) for p in field)
        message = item.get("message", item.get("msg", "invalid"))
        found.append({"field": _scrub(str(field), secrets), "message": _scrub(str(message), secrets)})
    return found


_TRACE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _trace_id(body: Any) -> str | None:
    """RFC 7807's ``traceId`` (Cognigy's id of the request for its support), when it is a plain id."""
    value = body.get("traceId") if isinstance(body, dict) else None
    return value if isinstance(value, str) and _TRACE_ID.fullmatch(value) else None


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def map_cognigy_error(
    method: str,
    path: str,
    outcome: httpx.Response | httpx.RequestError,
    *,
    secrets: Iterable[str] = (),
) -> CognigyError | None:
    """THE mapping from an HTTP outcome to a typed error (None for a 2xx response).

    - 429 -> :class:`CognigyThrottled` with ``retry_after`` from ``Retry-After`` (seconds or date).
    - 5xx but 501/511, 408, and every httpx network error or timeout -> :class:`CognigyUnavailable`;
      ``maybe_applied`` tells whether the request may have taken effect (not for connect failures
      or 408).
    - 401 -> :class:`CognigyAuthError`; 403 -> :class:`CognigyForbidden`; 404 -> :class:`CognigyNotFound`.
    - 422, any other 4xx, 3xx (redirects are not followed), 501 and 511 -> :class:`CognigyRejected`
      with the server's field errors.

    Error bodies may be the tutorial's (``message``, ``fieldErrors``) or Cognigy.AI's RFC 7807
    (``title``, ``detail``, ``status``, ``code``, ``traceId``, ``details``): the detail is quoted, the
    field problems become ``field_errors`` and ``traceId`` the error's ``trace_id``. Messages name the
    method, the path and the status; ``secrets`` (the API key, a signature secret) are scrubbed from
    anything the server said before it is quoted.
    """
    scrub = tuple(s for s in secrets if s)
    where = f"Cognigy {method} {path}"
    if isinstance(outcome, httpx.RequestError):
        sent = not isinstance(outcome, _NOT_SENT) and not isinstance(outcome, httpx.LocalProtocolError)
        said = _scrub(str(outcome), scrub)
        message = f"{where} failed: {type(outcome).__name__}" + (f" ({said})" if said else "")
        if sent:
            message += "; the request may have been applied"
        return CognigyUnavailable(message, maybe_applied=sent)

    status = outcome.status_code
    if 200 <= status < 300:
        return None
    body = response_json(outcome)
    trace_id = _trace_id(body)
    error = _http_error(where, outcome, body, scrub, f" (traceId {trace_id})" if trace_id else "")
    error.trace_id = trace_id
    code = body.get("code") if isinstance(body, dict) else None
    if isinstance(code, int) and not isinstance(code, bool) and 0 <= code < 1_000_000:
        error.cognigy_code = code
    return error


def _http_error(
    where: str, outcome: httpx.Response, body: Any, scrub: tuple[str, ...], trace: str
) -> CognigyError:
    status = outcome.status_code
    detail = _detail(body, scrub)
    reason = outcome.reason_phrase or ""
    message = (
        f"{where} failed: HTTP {status}"
        + (f" {reason}" if reason else "")
        + (f": {detail}" if detail else "")
        + trace
    )
    if status == 429:
        retry_after = parse_retry_after(outcome.headers.get("Retry-After"))
        hint = f"retry after {retry_after:g} s" if retry_after is not None else "no usable Retry-After"
        return CognigyThrottled(f"{where} was throttled (HTTP 429); {hint}", retry_after=retry_after)
    if status == 408:
        return CognigyUnavailable(message, status_code=status, maybe_applied=False)
    if 500 <= status < 600 and status not in (501, 511):
        return CognigyUnavailable(
            message + "; the request may have been applied", status_code=status, maybe_applied=True
        )
    if status == 401:
        return CognigyAuthError(message, status_code=status)
    if status == 403:
        return CognigyForbidden(message, status_code=status)
    if status == 404:
        return CognigyNotFound(message, status_code=status, field_errors=_field_errors(body, scrub))
    return CognigyRejected(message, status_code=status, field_errors=_field_errors(body, scrub))
