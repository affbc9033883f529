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

Every API of the template is served on the one host, each under its own stage prefix (its base URL
is ``<gateway>/<StageName>``, :meth:`ServedGateway.api_url`, as API Gateway's is
``https://<api id>.execute-api.<region>.amazonaws.com/<StageName>``); two APIs that declare the same
method and path are refused, since one host cannot tell them apart.

Each route's authorizer is read from the template as SAM resolves it (cogwh/gateway_routes.py:
``DefaultAuthorizer``, the event's ``Authorizer``, ``NONE``; what cannot be checked locally is refused
when the gateway is built, never served open). An ``AWS_IAM`` route is served only behind SigV4
(cogwh/sigv4.py: the local stack's credentials, service ``execute-api``, the stack's region), an
unsigned or wrongly signed call answered 403 with API Gateway's own bodies and ``x-amzn-ErrorType``
before the function runs; a verified call reaches the function with ``requestContext.identity``
filled as API Gateway fills it for IAM (``accessKey``, ``accountId``, ``caller``, ``user``,
``userArn``). A route with no authorizer (the receive
function's ``POST /deliveries/{name}``) is served open, as before.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import anyio.to_thread

from cogwh.gateway_routes import (
    AWS_IAM,
    GatewayError,
    GatewayRoute,
    local_credentials,
    route_authorizer,
    routes_from_template,
    routes_of,
)
from cogwh.servers import Served, serve_in_thread
from cogwh.sigv4 import LocalCredentials, ReceivedRequest, SigV4Verifier

__all__ = [
    "AWS_IAM",
    "GatewayError",
    "GatewayRoute",
    "LocalGateway",
    "ServedGateway",
    "route_authorizer",
    "routes_from_template",
    "routes_of",
    "serve_gateway",
]

#: API Gateway's payload limit for REST APIs.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
_ACCOUNT_ID = "123456789012"
_MISSING_TOKEN = "MissingAuthenticationTokenException"


class LocalGateway:
    """A plain ASGI app: API Gateway (REST, proxy integration) in front of the local stack's functions.

    ``invoke(logical_id, event) -> response`` runs the function (``LocalStack.invoke``); it is called
    on a worker thread, so concurrent requests run concurrently as on AWS. ``verifier`` checks SigV4
    on the ``AWS_IAM`` routes: a gateway with such a route and no verifier is refused (never served
    open)."""

    def __init__(
        self,
        routes: Sequence[GatewayRoute],
        invoke: Callable[[str, dict[str, Any]], Any],
        *,
        api_ids: Mapping[str, str] | None = None,
        verifier: SigV4Verifier | None = None,
    ) -> None:
        self.routes = list(routes)
        unknown = sorted({r.authorizer for r in self.routes if r.authorizer not in (None, AWS_IAM)}, key=str)
        if unknown:
            raise GatewayError(f"the local gateway checks AWS_IAM only, not {', '.join(map(str, unknown))}")
        if verifier is None and any(r.authorizer == AWS_IAM for r in self.routes):
            raise GatewayError("AWS_IAM routes need a SigV4 verifier (the local stack's credentials)")
        self._invoke = invoke
        self._api_ids = dict(api_ids or {})
        self.verifier = verifier
        self.requests = 0

    @classmethod
    def for_stack(cls, stack: Any, *, clock: Callable[[], datetime] | None = None) -> LocalGateway:
        """The running stack's routes, checked with its own credentials and region (``clock``: the
        UTC time SigV4 dates are held to, for tests)."""
        routes = routes_of(stack)
        api_ids = {}
        for route in routes:
            try:
                api_ids[route.api] = str(stack.physical_id(route.api))
            except Exception:  # an implicit API has no resource of its own
                api_ids[route.api] = "local"
        verifier = SigV4Verifier([local_credentials(stack)], region=stack.region, clock=clock)
        return cls(routes, stack.invoke, api_ids=api_ids, verifier=verifier)

    @classmethod
    def from_template(
        cls,
        template: Mapping[str, Any],
        invoke: Callable[[str, dict[str, Any]], Any],
        *,
        credentials: Sequence[LocalCredentials] = (),
        region: str = "us-east-1",
        clock: Callable[[], datetime] | None = None,
        api_ids: Mapping[str, str] | None = None,
    ) -> LocalGateway:
        """Every ``Api`` route of a template given as plain dicts, without a local stack."""
        verifier = SigV4Verifier(credentials, region=region, clock=clock) if credentials else None
        return cls(routes_from_template(template), invoke, api_ids=api_ids, verifier=verifier)

    def stage_of(self, api: str) -> str:
        for route in self.routes:
            if route.api == api:
                return route.stage
        raise KeyError(api)

    def api_for_id(self, api_id: str) -> str | None:
        """The logical id of the served API whose (local) physical id is ``api_id``."""
        return next((logical for logical, physical in self._api_ids.items() if physical == api_id), None)

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
            await _send(send, 403, {"message": "Missing Authentication Token"}, error_type=_MISSING_TOKEN)
            return
        identity: LocalCredentials | None = None
        if route.authorizer == AWS_IAM:
            verdict = self._verify(method, raw_path, scope, bytes(body))
            if verdict.credentials is None:
                await _send(
                    send,
                    403,
                    {"message": verdict.message},
                    error_type=verdict.error_type or "AccessDeniedException",
                )
                return
            identity = verdict.credentials
        event = self.build_event(route, params, scope, bytes(body), stage_path, caller=identity)
        try:
            result = await anyio.to_thread.run_sync(self._invoke, route.function, event)
            status, headers, payload = _proxy_response(result)
        except Exception:  # a function error, as API Gateway shows it: no details
            await _send(send, 502, {"message": "Internal server error"}, event["requestContext"]["requestId"])
            return
        headers.append((b"x-amzn-requestid", event["requestContext"]["requestId"].encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _verify(self, method: str, raw_path: str, scope: dict[str, Any], body: bytes) -> Any:
        assert self.verifier is not None  # __init__ refuses IAM routes without one
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers") or []]
        query = scope.get("query_string", b"").decode("latin-1")
        return self.verifier.verify(ReceivedRequest(method, raw_path.split("?", 1)[0], query, headers, body))

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
        self,
        route: GatewayRoute,
        params: dict[str, str],
        scope: dict[str, Any],
        body: bytes,
        path: str,
        *,
        caller: LocalCredentials | None = None,
    ) -> dict[str, Any]:
        """The API Gateway REST proxy event (v1) for one request; ``caller``: the key that signed an
        AWS_IAM call, whose identity API Gateway puts in ``requestContext.identity``."""
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
                    "accountId": caller.identity.account_id if caller else None,
                    "caller": caller.identity.caller if caller else None,
                    "user": caller.identity.user if caller else None,
                    "userArn": caller.identity.user_arn if caller else None,
                    "accessKey": caller.access_key_id if caller else None,
                    "apiKey": None,
                    "apiKeyId": None,
                    "principalOrgId": None,
                    "cognitoIdentityPoolId": None,
                    "cognitoIdentityId": None,
                    "cognitoAuthenticationType": None,
                    "cognitoAuthenticationProvider": None,
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


async def _send(
    send: Any,
    status: int,
    doc: dict[str, Any],
    request_id: str | None = None,
    *,
    error_type: str = "GatewayError",
) -> None:
    payload = json.dumps(doc).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"x-amzn-errortype", error_type.encode("ascii"))]
    if request_id:
        headers.append((b"x-amzn-requestid", request_id.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


@dataclass(frozen=True)
class ServedGateway(Served):
    """Where the gateway serves (``base_url``), with the gateway itself: each API's base URL and what
    `cogwh up` writes in its state file for a SigV4 client."""

    gateway: LocalGateway | None = field(default=None, compare=False, repr=False)

    def api_url(self, api: str) -> str:
        """The base URL of one API (its logical id): ``<gateway>/<StageName>``, as on AWS."""
        assert self.gateway is not None
        return f"{self.base_url}/{self.gateway.stage_of(api)}"

    def local_url(self, deployed_url: str) -> str | None:
        """An ``https://<api id>.execute-api.<region>.<suffix>/<stage>...`` URL (a template output,
        as the local stack resolves it) turned into the local gateway's, or None if no API served
        here has that id."""
        assert self.gateway is not None
        parts = urlsplit(deployed_url)
        host = parts.hostname or ""
        api_id, dot, rest = host.partition(".")
        if not dot or not rest.startswith("execute-api.") or self.gateway.api_for_id(api_id) is None:
            return None
        return f"{self.base_url}{parts.path}".rstrip("/")

    def state_fields(self, outputs: Mapping[str, Any]) -> dict[str, Any]:
        """What the state file holds for the management API: ``managementApiUrl`` (the template's
        ``ManagementApiUrl`` output on this gateway) and the ``credentials`` its AWS_IAM routes accept."""
        assert self.gateway is not None
        fields: dict[str, Any] = {}
        deployed = outputs.get("ManagementApiUrl")
        if isinstance(deployed, str) and self.local_url(deployed):
            fields["managementApiUrl"] = self.local_url(deployed)
        verifier = self.gateway.verifier
        if verifier is not None:
            accepted = verifier.credentials[0]
            fields["credentials"] = {
                "accessKeyId": accepted.access_key_id,
                "secretAccessKey": accepted.secret_access_key,
            }
        return fields


@contextlib.contextmanager
def serve_gateway(
    stack: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    certfile: str | Path | None = None,
    keyfile: str | Path | None = None,
    url_host: str | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Iterator[ServedGateway]:
    """Serve the running local stack's API routes on ``host:port`` (an ephemeral port by default)
    until the block ends; yields the served address (``.base_url``, ``.api_url(api)``). With
    ``certfile`` and ``keyfile`` (PEM) it serves HTTPS, as API Gateway does (a Cognigy ``webhookUrl``
    must be https); ``url_host`` names the host in ``base_url`` (e.g. ``localhost`` to match the
    certificate); ``clock`` is the UTC time SigV4 dates are held to (tests)."""
    if (certfile is None) != (keyfile is None):
        raise ValueError("certfile and keyfile go together")
    gateway = LocalGateway.for_stack(stack, clock=clock)
    with serve_in_thread(
        gateway, host=host, port=port, certfile=certfile, keyfile=keyfile, url_host=url_host
    ) as served:
        yield ServedGateway(served.host, served.port, served.scheme, gateway)
