"""Each route's authorizer read from a template as SAM resolves it, and what the local gateway refuses to
serve rather than serve open. Templates are plain dicts (as cogwh.localstack.template loads them)."""

from __future__ import annotations

from typing import Any

import pytest

from cogwh.gateway import AWS_IAM, GatewayError, GatewayRoute, LocalGateway, routes_from_template


def fn(*events: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "Type": "AWS::Serverless::Function",
        "Properties": {"Events": {name: {"Type": "Api", "Properties": props} for name, props in events}},
    }


def api(auth: dict[str, Any] | None = None, **props: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::Serverless::Api",
        "Properties": {"StageName": "v1", **({"Auth": auth} if auth else {}), **props},
    }


def route(
    path: str, method: str = "get", auth: dict[str, Any] | None = None, api_id: str = "Mgmt"
) -> dict[str, Any]:
    return {"RestApiId": {"Ref": api_id}, "Path": path, "Method": method, **({"Auth": auth} if auth else {})}


def authorizers(template: dict[str, Any]) -> dict[str, str | None]:
    return {f"{r.method} {r.path}": r.authorizer for r in routes_from_template(template)}


def test_the_default_authorizer_with_none_overrides() -> None:
    template = {
        "Resources": {
            "Mgmt": api({"DefaultAuthorizer": "AWS_IAM"}),
            "Fn": fn(
                ("Docs", route("/docs", auth={"Authorizer": "NONE"})),
                ("List", route("/endpoints")),
                ("Own", route("/own", auth={"Authorizer": "AWS_IAM"})),
            ),
        }
    }
    assert authorizers(template) == {"GET /docs": None, "GET /endpoints": AWS_IAM, "GET /own": AWS_IAM}


def test_an_event_authorizer_without_a_default_and_globals_on_the_implicit_api() -> None:
    template = {
        "Globals": {"Api": {"Auth": {"DefaultAuthorizer": "AWS_IAM"}}},
        "Resources": {
            "Open": api(),  # Globals.Api applies to every AWS::Serverless::Api, this one too
            "Fn": fn(
                ("Implicit", {"Path": "/implicit", "Method": "get"}),
                ("Explicit", route("/explicit", api_id="Open")),
            ),
        },
    }
    assert authorizers(template) == {"GET /implicit": AWS_IAM, "GET /explicit": AWS_IAM}
    plain = {
        "Resources": {
            "Mgmt": api(),
            "Fn": fn(("A", route("/a", auth={"Authorizer": "AWS_IAM"})), ("B", route("/b"))),
        }
    }
    assert authorizers(plain) == {"GET /a": AWS_IAM, "GET /b": None}


def test_over_a_definition_body_the_event_needs_override_api_auth() -> None:
    body = {"openapi": "3.0.1", "paths": {}}
    template = {
        "Resources": {
            "Mgmt": api({"DefaultAuthorizer": "AWS_IAM"}, DefinitionBody=body),
            "Fn": fn(
                ("Ignored", route("/a", auth={"Authorizer": "NONE"})),
                ("Honoured", route("/b", auth={"Authorizer": "NONE", "OverrideApiAuth": True})),
            ),
        }
    }
    assert authorizers(template) == {"GET /a": AWS_IAM, "GET /b": None}


@pytest.mark.parametrize(
    ("api_auth", "event_auth", "says"),
    [
        (None, {"Authorizer": "NONE"}, "NONE is only a valid value when a DefaultAuthorizer"),
        ({"DefaultAuthorizer": "MyLambda", "Authorizers": {"MyLambda": {}}}, None, "'MyLambda'"),
        (None, {"Authorizer": "Cognito"}, "'Cognito'"),
        ({"DefaultAuthorizer": "AWS_IAM"}, {"ApiKeyRequired": True}, "ApiKeyRequired"),
        ({"ApiKeyRequired": True}, None, "ApiKeyRequired"),
        ({"DefaultAuthorizer": {"Fn::If": ["C", "AWS_IAM", "NONE"]}}, None, "plain name"),
    ],
)
def test_what_cannot_be_checked_locally_is_refused_not_served_open(
    api_auth: dict[str, Any] | None, event_auth: dict[str, Any] | None, says: str
) -> None:
    template = {"Resources": {"Mgmt": api(api_auth), "Fn": fn(("E", route("/e", auth=event_auth)))}}
    with pytest.raises(GatewayError, match=says):
        routes_from_template(template)


def test_two_apis_with_the_same_route_cannot_share_the_host() -> None:
    template = {
        "Resources": {
            "Mgmt": api(),
            "Other": api(),
            "Fn": fn(
                ("A", route("/items/{id}")), ("B", route("/items/{name}", method="any", api_id="Other"))
            ),
        }
    }
    with pytest.raises(GatewayError, match="cannot tell them apart"):
        routes_from_template(template)


def test_an_iam_route_without_a_verifier_is_refused() -> None:
    with pytest.raises(GatewayError, match="SigV4 verifier"):
        LocalGateway([GatewayRoute("GET", "/x", "Fn", "Api", "v1", (), AWS_IAM)], lambda _f, _e: None)
    with pytest.raises(GatewayError, match="AWS_IAM only"):
        LocalGateway([GatewayRoute("GET", "/x", "Fn", "Api", "v1", (), "MyLambda")], lambda _f, _e: None)
