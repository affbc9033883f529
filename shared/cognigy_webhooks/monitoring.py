"""Send audit events to the user's monitoring platform, losing none and leaking no Cognigy key.

The tutorial posted its audit logs with the Cognigy client, so the Cognigy API key went to a third
party with every batch. Here the monitoring platform gets its own credential (``api_token``, sent as
``Authorization: Bearer``) and ``X-API-Key`` is removed from every request, even when the caller
hands over the Cognigy client itself (whose key is added by an auth hook as each request is sent).

Wire format (one request per batch, in order)::

    POST <monitoring_url>
    Content-Type: application/json
    Idempotency-Key: <sha256 of the body, 32 hex characters; the same on every retry of a batch>
    Authorization: Bearer <api_token>            (only when api_token is given)

    {"events": [{"webhookId": ..., "action": ..., "timestamp": "2024-05-01T12:00:00Z",
                 "latencyMs": ..., "successRate": ..., "tlsVersion": ..., "statusCode": ...,
                 "endpointUrl": ...}, ...]}

Event fields are camelCase, like the Cognigy API and our models' aliases; ``timestamp`` is ISO 8601.

Delivery: 2xx is success. 408, 429, 5xx and network errors are retried (``max_attempts`` in all)
with exponential backoff and full jitter (:mod:`cognigy_webhooks.backoff`; the retry settings
travel as one :class:`~cognigy_webhooks.backoff.Backoff`, ``retry=``); a ``Retry-After`` (seconds
or HTTP-date) is waited out, unless it asks for more than ``max_delay`` seconds. Other answers are
final for that batch: 401, 403, 404, 407 and redirects (never followed) stop the sync, since every
batch would meet them; any other 4xx (a batch the platform refuses) is kept and the next batch goes
on. When retries run out the sync stops too. Every event not acknowledged is returned in
``SyncResult.failed`` (in order) for the caller to keep: nothing is dropped silently.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncGenerator, Generator, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import anyio
import httpx
from pydantic import SecretStr

from cognigy_webhooks.backoff import Backoff, Sleep
from cognigy_webhooks.cognigy import parse_retry_after
from cognigy_webhooks.models import WebhookAuditLog
from cognigy_webhooks.observability import logger
from cognigy_webhooks.secrets import scrub_line
from cognigy_webhooks.urls import url_problem

__all__ = ["COGNIGY_KEY_HEADER", "SyncResult", "sync_to_monitoring_platform"]

COGNIGY_KEY_HEADER = "X-API-Key"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
MAX_BATCH_SIZE = 10_000
_STOP_STATUSES = frozenset({401, 403, 404, 407})
_RETRY_STATUSES = frozenset({408, 429})
# The sync's retry defaults (sync_to_monitoring_platform's keyword parameters).
MONITORING_RETRY = Backoff(max_attempts=4, base_delay=0.5, max_delay=30.0)


@dataclass(frozen=True, slots=True)
class SyncResult:
    """``sent`` events were acknowledged; ``failed`` ones were not and must be kept by the caller.
    ``last_error`` says why the last failure happened (never a credential)."""

    sent: int
    failed: list[WebhookAuditLog] = field(default_factory=list)
    requests: int = 0
    last_error: str | None = None

    @property
    def complete(self) -> bool:
        return not self.failed


@dataclass(frozen=True, slots=True)
class _Outcome:
    ok: bool
    stop: bool = False
    error: str | None = None


class _WithoutCognigyKey(httpx.Auth):
    """Runs the client's own auth flow, then removes ``X-API-Key`` from each request it yields:
    a Cognigy client adds its key in its auth flow, after any header we could have removed."""

    def __init__(self, inner: httpx.Auth) -> None:
        self._inner = inner

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        flow = self._inner.sync_auth_flow(request)
        try:
            outgoing = next(flow)
            while True:
                _strip_cognigy_key(outgoing)
                response = yield outgoing
                outgoing = flow.send(response)
        except StopIteration:
            return

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        flow = self._inner.async_auth_flow(request)
        try:
            outgoing = await flow.__anext__()
            while True:
                _strip_cognigy_key(outgoing)
                response = yield outgoing
                outgoing = await flow.asend(response)
        except StopAsyncIteration:
            return

    def __repr__(self) -> str:
        return "_WithoutCognigyKey(...)"


def _strip_cognigy_key(request: httpx.Request) -> None:
    while COGNIGY_KEY_HEADER in request.headers:  # httpx.Headers: case-insensitive, every copy
        del request.headers[COGNIGY_KEY_HEADER]


def _check_url(url: str) -> str:
    problem = url_problem(url, plain_http="always", credentials_hint="credentials: pass api_token")
    if problem is not None:
        raise ValueError(f"monitoring_url {problem}")
    return url


def _where(url: str) -> str:
    """The URL as logs may show it: no query (tokens hide there), no user-info."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


def _check_token(api_token: str | SecretStr | None) -> str | None:
    if api_token is None:
        return None
    raw = api_token.get_secret_value() if isinstance(api_token, SecretStr) else api_token
    # Visible ASCII only: an illegal header value would be quoted in httpx's own error message.
    if not isinstance(raw, str) or not raw or len(raw) > 4096 or any(not 0x21 <= ord(c) <= 0x7E for c in raw):
        raise ValueError("api_token must be 1-4096 visible ASCII characters without spaces")
    return raw


def _body(batch: Sequence[WebhookAuditLog]) -> bytes:
    events = [log.model_dump(mode="json", by_alias=True) for log in batch]
    return json.dumps({"events": events}, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


async def sync_to_monitoring_platform(
    audit_logs: Sequence[WebhookAuditLog],
    monitoring_url: str,
    *,
    api_token: str | SecretStr | None = None,
    client: httpx.AsyncClient | None = None,
    batch_size: int = 100,
    max_attempts: int = 4,
    base_delay: float = 0.5,
    max_delay: float = 30.0,
    sleep: Sleep | None = None,
    retry: Backoff | None = None,
) -> SyncResult:
    """POST ``audit_logs`` to ``monitoring_url`` in batches of ``batch_size``, in order.

    ``api_token`` is the monitoring platform's own credential (``Authorization: Bearer``). ``client``
    may be any ``httpx.AsyncClient`` (even the Cognigy one): ``X-API-Key`` is stripped from every
    request, and the client's own auth is not used when ``api_token`` is given. ``sleep`` waits
    between attempts (``anyio.sleep`` by default; tests pass a recorder). ``retry`` gives
    ``max_attempts``, ``base_delay``, ``max_delay`` and ``sleep`` as one
    :class:`~cognigy_webhooks.backoff.Backoff` instead (not both). Never raises for a delivery
    problem: unacknowledged events come back in ``SyncResult.failed``. Raises ``ValueError`` for
    unusable arguments (never echoing the token).
    """
    given = Backoff(max_attempts, base_delay, max_delay, sleep)
    if retry is not None and given != MONITORING_RETRY:
        raise ValueError("give retry or max_attempts/base_delay/max_delay/sleep, not both")
    policy = retry or given
    url = _check_url(monitoring_url)
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or not 1 <= batch_size <= MAX_BATCH_SIZE
    ):
        raise ValueError(f"batch_size must be an integer from 1 to {MAX_BATCH_SIZE}")
    attempts = policy.max_attempts
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ValueError("max_attempts must be an integer of at least 1")
    if not 0 <= policy.base_delay <= policy.max_delay:
        raise ValueError("delays must satisfy 0 <= base_delay <= max_delay")
    token = _check_token(api_token)
    logs = list(audit_logs)
    if not logs:
        return SyncResult(sent=0)

    owned = client is None
    http = (
        client if client is not None else httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, follow_redirects=False)
    )
    sender = _BatchSender(
        http=http,
        url=url,
        token=token,
        retry=policy,
        sleep=policy.sleeper(anyio.sleep),
    )
    sent = 0
    failed: list[WebhookAuditLog] = []
    last_error: str | None = None
    try:
        for start in range(0, len(logs), batch_size):
            batch = logs[start : start + batch_size]
            outcome = await sender.send(batch)
            if outcome.ok:
                sent += len(batch)
                continue
            failed.extend(batch)
            last_error = outcome.error
            if outcome.stop:
                failed.extend(logs[start + batch_size :])
                break
    finally:
        if owned:
            await http.aclose()
    if failed:
        logger.error(
            "monitoring sync left events unsent",
            extra={"target": _where(url), "sent": sent, "failed": len(failed), "error": last_error},
        )
    return SyncResult(sent=sent, failed=failed, requests=sender.requests, last_error=last_error)


@dataclass(slots=True)
class _BatchSender:
    http: httpx.AsyncClient
    url: str
    token: str | None
    retry: Backoff
    sleep: Sleep
    requests: int = 0

    def _auth(self) -> httpx.Auth | None:
        if self.token is not None:
            return None  # our own credential only; the client's auth (maybe Cognigy's) is not run
        inner = self.http.auth
        return _WithoutCognigyKey(inner) if inner is not None else None

    def _request(self, body: bytes) -> httpx.Request:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Idempotency-Key": hashlib.sha256(body).hexdigest()[:32],
        }
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        request = self.http.build_request("POST", self.url, content=body, headers=headers)
        _strip_cognigy_key(request)  # a default header of the client's (the tutorial's Cognigy client)
        return request

    async def send(self, batch: Sequence[WebhookAuditLog]) -> _Outcome:
        body = _body(batch)
        retry = self.retry
        for attempt in range(1, retry.max_attempts + 1):
            retry_after: float | None = None
            self.requests += 1
            try:
                response = await self.http.send(
                    self._request(body), auth=self._auth(), follow_redirects=False
                )
            except httpx.TransportError as exc:
                error = scrub_line(f"{type(exc).__name__}: {exc}", [self.token])
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return _Outcome(ok=True)
                error = f"HTTP {status}"
                if status in _STOP_STATUSES or 300 <= status < 400:
                    return _Outcome(ok=False, stop=True, error=error)
                if status not in _RETRY_STATUSES and status < 500:
                    return _Outcome(ok=False, error=error)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if attempt == retry.max_attempts:
                return _Outcome(ok=False, stop=True, error=f"{error} (after {attempt} attempts)")
            if retry_after is not None and retry_after > retry.max_delay:
                return _Outcome(
                    ok=False, stop=True, error=f"{error}; Retry-After {retry_after:g} s is too long"
                )
            delay = retry.delay(attempt)
            if retry_after is not None:
                delay = max(delay, retry_after)
            logger.warning(
                "monitoring sync retry",
                extra={
                    "target": _where(self.url),
                    "attempt": attempt,
                    "max_attempts": retry.max_attempts,
                    "error": error,
                    "delay_s": round(delay, 3),
                    "batch_size": len(batch),
                },
            )
            await self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover
