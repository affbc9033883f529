"""The management API's watch routes through the local stack and the local gateway, over real sockets,
every request signed with SigV4: ``POST /watches`` (202, a watch started now or judging at a chosen
``at``, over every endpoint or only ``names``), ``GET /watches/{id}`` (its status, then its summary),
``GET /health`` (every endpoint's health, paged like ``GET /endpoints``); bad input 422 naming the
field with no watch started; unknown watches 404; no secret in any answer.

One local stack per module (template.yaml, both ASL files on moto, waits instant), the endpoints
dialect's simulator beside it, real TLS targets on 127.0.0.1 that go down; each test starts from
emptied tables."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from cognigy_webhooks.models.records import AuditEvent, EndpointRecord
from cogwh.demo import DEMO_PROJECT_ID, LocalWorld, local_world
from cogwh.gateway import serve_gateway
from cogwh.localstack import LocalStack
from cogwh.simulator import SimulatorConfig
from cogwh.targets import SwitchableTarget, server_context
from tests.integration.reconcile.harness import BURST, RATE_PER_MINUTE, Harness, clean_harness, serve_stack
from tests.integration.test_management_api import Api, _no_secret_in

PASSWORD = "api-watch-basic-auth-password-never-shown-5678"
BLOCK = {"projectId": DEMO_PROJECT_ID}
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def api_world() -> Iterator[LocalWorld]:
    with local_world(rate_per_minute=RATE_PER_MINUTE, burst=BURST, cognigy_api="endpoints") as local:
        yield local


@pytest.fixture(scope="module")
def stack(api_world: LocalWorld) -> Iterator[LocalStack]:
    yield from serve_stack(api_world)


@pytest.fixture(scope="module")
def base_url(stack: LocalStack) -> Iterator[str]:
    with serve_gateway(stack) as served:
        yield served.base_url


@pytest.fixture
def h(stack: LocalStack, api_world: LocalWorld) -> Harness:
    config = api_world.simulator_state.config
    assert isinstance(config, SimulatorConfig)
    return clean_harness(stack, api_world, config)


@pytest.fixture
def api(base_url: str, stack: LocalStack) -> Iterator[Api]:
    client = Api(base_url, stack.region)
    yield client
    client.client.close()


@pytest.fixture
def target(api_world: LocalWorld) -> Iterator[SwitchableTarget]:
    switchable = SwitchableTarget(server_context(api_world.ca.issue("localhost", "127.0.0.1")))
    yield switchable
    switchable.close()


def _spec(name: str, target: SwitchableTarget) -> dict[str, Any]:
    return {
        "name": name,
        "url": target.url(f"/hooks/{name}"),
        "timeoutMs": 3000,
        "basicAuth": {"username": "cognigy", "password": PASSWORD},
    }


def _seed(h: Harness, names: list[str]) -> None:
    """Records as a reconcile leaves them (no probe, no watch yet), written directly."""
    for name in names:
        h.store.commit(
            name=name,
            record=EndpointRecord(name=name, status="registered", webhook_id="w" + name),
            audit=AuditEvent(name=name, action="register", outcome="created"),
            expected_version=None,
        )


def _watches(h: Harness) -> int:
    arn = h.stack.outputs["WatchStateMachineArn"]
    return len(h.stack.client("stepfunctions").list_executions(stateMachineArn=arn)["executions"])


def _ended(h: Harness, arn: str) -> None:
    assert h.stack.wait_execution(arn)["status"] == "SUCCEEDED"
    h.in_flight.wait_idle()


def test_a_watch_started_through_the_api_is_described_and_the_health_read(
    h: Harness, api: Api, target: SwitchableTarget
) -> None:
    h.apply([_spec("api-watched", target), _spec("api-other", target)], cognigy=BLOCK)
    before = len(h.sim.requests)

    # When a watch is started at a chosen time, over one endpoint
    started = api.post("/watches", {"at": T0.isoformat(), "names": ["api-watched"]})

    # Then 202 with its id, and once it ended its summary: healthy, no Cognigy call
    assert started.status_code == 202, started.text
    body = started.json()
    assert body["watchId"].startswith("api-")
    assert body["at"] == "2026-12-01T09:00:00Z"
    _ended(h, body["executionArn"])
    view = api.get(f"/watches/{body['watchId']}")
    assert view.status_code == 200, view.text
    described = view.json()
    assert (described["watchId"], described["status"]) == (body["watchId"], "SUCCEEDED")
    summary = described["summary"]
    assert (summary["watched"], summary["healthy"], summary["cognigyCalls"]) == (1, 1, 0)
    assert [r["name"] for r in summary["results"]] == ["api-watched"]
    assert summary["at"] == "2026-12-01T09:00:00Z"
    assert api.get(f"/watches/{body['executionArn'].replace(':', '%3A')}").json()["status"] == "SUCCEEDED"
    assert len(h.sim.requests) == before

    # And GET /health has every endpoint, the one watched with its watch time
    health = api.get("/health")
    assert health.status_code == 200, health.text
    items = {item["name"]: item for item in health.json()["items"]}
    assert set(items) == {"api-watched", "api-other"}
    assert health.json()["nextCursor"] is None
    watched = items["api-watched"]
    assert (watched["state"], watched["consecutiveFailures"], watched["failedOver"]) == ("healthy", 0, False)
    assert watched["currentUrl"] == target.url("/hooks/api-watched")
    assert watched["lastWatchAt"] == "2026-12-01T09:00:00Z"
    assert items["api-other"]["lastWatchAt"] is None

    # And a watch without a body watches every endpoint, now; the target down is seen failing
    target.down()
    now = api.post("/watches")
    assert now.status_code == 202, now.text
    assert now.json()["at"] is None
    _ended(h, now.json()["executionArn"])
    summary = api.get(f"/watches/{now.json()['watchId']}").json()["summary"]
    assert summary["watched"] == 2
    after = {item["name"]: item for item in api.get("/health").json()["items"]}
    assert after["api-other"]["consecutiveFailures"] == 1
    assert after["api-other"]["lastProbeReason"] == "connection_refused"

    # And no answer held the password or the API key, in any form
    _no_secret_in(api.bodies, PASSWORD, h.world.api_key)


def test_health_comes_a_page_at_a_time(h: Harness, api: Api) -> None:
    names = [f"health-{i:02d}" for i in range(5)]
    _seed(h, names)

    pages, cursor = [], None
    while True:
        answer = api.get("/health?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert answer.status_code == 200, answer.text
        pages.append([item["name"] for item in answer.json()["items"]])
        cursor = answer.json()["nextCursor"]
        if cursor is None:
            break

    assert pages == [names[0:2], names[2:4], names[4:]]
    records_cursor = api.get("/endpoints?limit=1").json()["nextCursor"]  # the same listing: accepted
    assert api.get(f"/health?cursor={records_cursor}").status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        ([1], "body"),
        ({"at": "yesterday"}, "at"),
        ({"at": "2026-12-01T09:00:00"}, "at"),  # no offset
        ({"at": 1764579600}, "at"),  # a number is not a time here
        ({"at": "1999-12-31T23:59:59Z"}, "at"),
        ({"at": "9999-12-31T23:59:59Z"}, "at"),
        ({"names": []}, "names"),
        ({"names": "api-known"}, "names"),
        ({"names": ["api-known", "x"]}, "names.1"),
        ({"names": ["api-known", "no-such-endpoint"]}, "names"),
        ({"names": ["api-known"], "extra": 1}, "extra"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_no_watch_starts(
    h: Harness, api: Api, body: Any, field: str
) -> None:
    _seed(h, ["api-known"])
    before = _watches(h)

    answer = api.post("/watches", raw=body) if isinstance(body, bytes) else api.post("/watches", body)

    assert answer.status_code == 422, answer.text
    assert answer.json()["message"] == "invalid request"
    assert field in [e["field"] for e in answer.json()["errors"]], answer.text
    assert _watches(h) == before


@pytest.mark.parametrize(
    ("path", "status", "field"),
    [
        ("/health?limit=0", 422, "limit"),
        ("/health?limit=101", 422, "limit"),
        ("/health?cursor=not-a-cursor", 422, "cursor"),
        ("/watches/not%20an%20id", 422, "watchId"),
        ("/watches/no-such-watch", 404, "watchId"),
    ],
)
def test_bad_reads_are_refused_naming_the_field(api: Api, path: str, status: int, field: str) -> None:
    answer = api.get(path)

    assert answer.status_code == status, answer.text
    assert field in [e["field"] for e in answer.json()["errors"]]


def test_a_reconcile_execution_is_not_a_watch(h: Harness, api: Api, target: SwitchableTarget) -> None:
    applied = h.apply([_spec("api-reconciled", target)], cognigy=BLOCK)
    name = applied.arn.rsplit(":", 1)[-1]

    for which in (name, applied.arn.replace(":", "%3A")):
        answer = api.get(f"/watches/{which}")
        assert answer.status_code == 404, answer.text
        assert answer.json()["errors"] == [{"field": "watchId", "message": "not found"}]
