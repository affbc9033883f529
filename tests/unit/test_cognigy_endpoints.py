"""The endpoints dialect's adapter, piece by piece: the Endpoint body a spec maps to, what the plan
refuses, drift, what Cognigy's answers become (never a password or URLToken kept in clear), RFC 7807
error bodies parsed into the typed errors with their traceId, and the HAL listing form."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cognigy_webhooks.cognigy import CognigyEndpoint, CognigyEndpointsClient, map_cognigy_error
from cognigy_webhooks.cognigy.endpoints import (
    drifted_fields,
    endpoint_body,
    endpoint_hash,
    unsupported_fields,
)
from cognigy_webhooks.errors import CognigyNotFound, CognigyRejected, CognigyThrottled
from cognigy_webhooks.models import parse_desired_set, parse_endpoint

PROJECT = "64b7f0c2a1d3e5f708192a3b"
FLOW = "3f2b7c1e-9a4d-4e8b-b6a1-0c2d3e4f5a6b"
PASSWORD = "a-basic-auth-password-value"
TOKEN = "T" * 64


def _spec(**fields: Any) -> Any:
    return parse_endpoint({"name": "orders-hook", "url": "https://hooks.example.com/orders", **fields})


def test_a_spec_maps_to_an_endpoint_of_channel_webhook_defaults_not_sent() -> None:
    spec = _spec(
        basicAuth={"username": "cognigy", "password": PASSWORD},
        isActive=False,
        cognigy={"projectId": PROJECT, "flowId": FLOW, "localeId": ""},
        timeoutMs=5000,
        fallbackUrls=["https://hooks2.example.com/orders"],
    )
    assert endpoint_body(spec, project_id=PROJECT) == {
        "projectId": PROJECT,
        "name": "orders-hook",
        "channel": "webhook",
        "active": False,
        "settings": {
            "webhookUrl": "https://hooks.example.com/orders",
            "basicAuthUser": "cognigy",
            "basicAuthPassword": PASSWORD,
        },
        "flowId": FLOW,
        "localeId": "",
    }
    # an update carries no projectId; a spec without flow/locale sends neither
    assert "projectId" not in endpoint_body(spec)
    assert set(endpoint_body(_spec())) == {"name", "channel", "active", "settings"}


def test_the_hash_moves_with_what_cognigy_is_told_and_never_holds_the_password() -> None:
    base = _spec(basicAuth={"username": "u", "password": PASSWORD}, cognigy={"projectId": PROJECT})
    assert endpoint_hash(base) == endpoint_hash(base.model_copy())
    rotated = _spec(basicAuth={"username": "u", "password": PASSWORD + "2"}, cognigy={"projectId": PROJECT})
    moved = _spec(basicAuth={"username": "u", "password": PASSWORD}, cognigy={"projectId": "x" * 24})
    assert len({endpoint_hash(base), endpoint_hash(rotated), endpoint_hash(moved)}) == 3
    # the tutorial-only fields do not change an Endpoint
    assert endpoint_hash(_spec(timeoutMs=3000)) == endpoint_hash(_spec())


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"method": "PUT"}, "method"),
        ({"headers": {"X-A": "b"}}, "headers"),
        ({"payloadFormat": "XML"}, "payloadFormat"),
        ({"retryPolicy": {"maxRetries": 1}}, "retryPolicy"),
        ({"signatureHeader": "X-Sig"}, "signatureHeader"),
        ({"signatureSecretArn": "arn:x"}, "signatureSecretArn"),
        ({"signatureScheme": "standard"}, "signatureScheme"),
        ({"cognigy": {"flowId": FLOW}}, "cognigy.projectId"),
    ],
)
def test_what_an_endpoint_cannot_honour_is_named(fields: dict[str, Any], field: str) -> None:
    raw = {"name": "x-hook", "url": "https://a.example.com", "cognigy": {"projectId": PROJECT}, **fields}
    found = unsupported_fields(raw)
    assert [p["field"] for p in found] == [field]


def test_defaults_and_probe_bounds_are_not_refused() -> None:
    raw = {
        "name": "x-hook",
        "url": "https://a.example.com",
        "method": "post",
        "payloadFormat": "JSON",
        "timeoutMs": 3000,
        "fallbackUrls": ["https://b.example.com"],
        "basicAuth": {"username": "u", "passwordArn": "arn:p"},
        "cognigy": {"projectId": PROJECT},
    }
    assert unsupported_fields(raw) == []


def test_the_desired_sets_cognigy_block_is_the_default_an_endpoints_own_wins() -> None:
    desired = parse_desired_set(
        {
            "cognigy": {"projectId": PROJECT, "localeId": ""},
            "endpoints": [
                {"name": "a-hook", "url": "https://a.example.com"},
                {
                    "name": "b-hook",
                    "url": "https://b.example.com",
                    "cognigy": {"projectId": "p2", "flowId": FLOW},
                },
            ],
        }
    )
    a, b = desired.endpoints
    assert (a.cognigy.project_id, a.cognigy.locale_id, a.cognigy.flow_id) == (PROJECT, "", None)  # type: ignore[union-attr]
    assert (b.cognigy.project_id, b.cognigy.locale_id, b.cognigy.flow_id) == ("p2", "", FLOW)  # type: ignore[union-attr]


def test_a_bad_flow_id_is_refused_naming_the_field() -> None:
    with pytest.raises(Exception, match="flowId"):
        _spec(cognigy={"projectId": PROJECT, "flowId": "not-a-uuid"})


def test_what_cognigy_answers_keeps_no_password_and_no_token_in_clear() -> None:
    answer = {
        "_id": "a" * 24,
        "name": "orders-hook",
        "channel": "webhook",
        "URLToken": TOKEN,
        "lastChanged": 1764000000000,
        "active": True,
        "settings": {
            "webhookUrl": "https://hooks.example.com/orders",
            "basicAuthUser": "u",
            "basicAuthPassword": PASSWORD,
        },
    }
    endpoint = CognigyEndpoint.model_validate(answer)
    shown = repr(endpoint) + str(endpoint.model_dump())
    assert PASSWORD not in shown
    assert TOKEN not in shown
    assert endpoint.url_token is not None
    assert endpoint.url_token.get_secret_value() == TOKEN
    assert endpoint.last_changed == 1764000000000


def test_drift_is_compared_only_where_cognigy_answered() -> None:
    spec = _spec(
        basicAuth={"username": "u", "password": PASSWORD}, cognigy={"projectId": PROJECT, "flowId": FLOW}
    )
    same = CognigyEndpoint.model_validate(
        {
            "_id": "a" * 24,
            "name": "orders-hook",
            "active": True,
            "flowId": FLOW,
            "settings": {"webhookUrl": spec.url, "basicAuthUser": "u"},
        }
    )
    assert drifted_fields(same, spec) == []  # no password answered: not compared
    changed = CognigyEndpoint.model_validate(
        {
            "_id": "a" * 24,
            "name": "orders-hook",
            "active": False,
            "flowId": "",
            "settings": {"webhookUrl": "https://else.example.com", "basicAuthPassword": "other"},
        }
    )
    assert drifted_fields(changed, spec) == [
        "settings.webhookUrl",
        "settings.basicAuthUser",
        "settings.basicAuthPassword",
        "active",
        "flowId",
    ]


def _problem(status: int, **extra: Any) -> httpx.Response:
    body = {
        "type": "about:blank",
        "title": "Bad Request",
        "detail": "the request is not valid",
        "instance": "/new/v2.0/endpoints",
        "status": status,
        "traceId": "trace-4f2a9c",
        "code": 1005,
        **extra,
    }
    request = httpx.Request("POST", "https://api.example.com/new/v2.0/endpoints")
    return httpx.Response(status, json=body, request=request)


def test_an_rfc_7807_body_becomes_a_typed_error_with_its_fields_and_trace_id() -> None:
    details = [{"field": "settings.webhookUrl", "message": "must be a URI"}]
    error = map_cognigy_error("POST", "/new/v2.0/endpoints", _problem(400, details=details))
    assert isinstance(error, CognigyRejected)
    assert error.trace_id == "trace-4f2a9c"
    assert error.cognigy_code == 1005
    assert error.field_errors == details
    assert "the request is not valid" in str(error)
    assert "traceId trace-4f2a9c" in str(error)
    missing = map_cognigy_error("GET", "/x", _problem(404, title="Not Found", detail="", code=1002))
    assert isinstance(missing, CognigyNotFound)
    assert "Not Found" in str(missing)


def test_a_trace_id_that_is_not_a_plain_id_is_not_kept() -> None:
    error = map_cognigy_error("POST", "/x", _problem(400, traceId="<script>" + "x" * 300))
    assert error is not None
    assert error.trace_id is None


@pytest.mark.parametrize("retry_after", ["7", "Wed, 21 Oct 2099 07:28:00 GMT"])
def test_a_429_waits_retry_after_in_seconds_or_as_a_date(retry_after: str) -> None:
    request = httpx.Request("GET", "https://api.example.com/new/v2.0/endpoints")
    response = httpx.Response(
        429, headers={"Retry-After": retry_after}, json={"status": 429}, request=request
    )
    error = map_cognigy_error("GET", "/new/v2.0/endpoints", response)
    assert isinstance(error, CognigyThrottled)
    assert error.retry_after is not None
    assert error.retry_after > 0


def test_a_listing_in_hal_form_is_read_too() -> None:
    client = CognigyEndpointsClient("key-1234", "https://api.example.com", project_id=PROJECT)
    request = httpx.Request("GET", "https://api.example.com/new/v2.0/endpoints")
    hal = {
        "_embedded": {"endpoints": [{"_id": "b" * 24, "name": "h", "channel": "webhook", "lastChanged": 5}]},
        "_links": {"self": {"href": "/new/v2.0/endpoints"}},
        "total": 1,
    }
    items, total = client._page(httpx.Response(200, json=hal, request=request))
    assert [(i.id, i.last_changed) for i in items] == [("b" * 24, 5)]
    assert total == 1


def test_the_prefix_is_configurable_and_checked() -> None:
    assert CognigyEndpointsClient("k-1234", "https://api.example.com").path == "/new/v2.0/endpoints"
    assert CognigyEndpointsClient("k-1234", "https://api.example.com", prefix="/").path == "/v2.0/endpoints"
    with pytest.raises(ValueError, match="prefix"):
        CognigyEndpointsClient("k-1234", "https://api.example.com", prefix="new?x")
    assert "k-1234" not in repr(CognigyEndpointsClient("k-1234", "https://api.example.com"))


def test_an_unfilled_secret_placeholder_is_refused_naming_the_field() -> None:
    from cognigy_webhooks.errors import InvalidSpec
    from cognigy_webhooks.export import PASSWORD_ARN_PLACEHOLDER

    with pytest.raises(InvalidSpec) as refused:
        _spec(basicAuth={"username": "u", "passwordArn": PASSWORD_ARN_PLACEHOLDER})
    assert refused.value.errors[0]["field"] == "basicAuth.passwordArn"
    assert "placeholder" in refused.value.errors[0]["message"]
    with pytest.raises(InvalidSpec, match="signatureSecretArn"):
        _spec(signatureHeader="X-Sig", signatureSecretArn="<fill in>")
