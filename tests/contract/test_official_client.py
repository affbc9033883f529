"""Contract tests: the official Cognigy client (``@cognigy/rest-api-client`` 0.19.0) against the
simulator's endpoints dialect, and the bodies on the wire against the package's shipped schemas.

(a) ``official_client.js`` runs the client's createEndpoint, indexEndpoints, readEndpoint,
updateEndpoint and deleteEndpoint against the simulator over TLS; the tests check what came back and
what the simulator recorded. (b) every body the official client sent, and the bodies the simulator's
own tests have it accept, validate against ``endpointDataSchema`` / ``endpointSchema``; bodies with
fields the real API does not have are refused by both. The bodies our own client
(``CognigyEndpointsClient``) sends are held to the same schemas in ``test_our_client_bodies.py``.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cogwh.sim_endpoints import ENDPOINTS_PATH
from tests.contract.conftest import HERE, EndpointSchemas, node_env
from tests.integration.test_sim_endpoints import endpoint
from tests.support.simulator import RunningSimulator

PROJECT = "65a1b2c3d4e5f60718293a4b"
PASSWORD = "contract-basic-pw-" + "q" * 24
WEBHOOK_URL = "https://hooks.example.test/cognigy"


@pytest.fixture(scope="module")
def run(
    simulator_server: RunningSimulator, official_client: Path
) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """One run of the official client: (its steps, the simulator's recorded requests, raw stdout)."""
    simulator_server.configure(project_ids=(PROJECT,))
    done = subprocess.run(
        ["node", str(HERE / "official_client.js")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=node_env(
            COGWH_CLIENT_DIR=str(official_client),
            COGWH_BASE_URL=simulator_server.base_url,
            COGWH_API_KEY=simulator_server.api_key,
            COGWH_PROJECT_ID=PROJECT,
            COGWH_WEBHOOK_URL=WEBHOOK_URL,
            COGWH_BASIC_PASSWORD=PASSWORD,
            NODE_EXTRA_CA_CERTS=str(simulator_server.ca_file),
        ),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)["steps"], simulator_server.state.requests, done.stdout


def ok(steps: dict[str, Any], name: str) -> Any:
    assert steps[name]["ok"], f"{name}: {steps[name].get('error')}"
    return steps[name]["value"]


def failed(steps: dict[str, Any], name: str) -> dict[str, Any]:
    assert not steps[name]["ok"], f"{name} should have failed: {steps[name]}"
    return steps[name]["error"]


def test_create_read_update_delete_through_the_official_client(run: tuple[dict[str, Any], Any, str]) -> None:
    steps, _, stdout = run

    created = ok(steps, "create")
    again = ok(steps, "createSameName")
    read = ok(steps, "read")
    updated = ok(steps, "update")
    after = ok(steps, "readAfterUpdate")
    ok(steps, "delete")

    assert re.fullmatch(r"[0-9a-f]{24}", created["_id"])
    assert re.fullmatch(r"[A-Za-z0-9]{64}", created["URLToken"])
    assert created["settings"] == {"webhookUrl": WEBHOOK_URL, "basicAuthUser": "cognigy"}
    assert again["name"] == created["name"]  # duplicate names are accepted
    assert again["_id"] != created["_id"]
    assert read == created
    assert updated["name"] == "orders-webhook-renamed"
    assert updated["settings"] == {"webhookUrl": WEBHOOK_URL + "/v2"}  # replaced whole
    assert updated["flowId"] == created["flowId"]  # the rest of the top level kept
    assert updated["lastChanged"] > created["lastChanged"]
    assert after == updated
    assert PASSWORD not in stdout


def test_index_through_the_official_client(run: tuple[dict[str, Any], Any, str]) -> None:
    steps, requests, _ = run

    page = ok(steps, "index")

    assert page.keys() >= {"items", "total", "nextCursor", "previousCursor"}
    assert page["total"] == 2
    assert len(page["items"]) == 1
    assert page["nextCursor"]
    assert "settings" not in page["items"][0]
    assert "active" not in page["items"][0]
    listing = next(r for r in requests if r["method"] == "GET" and r["path"] == ENDPOINTS_PATH)
    # The client writes sort objects as field:direction and sends projectId in the query
    assert listing["query"] == {
        "projectId": PROJECT,
        "filter": "orders",
        "limit": "1",
        "skip": "0",
        "sort": "name:asc",
    }


def test_errors_reach_the_official_client_as_its_typed_errors(run: tuple[dict[str, Any], Any, str]) -> None:
    steps, _, _ = run

    gone = failed(steps, "readAfterDelete")
    unknown_field = failed(steps, "createUnknownField")
    unknown_project = failed(steps, "createUnknownProject")
    too_many = failed(steps, "indexLimitTooLarge")

    assert gone["code"] == 1002
    assert gone["httpStatusCode"] == 404
    assert gone["traceId"]
    assert unknown_field["code"] == 1005
    assert [d["field"] for d in unknown_field["details"]] == ["retryPolicy"]
    assert unknown_project["code"] == 1002
    assert too_many["code"] == 1005


def test_what_the_official_client_sends(
    run: tuple[dict[str, Any], Any, str], endpoint_schemas: EndpointSchemas
) -> None:
    _, requests, _ = run

    creates = [r for r in requests if r["method"] == "POST" and r["status"] == 201]
    updates = [r for r in requests if r["method"] == "PATCH" and r["status"] == 200]
    deletes = [r for r in requests if r["method"] == "DELETE"]

    assert len(creates) == 2
    assert len(updates) == 1
    for entry in creates:
        assert entry["body"]["projectId"] == PROJECT  # in the body, beside the schema's fields
        assert endpoint_schemas.create_problems(entry["body"]) == []
    # The endpoint id goes in the path only; the PATCH body is the changed fields
    assert set(updates[0]["body"]) == {"name", "settings"}
    assert endpoint_schemas.update_problems(updates[0]["body"]) == []
    assert deletes[0]["body"] is None
    assert all(r["key"] and r["key"].startswith("sha256:") for r in requests)


def test_the_bodies_the_simulator_accepts_fit_the_shipped_schema(endpoint_schemas: EndpointSchemas) -> None:
    accepted_creates: list[dict[str, Any]] = [
        endpoint(),
        {"projectId": PROJECT},
        {"projectId": PROJECT, "name": "orders-chat", "channel": "rest"},
        endpoint(
            flowId="", localeId="0b6f5c1e-8f7d-4c62-9a55-2f1d3f7e8a90", entrypoint="65a1b2c3d4e5f60718293a4b"
        ),
    ]
    accepted_updates: list[dict[str, Any]] = [
        {"name": "renamed", "settings": {"webhookUrl": "https://n.example.test/x"}},
        {"active": False},
        {"settings": {"basicAuthPassword": PASSWORD}},
    ]

    for body in accepted_creates:
        assert endpoint_schemas.create_problems(body) == [], body
    for body in accepted_updates:
        assert endpoint_schemas.update_problems(body) == [], body


@pytest.mark.parametrize(
    "change",
    [
        {"method": "PUT"},
        {"headers": {"X-A": "b"}},
        {"retryPolicy": {"maxRetries": 3}},
        {"signatureSecret": "s"},
        {"flowId": "not-a-uuid"},
        {"active": "yes"},
        {"channel": "carrier-pigeon"},
    ],
)
def test_what_the_simulator_refuses_the_shipped_schema_refuses(
    endpoint_schemas: EndpointSchemas, change: dict[str, Any]
) -> None:
    assert endpoint_schemas.create_problems({**endpoint(), **change}) != []
