"""The way back into the bot: user input sent to a webhook Endpoint through Cognigy's Endpoint service.

``await say(endpoint_url, url_token, user_id=..., session_id=..., text=..., data=...)`` sends ONE
``POST <endpoint_url>/<URLToken>`` (the Endpoint service is a host of its own, e.g.
``https://endpoint-trial.cognigy.ai``: the template's ``CognigyEndpointUrl``). The contract:

- **Validated first, nothing sent otherwise** (:func:`say_body`): ``userId`` and ``sessionId``
  strings of 1 to 256 characters, ``text`` at most 10,000 characters, ``data`` a JSON object (finite
  numbers, string keys), at least one of a non-empty ``text`` or ``data``; every string valid
  Unicode. A problem is an :class:`~cognigy_webhooks.errors.InvalidInput` (a ``ValueError``) whose
  ``errors`` name each field at fault (``userId``, ``sessionId``, ``text``, ``data``, and for the
  arguments ``endpointUrl``, ``urlToken``, ``webhookKey``, ``verify``), never echoing a value.
- **Rate-limited like the API client**: one token from ``limiter`` (the ``acquire()`` protocol of
  :class:`cognigy_webhooks.ratelimit.RateLimiter`) before the request.
- The body is JSON (``{userId, sessionId, text?, data?}``) with ``Content-Type`` and ``Accept:
  application/json``; ``webhook_key`` goes out as ``X-Webhook-Key`` (Cognigy.AI 2026.13 lets an
  endpoint require one; its API field name is not published). TLS is verified (``verify``: True, a CA
  bundle path or an ``ssl.SSLContext``); redirects are never followed.
- **Typed like the API client**: any 2xx is a :class:`SayResult`; every failure goes through
  :func:`cognigy_webhooks.cognigy.responses.map_cognigy_error`: 429 ->
  :class:`~cognigy_webhooks.errors.CognigyThrottled` (``retry_after`` from ``Retry-After``, seconds or
  a date), 5xx / 408 / network errors and timeouts -> :class:`~cognigy_webhooks.errors.CognigyUnavailable`
  (``maybe_applied``: the input may have reached the bot), 401 ->
  :class:`~cognigy_webhooks.errors.CognigyAuthError` (a required ``X-Webhook-Key``), 403 ->
  :class:`~cognigy_webhooks.errors.CognigyForbidden` (e.g. an inactive endpoint), 404 ->
  :class:`~cognigy_webhooks.errors.CognigyNotFound` (no endpoint has this URLToken), a 3xx and any
  other 4xx -> :class:`~cognigy_webhooks.errors.CognigyRejected` with the server's field errors.
- **Never retried**, not even on a connection reset: user input sent twice runs the flow twice (two
  answers to the user, two deliveries to the webhook). A caller that retries a
  ``CognigyUnavailable`` whose ``maybe_applied`` is True accepts that duplicate; one whose
  ``maybe_applied`` is False (the connection was never made, or a 408) was surely not applied.
- What the service answers an input to a *webhook* endpoint is not documented (the outputs go to the
  webhook): :attr:`SayResult.answer` is its JSON body as sent (None when not JSON), for display only.

**The URLToken is a credential** (whoever holds it can talk to the bot as any user): it never appears
in an exception message, a ``repr`` or a log line. Every message shows the URL as
``<endpoint_url>/<URLToken>``; what the server said is scrubbed of the token (and of the webhook key)
in every form before it is quoted, :attr:`SayResult.answer` too; the httpx exception, whose request URL
holds the token, is not chained to the typed error; and while a request of this module is in flight,
every log line of httpx and httpcore (``HTTP Request: POST <url>``, the response headers a server may
echo the token in) is rewritten by a filter on their loggers (installed when this module is imported;
it does nothing while no say request is in flight).
"""

from __future__ import annotations

import contextvars
import json
import logging
import math
import os
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from cognigy_webhooks.cognigy.responses import map_cognigy_error, response_json
from cognigy_webhooks.cognigy.transport import DEFAULT_TIMEOUT, USER_AGENT, Verify
from cognigy_webhooks.errors import CognigyError, InvalidInput
from cognigy_webhooks.net.tls import client_ssl_context
from cognigy_webhooks.observability import logger
from cognigy_webhooks.ratelimit import RateLimiter
from cognigy_webhooks.secrets import scrub
from cognigy_webhooks.urls import url_problem

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_TEXT_LENGTH",
    "TOKEN_PLACEHOLDER",
    "WEBHOOK_KEY_HEADER",
    "SayResult",
    "say",
    "say_body",
]

MAX_ID_LENGTH = 256
MAX_TEXT_LENGTH = 10_000
TOKEN_PLACEHOLDER = "<URLToken>"
WEBHOOK_KEY_HEADER = "X-Webhook-Key"
# Cognigy's URLTokens are 64 alphanumerics; a little room for other lengths, never a "/", "?" or "%".
_URL_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,256}")

# The secrets of the say requests in flight in this context (what the httpx log filter hides).
_HIDDEN: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "cognigy_webhooks_say_hidden", default=()
)


def _hide(text: str, hidden: tuple[str, ...]) -> str:
    """``text`` with the URLToken shown as ``<URLToken>`` and every form of every secret scrubbed."""
    for value in hidden:
        text = text.replace(value, TOKEN_PLACEHOLDER) if _URL_TOKEN.fullmatch(value) else text
    return scrub(text, hidden)


class _HideSayTokens(logging.Filter):
    """Rewrites a record logged while a say request is in flight (httpx logs the URL it sent to)."""

    def filter(self, record: logging.LogRecord) -> bool:
        hidden = _HIDDEN.get()
        if hidden:
            message = record.getMessage()
            cleaned = _hide(message, hidden)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return True


# A logger's filters see only the records logged on it, not its children's: every logger httpx, httpcore
# and hpack (HTTP/2 headers) log on, by name.
_HTTP_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    "hpack",
    "hpack.hpack",
    "hpack.table",
)


def _install_log_filter() -> None:
    for name in _HTTP_LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(f, _HideSayTokens) for f in target.filters):
            target.addFilter(_HideSayTokens())


_install_log_filter()


@dataclass(frozen=True)
class SayResult:
    """A 2xx from the Endpoint service: the input was taken (its outputs go to the webhook).
    ``answer`` is the service's JSON body (None when not JSON), scrubbed of the URLToken; what the real
    service answers for a webhook endpoint is not documented: show it, do not rely on it."""

    status_code: int
    user_id: str
    session_id: str
    answer: Any = None

    def to_json(self) -> dict[str, Any]:
        """The result in the API's casing (camelCase)."""
        return {
            "statusCode": self.status_code,
            "userId": self.user_id,
            "sessionId": self.session_id,
            "answer": self.answer,
        }


def _unicode_problem(value: str) -> str | None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (no lone surrogates)"
    return None


def _data_problem(data: Any, depth: int = 0) -> str | None:
    """What keeps ``data`` (inside the top-level object) from being JSON Cognigy can read."""
    if depth > 64:
        return "must not nest deeper than 64 levels"
    if isinstance(data, Mapping):
        for key, value in data.items():
            if not isinstance(key, str):
                return "must have string keys only"
            if (problem := _unicode_problem(key)) or (problem := _data_problem(value, depth + 1)):
                return problem
        return None
    if isinstance(data, list | tuple):
        for item in data:
            if problem := _data_problem(item, depth + 1):
                return problem
        return None
    if isinstance(data, str):
        return _unicode_problem(data)
    if isinstance(data, float) and not math.isfinite(data):
        return "must hold finite numbers only (no NaN or Infinity)"
    if data is None or isinstance(data, bool | int | float):
        return None
    return f"must hold JSON values only, not {type(data).__name__}"


def say_body(*, user_id: Any, session_id: Any, text: Any = None, data: Any = None) -> dict[str, Any]:
    """The input body ``{userId, sessionId, text?, data?}``, checked: InvalidInput naming each field
    at fault (values never echoed). ``text`` and ``data`` are left out when None."""
    errors: list[dict[str, str]] = []

    def bad(field: str, message: str) -> None:
        errors.append({"field": field, "message": message})

    for field, value in (("userId", user_id), ("sessionId", session_id)):
        if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID_LENGTH:
            bad(field, f"is required: a string of 1 to {MAX_ID_LENGTH} characters")
        elif problem := _unicode_problem(value):
            bad(field, problem)
    if text is not None:
        if not isinstance(text, str) or len(text) > MAX_TEXT_LENGTH:
            bad("text", f"must be a string of at most {MAX_TEXT_LENGTH} characters")
        elif problem := _unicode_problem(text):
            bad("text", problem)
    if data is not None:
        if not isinstance(data, Mapping):
            bad("data", "must be a JSON object")
        elif problem := _data_problem(data):
            bad("data", problem)
    named = {e["field"] for e in errors}
    if not (isinstance(text, str) and text) and data is None and not {"text", "data"} & named:
        bad("text", "give text or data (at least one of them)")
    if errors:
        raise InvalidInput(errors)
    body: dict[str, Any] = {"userId": user_id, "sessionId": session_id}
    if text is not None:
        body["text"] = text
    if data is not None:
        body["data"] = json.loads(json.dumps(data))  # a plain copy: what is sent is what was checked
    return body


def _check_endpoint_url(endpoint_url: Any) -> str:
    problem = url_problem(
        endpoint_url, plain_http="loopback", query=False, credentials_hint="the URLToken is the credential"
    )
    if problem is None and "?" in endpoint_url:
        problem = "must not carry a query"
    if problem is not None:
        raise InvalidInput([{"field": "endpointUrl", "message": problem}])
    return str(endpoint_url).rstrip("/")


def _check_token(url_token: Any) -> str:
    raw = url_token.get_secret_value() if isinstance(url_token, SecretStr) else url_token
    if not isinstance(raw, str) or not _URL_TOKEN.fullmatch(raw):
        message = "must be the endpoint's URLToken: 16 to 256 letters, digits, '-' or '_' (not shown)"
        raise InvalidInput([{"field": "urlToken", "message": message}])
    return raw


def _check_webhook_key(webhook_key: Any) -> str | None:
    raw = webhook_key.get_secret_value() if isinstance(webhook_key, SecretStr) else webhook_key
    if raw is None:
        return None
    if not isinstance(raw, str) or not 1 <= len(raw) <= 1024 or any(not 0x21 <= ord(c) <= 0x7E for c in raw):
        message = "must be visible ASCII without spaces, 1 to 1024 characters (not shown)"
        raise InvalidInput([{"field": "webhookKey", "message": message}])
    return raw


def _verify(verify: Verify) -> bool | ssl.SSLContext:
    if isinstance(verify, bool | ssl.SSLContext):
        return verify
    try:
        return client_ssl_context(os.fspath(verify))
    except (OSError, ssl.SSLError) as exc:
        message = f"cannot load the CA bundle: {getattr(exc, 'strerror', None) or type(exc).__name__}"
        raise InvalidInput([{"field": "verify", "message": message}]) from None


def _clean_answer(response: httpx.Response, hidden: tuple[str, ...]) -> Any:
    try:
        body = response_json(response)
    except RecursionError:  # nested past what json can read: not an answer to show
        return None
    if body is None:
        return None
    text = json.dumps(body, ensure_ascii=False)
    cleaned = _hide(text, hidden)
    return body if cleaned == text else json.loads(cleaned)


async def say(
    endpoint_url: str,
    url_token: str | SecretStr,
    *,
    user_id: str,
    session_id: str,
    text: str | None = None,
    data: Mapping[str, Any] | None = None,
    verify: Verify = True,
    limiter: RateLimiter | None = None,
    client: httpx.AsyncClient | None = None,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (httpx's per-phase timeouts)
    webhook_key: str | SecretStr | None = None,
) -> SayResult:
    """Send one user input to the endpoint whose URLToken is ``url_token`` (see the module's contract).

    ``client``: an ``httpx.AsyncClient`` to share (not closed here; ``verify`` is then its own).
    Raises InvalidInput before anything is sent, a :class:`~cognigy_webhooks.errors.CognigyError`
    after. Never retries."""
    body = say_body(user_id=user_id, session_id=session_id, text=text, data=data)
    base = _check_endpoint_url(endpoint_url)
    token = _check_token(url_token)
    key = _check_webhook_key(webhook_key)
    hidden = (token, key) if key else (token,)
    shown = f"{base}/{TOKEN_PLACEHOLDER}"
    headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": USER_AGENT}
    if key:
        headers[WEBHOOK_KEY_HEADER] = key
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    own = client is None
    http = client if client is not None else httpx.AsyncClient(verify=_verify(verify), timeout=timeout)
    failure: CognigyError | None = None
    response: httpx.Response | None = None
    context = _HIDDEN.set(_HIDDEN.get() + hidden)
    try:
        if limiter is not None:
            await limiter.acquire()
        started = time.perf_counter()
        try:
            response = await http.post(
                f"{base}/{token}", content=content, headers=headers, timeout=timeout, follow_redirects=False
            )
        except httpx.RequestError as exc:
            # the typed error only: the httpx exception holds the request, whose URL holds the token
            failure = map_cognigy_error("POST", shown, exc, secrets=hidden)
            logger.debug("cognigy say failed", extra={"url": shown, "error": type(exc).__name__})
        else:
            logger.debug(
                "cognigy say",
                extra={
                    "url": shown,
                    "status": response.status_code,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
            failure = map_cognigy_error("POST", shown, response, secrets=hidden)
    finally:
        _HIDDEN.reset(context)
        if own:
            await http.aclose()
    if failure is not None:
        raise failure
    assert response is not None
    return SayResult(
        status_code=response.status_code,
        user_id=body["userId"],
        session_id=body["sessionId"],
        answer=_clean_answer(response, hidden),
    )
