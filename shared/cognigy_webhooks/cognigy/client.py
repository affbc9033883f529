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
:func:`cognigy_webhooks.tutorial.register_webhook_with_retry`, decide about retries). Neither
the API key nor a signature secret ever appears in a message, a repr or a log line.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any, ClassVar, Literal, Self
from urllib.parse import quote

import httpx
from pydantic import SecretStr, ValidationError

from cognigy_webhooks.cognigy.responses import map_cognigy_error, response_json
from cognigy_webhooks.cognigy.transport import (
    API_KEY_HEADER,
    DEFAULT_BASE_URL,
    ApiKeyAuth,
    Verify,
    check_api_key,
    check_base_url,
    create_cognigy_client,
)
from cognigy_webhooks.cognigy.webhook import CognigyWebhook
from cognigy_webhooks.errors import (
    CognigyNotFound,
    CognigyUnavailable,
)
from cognigy_webhooks.models import WebhookEndpoint
from cognigy_webhooks.observability import count_cognigy_call, logger
from cognigy_webhooks.ratelimit import RateLimiter

__all__ = ["WEBHOOKS_PATH", "CognigyClient", "CognigyHttp"]

WEBHOOKS_PATH = "/api/v2/webhooks"
_MAX_PAGES = 10_000


def _payload_secrets(endpoint: WebhookEndpoint, payload: dict[str, Any]) -> list[str]:
    """The secret values a create or update body carries: the signature secret and every header value
    that is not public (resolved credentials, Basic auth's ``Authorization``)."""
    found = [str(payload.get("signatureSecret") or "")]
    headers = payload.get("headers") or {}
    found.extend(str(v) for k, v in headers.items() if not endpoint.is_public_header(str(k)))
    return [value for value in found if value]


def _webhook_path(webhook_id: str) -> str:
    if not isinstance(webhook_id, str) or not webhook_id or len(webhook_id) > 256:
        raise ValueError("webhook_id must be a non-empty string of at most 256 characters")
    return f"{WEBHOOKS_PATH}/{quote(webhook_id, safe='')}"


class CognigyHttp:
    """What both dialects' clients share: the connection, the key sent per request, the limiter
    asked before each request, the one mapping of outcomes to typed errors (:meth:`_request`), each
    request counted (:func:`~cognigy_webhooks.observability.count_cognigy_call`), and secrets scrubbed
    from every message. Each dialect's adapter adds its API on top.

    ``client``: an existing ``httpx.AsyncClient`` to share (e.g. from :func:`create_cognigy_client`);
    it is not closed by this object. When ``api_key`` is given too, it is sent on each request.
    ``limiter``: when given, one token is taken before EACH request (retries included).
    Each adapter says ``dialect`` (the API it speaks; the engine asks) and ``marks`` (whether its
    webhooks carry this stack's loop marks, which tell ours from others':
    :mod:`cognigy_webhooks.reconcile.names`).
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
        self._key = check_api_key(api_key) if api_key is not None else None
        self._base_url = check_base_url(base_url)
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
            ApiKeyAuth(self._key) if client is not None and self._key is not None else None
        )
        self.limiter = limiter

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, limiter={self.limiter!r})"

    @property
    def base_url(self) -> str:
        return str(self._http.base_url).rstrip("/") or self._base_url

    @property
    def http(self) -> httpx.AsyncClient:
        return self._http

    def _twin(self) -> Self:
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin._owns_http = False
        return twin

    def with_limiter(self, limiter: RateLimiter | None) -> Self:
        """A client sharing this one's connections and credentials but paced by ``limiter``."""
        twin = self._twin()
        twin.limiter = limiter
        return twin

    async def __aenter__(self) -> Self:
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
        if isinstance(auth, ApiKeyAuth):
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
            count_cognigy_call(None)
            error = map_cognigy_error(method, path, exc, secrets=self._secrets(secrets))
            assert error is not None
            logger.debug(
                "cognigy call failed", extra={"method": method, "path": path, "error": type(exc).__name__}
            )
            raise error from exc
        count_cognigy_call(response.status_code)
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


class CognigyClient(CognigyHttp):
    """Cognigy's webhook API (the tutorial dialect), typed. Use as
    ``async with CognigyClient(key, base_url) as cognigy:``; see :class:`CognigyHttp` for the
    connection arguments."""

    dialect: ClassVar[Literal["tutorial", "endpoints"]] = "tutorial"
    marks: ClassVar[bool] = True

    def scoped(self, project_id: str | None) -> CognigyClient:
        """The tutorial's API has no projects: this very client."""
        return self

    @staticmethod
    def _webhook(method: str, path: str, response: httpx.Response) -> CognigyWebhook:
        body = response_json(response)
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
            body = response_json(response)
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
