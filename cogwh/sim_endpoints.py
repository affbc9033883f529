"""The simulator's second dialect: Cognigy.AI's real Endpoints resource (``/new/v2.0/endpoints``).

Served by the same app as the tutorial's ``/api/v2/webhooks`` (:func:`mount_endpoints`, called by
:func:`cogwh.simulator.create_simulator_app`), and behind the same gate: ``X-API-Key`` (401),
read-only keys (403 on every write), the per-key token bucket (429 with a numeric ``Retry-After``)
and the fault injection of :class:`cogwh.simulator.Faults` (except ``stale``, a tutorial listing
fault). What it keeps of the real service (facts in COGNIGY-API.md):

- ``POST /new/v2.0/endpoints`` (201; the real status is not documented, clients accept any 2xx):
  ``projectId`` required and one of ``SimulatorConfig.project_ids`` (else 404); every other top-level
  field must be an Endpoint field (``additionalProperties: false``: 400 naming the field);
  ``name`` (1-200 characters, no control characters: the real ``resource-name`` rule is not
  published), ``channel`` (a Cognigy channel type, default ``webhook``), ``flowId``/``localeId``
  (a UUID or ``""``), ``entrypoint`` (24 hex or null), ``active`` (boolean), ``settings`` (an
  object; for channel ``webhook`` ``webhookUrl`` must be an absolute http(s) URI and
  ``basicAuthUser``/``basicAuthPassword`` strings). ``URLToken`` is Cognigy's to set: refused.
  Duplicate names are accepted. The answer is the endpoint whole: ``_id`` (24 hex), ``URLToken``
  (64 alphanumerics), ``createdAt``/``lastChanged`` (unix time in milliseconds; ``lastChanged`` grows
  on every write, strictly), ``createdBy``/``lastChangedBy`` (a 24-hex user id for the key).
- ``GET /new/v2.0/endpoints?projectId=&filter=&channel=&limit=&skip=&sort=``: ``limit`` 1..100
  (default 25), ``skip`` >= 0, ``filter`` a case-insensitive name substring, ``sort`` ``field:asc``
  or ``field:desc`` (comma separated, as the official client writes it); answer
  ``{items, total, nextCursor, previousCursor}`` (cursors are opaque; ``null`` at the ends). Items
  are the index shape: no ``settings`` and no ``active``.
- ``GET``/``PATCH``/``DELETE /new/v2.0/endpoints/{id}``: PATCH merges the top level but replaces
  ``settings`` as a whole (as Cognigy does); ``projectId`` cannot be patched. DELETE answers 204
  (the real status is unknown: 200 or 204, clients must accept both).
- Errors are RFC 7807 ``{type, title, detail, instance, status, traceId, code}`` plus ``details``
  when there are field problems (``[{field, message}]``; values are never echoed), with Cognigy's
  codes: 1002 not found, 1004 conflict, 1005 invalid argument, 1008 internal; the HTTP status for
  401, 403, 413, 415, 429 and other 5xx.
- Without ``Accept: application/json`` (the official client always sends it) a listing answers in
  HAL form: ``{_embedded: {endpoints: [...]}, _links: {self, next?, previous?}, total}``.

``basicAuthPassword`` is kept (the Endpoint service delivers with it) but never answered, never
recorded in ``/_admin/requests`` or ``/_admin/deliveries`` and never in a ``repr``: tests compare
:meth:`EndpointStore.password_digest`. Tests reach the store as ``app.state.endpoints`` or
``store_of(app.state.sim)`` (:class:`EndpointStore`); every ``app.state.sim.reset()`` empties it,
its delivery log included.

The same app also plays Cognigy's **Endpoint service** (user input posted to ``/{URLToken}``, a
trivial flow, one output delivered to ``settings.webhookUrl`` with the endpoint's Basic auth):
:mod:`cogwh.sim_endpoint_service`, mounted by :func:`mount_endpoints`. The store keeps what it needs:
:meth:`EndpointStore.delivery_target` (an endpoint by its URLToken, password included, for the
delivery only) and the delivery log (:meth:`EndpointStore.deliveries`,
:meth:`EndpointStore.wait_deliveries`, ``GET /_admin/deliveries``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import random
import re
import secrets
import string
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cogwh.simulator import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    SimulatorConfig,
    SimulatorState,
    key_fingerprint,
)

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from cogwh.simulator import _Api

__all__ = [
    "ENDPOINTS_PATH",
    "DeliveryLog",
    "DeliveryTarget",
    "EndpointStore",
    "mount_endpoints",
    "problem",
    "store_of",
]

ENDPOINTS_PATH = "/new/v2.0/endpoints"

CODE_NOT_FOUND = 1002
CODE_CONFLICT = 1004
CODE_INVALID_ARGUMENT = 1005
CODE_INTERNAL = 1008

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_CODES = {400: CODE_INVALID_ARGUMENT, 404: CODE_NOT_FOUND, 409: CODE_CONFLICT, 500: CODE_INTERNAL}

# Cognigy's channel types (the official client's TEndpointType, plus the API's spellings).
CHANNELS = frozenset(
    [
        "facebook",
        "workplace",
        "alexa",
        "slack",
        "webhook",
        "rest",
        "abstractRest",
        "abstract-rest",
        "socket",
        "adminconsole",
        "webchat2",
        "webchat3",
        "dialogflow",
        "twilio",
        "twilioSms",
        "twilio-sms",
        "line",
        "intercom",
        "microsoftBotFramework",
        "microsoftTeams",
        "sunshineConversations",
        "userlike",
        "ringCentralEngage",
        "audioCodes",
        "avaya",
        "nonConversational",
        "voiceGateway2",
        "whatsapp",
        "amazonLex",
        "eightByEight",
        "bandwidth",
        "genesysBotConnector",
        "niceCXOne",
        "agentAssistVoice",
        "inject",
        "admin-webchat",
    ]
)
# The Endpoint's writable top-level fields (IEndpoint_2_0, without Cognigy's metadata).
_CHECKED = ("name", "channel", "flowId", "localeId", "entrypoint", "active", "settings")
_OTHER_FIELDS = frozenset(
    [
        "dashbotApikey",
        "dashbotPlatform",
        "maskAnalytics",
        "maskIPAddress",
        "maskLogging",
        "nluConnectorId",
        "transformer",
        "handoverSettings",
        "translationSettings",
        "foreignId",
        "useAnalytics",
        "useContactProfiles",
        "useConversations",
        "storeDataPayload",
        "useDashbotAnalytics",
        "overrideSnapshotConnections",
        "fileStorageSettings",
        "disableInputSanitization",
    ]
)
_FIELDS = frozenset(_CHECKED) | _OTHER_FIELDS
_BOOL_FIELDS = frozenset(
    [
        "active",
        "maskAnalytics",
        "maskIPAddress",
        "maskLogging",
        "useAnalytics",
        "useContactProfiles",
        "useConversations",
        "storeDataPayload",
        "useDashbotAnalytics",
        "overrideSnapshotConnections",
        "disableInputSanitization",
    ]
)
_INDEX_FIELDS = (
    "_id",
    "name",
    "channel",
    "URLToken",
    "flowId",
    "localeId",
    "createdAt",
    "lastChanged",
    "createdBy",
    "lastChangedBy",
    "overrideSnapshotConnections",
)
_SORTABLE = frozenset({"name", "channel", "createdAt", "lastChanged", "_id"})
_HEX24 = re.compile(r"^[0-9a-f]{24}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ALNUM = string.ascii_letters + string.digits
MAX_NAME = 200


def problem(
    status: int, detail: str, instance: str, details: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    """An RFC 7807 body the way Cognigy writes it (``details`` only when there are some)."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Server Error" if status >= 500 else "Error"),
        "detail": detail,
        "instance": instance,
        "status": status,
        "traceId": "trace-" + secrets.token_hex(8),
        "code": _CODES.get(status, status),
    }
    if details:
        body["details"] = details
    return body


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _uri_problem(value: Any) -> str | None:
    """Cognigy's own ``format: uri`` check, as loose as the server's (http allowed, user-info and
    fragments not refused): the simulator imitates what Cognigy accepts. What *we* accept is the
    stricter :func:`cognigy_webhooks.urls.url_problem`, deliberately not used here."""
    if not isinstance(value, str):
        return "must be a string"
    if any(ord(ch) < 0x21 for ch in value):
        return "must not contain spaces or control characters"
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute http(s) URI"
    return None


def validate_endpoint(body: dict[str, Any], *, partial: bool) -> list[dict[str, str]]:
    """Field problems of a create (``partial=False``) or PATCH body; values are never echoed."""
    errors: list[dict[str, str]] = []

    def bad(field: str, message: str) -> None:
        errors.append({"field": field, "message": message})

    for key in body:
        if key == "projectId" and not partial:
            continue
        if key == "projectId":
            bad("projectId", "cannot be changed (an endpoint stays in its project)")
        elif key == "URLToken":
            bad("URLToken", "is set by Cognigy")
        elif key not in _FIELDS:
            bad(_short(str(key)), "is not a field of an Endpoint (additionalProperties: false)")
    if not partial and not (isinstance(body.get("projectId"), str) and body["projectId"]):
        bad("projectId", "is required (a project id)")
    if "name" in body:
        name = body["name"]
        if not isinstance(name, str):
            bad("name", "must be a string")
        elif not 1 <= len(name) <= MAX_NAME or not name.strip():
            bad("name", f"must be 1 to {MAX_NAME} characters, not only spaces")
        elif any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
            bad("name", "must not contain control characters")
    if "channel" in body and body["channel"] not in CHANNELS:
        bad("channel", "is not a Cognigy channel type")
    for field in ("flowId", "localeId"):
        if field in body:
            value = body[field]
            if not (isinstance(value, str) and (value == "" or _UUID.fullmatch(value))):
                bad(field, 'must be a UUID or ""')
    if "entrypoint" in body:
        value = body["entrypoint"]
        if value is not None and not (isinstance(value, str) and _HEX24.fullmatch(value)):
            bad("entrypoint", "must be a project or snapshot id (24 hex characters) or null")
    for field in _BOOL_FIELDS & body.keys():
        if not isinstance(body[field], bool):
            bad(field, "must be a boolean")
    if "settings" in body:
        settings = body["settings"]
        if not isinstance(settings, dict):
            bad("settings", "must be an object")
        else:
            if "webhookUrl" in settings and (reason := _uri_problem(settings["webhookUrl"])):
                bad("settings.webhookUrl", reason)
            for field in ("basicAuthUser", "basicAuthPassword"):
                if field in settings and not isinstance(settings[field], str):
                    bad(f"settings.{field}", "must be a string")
    return errors


@dataclasses.dataclass(frozen=True)
class DeliveryTarget:
    """What the Endpoint service needs of one endpoint to run its flow and deliver the output. The
    password is for the ``Authorization`` header only: never in a ``repr``, a record or an answer."""

    endpoint_id: str
    channel: str
    active: bool
    webhook_url: str | None
    basic_auth_user: str | None
    basic_auth_password: str | None = dataclasses.field(default=None, repr=False)


class DeliveryLog:
    """Every delivery attempt of the Endpoint service, in the order they ended; thread-safe.

    Written from the simulator's event loop, read and waited on from any thread:
    :meth:`wait` returns once ``n`` attempts are recorded (a :class:`threading.Condition`, no polling).
    :meth:`reset` forgets them and starts a new generation: an attempt begun before a reset is
    dropped when it ends, so a test never sees a delivery of the test before it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._items: list[dict[str, Any]] = []
        self.generation = 0

    def __repr__(self) -> str:
        return f"DeliveryLog(deliveries={len(self._items)})"

    def reset(self) -> None:
        with self._cond:
            self._items = []
            self.generation += 1
            self._cond.notify_all()

    def add(self, generation: int, record: dict[str, Any]) -> None:
        """Record one ended attempt (``seq`` is set here); dropped when a reset came in between."""
        with self._cond:
            if generation != self.generation:
                return
            self._items.append({"seq": len(self._items) + 1, **record})
            self._cond.notify_all()

    def snapshot(self) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(item) for item in self._items]

    def wait(self, n: int, timeout: float) -> list[dict[str, Any]]:
        """The attempts once at least ``n`` are recorded; TimeoutError after ``timeout`` seconds."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._items) >= n, timeout=timeout):
                raise TimeoutError(
                    f"{len(self._items)} delivery attempt(s) recorded, {n} expected within {timeout:g} s"
                )
            return [dict(item) for item in self._items]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


class EndpointStore:
    """The endpoints the simulator holds, per project; thread-safe. ``wall_clock`` gives unix
    seconds (tests may pass a fake one); timestamps are its milliseconds, ``lastChanged`` strictly
    growing."""

    def __init__(self, sim: SimulatorState, wall_clock: Callable[[], float] = time.time) -> None:
        self._sim = sim
        self._wall_clock = wall_clock
        self._lock = threading.RLock()
        self._endpoints: dict[str, dict[str, Any]] = {}
        self._passwords: dict[str, str] = {}
        self._last_ms = 0
        self.delivery_log = DeliveryLog()
        sim.on_reset(self.reset)

    def __repr__(self) -> str:
        return f"EndpointStore(endpoints={len(self._endpoints)})"

    def reset(self) -> None:
        with self._lock:
            seed = self._sim.config.seed
            self._rng = random.Random(f"endpoints:{seed}") if seed is not None else random.SystemRandom()
            self._endpoints = {}
            self._passwords = {}
            self._seq = 0
            self.delivery_log.reset()

    @property
    def config(self) -> SimulatorConfig:
        return self._sim.config

    @property
    def project_ids(self) -> tuple[str, ...]:
        return self._sim.config.project_ids

    # --- views for tests ---------------------------------------------------------------------

    @property
    def endpoints(self) -> dict[str, dict[str, Any]]:
        """Every endpoint as the API answers it (no password), by ``_id``."""
        with self._lock:
            return {eid: self._public(e) for eid, e in self._endpoints.items()}

    def named(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [self._public(e) for e in self._ordered() if e["name"] == name]

    def password_digest(self, endpoint_id: str) -> str | None:
        """SHA-256 (hex) of the stored ``settings.basicAuthPassword`` (None when none is set)."""
        with self._lock:
            password = self._passwords.get(endpoint_id)
            return None if password is None else _digest(password)

    def deliveries(self) -> list[dict[str, Any]]:
        """Every delivery attempt of the Endpoint service so far (see :mod:`cogwh.sim_endpoint_service`)."""
        return self.delivery_log.snapshot()

    def wait_deliveries(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The delivery attempts once at least ``n`` have ended (TimeoutError after ``timeout`` s)."""
        return self.delivery_log.wait(n, timeout)

    def delivery_target(self, url_token: str) -> DeliveryTarget | None:
        """The endpoint whose ``URLToken`` is ``url_token`` (compared in constant time), or None."""
        with self._lock:
            for stored in self._endpoints.values():
                if hmac.compare_digest(stored["URLToken"].encode(), url_token.encode()):
                    settings = stored["settings"]
                    url, user = settings.get("webhookUrl"), settings.get("basicAuthUser")
                    return DeliveryTarget(
                        endpoint_id=stored["_id"],
                        channel=stored["channel"],
                        active=stored["active"] is True,
                        webhook_url=url if isinstance(url, str) else None,
                        basic_auth_user=user if isinstance(user, str) else None,
                        basic_auth_password=self._passwords.get(stored["_id"]),
                    )
            return None

    # --- used by the routes ------------------------------------------------------------------

    def _now_ms(self) -> int:
        self._last_ms = max(int(self._wall_clock() * 1000), self._last_ms + 1)
        return self._last_ms

    def _ordered(self) -> list[dict[str, Any]]:
        return sorted(self._endpoints.values(), key=lambda e: e["_seq"])

    def _public(self, stored: dict[str, Any]) -> dict[str, Any]:
        public = {k: v for k, v in stored.items() if not k.startswith("_") or k == "_id"}
        public["settings"] = {k: v for k, v in stored["settings"].items() if k != "basicAuthPassword"}
        return json.loads(json.dumps(public))

    def _keep_settings(self, endpoint_id: str, stored: dict[str, Any], settings: dict[str, Any]) -> None:
        settings = dict(settings)
        password = settings.pop("basicAuthPassword", None)
        if password is None:
            self._passwords.pop(endpoint_id, None)
        else:
            self._passwords[endpoint_id] = password
        stored["settings"] = settings

    def _new_id(self) -> str:
        endpoint_id = f"{self._rng.getrandbits(96):024x}"
        while endpoint_id in self._endpoints:
            endpoint_id = f"{self._rng.getrandbits(96):024x}"
        return endpoint_id

    def create(self, body: dict[str, Any], user: str) -> dict[str, Any]:
        """Store a valid create body (the caller validated it and checked the project)."""
        with self._lock:
            endpoint_id = self._new_id()
            now = self._now_ms()
            self._seq += 1
            fields = {k: v for k, v in body.items() if k not in ("projectId", "settings")}
            stored: dict[str, Any] = {
                "_id": endpoint_id,
                "name": "",
                "channel": "webhook",
                "flowId": "",
                "localeId": "",
                "entrypoint": None,
                "active": True,
                "overrideSnapshotConnections": False,
                **fields,
                "URLToken": "".join(self._rng.choice(_ALNUM) for _ in range(64)),
                "createdAt": now,
                "lastChanged": now,
                "createdBy": user,
                "lastChangedBy": user,
                "_seq": self._seq,
                "_project": body["projectId"],
            }
            self._keep_settings(endpoint_id, stored, body.get("settings") or {})
            self._endpoints[endpoint_id] = stored
            return self._public(stored)

    def get(self, endpoint_id: str) -> dict[str, Any] | None:
        with self._lock:
            stored = self._endpoints.get(endpoint_id)
            return None if stored is None else self._public(stored)

    def update(self, endpoint_id: str, body: dict[str, Any], user: str) -> dict[str, Any] | None:
        """Merge the top level, replace ``settings`` whole; None when unknown."""
        with self._lock:
            stored = self._endpoints.get(endpoint_id)
            if stored is None:
                return None
            stored.update({k: v for k, v in body.items() if k != "settings"})
            if "settings" in body:
                self._keep_settings(endpoint_id, stored, body["settings"])
            stored["lastChanged"] = self._now_ms()
            stored["lastChangedBy"] = user
            return self._public(stored)

    def delete(self, endpoint_id: str) -> bool:
        with self._lock:
            self._passwords.pop(endpoint_id, None)
            return self._endpoints.pop(endpoint_id, None) is not None

    def page(
        self,
        *,
        project: str | None,
        name_filter: str | None,
        channel: str | None,
        sort: list[tuple[str, bool]],
        limit: int,
        skip: int,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of index items and the total that matched."""
        with self._lock:
            rows = [
                e
                for e in self._ordered()
                if (project is None or e["_project"] == project)
                and (not name_filter or name_filter.lower() in e["name"].lower())
                and (channel is None or e["channel"] == channel)
            ]
            for field, descending in reversed(sort):
                rows.sort(key=lambda e, f=field: e[f], reverse=descending)  # type: ignore[misc]
            chosen = rows[skip : skip + limit]
            return [{k: e[k] for k in _INDEX_FIELDS} for e in chosen], len(rows)


def _user_id(key: str) -> str:
    """The 24-hex id of the user an API key belongs to (derived from its fingerprint)."""
    return hashlib.sha256(key_fingerprint(key).encode()).hexdigest()[:24]


def _cursor(skip: int) -> str:
    return "skip-" + str(skip)


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "").lower()


class _EndpointsApi:
    def __init__(self, api: _Api, store: EndpointStore) -> None:
        self._api = api
        self.store = store

    async def _serve(
        self, request: Request, action: Callable[..., tuple[int, Any]], *, write: bool
    ) -> Response:
        path = request.url.path

        def error(status: int, detail: str) -> dict[str, Any]:
            return problem(status, detail, path)

        return await self._api._serve(request, action, write=write, error=error)

    async def collection(self, request: Request) -> Response:
        if request.method == "POST":
            return await self._serve(request, self._create, write=True)
        return await self._serve(request, self._list, write=False)

    async def item(self, request: Request) -> Response:
        action = {"GET": self._read, "PATCH": self._patch, "DELETE": self._delete}[request.method]
        return await self._serve(request, action, write=request.method != "GET")

    def _invalid(self, request: Request, errors: list[dict[str, str]]) -> tuple[int, Any]:
        return 400, problem(400, "the request is not valid", request.url.path, errors)

    def _create(self, request: Request, body: Any, key: str) -> tuple[int, Any]:
        if not isinstance(body, dict):
            return self._invalid(request, [{"field": "body", "message": "must be a JSON object"}])
        errors = validate_endpoint(body, partial=False)
        if errors:
            return self._invalid(request, errors)
        if body["projectId"] not in self.store.project_ids:
            return 404, problem(404, "no project with this id", request.url.path)
        return 201, self.store.create(body, _user_id(key))

    def _list(self, request: Request, body: Any, key: str) -> tuple[int, Any]:
        params = request.query_params
        errors: list[dict[str, str]] = []
        limit_text = params.get("limit", str(DEFAULT_PAGE_SIZE))
        skip_text = params.get("skip", "0")
        if not (limit_text.isdigit() and len(limit_text) < 6 and 1 <= int(limit_text) <= MAX_PAGE_SIZE):
            errors.append({"field": "limit", "message": f"must be an integer from 1 to {MAX_PAGE_SIZE}"})
        if not (skip_text.isdigit() and len(skip_text) < 10):
            errors.append({"field": "skip", "message": "must be an integer >= 0"})
        channel = params.get("channel")
        if channel is not None and channel not in CHANNELS:
            errors.append({"field": "channel", "message": "is not a Cognigy channel type"})
        sort: list[tuple[str, bool]] = []
        for part in filter(None, params.get("sort", "").split(",")):
            field, _, direction = part.partition(":")
            if field not in _SORTABLE or direction not in ("", "asc", "desc"):
                errors.append(
                    {"field": "sort", "message": "must be field:asc or field:desc, comma separated"}
                )
                break
            sort.append((field, direction == "desc"))
        project = params.get("projectId")
        if errors:
            return self._invalid(request, errors)
        if project is not None and project not in self.store.project_ids:
            return 404, problem(404, "no project with this id", request.url.path)
        limit, skip = int(limit_text), int(skip_text)
        items, total = self.store.page(
            project=project,
            name_filter=params.get("filter"),
            channel=channel,
            sort=sort,
            limit=limit,
            skip=skip,
        )
        next_cursor = _cursor(skip + limit) if skip + limit < total else None
        previous_cursor = _cursor(max(0, skip - limit)) if skip > 0 else None
        if _wants_json(request):
            return 200, {
                "items": items,
                "total": total,
                "nextCursor": next_cursor,
                "previousCursor": previous_cursor,
            }
        return 200, self._hal(request, items, total, limit, skip)

    def _hal(
        self, request: Request, items: list[dict[str, Any]], total: int, limit: int, skip: int
    ) -> dict[str, Any]:
        """The HAL form Cognigy answers when ``Accept: application/json`` is missing."""
        query = dict(request.query_params)

        def link(at: int) -> dict[str, str]:
            return {"href": ENDPOINTS_PATH + "?" + urlencode({**query, "limit": limit, "skip": at})}

        links: dict[str, Any] = {"self": link(skip)}
        if skip + limit < total:
            links["next"] = link(skip + limit)
        if skip > 0:
            links["previous"] = link(max(0, skip - limit))
        embedded = [
            {**item, "_links": {"self": {"href": f"{ENDPOINTS_PATH}/{item['_id']}"}}} for item in items
        ]
        return {"_embedded": {"endpoints": embedded}, "_links": links, "total": total}

    def _not_found(self, request: Request) -> tuple[int, Any]:
        return 404, problem(404, "no endpoint with this id", request.url.path)

    def _read(self, request: Request, body: Any, key: str) -> tuple[int, Any]:
        found = self.store.get(request.path_params["endpoint_id"])
        return (200, found) if found is not None else self._not_found(request)

    def _patch(self, request: Request, body: Any, key: str) -> tuple[int, Any]:
        if not isinstance(body, dict):
            return self._invalid(request, [{"field": "body", "message": "must be a JSON object"}])
        errors = validate_endpoint(body, partial=True)
        if errors:
            return self._invalid(request, errors)
        updated = self.store.update(request.path_params["endpoint_id"], body, _user_id(key))
        return (200, updated) if updated is not None else self._not_found(request)

    def _delete(self, request: Request, body: Any, key: str) -> tuple[int, Any]:
        if self.store.delete(request.path_params["endpoint_id"]):
            return 204, None
        return self._not_found(request)


_STORES: weakref.WeakKeyDictionary[SimulatorState, EndpointStore] = weakref.WeakKeyDictionary()


def store_of(state: SimulatorState) -> EndpointStore:
    """The endpoints store of the simulator whose state is ``state`` (tests hold the state)."""
    return _STORES[state]


def mount_endpoints(app: Starlette, api: _Api) -> EndpointStore:
    """Add the Endpoints resource to the simulator ``app`` (behind ``api``'s gate); its store."""
    store = EndpointStore(api.state)
    _STORES[api.state] = store
    routes = _EndpointsApi(api, store)
    app.router.routes.append(Route(ENDPOINTS_PATH, routes.collection, methods=["GET", "POST"]))
    app.router.routes.append(
        Route(ENDPOINTS_PATH + "/{endpoint_id}", routes.item, methods=["GET", "PATCH", "DELETE"])
    )
    from cogwh.sim_endpoint_service import mount_endpoint_service  # builds on this module

    mount_endpoint_service(app, store)
    return store
