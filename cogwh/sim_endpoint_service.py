"""The simulator's Endpoint service: user input into a webhook Endpoint, and the delivery of its output.

In Cognigy.AI the Endpoint service is a host of its own (``https://endpoint-trial.cognigy.ai``, ...);
the simulator serves it on its own host and port, beside the REST API (mounted by
:func:`cogwh.sim_endpoints.mount_endpoints`). What it keeps of the real service (facts in
COGNIGY-API.md, "Deliveries to a webhook Endpoint" and "The way back into the bot"):

- ``POST /{URLToken}`` with a JSON object ``{userId, sessionId, text?, data?}``. No API key: the
  URLToken (64 alphanumerics) is the credential. Checked in this order, each answered RFC 7807
  (:func:`cogwh.sim_endpoints.problem`, Cognigy's codes):

  - an unknown or malformed token ................................................ 404 (code 1002)
  - an endpoint whose ``active`` is false ......................................... 403
  - a channel other than ``webhook`` (the simulator plays webhook endpoints only) ..... 501
  - a body over 1 MB .............................................................. 413
  - a body that is not JSON (``Content-Type`` must name JSON) ................. 415, else 400
  - ``userId`` / ``sessionId`` not strings of 1 to 256 characters, ``text`` not a string of at most
    10,000 characters (or null), ``data`` not an object (or null), neither a non-empty ``text`` nor
    ``data`` given ................................................ 400, ``details`` naming each field

  Other fields are ignored (the real service's rule is not published). The answer of a valid input
  is **200** ``{"userId", "sessionId", "traceIds": [<the traceId of each output>]}``. What the real
  service answers an input to a *webhook* endpoint is **unknown** (its outputs go to the webhook, not
  into the answer): a client must accept any 2xx and rely on nothing in the body.
- The flow is trivial: exactly ONE output, the input echoed. It is delivered **asynchronously**, as
  Cognigy does: the input is answered first, then the output is POSTed to ``settings.webhookUrl``
  (any user-info part of that URL is dropped) with the documented body
  ``{"userId", "sessionId", "AIOutput": {"text": <the input text or null>, "data": <the input data
  or {}>, "traceId": <fresh per output>, "disableSensitiveLogging": false, "source": "bot"}}``,
  ``Content-Type: application/json`` and, when ``settings.basicAuthUser`` is a non-empty string,
  ``Authorization: Basic base64(basicAuthUser:basicAuthPassword)``. Nothing else: no custom header, no
  signature (the real service cannot send them). One attempt, no retry (the real service's delivery
  retries and timeout are unknown; the simulator waits 10 s), redirects never followed, TLS verified
  against ``SimulatorConfig.delivery_ca_bundle`` (a PEM file; ``cogwh simulator
  --delivery-ca-bundle``) or else the public roots.
- Every attempt is recorded once it ends: ``{seq, endpointId, url, traceId, userId, sessionId,
  basicAuth (whether an Authorization header was sent), status (the webhook's HTTP status, null when
  none came), error (null, or why no status came: ``ConnectError: ...``, "settings.webhookUrl is not
  set")}``. Never the password, never the ``Authorization`` value. Read them as ``GET
  /_admin/deliveries`` (``{"deliveries": [...]}``), as :meth:`EndpointStore.deliveries`, or wait for
  them with :meth:`EndpointStore.wait_deliveries` ``(n, timeout)`` (no sleeping). ``reset()`` clears
  them; an attempt begun before a reset is not recorded after it.

Input calls are not recorded in ``/_admin/requests`` (that log is the REST API's) and pass no API
gate: no key, no rate limit, no injected fault.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cognigy_webhooks.net.tls import client_ssl_context
from cogwh.sim_endpoints import DeliveryTarget, EndpointStore, problem
from cogwh.simulator import MAX_BODY_BYTES

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["DELIVERIES_PATH", "MAX_ID", "MAX_TEXT", "mount_endpoint_service", "validate_input"]

DELIVERIES_PATH = "/_admin/deliveries"
MAX_ID = 256
MAX_TEXT = 10_000
DELIVERY_TIMEOUT = httpx.Timeout(10.0)
_URL_TOKEN = re.compile(r"[A-Za-z0-9]{64}")
_MAX_ERROR = 300


def _unicode(value: Any) -> bool:
    """Whether ``value`` (a parsed JSON value) can be written back as UTF-8 (no lone surrogate)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def validate_input(body: Any) -> list[dict[str, str]]:
    """The field problems of an input body (values never echoed)."""
    if not isinstance(body, dict):
        return [{"field": "body", "message": "must be a JSON object"}]
    errors: list[dict[str, str]] = []

    def bad(field: str, message: str) -> None:
        errors.append({"field": field, "message": message})

    for field in ("userId", "sessionId"):
        value = body.get(field)
        if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID:
            bad(field, f"is required: a string of 1 to {MAX_ID} characters")
        elif not _unicode(value):
            bad(field, "must be valid Unicode text")
    text, data = body.get("text"), body.get("data")
    if text is not None and not (isinstance(text, str) and len(text) <= MAX_TEXT):
        bad("text", f"must be a string of at most {MAX_TEXT} characters")
    elif text is not None and not _unicode(text):
        bad("text", "must be valid Unicode text")
    if data is not None and not isinstance(data, dict):
        bad("data", "must be a JSON object")
    elif data is not None and not _unicode(data):
        bad("data", "must hold valid Unicode text only")
    named = {e["field"] for e in errors}
    if not (isinstance(text, str) and text) and not isinstance(data, dict) and not {"text", "data"} & named:
        bad("text", "give text or data (at least one of them)")
    return errors


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _basic(user: str, password: str | None) -> str:
    token = base64.b64encode(f"{user}:{password or ''}".encode("utf-8", "surrogateescape")).decode()
    return f"Basic {token}"


def _describe(exc: BaseException, password: str | None) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    if password:
        text = text.replace(password, "<redacted>")
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 1] + "…"


class _EndpointService:
    def __init__(self, store: EndpointStore) -> None:
        self.store = store
        self._tasks: set[asyncio.Task[None]] = set()

    async def input(self, request: Request) -> Response:
        path = request.url.path

        def refuse(status: int, detail: str, details: list[dict[str, str]] | None = None) -> Response:
            return JSONResponse(problem(status, detail, path, details), status_code=status)

        token = request.path_params["url_token"]
        target = self.store.delivery_target(token) if _URL_TOKEN.fullmatch(token) else None
        if target is None:
            return refuse(404, "no endpoint with this URLToken")
        if not target.active:
            return refuse(403, "the endpoint is not active")
        if target.channel != "webhook":
            return refuse(501, "the simulator's Endpoint service plays webhook endpoints only")
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return refuse(413, "the body is too large")
        if "json" not in request.headers.get("content-type", "").lower():
            return refuse(415, "send the body as application/json")
        try:
            body = json.loads(raw, parse_constant=_refuse_constant)  # no NaN or Infinity
        except (ValueError, UnicodeDecodeError, RecursionError):
            return refuse(400, "the body is not valid JSON")
        errors = validate_input(body)
        if errors:
            return refuse(400, "the input is not valid", errors)
        trace_id = str(uuid.UUID(bytes=secrets.token_bytes(16), version=4))
        output = {
            "userId": body["userId"],
            "sessionId": body["sessionId"],
            "AIOutput": {
                "text": body.get("text"),
                "data": body.get("data") or {},
                "traceId": trace_id,
                "disableSensitiveLogging": False,
                "source": "bot",
            },
        }
        answer = {"userId": body["userId"], "sessionId": body["sessionId"], "traceIds": [trace_id]}
        generation = self.store.delivery_log.generation
        # answered first; the delivery starts once the answer is sent (a task of its own, so a
        # keep-alive connection is not held while the webhook answers)
        return JSONResponse(answer, background=BackgroundTask(self._start, target, output, generation))

    async def _start(self, target: DeliveryTarget, output: dict[str, Any], generation: int) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(target, output, generation))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, target: DeliveryTarget, output: dict[str, Any], generation: int) -> None:
        send_auth = bool(target.basic_auth_user)
        record: dict[str, Any] = {
            "endpointId": target.endpoint_id,
            "url": _without_userinfo(target.webhook_url) if target.webhook_url else None,
            "traceId": output["AIOutput"]["traceId"],
            "userId": output["userId"],
            "sessionId": output["sessionId"],
            "basicAuth": send_auth,
            "status": None,
            "error": None,
        }
        if not record["url"]:
            record["error"] = "settings.webhookUrl is not set"
            self.store.delivery_log.add(generation, record)
            return
        headers = {"Content-Type": "application/json"}
        if send_auth:
            headers["Authorization"] = _basic(str(target.basic_auth_user), target.basic_auth_password)
        content = json.dumps(output, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        try:
            verify = client_ssl_context(self.store.config.delivery_ca_bundle)
            async with httpx.AsyncClient(
                verify=verify, follow_redirects=False, timeout=DELIVERY_TIMEOUT, trust_env=False
            ) as client:
                response = await client.post(record["url"], content=content, headers=headers)
            record["status"] = response.status_code
        except asyncio.CancelledError:
            record["error"] = "cancelled (the simulator stopped)"
            self.store.delivery_log.add(generation, record)
            raise
        except Exception as exc:  # every failure is the record's to tell, never the server's log
            record["error"] = _describe(exc, target.basic_auth_password)
        self.store.delivery_log.add(generation, record)

    async def admin_deliveries(self, request: Request) -> Response:
        return JSONResponse({"deliveries": self.store.deliveries()})


def mount_endpoint_service(app: Starlette, store: EndpointStore) -> None:
    """Add ``POST /{URLToken}`` and ``GET /_admin/deliveries`` to the simulator ``app``."""
    service = _EndpointService(store)
    app.router.routes.append(Route(DELIVERIES_PATH, service.admin_deliveries, methods=["GET"]))
    app.router.routes.append(Route("/{url_token}", service.input, methods=["POST"]))
