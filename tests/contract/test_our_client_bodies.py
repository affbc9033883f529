"""Contract tests (issue 10, item 10(b)): every request body OUR endpoints client sends, held to the
official package's shipped schemas (``endpointDataSchema`` / ``endpointSchema`` of
``build/shared/interfaces/resources/IEndpoint.js``, dumped from the package installed at test time).

:class:`~cognigy_webhooks.cognigy.CognigyEndpointsClient` is run as the reconcile engine runs it (its
own httpx client, ``X-API-Key``, real TLS from the test CA) against the simulator's endpoints dialect
on 127.0.0.1. The bytes each request put on the wire are taken from the client's own httpx client by
a request event hook (an observer: nothing is replaced), and checked against what the simulator
received and accepted. Which schema holds which body, and why ``projectId`` is split off a create
body, is :class:`tests.contract.conftest.EndpointSchemas`'s docstring: the official client sends
``projectId`` in the create body too, and both shipped schemas refuse it (``additionalProperties:
false``), which :func:`test_project_id_fits_neither_shipped_schema_whole` pins down.

Covered: a create with Basic auth, one without, one with ``flowId``/``localeId``, an update (a PATCH
with the whole ``settings``), a deactivation; the reads, the listing and the delete send no body at
all. Negative controls show the validation can fail: an unknown top-level field, a missing or
malformed ``projectId``, a field Cognigy sets (``URLToken``), an empty PATCH, a wrong type.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cognigy_webhooks.cognigy import CognigyEndpointsClient
from cognigy_webhooks.models import WebhookEndpoint, parse_endpoint
from cogwh.sim_endpoints import ENDPOINTS_PATH
from tests.contract.conftest import EndpointSchemas
from tests.support.simulator import RunningSimulator

pytestmark = pytest.mark.anyio

PROJECT = "65a1b2c3d4e5f60718293a4b"
PASSWORD = "contract-basic-password-" + "z" * 16
FLOW = "3f2b7c1e-9a4d-4e8b-b6a1-0c2d3e4f5a6b"
LOCALE = "0b6f5c1e-8f7d-4c62-9a55-2f1d3f7e8a90"


class Wire:
    """What our client's requests carried, read off its own httpx client as each one is sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def hook(self, request: httpx.Request) -> None:
        raw = request.content
        self.sent.append(
            {
                "method": request.method,
                "path": request.url.path,
                "contentType": request.headers.get("content-type"),
                "body": json.loads(raw) if raw else None,
                "raw": raw,
            }
        )

    def bodies(self, method: str) -> list[dict[str, Any]]:
        return [r["body"] for r in self.sent if r["method"] == method]


@pytest.fixture
def sim(simulator: RunningSimulator) -> RunningSimulator:
    simulator.configure(project_ids=(PROJECT,))
    return simulator


@pytest.fixture
async def wired(sim: RunningSimulator) -> AsyncIterator[tuple[CognigyEndpointsClient, Wire]]:
    wire = Wire()
    client = CognigyEndpointsClient(sim.api_key, sim.base_url, verify=sim.ca_file)
    client.http.event_hooks["request"].append(wire.hook)
    async with client:
        yield client.scoped(PROJECT), wire


def spec(name: str, **fields: Any) -> WebhookEndpoint:
    return parse_endpoint({"name": name, "url": f"https://hooks.example.test/{name}", **fields})


BASIC = {"basicAuth": {"username": "cognigy", "password": PASSWORD}}
TARGET = {"cognigy": {"projectId": PROJECT, "flowId": FLOW, "localeId": LOCALE}}


async def drive(api: CognigyEndpointsClient) -> None:
    """Every call the engine makes, each kind of body once: three creates, an update, a
    deactivation, then the calls without a body."""
    with_auth = await api.create_webhook(spec("orders-hook", **BASIC))
    await api.create_webhook(spec("plain-hook"))
    await api.create_webhook(spec("flow-hook", **TARGET))
    moved = spec("orders-hook", **BASIC).model_copy(update={"url": "https://hooks.example.test/v2/orders"})
    await api.update_webhook(with_auth.id, moved)
    await api.update_webhook(with_auth.id, moved.model_copy(update={"is_active": False}))
    await api.get_webhook(with_auth.id)
    await api.list_webhooks()
    await api.find_by_name("plain-hook")
    await api.delete_webhook(with_auth.id)


async def test_every_body_our_client_sends_fits_the_shipped_schema(
    wired: tuple[CognigyEndpointsClient, Wire], sim: RunningSimulator, endpoint_schemas: EndpointSchemas
) -> None:
    # Given our client driven through every call against the simulator over TLS
    api, wire = wired
    await drive(api)
    creates, patches = wire.bodies("POST"), wire.bodies("PATCH")

    # Then each create body is projectId + endpointDataSchema, each PATCH body endpointSchema (+ data)
    assert len(creates) == 3
    assert len(patches) == 2
    for body in creates:
        assert endpoint_schemas.create_problems(body) == [], f"create {body['name']}"
    for body in patches:
        assert endpoint_schemas.update_problems(body) == [], f"update {body['name']}"
    # and the calls that carry no body send none (no stray JSON on a GET or DELETE)
    without = [r for r in wire.sent if r["method"] in ("GET", "DELETE")]
    assert {r["method"] for r in without} == {"GET", "DELETE"}
    assert all(r["raw"] == b"" and r["body"] is None for r in without)
    assert {r["method"] for r in wire.sent} == {"POST", "PATCH", "GET", "DELETE"}
    assert all(r["contentType"] == "application/json" for r in wire.sent if r["body"] is not None)


async def test_the_bodies_checked_are_the_ones_cognigy_received_and_accepted(
    wired: tuple[CognigyEndpointsClient, Wire], sim: RunningSimulator
) -> None:
    api, wire = wired
    await drive(api)

    received = [r for r in sim.state.requests if r["path"].startswith(ENDPOINTS_PATH)]

    # one request received per request sent, in order, each accepted
    assert [(r["method"], r["path"]) for r in received] == [(s["method"], s["path"]) for s in wire.sent]
    assert [r["status"] for r in received if r["method"] == "POST"] == [201, 201, 201]
    assert [r["status"] for r in received if r["method"] == "PATCH"] == [200, 200]
    for sent, got in zip(wire.sent, received, strict=True):
        expected = copy.deepcopy(sent["body"])
        if isinstance(expected, dict) and "basicAuthPassword" in expected.get("settings", {}):
            expected["settings"]["basicAuthPassword"] = "<redacted>"  # the simulator's log hides it
        assert got["body"] == expected


async def test_each_case_sends_what_the_mapping_says(
    wired: tuple[CognigyEndpointsClient, Wire], endpoint_schemas: EndpointSchemas
) -> None:
    api, wire = wired
    await drive(api)
    with_auth, plain, flow = wire.bodies("POST")
    update, deactivate = wire.bodies("PATCH")

    # a create with Basic auth
    assert with_auth == {
        "projectId": PROJECT,
        "name": "orders-hook",
        "channel": "webhook",
        "active": True,
        "settings": {
            "webhookUrl": "https://hooks.example.test/orders-hook",
            "basicAuthUser": "cognigy",
            "basicAuthPassword": PASSWORD,
        },
    }
    # a create without: no Basic auth fields at all (not empty strings)
    assert plain["settings"] == {"webhookUrl": "https://hooks.example.test/plain-hook"}
    # with flowId/localeId, given as the schema's UUID format
    assert (flow["flowId"], flow["localeId"]) == (FLOW, LOCALE)
    assert "flowId" not in plain
    assert "localeId" not in plain
    # the PATCHes: the whole settings (Cognigy replaces it), no projectId (not patchable)
    assert update["settings"] == {
        "webhookUrl": "https://hooks.example.test/v2/orders",
        "basicAuthUser": "cognigy",
        "basicAuthPassword": PASSWORD,
    }
    assert "projectId" not in update
    assert deactivate["active"] is False
    assert deactivate["settings"] == update["settings"]


async def test_project_id_fits_neither_shipped_schema_whole(
    wired: tuple[CognigyEndpointsClient, Wire], endpoint_schemas: EndpointSchemas
) -> None:
    """Why a create body is split: neither shipped schema has projectId, and both refuse unknown
    top-level fields, so the body as sent (by us and by the official client alike) fits neither."""
    api, wire = wired
    await api.create_webhook(spec("orders-hook", **BASIC))
    (body,) = wire.bodies("POST")

    assert "projectId" not in endpoint_schemas.raw["endpointDataSchema"]["properties"]
    assert "projectId" not in endpoint_schemas.raw["endpointSchema"]["properties"]
    assert endpoint_schemas.raw["endpointDataSchema"]["additionalProperties"] is False
    assert endpoint_schemas.raw["endpointSchema"]["additionalProperties"] is False
    whole_data = endpoint_schemas.problems(endpoint_schemas.data, body)
    whole_endpoint = endpoint_schemas.problems(endpoint_schemas.endpoint, body)
    assert len(whole_data) == 1
    assert "'projectId' was unexpected" in whole_data[0]
    assert len(whole_endpoint) == 1
    assert "'projectId' was unexpected" in whole_endpoint[0]
    # the stored form of the scope is projectReference, which endpointSchema has (a mongo id)
    assert endpoint_schemas.raw["endpointSchema"]["properties"]["projectReference"]["format"] == "mongo-id"
    data = {k: v for k, v in body.items() if k != "projectId"}
    assert endpoint_schemas.problems(endpoint_schemas.endpoint, {**data, "projectReference": PROJECT}) == []


# --- negative controls: the validation can fail -------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"retryPolicy": {"maxRetries": 3}}, "retryPolicy"),
        ({"unknownField": True}, "unknownField"),
        ({"signatureSecret": "s" * 32}, "signatureSecret"),
    ],
)
async def test_an_unknown_top_level_field_fails_the_validation(
    wired: tuple[CognigyEndpointsClient, Wire],
    endpoint_schemas: EndpointSchemas,
    change: dict[str, Any],
    field: str,
) -> None:
    api, wire = wired
    created = await api.create_webhook(spec("orders-hook", **BASIC))
    await api.update_webhook(created.id, spec("orders-hook", **BASIC))
    (create,), (update,) = wire.bodies("POST"), wire.bodies("PATCH")

    bad_create = endpoint_schemas.create_problems({**create, **change})
    bad_update = endpoint_schemas.update_problems({**update, **change})

    assert bad_create
    assert all(f"'{field}' was unexpected" in p for p in bad_create)
    assert bad_update
    assert all(f"'{field}' was unexpected" in p for p in bad_update)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda b: b.pop("projectId"), "projectId: is required"),
        (lambda b: b.update(projectId="not-a-project"), "projectId: is required"),
        (lambda b: b.update(URLToken="A" * 64), "URLToken: is Cognigy's to set"),
        (lambda b: b.update(active="yes"), "active: 'yes' is not of type 'boolean'"),
        (lambda b: b.update(flowId="flow-1"), "flowId: 'flow-1' is not valid"),
        (lambda b: b["settings"].update(webhookUrl="not a uri"), "settings/webhookUrl: 'not a uri' is not a"),
        (lambda b: b["settings"].update(basicAuthUser=7), "settings/basicAuthUser: 7 is not of type"),
    ],
)
async def test_a_create_body_broken_another_way_fails_too(
    wired: tuple[CognigyEndpointsClient, Wire],
    endpoint_schemas: EndpointSchemas,
    mutate: Any,
    expected: str,
) -> None:
    api, wire = wired
    await api.create_webhook(spec("orders-hook", **BASIC))
    body = copy.deepcopy(wire.bodies("POST")[0])

    mutate(body)

    problems = endpoint_schemas.create_problems(body)
    assert any(p.startswith(expected) for p in problems), problems


def test_an_empty_patch_fails_the_endpoint_schema(endpoint_schemas: EndpointSchemas) -> None:
    assert any(
        "should be non-empty" in p or "does not have enough properties" in p
        for p in endpoint_schemas.update_problems({})
    )
