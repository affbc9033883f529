"""The management API (API Gateway REST, AWS_IAM): thin wiring over :mod:`cognigy_webhooks.ops`.

Every route that reads or changes data is signed with SigV4 (the API's DefaultAuthorizer); the
OpenAPI document (``GET /openapi.json``, generated from the shapes) and Swagger UI (``GET /docs``,
its script and style served by this function from Powertools' own copy: no CDN) are open.

Errors, mapped here once: bad input 422 ``{"message", "errors": [{"field", "message", "endpoint"?}]}``
(Powertools' request validation and the library's ``InvalidInput`` alike, never echoing a value),
an unknown endpoint, execution or watch 404 (``POST /watches`` naming an endpoint that is not recorded:
422 naming ``names``, the body being at fault), an unknown route 404, a store failure 503, anything
else 500 without details. Nothing is stored (and no watch started) for a refused request. The
resolver keeps the current request on itself, so requests are served one at a time per process (as
Lambda does; the local stack runs handlers on threads).
"""

from __future__ import annotations

import threading
from importlib.resources import files
from typing import Annotated, Any

import boto3
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cognigy_webhooks import ops
from cognigy_webhooks.errors import InvalidInput, NotFound, StoreError
from cognigy_webhooks.models import EndpointProbeReport
from cognigy_webhooks.models.records import EndpointRecord
from cognigy_webhooks.net.probe import ProbePolicy
from cognigy_webhooks.observability import logger
from cognigy_webhooks.ops.shapes import (
    AuditPage,
    DesiredSetRequest,
    EndpointPage,
    ErrorBody,
    ExecutionPage,
    ExecutionStarted,
    ExecutionStopped,
    ExecutionView,
    PlanView,
)
from cognigy_webhooks.ops.watch import HealthPage, WatchStarted, WatchView
from cognigy_webhooks.ops.watch_request import WatchRequest
from cognigy_webhooks.settings import ApiSettings

SETTINGS = ApiSettings.from_env()
ACCESS = ops.StackAccess.from_settings(boto3.client, SETTINGS)
POLICY = ProbePolicy(
    allow_private_networks=SETTINGS.probe_allow_private_networks,
    ca_bundle=SETTINGS.probe_ca_bundle,
    cert_warning_days=SETTINGS.probe_cert_warning_days,
)
SIGNED = [{"sigv4": []}]
Limit = Annotated[int, Query(ge=1, le=100, description="at most this many items")]
Cursor = Annotated[str | None, Query(max_length=4096, description="a nextCursor, unchanged")]
#: Swagger UI's two files, as Powertools ships them (the same it would inline into /docs).
ASSETS = {
    "swagger-ui-bundle.min.js": "application/javascript; charset=utf-8",
    "swagger-ui.min.css": "text/css; charset=utf-8",
}
_SWAGGER = files("aws_lambda_powertools.event_handler.openapi") / "swagger_ui"

app = APIGatewayRestResolver(enable_validation=True)
app.configure_openapi(
    title="cognigy-webhooks management API",
    version="1",
    description="Endpoint records, audit logs, probes, plans, reconcile executions, watches and every "
    "endpoint's health. Every route but "
    "/openapi.json and /docs is AWS_IAM: sign with SigV4 (service execute-api).",
    security_schemes={
        "sigv4": APIKey(
            name="Authorization",
            in_=APIKeyIn.header,
            description="AWS Signature Version 4 (service execute-api), as any AWS SDK or awscurl signs",
        )
    },
)
app.enable_swagger(path="/docs", swagger_base_url="docs")  # relative: /<stage>/docs/<file>
_SERIAL = threading.Lock()


def _error(status: int, message: str, errors: list[dict[str, Any]] | None = None) -> Response[Any]:
    kept = [{k: e[k] for k in ("field", "message", "endpoint") if e.get(k) is not None} for e in errors or []]
    body = ErrorBody.model_validate({"message": message, "errors": kept})
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump_json(by_alias=True, exclude_none=True),
    )


@app.exception_handler(RequestValidationError)
def _bad_request(exc: RequestValidationError) -> Response[Any]:
    errors = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            errors.append({"field": "body", "message": "is not valid JSON"})
            continue
        loc = [str(p) for p in err.get("loc", ())]
        where = loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc
        field = ".".join(where) or (loc[0] if loc else "body")
        errors.append(
            {"field": field, "message": str(err.get("msg", "invalid")).removeprefix("Value error, ")}
        )
    return _error(422, "invalid request", errors)


@app.exception_handler(InvalidInput)
def _invalid(exc: InvalidInput) -> Response[Any]:
    return _error(422, "invalid request", exc.errors)


@app.exception_handler(NotFound)
def _not_found(exc: NotFound) -> Response[Any]:
    return _error(404, str(exc), [{"field": exc.field, "message": "not found"}])


@app.exception_handler(StoreError)
def _store_failed(exc: StoreError) -> Response[Any]:
    logger.warning("store failed", extra={"code": exc.code})
    return _error(503, f"the stack's stores failed ({exc.code}); try again")


@app.exception_handler(Exception)
def _failed(exc: Exception) -> Response[Any]:
    logger.exception("request failed", extra={"error": type(exc).__name__})
    return _error(500, "internal error")


@app.not_found
def _no_route(exc: Exception) -> Response[Any]:
    return _error(404, f"no route {app.current_event.http_method} {app.current_event.path}")


def _desired(request: DesiredSetRequest) -> dict[str, Any]:
    """The desired set as the client sent it (secrets in clear included: the operation moves them)."""
    body = app.current_event.json_body
    raw = body.get("desiredSet", body.get("desired_set"))
    return dict(raw)


@app.get("/openapi.json", include_in_schema=False)
def openapi_document() -> Response[Any]:
    return Response(200, content_types.APPLICATION_JSON, app.get_openapi_json_schema())


@app.get("/docs/<asset>", include_in_schema=False)
def swagger_asset(asset: str) -> Response[Any]:
    if asset not in ASSETS:
        return _error(404, f"no asset {asset!r}")
    return Response(
        200, ASSETS[asset], (_SWAGGER / asset).read_text("utf-8"), headers={"Cache-Control": "max-age=86400"}
    )


@app.get("/endpoints", security=SIGNED, summary="List endpoint records (paged, by name)")
def list_endpoints(limit: Limit = 50, cursor: Cursor = None) -> EndpointPage:
    return ops.list_endpoints(ACCESS, limit=limit, cursor=cursor)


@app.get("/endpoints/<name>", security=SIGNED, summary="One endpoint record")
def get_endpoint(name: str) -> EndpointRecord:
    return ops.get_endpoint(ACCESS, name)


@app.get("/endpoints/<name>/audit", security=SIGNED, summary="An endpoint's audit log (paged, newest first)")
def endpoint_audit(name: str, limit: Limit = 50, cursor: Cursor = None) -> AuditPage:
    return ops.endpoint_audit(ACCESS, name, limit=limit, cursor=cursor)


@app.post("/endpoints/<name>/probe", security=SIGNED, summary="Probe a recorded endpoint now")
def probe_endpoint(name: str) -> EndpointProbeReport:
    return ops.probe_now(ACCESS, name, POLICY)


@app.delete("/endpoints/<name>", security=SIGNED, summary="Start the deletion of one endpoint (202)")
def delete_endpoint(name: str) -> Response[ExecutionStarted]:
    return Response(202, content_types.APPLICATION_JSON, ops.delete_endpoint(ACCESS, name))


@app.post("/plans", security=SIGNED, summary="Plan a desired set: what would change (no side effect)")
def plan(request: DesiredSetRequest) -> PlanView:
    return ops.plan_desired(ACCESS, _desired(request), prune=request.prune)


@app.post("/executions", security=SIGNED, summary="Reconcile a desired set (202; secrets stored first)")
def start_execution(request: DesiredSetRequest) -> Response[ExecutionStarted]:
    started = ops.start_execution(ACCESS, _desired(request), prune=request.prune, source="api")
    return Response(202, content_types.APPLICATION_JSON, started)


@app.get("/executions", security=SIGNED, summary="Recent reconcile executions (paged, newest first)")
def list_executions(limit: Limit = 20, cursor: Cursor = None) -> ExecutionPage:
    return ops.list_executions(ACCESS, limit=limit, cursor=cursor)


@app.get("/executions/<id>", security=SIGNED, summary="An execution's status and summary (by id or ARN)")
def describe_execution(id: str) -> ExecutionView:
    return ops.describe_execution(ACCESS, id)


@app.delete("/executions/<id>", security=SIGNED, summary="Stop a running execution")
def stop_execution(id: str) -> ExecutionStopped:
    return ops.stop_execution(ACCESS, id, cause="stopped through the management API")


@app.post("/watches", security=SIGNED, summary="Run a watch now (202): re-probe and judge the endpoints")
def start_watch(request: Annotated[WatchRequest | None, Body()] = None) -> Response[WatchStarted]:
    asked = request or WatchRequest()
    try:
        started = ops.start_watch(ACCESS, at=asked.at, names=asked.names, source="api")
    except NotFound as exc:
        if exc.field != "names":
            raise
        raise InvalidInput([{"field": "names", "message": str(exc)}]) from None  # the body at fault
    return Response(202, content_types.APPLICATION_JSON, started)


@app.get("/watches/<id>", security=SIGNED, summary="A watch's status and, once it ended, its summary")
def describe_watch(id: str) -> WatchView:
    try:
        return ops.describe_watch(ACCESS, id)
    except InvalidInput as exc:
        raise InvalidInput([{**e, "field": "watchId"} for e in exc.errors]) from None
    except NotFound as exc:
        if exc.field != "executionId":
            raise
        raise NotFound("no such watch of this stack", field="watchId") from None


@app.get("/health", security=SIGNED, summary="Every endpoint's health as the watch last saw it (paged)")
def endpoint_health(limit: Limit = 50, cursor: Cursor = None) -> HealthPage:
    return ops.health(ACCESS, limit=limit, cursor=cursor)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with _SERIAL:
        return app.resolve(event, context)
