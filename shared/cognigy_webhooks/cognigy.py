"""Async client for Cognigy's REST API (the webhook endpoints), with typed errors.

The contract (from the tutorial, kept): base URL ``https://api.cognigy.ai`` (configurable), the API
key in the ``X-API-Key`` header, JSON in and out, timeouts of 30 s overall / 10 s connect / 20 s
read, redirects not followed, TLS verified. Lifecycle calls, extended the obvious REST way:

- create: ``POST /api/v2/webhooks`` (200 or 201, the webhook in the body);
- list / find by name: ``GET /api/v2/webhooks?name=&limit=&cursor=`` (``{"items": [...],
  "nextCursor": ...}``, followed page by page);
- get / update / delete: ``GET`` / ``PATCH`` / ``DELETE /api/v2/webhooks/{id}`` (a 404 on delete
  means already gone).

Every failure becomes one of the typed errors of :mod:`cognigy_webhooks.errors`, mapped in one
place (:func:`map_cognigy_error`). There is no retry loop here (Step Functions, or
:func:`cognigy_webhooks.registration.register_webhook_with_retry`, decide about retries). Neither
the API key nor a signature secret ever appears in a message, a repr or a log line.
"""

from __future__ import annotations

import email.utils
import math
import os
import re
import ssl
import time
from collections.abc import AsyncIterator, Generator, Iterable, Sequence
from datetime import UTC
from types import TracebackType
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic.alias_generators import to_camel

from cognigy_webhooks.errors import (
    CognigyAuthError,
    CognigyError,
    CognigyForbidden,
    CognigyNotFound,
    CognigyRejected,
    CognigyThrottled,
    CognigyUnavailable,
)
from cognigy_webhooks.models import WebhookEndpoint
from cognigy_webhooks.observability import logger
from cognigy_webhooks.ratelimit import RateLimiter
from cognigy_webhooks.secrets import REDACTED, redact_headers, scrub
from cognigy_webhooks.tls import client_ssl_context

__all__ = [
    "API_KEY_HEADER",
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "WEBHOOKS_PATH",
    "CognigyClient",
    "CognigyWebhook",
    "create_cognigy_client",
    "map_cognigy_error",
    "parse_retry_after",
]

DEFAULT_BASE_URL = "https://api.cognigy.ai"
WEBHOOKS_PATH = "/api/v2/webhooks"
API_KEY_HEADER = "X-API-Key"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0, read=20.0)
USER_AGENT = "cognigy-webhooks/0.1"
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_MAX_PAGES = 10_000
_MAX_DETAIL = 300

Verify = bool | str | os.PathLike[str] | ssl.SSLContext


# --- the httpx client (the tutorial's create_cognigy_client) -------------------------------------


class _ApiKeyAuth(httpx.Auth):
    """Adds ``X-API-Key`` to each request as it is sent, so the key is not kept in the client's
    default headers (whose repr httpx does not redact) and never shows in a repr of ours."""

    def __init__(self, api_key: SecretStr) -> None:
        self.api_key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[API_KEY_HEADER] = self.api_key.get_secret_value()
        yield request

    def __repr__(self) -> str:
        return f"_ApiKeyAuth({REDACTED})"


def _check_api_key(api_key: str | SecretStr) -> SecretStr:
    raw = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
    if not isinstance(raw, str) or not raw:
        raise ValueError("api_key must be a non-empty string")
    # A header value must be visible ASCII; checking here keeps the key out of httpx's own errors
    # (h11 quotes an illegal header value in its message).
    if len(raw) > 1024 or any(not 0x21 <= ord(ch) <= 0x7E for ch in raw):
        raise ValueError("api_key must be visible ASCII without spaces, at most 1024 characters")
    return SecretStr(raw)


def _check_base_url(base_url: str) -> str:
    try:
        parts = urlsplit(base_url)
        _ = parts.port
    except (TypeError, ValueError, AttributeError):
        raise ValueError("base_url is not a valid URL") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("base_url must be an absolute https URL")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
        raise ValueError("base_url must use https (plain http is allowed for loopback only)")
    if parts.username is not None or parts.password is not None:
        raise ValueError("base_url must not carry credentials")
    if parts.query or parts.fragment:
        raise ValueError("base_url must not carry a query or a fragment")
    return base_url.rstrip("/")


def _ssl_verify(verify: Verify) -> bool | ssl.SSLContext:
    """httpx 0.28 deprecates a CA path for ``verify``; turn one into a verifying SSL context."""
    if isinstance(verify, bool | ssl.SSLContext):
        return verify
    return client_ssl_context(os.fspath(verify))


def create_cognigy_client(
    api_key: str | SecretStr,
    base_url: str = DEFAULT_BASE_URL,
    *,
    verify: Verify = True,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` for Cognigy's REST API, exactly per the tutorial's contract.

    The key goes out as ``X-API-Key`` on every request (added by an auth hook, not kept in the
    default headers). ``verify`` may be a CA bundle path or an ``ssl.SSLContext`` (local CAs in
    tests); ``False`` turns TLS verification off and is never the right answer against Cognigy.
    ``base_url`` must be https (http only for a loopback host).
    """
    key = _check_api_key(api_key)
    return httpx.AsyncClient(
        base_url=_check_base_url(base_url),
        auth=_ApiKeyAuth(key),
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        },
        timeout=DEFAULT_TIMEOUT,
        follow_redirects=False,
        verify=_ssl_verify(verify),
        transport=transport,
    )


# --- what Cognigy returns -------------------------------------------------------------------------


class CognigyRetryPolicy(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    max_retries: int = 3
    retry_interval_ms: int = 5000


class CognigyWebhook(BaseModel):
    """A webhook as Cognigy returns it. Lenient on purpose (unknown fields are ignored, values kept
    as sent), and it never keeps a ``signatureSecret`` even when the server echoes one."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", hide_input_in_errors=True
    )

    id: Annotated[str, Field(min_length=1)]
    name: str
    url: str
    fallback_urls: list[str] = Field(default_factory=list)
    method: str = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    payload_format: str = "JSON"
    is_active: bool = True
    retry_policy: CognigyRetryPolicy = Field(default_factory=CognigyRetryPolicy)
    timeout: int | None = None  # milliseconds
    signature_header: str | None = None

    def __repr_args__(self) -> Any:
        for key, value in super().__repr_args__():
            yield key, (redact_headers(value) if key == "headers" else value)

    def to_api_dict(self) -> dict[str, Any]:
        """The webhook as Cognigy's JSON (camelCase), without any secret."""
        return self.model_dump(mode="json", by_alias=True)


# --- one place that maps responses and network failures to typed errors --------------------------

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
    text = scrub(text, secrets)  # every form: plain, base64, Basic user:password, URL-encoded, JSON
    text = " ".join(text.split())  # one line: no CR/LF from the server into our logs
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def _payload_secrets(endpoint: WebhookEndpoint, payload: dict[str, Any]) -> list[str]:
    """The secret values a create or update body carries: the signature secret and every header value
    that is not public (resolved credentials, Basic auth's ``Authorization``)."""
    found = [str(payload.get("signatureSecret") or "")]
    headers = payload.get("headers") or {}
    found.extend(str(v) for k, v in headers.items() if not endpoint.is_public_header(str(k)))
    return [value for value in found if value]


def _body_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        return None


def _detail(body: Any, secrets: Sequence[str]) -> str:
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
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

    Messages name the method, the path and the status; ``secrets`` (the API key, a signature secret)
    are scrubbed from anything the server said before it is quoted.
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
    body = _body_json(outcome)
    detail = _detail(body, scrub)
    reason = outcome.reason_phrase or ""
    message = (
        f"{where} failed: HTTP {status}"
        + (f" {reason}" if reason else "")
        + (f": {detail}" if detail else "")
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


# --- the client -----------------------------------------------------------------------------------


def _webhook_path(webhook_id: str) -> str:
    if not isinstance(webhook_id, str) or not webhook_id or len(webhook_id) > 256:
        raise ValueError("webhook_id must be a non-empty string of at most 256 characters")
    return f"{WEBHOOKS_PATH}/{quote(webhook_id, safe='')}"


class CognigyClient:
    """Cognigy's webhook API, typed. Use as ``async with CognigyClient(key, base_url) as cognigy:``.

    ``client``: an existing ``httpx.AsyncClient`` to share (e.g. from :func:`create_cognigy_client`);
    it is not closed by this object. When ``api_key`` is given too, it is sent on each request.
    ``limiter``: when given, one token is taken before EACH request (retries included).
    """

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        base_url: str = DEFAULT_BASE_URL,
        *,
        verify: Verify = True,
        client: httpx.AsyncClient | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._key = _check_api_key(api_key) if api_key is not None else None
        self._base_url = _check_base_url(base_url)
        if client is None:
            if self._key is None:
                raise ValueError("api_key is required unless an httpx client is given")
            self._http = create_cognigy_client(self._key, self._base_url, verify=verify)
            self._owns_http = True
        else:
            self._http = client
            self._owns_http = False
        # A shared client given with a key: send the key per request (the client's own auth, if any,
        # is left alone for its other uses).
        self._auth: httpx.Auth | None = (
            _ApiKeyAuth(self._key) if client is not None and self._key is not None else None
        )
        self.limiter = limiter

    def __repr__(self) -> str:
        return f"CognigyClient(base_url={self.base_url!r}, limiter={self.limiter!r})"

    @property
    def base_url(self) -> str:
        return str(self._http.base_url).rstrip("/") or self._base_url

    @property
    def http(self) -> httpx.AsyncClient:
        return self._http

    def with_limiter(self, limiter: RateLimiter | None) -> CognigyClient:
        """A client sharing this one's connections and credentials but paced by ``limiter``."""
        twin = object.__new__(CognigyClient)
        twin.__dict__.update(self.__dict__)
        twin._owns_http = False
        twin.limiter = limiter
        return twin

    async def __aenter__(self) -> CognigyClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # --- plumbing ---------------------------------------------------------------------------------

    def _secrets(self, extra: Sequence[str] = ()) -> tuple[str, ...]:
        found: list[str] = []
        if self._key is not None:
            found.append(self._key.get_secret_value())
        auth = self._http.auth
        if isinstance(auth, _ApiKeyAuth):
            found.append(auth.api_key.get_secret_value())
        header = self._http.headers.get(API_KEY_HEADER)
        if header:
            found.append(header)
        found.extend(value for value in extra if value)
        return tuple(found)

    def _url(self, path: str) -> str:
        return path if str(self._http.base_url) else self._base_url + path

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        secrets: Sequence[str] = (),
    ) -> httpx.Response:
        """One call. ``secrets`` are the secret values the request carries (besides the API key): they
        are scrubbed, in every form, from any error text the answer or the failure produces."""
        if self.limiter is not None:
            await self.limiter.acquire()
        started = time.perf_counter()
        try:
            extra: dict[str, Any] = {"auth": self._auth} if self._auth is not None else {}
            response = await self._http.request(method, self._url(path), params=params, json=body, **extra)
        except httpx.RequestError as exc:
            error = map_cognigy_error(method, path, exc, secrets=self._secrets(secrets))
            assert error is not None
            logger.debug(
                "cognigy call failed", extra={"method": method, "path": path, "error": type(exc).__name__}
            )
            raise error from exc
        logger.debug(
            "cognigy call",
            extra={
                "method": method,
                "path": path,
                "status": response.status_code,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        error = map_cognigy_error(method, path, response, secrets=self._secrets(secrets))
        if error is not None:
            raise error
        return response

    @staticmethod
    def _webhook(method: str, path: str, response: httpx.Response) -> CognigyWebhook:
        body = _body_json(response)
        if isinstance(body, dict) and isinstance(body.get("webhook"), dict):
            body = body["webhook"]
        try:
            return CognigyWebhook.model_validate(body)
        except ValidationError:
            # A 2xx whose body is not a webhook: the change may have happened, the answer is lost.
            raise CognigyUnavailable(
                f"Cognigy {method} {path} gave HTTP {response.status_code} without a webhook in its body; "
                "the request may have been applied",
                status_code=response.status_code,
                maybe_applied=method != "GET",
            ) from None

    # --- the API ----------------------------------------------------------------------------------

    async def create_webhook(
        self, endpoint: WebhookEndpoint, *, signature_secret: str | None = None
    ) -> CognigyWebhook:
        """``POST /api/v2/webhooks``; 200 or 201 (any 2xx) with the created webhook.

        ``signature_secret`` overrides the endpoint's own (e.g. resolved from Secrets Manager)."""
        payload = endpoint.to_api_payload(signature_secret=signature_secret)
        response = await self._request(
            "POST", WEBHOOKS_PATH, body=payload, secrets=_payload_secrets(endpoint, payload)
        )
        return self._webhook("POST", WEBHOOKS_PATH, response)

    async def get_webhook(self, webhook_id: str) -> CognigyWebhook:
        path = _webhook_path(webhook_id)
        return self._webhook("GET", path, await self._request("GET", path))

    async def update_webhook(
        self, webhook_id: str, endpoint: WebhookEndpoint, *, signature_secret: str | None = None
    ) -> CognigyWebhook:
        """``PATCH /api/v2/webhooks/{id}`` with the endpoint's whole payload."""
        path = _webhook_path(webhook_id)
        payload = endpoint.to_api_payload(signature_secret=signature_secret)
        response = await self._request(
            "PATCH", path, body=payload, secrets=_payload_secrets(endpoint, payload)
        )
        return self._webhook("PATCH", path, response)

    async def delete_webhook(self, webhook_id: str) -> bool:
        """``DELETE /api/v2/webhooks/{id}``: True when deleted, False when it was already gone (404)."""
        try:
            await self._request("DELETE", _webhook_path(webhook_id))
        except CognigyNotFound:
            return False
        return True

    async def iter_webhooks(
        self, name: str | None = None, *, page_size: int = 100
    ) -> AsyncIterator[CognigyWebhook]:
        """Every webhook (optionally filtered by ``name``), following ``nextCursor`` page by page."""
        if not 1 <= page_size <= 1000:
            raise ValueError("page_size must be between 1 and 1000")
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(_MAX_PAGES):
            params: dict[str, Any] = {"limit": page_size}
            if name is not None:
                params["name"] = name
            if cursor is not None:
                params["cursor"] = cursor
            response = await self._request("GET", WEBHOOKS_PATH, params=params)
            body = _body_json(response)
            items = body.get("items") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise CognigyUnavailable(
                    f"Cognigy GET {WEBHOOKS_PATH} answered HTTP {response.status_code} without an items list",
                    status_code=response.status_code,
                )
            for item in items:
                try:
                    yield CognigyWebhook.model_validate(item)
                except ValidationError:
                    raise CognigyUnavailable(
                        f"Cognigy GET {WEBHOOKS_PATH} returned an item that is not a webhook",
                        status_code=response.status_code,
                    ) from None
            next_cursor = body.get("nextCursor") if isinstance(body, dict) else None
            if not next_cursor:
                return
            if not isinstance(next_cursor, str) or next_cursor in seen:
                raise CognigyUnavailable(
                    f"Cognigy GET {WEBHOOKS_PATH} returned a repeated or invalid nextCursor"
                )
            seen.add(next_cursor)
            cursor = next_cursor
        raise CognigyUnavailable(f"Cognigy GET {WEBHOOKS_PATH} had more than {_MAX_PAGES} pages")

    async def list_webhooks(self, name: str | None = None, *, page_size: int = 100) -> list[CognigyWebhook]:
        """All pages of ``GET /api/v2/webhooks`` (optionally ``?name=``), as one list."""
        return [webhook async for webhook in self.iter_webhooks(name, page_size=page_size)]

    async def find_by_name(self, name: str) -> CognigyWebhook | None:
        """The webhook named exactly ``name`` (the oldest one if, elsewhere, duplicates were made)."""
        async for webhook in self.iter_webhooks(name):
            if webhook.name == name:
                return webhook
        return None
