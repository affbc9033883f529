"""The local gateway on its own: real HTTP on 127.0.0.1 in, API Gateway REST proxy events (v1) out, and
the function's proxy response (or API Gateway's own error) back. The functions here are plain Python
callables standing in for handlers, so every shape of response can be produced on purpose."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from cogwh.gateway import MAX_PAYLOAD_BYTES, GatewayRoute, LocalGateway
from cogwh.servers import serve_in_thread

Function = Callable[[dict[str, Any]], Any]


def echo(event: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(event)}


@pytest.fixture
def serve() -> Iterator[Callable[[Function], httpx.Client]]:
    clients: list[httpx.Client] = []
    stack: list[Any] = []

    def start(function: Function) -> httpx.Client:
        routes = [
            GatewayRoute("POST", "/deliveries/{name}", "Receive", "Api", "v1", ("application/octet-stream",)),
            GatewayRoute("ANY", "/files/{proxy+}", "Files", "Api", "v1"),
        ]
        gateway = LocalGateway(routes, lambda _logical_id, event: function(event), api_ids={"Api": "api123"})
        served = serve_in_thread(gateway)
        stack.append(served)
        client = httpx.Client(base_url=served.__enter__().base_url, timeout=30)
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.close()
    for served in stack:
        served.__exit__(None, None, None)


def test_a_request_becomes_a_rest_proxy_event(serve: Callable[[Function], httpx.Client]) -> None:
    http = serve(echo)
    resp = http.post(
        "/deliveries/orders%20hook?a=1&a=2&b=",
        content=b'{"x":1}',
        headers=[("Content-Type", "application/json"), ("X-Sig", "one"), ("x-sig", "two")],
    )
    assert resp.status_code == 200
    assert resp.headers["x-amzn-requestid"]
    event = resp.json()
    assert event["resource"] == "/deliveries/{name}"
    assert event["path"] == "/deliveries/orders hook"
    assert event["httpMethod"] == "POST"
    assert event["pathParameters"] == {"name": "orders hook"}
    assert event["queryStringParameters"] == {"a": "2", "b": ""}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": [""]}
    assert event["multiValueHeaders"]["x-sig"] == ["one", "two"]
    assert event["headers"]["x-sig"] == "two"  # as API Gateway: the last value
    assert event["body"] == '{"x":1}'
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["stage"] == "v1"
    assert context["path"] == "/v1" + event["path"]
    assert context["apiId"] == "api123"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["requestId"] == resp.headers["x-amzn-requestid"]


def test_binary_media_types_are_base64_encoded(serve: Callable[[Function], httpx.Client]) -> None:
    http = serve(echo)
    raw = bytes(range(256))
    event = http.post(
        "/deliveries/x", content=raw, headers={"Content-Type": "application/octet-stream"}
    ).json()
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw
    empty = http.post("/deliveries/x").json()
    assert (empty["body"], empty["isBase64Encoded"]) == (None, False)


def test_stage_prefix_greedy_paths_and_unknown_routes(serve: Callable[[Function], httpx.Client]) -> None:
    http = serve(echo)
    assert http.post("/v1/deliveries/x").json()["pathParameters"] == {"name": "x"}
    assert http.get("/files/a/b/c.txt").json()["pathParameters"] == {"proxy": "a/b/c.txt"}
    # an encoded slash stays inside its segment; parameters are decoded once
    assert http.post("/deliveries/a%2Fb").json()["pathParameters"] == {"name": "a/b"}
    assert http.post("/deliveries/a%2520b").json()["pathParameters"] == {"name": "a%20b"}
    for method, path in (("GET", "/deliveries/x"), ("POST", "/deliveries/x/y"), ("POST", "/nowhere")):
        resp = http.request(method, path)
        assert resp.status_code == 403
        assert resp.json() == {"message": "Missing Authentication Token"}


def test_the_functions_response_is_sent_back(serve: Callable[[Function], httpx.Client]) -> None:
    def respond(event: dict[str, Any]) -> dict[str, Any]:
        return {
            "statusCode": 202,
            "headers": {"X-One": "1"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": base64.b64encode(b"\x00binary").decode(),
            "isBase64Encoded": True,
        }

    resp = serve(respond).post("/deliveries/x")
    assert resp.status_code == 202
    assert resp.content == b"\x00binary"
    assert resp.headers["x-one"] == "1"
    assert resp.headers.get_list("set-cookie") == ["a=1", "b=2"]


@pytest.mark.parametrize(
    "function",
    [
        lambda event: (_ for _ in ()).throw(RuntimeError("boom in the handler")),
        lambda event: {"body": "no status"},
        lambda event: {"statusCode": 999},
        lambda event: {"statusCode": 200, "body": 42},
        lambda event: "not an object",
    ],
)
def test_a_failing_or_malformed_function_is_a_502_without_details(
    serve: Callable[[Function], httpx.Client], function: Function
) -> None:
    resp = serve(function).post("/deliveries/x", content=b"{}")
    assert resp.status_code == 502
    assert resp.json() == {"message": "Internal server error"}
    assert "boom" not in resp.text


def test_a_body_over_api_gateways_limit_is_a_413(serve: Callable[[Function], httpx.Client]) -> None:
    calls: list[int] = []

    def count(event: dict[str, Any]) -> dict[str, Any]:
        calls.append(1)
        return echo(event)

    resp = serve(count).post("/deliveries/x", content=b"x" * (MAX_PAYLOAD_BYTES + 1))
    assert resp.status_code == 413
    assert calls == []
