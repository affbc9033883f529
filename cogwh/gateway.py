"""The local gateway: the template's API routes served over HTTP (or HTTPS) on 127.0.0.1, as API
Gateway would.

What ``sam local start-api`` does, without Docker: each real HTTP request is matched against the
routes of the template's ``Api`` events, turned into an API Gateway REST proxy event (payload v1:
``httpMethod``, ``path``, ``resource``, ``pathParameters``, ``headers``/``multiValueHeaders``,
``queryStringParameters``, ``requestContext``, ``body``, ``isBase64Encoded``), handed to the function
in-process through ``LocalStack.invoke``, and the function's proxy response is sent back.

API Gateway's own behaviour is kept where a client can see it: a body is base64-encoded when its
content type matches the API's ``BinaryMediaTypes``; an unknown route answers 403 ``Missing
Authentication Token``; a function that raises or returns a malformed response gives 502; a body over
10 MiB gives 413. Paths are served with and without the stage prefix (``/v1/deliveries/x`` and
``/deliveries/x``). Given a certificate and key (``serve_gateway(stack, certfile=..., keyfile=...)``)
it serves HTTPS, as API Gateway does: what a Cognigy ``webhookUrl`` (https only) can point at, e.g.
the simulator's Endpoint service delivering to the receiver in the local round trip.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

import anyio.to_thread

from cogwh.servers import Served, serve_in_thread

__all__ = ["GatewayRoute", "LocalGateway", "serve_gateway"]

#: API Gateway's payload limit for REST APIs.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
_ACCOUNT_ID = "123456789012"


@dataclass(frozen=True)
class GatewayRoute:
    """One route: method (or ANY), path template (``{name}`` one segment, ``{proxy+}`` the rest),
    the function's logical id, the API's stage and binary media types."""

    method: str
    path: str
    function: str
    api: str
    stage: str
    binary_media_types: tuple[str, ...] = ()
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern", _compile(self.path))

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in ("ANY", method):
            return None
        found = self.pattern.fullmatch(path)
        if found is None:
            return None
        return {key.replace("__plus", ""): unquote(value) for key, value in found.groupdict().items()}

    def is_binary(self, content_type: str | None) -> bool:
        media = (content_type or "").split(";")[0].strip().lower()
        return any(fnmatch.fnmatchcase(media, pattern.lower()) for pattern in self.binary_media_types)


def _compile(template: str) -> re.Pattern[str]:
    parts = []
    for piece in re.split(r"(\{[^}]+\})", template):
        if piece.startswith("{") and piece.endswith("}"):
            name = piece[1:-1]
            if name.endswith("+"):
                parts.append(f"(?P<{name[:-1]}__plus>.+)")
            else:
                parts.append(f"(?P<{name}>[^/]+)")
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts))


def routes_of(stack: Any) -> list[GatewayRoute]:
    """The REST routes of a running LocalStack, with each API's stage and binary media types read
    from the template (``~1`` stands for ``/`` there, as in SAM)."""
    from cogwh.localstack.template import load_template_file

    resources = load_template_file(Path(stack.template_path)).get("Resources") or {}
    routes = []
    for route in stack.api_routes:
        if route.kind != "Api":
            continue  # HTTP APIs (payload v2) are not served here
        props = (resources.get(route.api) or {}).get("Properties") or {}
        stage = props.get("StageName") if isinstance(props.get("StageName"), str) else "Prod"
        binary = props.get("BinaryMediaTypes") or []
        types = tuple(str(t).replace("~1", "/") for t in binary if isinstance(t, str))
        routes.append(GatewayRoute(route.method, route.path, route.function, route.api, str(stage), types))
    return routes


class LocalGateway:
    """A plain ASGI app: API Gateway (REST, proxy integration) in front of the local stack's functions.

    ``invoke(logical_id, event) -> response`` runs the function (``LocalStack.invoke``); it is called
    on a worker thread, so concurrent requests run concurrently as on AWS."""

    def __init__(
        self,
        routes: Sequence[GatewayRoute],
        invoke: Callable[[str, dict[str, Any]], Any],
        *,
        api_ids: Mapping[str, str] | None = None,
    ) -> None:
        self.routes = list(routes)
        self._invoke = invoke
        self._api_ids = dict(api_ids or {})
        self.requests = 0

    @classmethod
    def for_stack(cls, stack: Any) -> LocalGateway:
        routes = routes_of(stack)
        api_ids = {}
        for route in routes:
            try:
                api_ids[route.api] = str(stack.physical_id(route.api))
            except Exception:  # an implicit API has no resource of its own
                api_ids[route.api] = "local"
        return cls(routes, stack.invoke, api_ids=api_ids)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.requests += 1
        body = bytearray()
        too_large = False
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            if not too_large:
                body.extend(chunk)
                if len(body) > MAX_PAYLOAD_BYTES:
                    too_large = True
                    body.clear()
            if not message.get("more_body", False):
                break
        if too_large:
            await _send(send, 413, {"message": "Request Entity Too Large"})
            return
        method = str(scope["method"]).upper()
        # match on the path as sent (still percent-encoded: an encoded "/" stays inside its segment);
        # the path parameters are decoded once, as API Gateway does
        raw = scope.get("raw_path")
        raw_path = raw.decode("latin-1") if isinstance(raw, bytes) else quote(str(scope.get("path") or "/"))
        route, params, matched = self._match(method, raw_path.split("?", 1)[0])
        stage_path = unquote(matched)
        if route is None:
            await _send(send, 403, {"message": "Missing Authentication Token"})
            return
        event = self.build_event(route, params, scope, bytes(body), stage_path)
        try:
            result = await anyio.to_thread.run_sync(self._invoke, route.function, event)
            status, headers, payload = _proxy_response(result)
        except Exception:  # a function error, as API Gateway shows it: no details
            await _send(send, 502, {"message": "Internal server error"}, event["requestContext"]["requestId"])
            return
        headers.append((b"x-amzn-requestid", event["requestContext"]["requestId"].encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _match(self, method: str, path: str) -> tuple[GatewayRoute | None, dict[str, str], str]:
        for route in self.routes:
            candidates = [path]
            prefix = f"/{route.stage}/"
            if path.startswith(prefix):
                candidates.insert(0, path[len(prefix) - 1 :])
            for candidate in candidates:
                params = route.match(method, candidate)
                if params is not None:
                    return route, params, candidate
        return None, {}, path

    def build_event(
        self, route: GatewayRoute, params: dict[str, str], scope: dict[str, Any], body: bytes, path: str
    ) -> dict[str, Any]:
        """The API Gateway REST proxy event (v1) for one request."""
        multi: dict[str, list[str]] = {}
        names: dict[str, str] = {}  # lower-case name -> the spelling first seen
        for raw_name, raw_value in scope.get("headers") or []:
            name = raw_name.decode("latin-1")
            key = names.setdefault(name.lower(), name)
            multi.setdefault(key, []).append(raw_value.decode("latin-1"))
        headers = {name: values[-1] for name, values in multi.items()}
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        multi_query: dict[str, list[str]] = {}
        for key, value in query:
            multi_query.setdefault(key, []).append(value)
        content_type = next((v[-1] for k, v in multi.items() if k.lower() == "content-type"), None)
        binary = route.is_binary(content_type)
        if not body:
            event_body: str | None = None
            encoded = False
        elif binary:
            event_body, encoded = base64.b64encode(body).decode("ascii"), True
        else:
            event_body, encoded = body.decode("utf-8", errors="replace"), False
        now = time.time()
        client = scope.get("client") or ("127.0.0.1", 0)
        host = headers.get(names.get("host", "Host"), "127.0.0.1")
        request_id = str(uuid.uuid4())
        api_id = self._api_ids.get(route.api, "local")
        return {
            "resource": route.path,
            "path": path,
            "httpMethod": scope["method"].upper(),
            "headers": headers or None,
            "multiValueHeaders": multi or None,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": "local",
                "resourcePath": route.path,
                "httpMethod": scope["method"].upper(),
                "extendedRequestId": request_id,
                "requestTime": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "path": f"/{route.stage}{path}",
                "accountId": _ACCOUNT_ID,
                "protocol": f"HTTP/{scope.get('http_version', '1.1')}",
                "stage": route.stage,
                "domainPrefix": host.split(".")[0],
                "requestTimeEpoch": int(now * 1000),
                "requestId": request_id,
                "identity": {
                    "sourceIp": str(client[0]),
                    "userAgent": headers.get(names.get("user-agent", "User-Agent")),
                    "accountId": None,
                    "caller": None,
                    "user": None,
                    "userArn": None,
                    "apiKey": None,
                },
                "domainName": host,
                "apiId": api_id,
            },
            "body": event_body,
            "isBase64Encoded": encoded,
        }


def _proxy_response(result: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The function's proxy response as status, headers and body; ValueError when malformed (502)."""
    if not isinstance(result, Mapping):
        raise ValueError("the response is not an object")
    status = result.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise ValueError("statusCode is missing or not an HTTP status")
    headers: list[tuple[bytes, bytes]] = []
    single = result.get("headers") or {}
    multi = result.get("multiValueHeaders") or {}
    if not isinstance(single, Mapping) or not isinstance(multi, Mapping):
        raise ValueError("headers are not objects")
    for name, values in multi.items():
        for value in values if isinstance(values, list) else [values]:
            headers.append((str(name).lower().encode("latin-1"), str(value).encode("latin-1")))
    multi_names = {str(n).lower() for n in multi}
    for name, value in single.items():
        if str(name).lower() not in multi_names:
            headers.append((str(name).lower().encode("latin-1"), str(value).encode("latin-1")))
    body = result.get("body")
    if body is None:
        payload = b""
    elif not isinstance(body, str):
        raise ValueError("body is not a string")
    elif result.get("isBase64Encoded"):
        payload = base64.b64decode(body, validate=True)
    else:
        payload = body.encode("utf-8")
    return status, headers, payload


async def _send(send: Any, status: int, doc: dict[str, Any], request_id: str | None = None) -> None:
    payload = json.dumps(doc).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"x-amzn-errortype", b"GatewayError")]
    if request_id:
        headers.append((b"x-amzn-requestid", request_id.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


@contextlib.contextmanager
def serve_gateway(
    stack: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    certfile: str | Path | None = None,
    keyfile: str | Path | None = None,
    url_host: str | None = None,
) -> Iterator[Served]:
    """Serve the running local stack's API routes on ``host:port`` (an ephemeral port by default)
    until the block ends; yields the served address (``.base_url``). With ``certfile`` and
    ``keyfile`` (PEM) it serves HTTPS, as API Gateway does (a Cognigy ``webhookUrl`` must be https);
    ``url_host`` names the host in ``base_url`` (e.g. ``localhost`` to match the certificate)."""
    if (certfile is None) != (keyfile is None):
        raise ValueError("certfile and keyfile go together")
    gateway = LocalGateway.for_stack(stack)
    with serve_in_thread(
        gateway, host=host, port=port, certfile=certfile, keyfile=keyfile, url_host=url_host
    ) as served:
        yield served
