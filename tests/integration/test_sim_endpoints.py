"""The simulator's endpoints dialect (Cognigy.AI's /new/v2.0/endpoints), over real TLS with raw httpx."""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cogwh.sim_endpoints import ENDPOINTS_PATH, EndpointStore, store_of
from cogwh.simulator import WEBHOOKS_PATH, Faults
from tests.support.simulator import READ_ONLY_KEY, RunningSimulator

PROJECT = "65a1b2c3d4e5f60718293a4b"
OTHER_PROJECT = "65a1b2c3d4e5f60718293a4c"
FLOW = "0b6f5c1e-8f7d-4c62-9a55-2f1d3f7e8a90"
PASSWORD = "basic-pw-" + "p" * 30
RFC7807_KEYS = {"type", "title", "detail", "instance", "status", "traceId", "code"}
JSON = {"Accept": "application/json"}


def endpoint(name: str = "orders", **extra: Any) -> dict[str, Any]:
    return {
        "projectId": PROJECT,
        "name": name,
        "channel": "webhook",
        "flowId": FLOW,
        "localeId": "",
        "active": True,
        "settings": {
            "webhookUrl": "https://hooks.example.test/orders",
            "basicAuthUser": "cognigy",
            "basicAuthPassword": PASSWORD,
        },
        **extra,
    }


@pytest.fixture
def sim(simulator: RunningSimulator) -> RunningSimulator:
    simulator.configure(project_ids=(PROJECT, OTHER_PROJECT))
    return simulator


@pytest.fixture
def store(sim: RunningSimulator) -> EndpointStore:
    return store_of(sim.state)


@pytest.fixture
def http(sim: RunningSimulator) -> Iterator[httpx.Client]:
    ctx = ssl.create_default_context(cafile=str(sim.ca_file))
    with httpx.Client(
        base_url=sim.base_url, verify=ctx, headers={"X-API-Key": sim.api_key, **JSON}
    ) as client:
        yield client


def assert_problem(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status
    problem = response.json()
    assert problem.keys() >= RFC7807_KEYS
    assert problem["status"] == status
    assert problem["code"] == code
    assert problem["type"] == "about:blank"
    assert problem["instance"] == response.request.url.path
    return problem


def test_create_returns_the_endpoint_whole(http: httpx.Client, store: EndpointStore) -> None:
    created = http.post(ENDPOINTS_PATH, json=endpoint())

    assert created.status_code == 201
    body = created.json()
    assert re.fullmatch(r"[0-9a-f]{24}", body["_id"])
    assert re.fullmatch(r"[A-Za-z0-9]{64}", body["URLToken"])
    assert body["name"] == "orders"
    assert body["channel"] == "webhook"
    assert body["flowId"] == FLOW
    assert body["active"] is True
    assert body["settings"] == {"webhookUrl": "https://hooks.example.test/orders", "basicAuthUser": "cognigy"}
    assert isinstance(body["createdAt"], int)
    assert body["lastChanged"] == body["createdAt"]
    assert re.fullmatch(r"[0-9a-f]{24}", body["createdBy"])
    assert body["lastChangedBy"] == body["createdBy"]
    # The password is kept (a digest proves it) but never answered
    assert PASSWORD not in created.text
    assert store.password_digest(body["_id"]) is not None


def test_duplicate_names_are_accepted(http: httpx.Client, store: EndpointStore) -> None:
    first = http.post(ENDPOINTS_PATH, json=endpoint("same"))
    second = http.post(ENDPOINTS_PATH, json=endpoint("same"))

    assert first.status_code == second.status_code == 201
    assert first.json()["_id"] != second.json()["_id"]
    assert first.json()["URLToken"] != second.json()["URLToken"]
    assert len(store.named("same")) == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"projectId": None}, "projectId"),
        ({"method": "PUT"}, "method"),
        ({"headers": {"X-A": "b"}}, "headers"),
        ({"URLToken": "a" * 64}, "URLToken"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "bad\nname"}, "name"),
        ({"name": 7}, "name"),
        ({"channel": "carrier-pigeon"}, "channel"),
        ({"flowId": "not-a-uuid"}, "flowId"),
        ({"localeId": 3}, "localeId"),
        ({"entrypoint": "nope"}, "entrypoint"),
        ({"active": "yes"}, "active"),
        ({"settings": []}, "settings"),
        ({"settings": {"webhookUrl": "not a url"}}, "settings.webhookUrl"),
        ({"settings": {"webhookUrl": "ftp://hooks.example.test/x"}}, "settings.webhookUrl"),
        (
            {"settings": {"webhookUrl": "https://h.example.test/", "basicAuthPassword": 5}},
            "settings.basicAuthPassword",
        ),
    ],
)
def test_create_refuses_what_the_schema_refuses(
    http: httpx.Client, store: EndpointStore, change: dict[str, Any], field: str
) -> None:
    body = {k: v for k, v in {**endpoint(), **change}.items() if v is not None}

    response = http.post(ENDPOINTS_PATH, json=body)

    problem = assert_problem(response, 400, 1005)
    assert field in [d["field"] for d in problem["details"]]
    assert PASSWORD not in response.text
    assert store.endpoints == {}


def test_only_the_project_id_is_required(http: httpx.Client) -> None:
    response = http.post(ENDPOINTS_PATH, json={"projectId": PROJECT})

    assert response.status_code == 201
    assert response.json()["channel"] == "webhook"


def test_unknown_project_is_404(http: httpx.Client, store: EndpointStore) -> None:
    created = http.post(ENDPOINTS_PATH, json=endpoint(projectId="ffffffffffffffffffffffff"))
    listed = http.get(ENDPOINTS_PATH, params={"projectId": "ffffffffffffffffffffffff"})

    assert_problem(created, 404, 1002)
    assert_problem(listed, 404, 1002)
    assert store.endpoints == {}


def test_listing_pages_and_hides_settings(http: httpx.Client) -> None:
    ids = [http.post(ENDPOINTS_PATH, json=endpoint(f"hook-{i:02d}")).json()["_id"] for i in range(7)]
    http.post(ENDPOINTS_PATH, json=endpoint("elsewhere", projectId=OTHER_PROJECT))

    first = http.get(ENDPOINTS_PATH, params={"projectId": PROJECT, "limit": 3}).json()
    second = http.get(ENDPOINTS_PATH, params={"projectId": PROJECT, "limit": 3, "skip": 3}).json()
    last = http.get(ENDPOINTS_PATH, params={"projectId": PROJECT, "limit": 3, "skip": 6}).json()

    assert first.keys() == {"items", "total", "nextCursor", "previousCursor"}
    assert first["total"] == second["total"] == last["total"] == 7
    assert [i["_id"] for i in first["items"] + second["items"] + last["items"]] == ids
    assert first["nextCursor"]
    assert first["previousCursor"] is None
    assert last["nextCursor"] is None
    assert last["previousCursor"]
    item = first["items"][0]
    assert "settings" not in item
    assert "active" not in item
    assert item.keys() >= {
        "_id",
        "name",
        "channel",
        "URLToken",
        "flowId",
        "localeId",
        "createdAt",
        "lastChanged",
    }
    assert item.keys() >= {"createdBy", "lastChangedBy"}


def test_listing_default_limit_and_bounds(http: httpx.Client) -> None:
    for i in range(27):
        http.post(ENDPOINTS_PATH, json=endpoint(f"n{i}"))

    default = http.get(ENDPOINTS_PATH, params={"projectId": PROJECT})

    assert len(default.json()["items"]) == 25
    for bad in ("0", "101", "-1", "ten", ""):
        problem = assert_problem(http.get(ENDPOINTS_PATH, params={"limit": bad}), 400, 1005)
        assert problem["details"][0]["field"] == "limit"
    assert_problem(http.get(ENDPOINTS_PATH, params={"skip": "-3"}), 400, 1005)
    assert len(http.get(ENDPOINTS_PATH, params={"limit": "100"}).json()["items"]) == 27


def test_listing_filters_by_name_and_channel_and_sorts(http: httpx.Client) -> None:
    http.post(ENDPOINTS_PATH, json=endpoint("Orders-EU"))
    http.post(ENDPOINTS_PATH, json=endpoint("orders-us"))
    http.post(ENDPOINTS_PATH, json=endpoint("billing"))
    http.post(ENDPOINTS_PATH, json={"projectId": PROJECT, "name": "orders-chat", "channel": "rest"})

    found = http.get(
        ENDPOINTS_PATH,
        params={"projectId": PROJECT, "filter": "orders", "channel": "webhook", "sort": "name:desc"},
    ).json()

    assert [i["name"] for i in found["items"]] == ["orders-us", "Orders-EU"]
    assert found["total"] == 2
    assert_problem(http.get(ENDPOINTS_PATH, params={"sort": "settings:up"}), 400, 1005)


def test_without_accept_json_a_listing_is_hal(sim: RunningSimulator, http: httpx.Client) -> None:
    for i in range(3):
        http.post(ENDPOINTS_PATH, json=endpoint(f"h{i}"))

    hal = http.get(
        ENDPOINTS_PATH, params={"projectId": PROJECT, "limit": 2}, headers={"Accept": "*/*"}
    ).json()

    assert "items" not in hal
    assert [e["name"] for e in hal["_embedded"]["endpoints"]] == ["h0", "h1"]
    assert hal["_links"]["self"]["href"].startswith(ENDPOINTS_PATH + "?")
    assert "skip=2" in hal["_links"]["next"]["href"]
    assert hal["_embedded"]["endpoints"][0]["_links"]["self"]["href"].startswith(ENDPOINTS_PATH + "/")
    assert hal["total"] == 3


def test_read_patch_delete(http: httpx.Client, store: EndpointStore) -> None:
    created = http.post(ENDPOINTS_PATH, json=endpoint()).json()
    path = f"{ENDPOINTS_PATH}/{created['_id']}"

    read = http.get(path)
    patched = http.patch(
        path, json={"name": "renamed", "settings": {"webhookUrl": "https://n.example.test/x"}}
    )
    again = http.patch(path, json={"active": False})
    deleted = http.delete(path)

    assert read.status_code == 200
    assert read.json() == created
    assert patched.status_code == 200
    body = patched.json()
    # Partial at the top level, settings replaced as a whole (the Basic auth is gone)
    assert body["name"] == "renamed"
    assert body["flowId"] == FLOW
    assert body["active"] is True
    assert body["settings"] == {"webhookUrl": "https://n.example.test/x"}
    assert store.password_digest(created["_id"]) is None
    assert body["lastChanged"] > created["lastChanged"]
    assert again.json()["lastChanged"] > body["lastChanged"]
    assert again.json()["active"] is False
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert store.endpoints == {}


def test_patch_refuses_what_it_cannot_change(http: httpx.Client) -> None:
    created = http.post(ENDPOINTS_PATH, json=endpoint()).json()
    path = f"{ENDPOINTS_PATH}/{created['_id']}"

    for change, field in (
        ({"projectId": OTHER_PROJECT}, "projectId"),
        ({"retryPolicy": {}}, "retryPolicy"),
        ({"settings": {"webhookUrl": "nope"}}, "settings.webhookUrl"),
    ):
        problem = assert_problem(http.patch(path, json=change), 400, 1005)
        assert problem["details"][0]["field"] == field
    assert http.get(path).json() == created


def test_unknown_ids_are_404_with_code_1002(http: httpx.Client) -> None:
    path = f"{ENDPOINTS_PATH}/{'a' * 24}"

    for response in (http.get(path), http.patch(path, json={"name": "x"}), http.delete(path)):
        problem = assert_problem(response, 404, 1002)
        assert problem["title"] == "Not Found"


def test_auth_and_read_only_keys_answer_rfc7807(sim: RunningSimulator, http: httpx.Client) -> None:
    missing = http.get(ENDPOINTS_PATH, headers={"X-API-Key": ""})
    wrong = http.get(ENDPOINTS_PATH, headers={"X-API-Key": "nope-nope"})
    read_only = http.post(ENDPOINTS_PATH, json=endpoint(), headers={"X-API-Key": READ_ONLY_KEY})
    listed = http.get(ENDPOINTS_PATH, headers={"X-API-Key": READ_ONLY_KEY})

    assert_problem(missing, 401, 401)
    assert_problem(wrong, 401, 401)
    assert_problem(read_only, 403, 403)
    assert listed.status_code == 200


def test_rate_limit_429_has_a_numeric_retry_after(sim: RunningSimulator, http: httpx.Client) -> None:
    sim.configure(project_ids=(PROJECT,), burst=2, rate_per_minute=1)

    statuses = [http.get(ENDPOINTS_PATH).status_code for _ in range(3)]
    throttled = http.get(ENDPOINTS_PATH)

    assert statuses == [200, 200, 429]
    assert_problem(throttled, 429, 429)
    assert throttled.headers["Retry-After"].isdigit()


def test_faults_apply_and_answer_rfc7807(sim: RunningSimulator, http: httpx.Client) -> None:
    sim.state.set_faults({"script": ["500", "429"]})

    failed = http.post(ENDPOINTS_PATH, json=endpoint())
    throttled = http.get(ENDPOINTS_PATH)

    assert_problem(failed, 500, 1008)
    assert_problem(throttled, 429, 429)
    assert throttled.headers["Retry-After"] == str(Faults().retry_after_s)


def test_the_password_never_reaches_the_request_log(sim: RunningSimulator, http: httpx.Client) -> None:
    created = http.post(ENDPOINTS_PATH, json=endpoint()).json()
    http.patch(f"{ENDPOINTS_PATH}/{created['_id']}", json={"settings": {"basicAuthPassword": PASSWORD}})

    log = str(sim.state.snapshot())

    assert PASSWORD not in log
    assert PASSWORD not in repr(store_of(sim.state))
    assert "<redacted>" in log


def test_reset_forgets_endpoints_and_the_tutorial_dialect_still_works(
    sim: RunningSimulator, http: httpx.Client, store: EndpointStore
) -> None:
    http.post(ENDPOINTS_PATH, json=endpoint())
    sim.state.reset()
    hook = http.post(WEBHOOKS_PATH, json={"name": "orders-hook", "url": "https://hooks.example.test/o"})

    assert store.endpoints == {}
    assert hook.status_code == 201
    assert "id" in hook.json()
    assert http.get(WEBHOOKS_PATH).json()["items"][0]["name"] == "orders-hook"
