"""The whole round trip, locally, over real sockets and real TLS: ``say`` -> the simulator's Endpoint
service (a real-dialect endpoint, created through ``/new/v2.0/endpoints``) -> its one output POSTed to
the endpoint's ``webhookUrl``, the local gateway serving the template's receiver over HTTPS -> Basic
auth checked by the receive function -> 202 -> the event on the delivery bus."""

from __future__ import annotations

import json
import ssl
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cognigy_webhooks.cognigy import say
from cogwh.certs import LocalCA
from cogwh.gateway import serve_gateway
from cogwh.servers import Served
from cogwh.sim_endpoints import ENDPOINTS_PATH, EndpointStore, store_of
from tests.support.receiver import ReceiverWorld, Registered
from tests.support.simulator import RunningSimulator

pytestmark = pytest.mark.anyio

PROJECT = "65a1b2c3d4e5f60718293a4b"


@pytest.fixture(scope="module")
def gateway(world: ReceiverWorld, local_ca: LocalCA) -> Iterator[Served]:
    """The template's API routes over HTTPS (a Cognigy webhookUrl must be https)."""
    leaf = local_ca.issue("localhost", "127.0.0.1")
    with serve_gateway(world.stack, certfile=leaf.cert, keyfile=leaf.key, url_host="localhost") as served:
        yield served


@pytest.fixture
def sim(simulator: RunningSimulator) -> RunningSimulator:
    simulator.configure(project_ids=(PROJECT,), delivery_ca_bundle=str(simulator.ca_file))
    return simulator


@pytest.fixture
def store(sim: RunningSimulator) -> EndpointStore:
    return store_of(sim.state)


def cognigy_endpoint(sim: RunningSimulator, url: str, settings: dict[str, Any]) -> dict[str, Any]:
    """A webhook Endpoint created through the real dialect's resource, as the register task does."""
    ctx = ssl.create_default_context(cafile=str(sim.ca_file))
    headers = {"X-API-Key": sim.api_key, "Accept": "application/json"}
    body = {
        "projectId": PROJECT,
        "name": "round-trip",
        "channel": "webhook",
        "flowId": "",
        "localeId": "",
        "active": True,
        "settings": {"webhookUrl": url, **settings},
    }
    with httpx.Client(base_url=sim.base_url, verify=ctx, headers=headers) as api:
        created = api.post(ENDPOINTS_PATH, json=body)
    assert created.status_code == 201, created.text
    return dict(created.json())


def receiver_endpoint(world: ReceiverWorld) -> Registered:
    """A receiver record whose spec has ``basicAuth {username, passwordArn}`` and no signature."""
    reg = world.register("rt", signed=False, basic=True)
    assert reg.username is not None
    assert reg.password is not None
    return reg


async def test_say_reaches_the_bus_through_cognigy_and_the_receiver(
    world: ReceiverWorld, gateway: Served, sim: RunningSimulator, store: EndpointStore
) -> None:
    # Given a receiver endpoint with Basic auth and a Cognigy endpoint delivering to it with that auth
    reg = receiver_endpoint(world)
    webhook_url = f"{gateway.base_url}/deliveries/{reg.name}"
    endpoint = cognigy_endpoint(
        sim, webhook_url, {"basicAuthUser": reg.username, "basicAuthPassword": reg.password}
    )
    session = "session-" + uuid.uuid4().hex
    # When a user's input is sent into the bot
    result = await say(
        sim.base_url,
        endpoint["URLToken"],
        user_id="user-42",
        session_id=session,
        text="where is my order?",
        data={"orderId": 42},
        verify=str(sim.ca_file),
    )
    assert result.status_code == 200
    (trace_id,) = result.answer["traceIds"]
    # Then Cognigy's one output reaches the receiver, which accepts it
    (attempt,) = store.wait_deliveries(1)
    assert (attempt["url"], attempt["status"], attempt["error"]) == (webhook_url, 202, None)
    assert attempt["traceId"] == trace_id
    # and hands it on to the bus, once, with what the flow said
    (event,) = world.published_for(reg.name)
    detail = event["detail"]
    assert detail["payload"] == {
        "userId": "user-42",
        "sessionId": session,
        "AIOutput": {
            "text": "where is my order?",
            "data": {"orderId": 42},
            "traceId": trace_id,
            "disableSensitiveLogging": False,
            "source": "bot",
        },
    }
    # with the output's fields at the top, for consumers' rules to filter on
    assert detail["sessionId"] == session
    assert (detail["userId"], detail["text"], detail["data"]) == (
        "user-42",
        "where is my order?",
        {"orderId": 42},
    )
    assert detail["traceId"] == trace_id
    # and no secret travelled where it must not
    text = json.dumps(event) + json.dumps(store.deliveries())
    assert str(reg.password) not in text
    assert endpoint["URLToken"] not in text


async def test_a_wrong_password_is_refused_and_the_delivery_record_shows_401(
    world: ReceiverWorld, gateway: Served, sim: RunningSimulator, store: EndpointStore
) -> None:
    reg = receiver_endpoint(world)
    webhook_url = f"{gateway.base_url}/deliveries/{reg.name}"
    endpoint = cognigy_endpoint(
        sim, webhook_url, {"basicAuthUser": reg.username, "basicAuthPassword": "not-" + str(reg.password)}
    )
    result = await say(
        sim.base_url,
        endpoint["URLToken"],
        user_id="user-1",
        session_id="session-" + uuid.uuid4().hex,
        text="hello",
        verify=str(sim.ca_file),
    )
    assert result.status_code == 200  # Cognigy took the input; its delivery is what fails
    (attempt,) = store.wait_deliveries(1)
    assert (attempt["status"], attempt["basicAuth"]) == (401, True)
    assert world.published_for(reg.name) == []


async def test_an_endpoint_without_basic_auth_is_refused_by_the_receiver(
    world: ReceiverWorld, gateway: Served, sim: RunningSimulator, store: EndpointStore
) -> None:
    reg = receiver_endpoint(world)
    endpoint = cognigy_endpoint(sim, f"{gateway.base_url}/deliveries/{reg.name}", {})
    await say(
        sim.base_url,
        endpoint["URLToken"],
        user_id="user-1",
        session_id="session-" + uuid.uuid4().hex,
        text="hello",
        verify=str(sim.ca_file),
    )
    (attempt,) = store.wait_deliveries(1)
    assert (attempt["status"], attempt["basicAuth"]) == (401, False)
    assert world.published_for(reg.name) == []
