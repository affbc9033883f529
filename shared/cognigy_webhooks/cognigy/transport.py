"""The tutorial's ``create_cognigy_client``: an ``httpx.AsyncClient`` per its contract (base URL
``https://api.cognigy.ai`` by default, ``X-API-Key`` added per request by an auth hook, JSON in and out,
30 s / 10 s connect / 20 s read, redirects not followed, TLS verified)."""

from __future__ import annotations

import os
import ssl
from collections.abc import Generator

import httpx
from pydantic import SecretStr

from cognigy_webhooks.net.tls import client_ssl_context
from cognigy_webhooks.secrets import REDACTED
from cognigy_webhooks.urls import url_problem

__all__ = ["API_KEY_HEADER", "DEFAULT_BASE_URL", "DEFAULT_TIMEOUT", "Verify", "create_cognigy_client"]

DEFAULT_BASE_URL = "https://api.cognigy.ai"
WEBHOOKS_PATH = "/api/v2/webhooks"
API_KEY_HEADER = "X-API-Key"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0, read=20.0)
USER_AGENT = "cognigy-webhooks/0.1"
_MAX_PAGES = 10_000
_MAX_DETAIL = 300

Verify = bool | str | os.PathLike[str] | ssl.SSLContext


class ApiKeyAuth(httpx.Auth):
    """Adds ``X-API-Key`` to each request as it is sent, so the key is not kept in the client's
    default headers (whose repr httpx does not redact) and never shows in a repr of ours."""

    def __init__(self, api_key: SecretStr) -> None:
        self.api_key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[API_KEY_HEADER] = self.api_key.get_secret_value()
        yield request

    def __repr__(self) -> str:
        return f"ApiKeyAuth({REDACTED})"


def check_api_key(api_key: str | SecretStr) -> SecretStr:
    raw = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
    if not isinstance(raw, str) or not raw:
        raise ValueError("api_key must be a non-empty string")
    # A header value must be visible ASCII; checking here keeps the key out of httpx's own errors
    # (h11 quotes an illegal header value in its message).
    if len(raw) > 1024 or any(not 0x21 <= ord(ch) <= 0x7E for ch in raw):
        raise ValueError("api_key must be visible ASCII without spaces, at most 1024 characters")
    return SecretStr(raw)


def check_base_url(base_url: str) -> str:
    problem = url_problem(
        base_url, plain_http="loopback", query=False, credentials_hint="credentials: pass api_key"
    )
    if problem is not None:
        raise ValueError(f"base_url {problem}")
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
    key = check_api_key(api_key)
    return httpx.AsyncClient(
        base_url=check_base_url(base_url),
        auth=ApiKeyAuth(key),
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
