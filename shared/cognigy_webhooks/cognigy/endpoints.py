"""The endpoints dialect: Cognigy.AI's webhook Endpoints (``<host><prefix>/v2.0/endpoints``), the real API.

In Cognigy.AI a webhook target is an **Endpoint** whose ``channel`` is ``webhook``; its target is
``settings.webhookUrl`` and deliveries carry HTTP Basic auth from ``settings.basicAuthUser`` /
``basicAuthPassword`` (nothing else: no custom headers, payload format, retry policy, timeout or
signature). Facts and their sources are in the team's COGNIGY-API.md; what no source says is a
documented assumption here, never a silent guess.

:class:`CognigyEndpointsClient` is the adapter the one reconcile engine
(:mod:`cognigy_webhooks.reconcile.adopt`) drives: the same calls as the tutorial's
:class:`~cognigy_webhooks.cognigy.client.CognigyClient` (``create_webhook``, ``update_webhook``,
``get_webhook``, ``delete_webhook``, ``iter_webhooks``, ``list_webhooks``), mapped onto the real
resource, bound to one project (:meth:`~CognigyEndpointsClient.scoped`):

- create: ``POST /v2.0/endpoints`` with ``projectId``, ``name``, ``channel: webhook``, ``active``,
  ``settings`` and ``flowId``/``localeId`` when the spec gives them (defaults are not sent); the
  answer is the endpoint whole (``_id``, ``URLToken``, ``lastChanged``);
- update: ``PATCH /v2.0/endpoints/{id}`` with the whole ``settings`` object (Cognigy replaces it) and
  the top-level fields; ``projectId`` is never patched. An answer without the endpoint in it (the
  update's response is ``{}`` in the official types) is a success: the id is ours already;
- read / delete: ``GET`` / ``DELETE /v2.0/endpoints/{id}`` (200 or 204 both mean deleted; 404 on
  delete: already gone);
- list: ``GET /v2.0/endpoints?projectId=&channel=webhook&limit=100&skip=`` page by page until
  ``total`` is reached or a page comes back short (``nextCursor``/``next`` are read but never
  needed), ``filter=<name>`` when looking one name up (a substring filter: names are matched
  exactly here). List items carry no ``settings`` and no ``active``: :attr:`CognigyEndpoint.url` is
  None for them, and ``lastChanged`` says whether one moved since we wrote it.

Every request sends ``X-API-Key`` and ``Accept: application/json`` (without it Cognigy may answer in
HAL form, which the listing reads too: ``_embedded.endpoints``). Errors are RFC 7807 bodies, parsed
by :func:`~cognigy_webhooks.cognigy.responses.map_cognigy_error` into the typed errors (``trace_id``
kept). Nothing here retries. The Basic auth password is sent and never kept: what Cognigy answers is
reduced to a digest (:attr:`CognigyEndpoint.password_digest`), and the URLToken is a ``SecretStr``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import quote

import httpx
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from cognigy_webhooks.cognigy.client import CognigyHttp
from cognigy_webhooks.cognigy.responses import response_json
from cognigy_webhooks.cognigy.transport import Verify
from cognigy_webhooks.errors import CognigyNotFound, CognigyUnavailable
from cognigy_webhooks.models import WebhookEndpoint
from cognigy_webhooks.ratelimit import RateLimiter

__all__ = [
    "DEFAULT_API_PREFIX",
    "DEFAULT_ENDPOINTS_BASE_URL",
    "ENDPOINTS_PATH",
    "UNSUPPORTED_HINT",
    "CognigyEndpoint",
    "CognigyEndpointsClient",
    "drifted_fields",
    "endpoint_body",
    "endpoint_hash",
    "unsupported_fields",
]

DEFAULT_ENDPOINTS_BASE_URL = "https://api-trial.cognigy.ai"
DEFAULT_API_PREFIX = "/new"
ENDPOINTS_PATH = "/v2.0/endpoints"
CHANNEL = "webhook"
PAGE_SIZE = 100  # Cognigy's largest page
_MAX_PAGES = 10_000

UNSUPPORTED_HINT = (
    "Cognigy.AI's webhook Endpoints take only a URL and HTTP Basic auth: use basicAuth to "
    "authenticate deliveries (or CognigyApi=tutorial for the tutorial's API)"
)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


class CognigyEndpoint(BaseModel):
    """An Endpoint as Cognigy returns it (whole, or as a list item). Lenient (unknown fields
    ignored); it never keeps the Basic auth password (only :attr:`password_digest`, when Cognigy
    answered one) and its URLToken is a ``SecretStr`` (shown nowhere)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", hide_input_in_errors=True)

    id: Annotated[str, Field(min_length=1, validation_alias=AliasChoices("_id", "id"))]
    name: str
    channel: str = CHANNEL
    url: str | None = None  # settings.webhookUrl; None for a list item (no settings there)
    basic_auth_user: str | None = None
    password_digest: str | None = Field(default=None, repr=False)
    has_settings: bool = False
    active: bool | None = None
    flow_id: str | None = Field(default=None, validation_alias=AliasChoices("flowId", "flow_id"))
    locale_id: str | None = Field(default=None, validation_alias=AliasChoices("localeId", "locale_id"))
    project_id: str | None = Field(default=None, validation_alias=AliasChoices("projectId", "project_id"))
    url_token: SecretStr | None = Field(default=None, validation_alias=AliasChoices("URLToken", "url_token"))
    last_changed: int | None = Field(
        default=None, validation_alias=AliasChoices("lastChanged", "last_changed")
    )
    created_at: int | None = Field(default=None, validation_alias=AliasChoices("createdAt", "created_at"))
    # What the engine's name rules read (reconcile.names): Endpoints carry no headers, so no marks.
    headers: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = dict(data)
        settings = data.get("settings")
        out.pop("settings", None)
        if isinstance(settings, dict):
            out["has_settings"] = True
            url, user, password = (
                settings.get("webhookUrl"),
                settings.get("basicAuthUser"),
                settings.get("basicAuthPassword"),
            )
            out["url"] = url if isinstance(url, str) else None
            out["basic_auth_user"] = user if isinstance(user, str) and user else None
            out["password_digest"] = _digest(password) if isinstance(password, str) and password else None
        for key in ("lastChanged", "createdAt"):
            value = out.get(key)
            if isinstance(value, str):  # an ISO date instead of unix time: keep it comparable
                out[key] = int(_digest(value)[:12], 16)
            elif isinstance(value, float):
                out[key] = int(value)
        return out


def endpoint_body(spec: WebhookEndpoint, *, project_id: str | None = None) -> dict[str, Any]:
    """The Endpoint body for ``spec`` (the one place its Basic auth password is revealed: the spec
    must carry it resolved). ``project_id`` is given for a create only."""
    settings: dict[str, Any] = {"webhookUrl": spec.url}
    if spec.basic_auth is not None:
        settings["basicAuthUser"] = spec.basic_auth.username
        if spec.basic_auth.password is not None:
            settings["basicAuthPassword"] = spec.basic_auth.password.get_secret_value()
    body: dict[str, Any] = {}
    if project_id is not None:
        body["projectId"] = project_id
    body.update(name=spec.name, channel=CHANNEL, active=spec.is_active, settings=settings)
    target = spec.cognigy
    if target is not None and target.flow_id is not None:
        body["flowId"] = target.flow_id
    if target is not None and target.locale_id is not None:
        body["localeId"] = target.locale_id
    return body


def endpoint_hash(spec: WebhookEndpoint) -> str:
    """A digest of everything Cognigy is told about ``spec`` (its project included); the password
    enters through a digest of its own. Pass the spec with its password resolved: a rotation behind
    the same ARN changes the hash."""
    doc = endpoint_body(spec, project_id=spec.cognigy.project_id if spec.cognigy else None)
    password = doc["settings"].pop("basicAuthPassword", None)
    if password is not None:
        doc["settings"]["basicAuthPasswordDigest"] = _digest(password)
    elif spec.basic_auth is not None and spec.basic_auth.password_arn is not None:
        doc["settings"]["basicAuthPasswordArn"] = spec.basic_auth.password_arn
    doc["dialect"] = "endpoints"
    return _digest(json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def drifted_fields(remote: CognigyEndpoint, spec: WebhookEndpoint) -> list[str]:
    """The fields in which what Cognigy holds differs from ``spec`` (resolved). Compared only where
    Cognigy answered: whether a read returns ``basicAuthPassword`` is not documented, so the password
    counts only when it did (an assumption: a password changed in Cognigy's UI alone goes unseen
    when reads leave it out)."""
    wanted = endpoint_body(spec)
    settings = wanted["settings"]
    found: list[str] = []
    if remote.name != spec.name:
        found.append("name")
    if remote.has_settings:
        if remote.url != settings["webhookUrl"]:
            found.append("settings.webhookUrl")
        if remote.basic_auth_user != settings.get("basicAuthUser"):
            found.append("settings.basicAuthUser")
        password = settings.get("basicAuthPassword")
        if remote.password_digest is not None and remote.password_digest != (
            _digest(password) if password else None
        ):
            found.append("settings.basicAuthPassword")
    if remote.active is not None and remote.active != spec.is_active:
        found.append("active")
    for key, attr in (("flowId", "flow_id"), ("localeId", "locale_id")):
        if key in wanted and getattr(remote, attr) not in (None, wanted[key]):
            found.append(key)
    return found


_DEFAULT_RETRY = {"maxRetries": 3, "retryIntervalMs": 5000}


def unsupported_fields(raw: dict[str, Any]) -> list[dict[str, str]]:
    """What a raw spec asks for that Cognigy.AI's Endpoints cannot honour, each with what to use
    instead: a method other than POST, custom headers, XML, a retry policy, a signature. Defaults
    (``method: POST``, ``payloadFormat: JSON``) are simply not sent; ``timeoutMs`` only bounds the
    probe; ``fallbackUrls`` stay (the watch fails over to them)."""

    def value(*keys: str) -> Any:
        return next((raw[k] for k in keys if k in raw), None)

    problems: list[dict[str, str]] = []
    method = value("method")
    if method is not None and str(method).upper() != "POST":
        problems.append(
            {"field": "method", "message": f"Cognigy always POSTs deliveries; {UNSUPPORTED_HINT}"}
        )
    if value("headers"):
        problems.append(
            {
                "field": "headers",
                "message": f"Cognigy.AI Endpoints send no custom headers; {UNSUPPORTED_HINT}",
            }
        )
    if value("publicHeaders", "public_headers"):
        problems.append(
            {"field": "publicHeaders", "message": "names headers, which this dialect cannot send"}
        )
    fmt = value("payloadFormat", "payload_format")
    if fmt is not None and str(fmt).upper() != "JSON":
        problems.append({"field": "payloadFormat", "message": "Cognigy.AI Endpoints deliver JSON only"})
    if value("retryPolicy", "retry_policy") is not None:
        problems.append(
            {
                "field": "retryPolicy",
                "message": "Cognigy.AI decides its own delivery retries (not configurable per Endpoint)",
            }
        )
    for key in ("signatureHeader", "signatureSecret", "signatureSecretArn", "signatureScheme"):
        snake = "".join("_" + c.lower() if c.isupper() else c for c in key)
        if value(key, snake) is not None:
            problems.append(
                {"field": key, "message": f"Cognigy.AI Endpoints do not sign deliveries; {UNSUPPORTED_HINT}"}
            )
    target = value("cognigy")
    if not isinstance(target, dict) or not (target.get("projectId") or target.get("project_id")):
        problems.append(
            {
                "field": "cognigy.projectId",
                "message": "is required by Cognigy.AI (give it in the desired set's top-level cognigy: block "
                "or per endpoint)",
            }
        )
    return problems


def _endpoint_path(base: str, endpoint_id: str) -> str:
    if not isinstance(endpoint_id, str) or not endpoint_id or len(endpoint_id) > 256:
        raise ValueError("endpoint id must be a non-empty string of at most 256 characters")
    return f"{base}/{quote(endpoint_id, safe='')}"


class CognigyEndpointsClient(CognigyHttp):
    """Cognigy.AI's Endpoints resource as the engine's API, bound to one project (:meth:`scoped`).

    ``prefix``: the path before ``/v2.0`` (``/new`` by default; ``""`` where an installation serves
    ``/v2.0`` at the root). Everything else as :class:`CognigyClient` (the key per request, the
    limiter before each request, no retries)."""

    dialect: ClassVar[Literal["tutorial", "endpoints"]] = "endpoints"
    marks: ClassVar[bool] = False  # Endpoints cannot carry this stack's marks: ownership is the record

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        base_url: str = DEFAULT_ENDPOINTS_BASE_URL,
        *,
        prefix: str = DEFAULT_API_PREFIX,
        project_id: str | None = None,
        verify: Verify = True,
        client: httpx.AsyncClient | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        super().__init__(api_key, base_url, verify=verify, client=client, limiter=limiter)
        prefix = prefix.rstrip("/")
        if prefix and (not prefix.startswith("/") or any(c in prefix for c in "?#% ")):
            raise ValueError("prefix must be empty or a path starting with '/'")
        self.prefix = prefix
        self.project_id = project_id

    def __repr__(self) -> str:
        return (
            f"CognigyEndpointsClient(base_url={self.base_url!r}, prefix={self.prefix!r}, "
            f"project_id={self.project_id!r}, limiter={self.limiter!r})"
        )

    @property
    def path(self) -> str:
        return self.prefix + ENDPOINTS_PATH

    def scoped(self, project_id: str | None) -> CognigyEndpointsClient:
        """A client sharing this one's connections and credentials, bound to ``project_id``."""
        twin = self._twin()
        twin.project_id = project_id
        return twin

    def _project(self) -> str:
        if not self.project_id:
            raise ValueError("this call needs a project: use scoped(project_id)")
        return self.project_id

    def _endpoint(self, method: str, path: str, response: httpx.Response) -> CognigyEndpoint:
        body = response_json(response)
        try:
            return CognigyEndpoint.model_validate(body)
        except ValidationError:
            raise CognigyUnavailable(
                f"Cognigy {method} {path} gave HTTP {response.status_code} without an endpoint in its body; "
                "the request may have been applied",
                status_code=response.status_code,
                maybe_applied=method != "GET",
            ) from None

    @staticmethod
    def _secrets_of(body: dict[str, Any]) -> list[str]:
        password = body.get("settings", {}).get("basicAuthPassword")
        return [password] if isinstance(password, str) and password else []

    # --- the engine's calls ------------------------------------------------------------------

    @staticmethod
    def drifted(remote: CognigyEndpoint, spec: WebhookEndpoint) -> list[str]:
        """What the engine's read found changed outside the product (:func:`drifted_fields`)."""
        return drifted_fields(remote, spec)

    async def create_webhook(
        self, endpoint: WebhookEndpoint, *, signature_secret: str | None = None
    ) -> CognigyEndpoint:
        """``POST /v2.0/endpoints`` into the bound project (``signature_secret`` is the tutorial's
        and is ignored: the plan refuses signatures for this dialect)."""
        body = endpoint_body(endpoint, project_id=self._project())
        response = await self._request("POST", self.path, body=body, secrets=self._secrets_of(body))
        return self._endpoint("POST", self.path, response)

    async def update_webhook(
        self, webhook_id: str, endpoint: WebhookEndpoint, *, signature_secret: str | None = None
    ) -> CognigyEndpoint:
        """``PATCH /v2.0/endpoints/{id}`` with the whole ``settings`` (Cognigy replaces it)."""
        path = _endpoint_path(self.path, webhook_id)
        body = endpoint_body(endpoint)
        response = await self._request("PATCH", path, body=body, secrets=self._secrets_of(body))
        answer = response_json(response)
        if isinstance(answer, dict) and answer.get("_id"):
            return self._endpoint("PATCH", path, response)
        # an empty answer: the update was applied to the endpoint we named
        return CognigyEndpoint(id=webhook_id, name=endpoint.name, active=endpoint.is_active)

    async def get_webhook(self, webhook_id: str) -> CognigyEndpoint:
        path = _endpoint_path(self.path, webhook_id)
        return self._endpoint("GET", path, await self._request("GET", path))

    async def delete_webhook(self, webhook_id: str) -> bool:
        """``DELETE /v2.0/endpoints/{id}``: True when deleted (200 or 204), False when already gone."""
        try:
            await self._request("DELETE", _endpoint_path(self.path, webhook_id))
        except CognigyNotFound:
            return False
        return True

    async def iter_webhooks(
        self, name: str | None = None, *, page_size: int = PAGE_SIZE
    ) -> AsyncIterator[CognigyEndpoint]:
        """Every webhook Endpoint of the bound project (only those named exactly ``name`` when
        given), oldest first as Cognigy sorts ``createdAt``, page by page (``limit``/``skip``)."""
        if not 1 <= page_size <= PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {PAGE_SIZE}")
        skip = 0
        for _ in range(_MAX_PAGES):
            params: dict[str, Any] = {
                "projectId": self._project(),
                "channel": CHANNEL,
                "limit": page_size,
                "skip": skip,
                "sort": "createdAt:asc",
            }
            if name is not None:
                params["filter"] = name
            response = await self._request("GET", self.path, params=params)
            items, total = self._page(response)
            for item in items:
                if item.channel != CHANNEL or (name is not None and item.name != name):
                    continue
                yield item
            skip += len(items)
            if not items or len(items) < page_size or (total is not None and skip >= total):
                return
        raise CognigyUnavailable(f"Cognigy GET {self.path} had more than {_MAX_PAGES} pages")

    def _page(self, response: httpx.Response) -> tuple[Sequence[CognigyEndpoint], int | None]:
        body = response_json(response)
        items: Any = None
        if isinstance(body, dict):
            items = body.get("items")
            embedded = body.get("_embedded")
            if items is None and isinstance(embedded, dict):  # the HAL form
                items = embedded.get("endpoints", embedded.get("items"))
        if not isinstance(items, list):
            raise CognigyUnavailable(
                f"Cognigy GET {self.path} answered HTTP {response.status_code} without an items list",
                status_code=response.status_code,
            )
        try:
            parsed = [CognigyEndpoint.model_validate(item) for item in items]
        except ValidationError:
            raise CognigyUnavailable(
                f"Cognigy GET {self.path} returned an item that is not an endpoint",
                status_code=response.status_code,
            ) from None
        total = body.get("total") if isinstance(body, dict) else None
        return parsed, total if isinstance(total, int) and not isinstance(total, bool) else None

    async def list_webhooks(
        self, name: str | None = None, *, page_size: int = PAGE_SIZE
    ) -> list[CognigyEndpoint]:
        return [endpoint async for endpoint in self.iter_webhooks(name, page_size=page_size)]

    async def find_by_name(self, name: str) -> CognigyEndpoint | None:
        async for endpoint in self.iter_webhooks(name):
            return endpoint
        return None
