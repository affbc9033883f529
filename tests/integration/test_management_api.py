"""The management API (functions/api) through the local stack and the local gateway, over real
sockets: every route, pagination, bad input refused naming the field with nothing stored, no secret in
any response, Swagger UI served with no internet, and the plan telling what the apply then does.

One local stack per module (template.yaml, the real ASL on moto, waits instant) with the endpoints
dialect's simulator beside it; each test starts from emptied tables. Requests to the IAM routes are
signed with botocore's SigV4 (service execute-api) using the local stack's credentials."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from cognigy_webhooks.models.records import AuditEvent, EndpointRecord
from cognigy_webhooks.secrets import secret_forms
from cogwh.demo import DEMO_PROJECT_ID, LocalWorld, local_world
from cogwh.gateway import serve_gateway
from cogwh.localstack import LocalStack
from cogwh.simulator import SimulatorConfig
from tests.integration.reconcile.harness import BURST, RATE_PER_MINUTE, Harness, clean_harness, serve_stack

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "api-basic-auth-password-never-shown-1234"
OTHER_PASSWORD = "another-basic-auth-password-never-shown"
BLOCK = {"projectId": DEMO_PROJECT_ID}
#: The credentials the local stack's boto3 clients use (cogwh/localstack/stack.py FAKE_CREDENTIALS).
CREDENTIALS = Credentials("testing", "testing")


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


class Api:
    """The management API at ``<gateway>/v1``, every call signed, every answer kept (to hunt secrets)."""

    def __init__(self, base_url: str, region: str) -> None:
        self.base = base_url + "/v1"
        self.region = region
        self.client = httpx.Client(timeout=60)
        self.bodies: list[str] = []

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None) -> httpx.Response:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        headers = {"Content-Type": "application/json"} if data else {}
        request = AWSRequest(method=method, url=self.base + path, data=data, headers=headers)
        SigV4Auth(CREDENTIALS, "execute-api", self.region).add_auth(request)
        answer = self.client.request(method, self.base + path, content=data, headers=dict(request.headers))
        self.bodies.append(answer.text)
        return answer

    def get(self, path: str) -> httpx.Response:
        return self.call("GET", path)

    def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.call("POST", path, body, **kw)

    def delete(self, path: str) -> httpx.Response:
        return self.call("DELETE", path)


@pytest.fixture
def api(base_url: str, stack: LocalStack) -> Iterator[Api]:
    client = Api(base_url, stack.region)
    yield client
    client.client.close()


def _endpoint(h: Harness, name: str, password: str = PASSWORD, **fields: Any) -> dict[str, Any]:
    spec = h.endpoint(name, basicAuth={"username": "cognigy", "password": password}, **fields)
    spec.pop("timeoutMs", None)
    return spec


def _desired(*endpoints: dict[str, Any]) -> dict[str, Any]:
    return {"cognigy": BLOCK, "endpoints": list(endpoints)}


def _finish(h: Harness, arn: str) -> None:
    assert h.stack.wait_execution(arn)["status"] == "SUCCEEDED"
    h.in_flight.wait_idle()


def _no_secret_in(bodies: list[str], *secrets: str) -> None:
    for body in bodies:
        for secret in secrets:
            for form in secret_forms(secret):
                assert form not in body, f"a form of a secret in a response: {body[:200]}"


def _stored_nothing(h: Harness) -> tuple[int, int, int]:
    """Executions, desired-set versions and secrets the stack holds (what a refused request must not add)."""
    sfn = h.stack.client("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=h.stack.outputs["ReconcileStateMachineArn"])[
        "executions"
    ]
    versions = h.stack.client("s3").list_object_versions(Bucket=h.stack.outputs["ConfigBucketName"])
    secrets = h.stack.client("secretsmanager").list_secrets()["SecretList"]
    return len(executions), len(versions.get("Versions", [])), len(secrets)


# --- the whole lifecycle through the API ---------------------------------------------------------------


def test_plan_apply_read_probe_and_delete_through_the_api(h: Harness, api: Api) -> None:
    # Given a desired set with a Basic auth password in clear
    desired = _desired(_endpoint(h, "api-orders"))

    # When it is planned: a create, its password "to Secrets Manager", nothing stored
    before = _stored_nothing(h)
    planned = api.post("/plans", {"desiredSet": desired})
    assert planned.status_code == 200, planned.text
    [entry] = planned.json()["entries"]
    assert (entry["name"], entry["action"], entry["secrets"]) == (
        "api-orders",
        "create",
        ["basicAuth.password"],
    )
    assert planned.json()["counts"]["create"] == 1
    assert _stored_nothing(h) == before

    # When it is applied: 202 with the execution's id, then its summary
    started = api.post("/executions", {"desiredSet": desired, "prune": False})
    assert started.status_code == 202, started.text
    execution = started.json()
    assert execution["started"] is True
    assert execution["source"] == "api"
    _finish(h, execution["executionArn"])
    described = api.get(f"/executions/{execution['executionId']}").json()
    assert described["status"] == "SUCCEEDED"
    assert described["summary"]["created"] == ["api-orders"]
    assert described["prune"] is False

    # Then the record, its audit log and a probe now are there to read
    record = EndpointRecord.model_validate(api.get("/endpoints/api-orders").json())
    assert record.status == "registered"
    assert record.spec["basicAuth"]["passwordArn"].startswith("arn:aws:secretsmanager:")
    listed = api.get("/endpoints").json()
    assert [r["name"] for r in listed["items"]] == ["api-orders"]
    assert listed["nextCursor"] is None
    audit = api.get("/endpoints/api-orders/audit").json()
    assert [AuditEvent.model_validate(e).action for e in audit["items"]] == ["register"]
    probe = api.post("/endpoints/api-orders/probe")
    assert probe.status_code == 200, probe.text
    assert probe.json()["passed"] is True
    assert probe.json()["primary"]["tlsVersion"] == "TLSv1.3"
    assert api.get("/executions").json()["items"][0]["executionId"] == execution["executionId"]

    # And the plan tells what the apply would do: unchanged as it is, an update for a new password
    again = api.post("/plans", {"desiredSet": desired}).json()
    assert [(e["action"], e["secrets"]) for e in again["entries"]] == [("unchanged", ["basicAuth.password"])]
    changed = _desired(_endpoint(h, "api-orders", password=OTHER_PASSWORD))
    update = api.post("/plans", {"desiredSet": changed}).json()
    assert [(e["action"], e["changes"]) for e in update["entries"]] == [("update", ["secret values"])]
    moved = _desired(_endpoint(h, "api-orders", port="PORT_TLS12"))
    assert api.post("/plans", {"desiredSet": moved}).json()["entries"][0]["changes"] == ["url"]
    # ... and the apply agrees with each plan
    rerun = api.post("/executions", {"desiredSet": desired}).json()
    _finish(h, rerun["executionArn"])
    assert api.get(f"/executions/{rerun['executionId']}").json()["summary"]["unchanged"] == ["api-orders"]
    rerun = api.post("/executions", {"desiredSet": changed}).json()
    _finish(h, rerun["executionArn"])
    assert api.get(f"/executions/{rerun['executionId']}").json()["summary"]["updated"] == ["api-orders"]

    # When it is deleted: 202, one execution deleting that name alone
    gone = api.delete("/endpoints/api-orders")
    assert gone.status_code == 202, gone.text
    assert gone.json()["deletes"] == ["api-orders"]
    _finish(h, gone.json()["executionArn"])
    deleted = api.get(f"/executions/{gone.json()['executionId']}").json()
    assert deleted["summary"]["deleted"] == ["api-orders"]
    assert deleted["deletes"] == ["api-orders"]
    assert api.get("/endpoints/api-orders").status_code == 404
    newest = api.get("/endpoints/api-orders/audit").json()["items"][0]
    assert newest["action"] == "delete"

    # And no answer ever held a password, in any form
    _no_secret_in(api.bodies, PASSWORD, OTHER_PASSWORD)


def test_a_deletion_deletes_that_name_and_nothing_else(h: Harness, api: Api) -> None:
    applied = api.post(
        "/executions", {"desiredSet": _desired(_endpoint(h, "keep-me"), _endpoint(h, "drop-me"))}
    )
    _finish(h, applied.json()["executionArn"])

    gone = api.delete("/endpoints/drop-me").json()
    _finish(h, gone["executionArn"])
    again = api.delete("/endpoints/drop-me")

    assert [r["name"] for r in api.get("/endpoints").json()["items"]] == ["keep-me"]
    assert again.status_code == 404
    assert again.json()["errors"] == [{"field": "name", "message": "not found"}]


# --- pagination --------------------------------------------------------------------------------------


def _seed_records(h: Harness, names: list[str], events_for: str, events: int) -> None:
    for name in names:
        h.store.commit(
            name=name,
            record=EndpointRecord(name=name, status="registered", webhook_id="w" + name),
            audit=AuditEvent(name=name, action="register", outcome="created"),
            expected_version=None,
        )
    for index in range(events - 1):
        h.store.commit(
            name=events_for,
            record=None,
            audit=AuditEvent(name=events_for, action="probe", outcome="unchanged", detail=str(index)),
            expected_version=None,
        )


def _pages(api: Api, path: str, limit: int) -> list[list[dict[str, Any]]]:
    pages, cursor = [], None
    while True:
        query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        answer = api.get(path + query)
        assert answer.status_code == 200, answer.text
        pages.append(answer.json()["items"])
        cursor = answer.json()["nextCursor"]
        if cursor is None:
            return pages


def test_records_and_audit_events_come_a_page_at_a_time(h: Harness, api: Api) -> None:
    names = [f"page-{i:02d}" for i in range(5)]
    _seed_records(h, names, "page-00", events=5)

    records = _pages(api, "/endpoints", 2)
    audit = _pages(api, "/endpoints/page-00/audit", 2)

    assert [len(p) for p in records] == [2, 2, 1]  # the last page says it is the last
    assert [r["name"] for page in records for r in page] == names
    assert [len(p) for p in audit] == [2, 2, 1]
    stamps = [e["timestamp"] for page in audit for e in page]
    assert stamps == sorted(stamps, reverse=True)  # newest first across pages
    assert len({e["eventId"] for page in audit for e in page}) == 5
    exactly = _pages(api, "/endpoints", 5)
    assert [len(p) for p in exactly] == [5]  # a page that ends the listing has no cursor


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/endpoints?limit=0", "limit"),
        ("/endpoints?limit=101", "limit"),
        ("/endpoints?limit=many", "limit"),
        ("/endpoints?cursor=not-a-cursor", "cursor"),
        ("/endpoints?cursor=" + "A" * 5000, "cursor"),
        ("/endpoints/page-00/audit?limit=-1", "limit"),
        ("/executions?limit=1000", "limit"),
        ("/executions?cursor=eyJrIjoiZXhlY3V0aW9ucyIsInQiOiJ4In0", "cursor"),
        ("/executions/not%20an%20id", "executionId"),
        ("/endpoints/x", "name"),
    ],
)
def test_bad_paging_and_names_are_refused_naming_the_field(api: Api, path: str, field: str) -> None:
    answer = api.get(path)

    assert answer.status_code == 422, answer.text
    assert field in [e["field"] for e in answer.json()["errors"]]


def test_a_cursor_belongs_to_its_own_listing(h: Harness, api: Api) -> None:
    _seed_records(h, ["alpha", "bravo", "charlie"], "alpha", events=3)
    records_cursor = api.get("/endpoints?limit=1").json()["nextCursor"]
    audit_cursor = api.get("/endpoints/alpha/audit?limit=1").json()["nextCursor"]

    assert api.get(f"/endpoints/alpha/audit?cursor={records_cursor}").status_code == 422
    assert api.get(f"/endpoints?cursor={audit_cursor}").status_code == 422
    assert api.get(f"/endpoints/bravo/audit?cursor={audit_cursor}").status_code == 422
    assert api.get(f"/endpoints/alpha/audit?cursor={audit_cursor}").status_code == 200


# --- bad input: 4xx naming the field, nothing stored --------------------------------------------------

GOOD_URL = "https://localhost:1/hooks/x"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        ({}, "desiredSet"),
        ({"desiredSet": {"endpoints": "all"}}, "desiredSet.endpoints"),
        (
            {"desiredSet": {"endpoints": [{"name": "bad-url", "url": "http://x.example.com"}]}},
            "desiredSet.endpoints.0.url",
        ),
        (
            {
                "desiredSet": {
                    "endpoints": [{"name": "short", "url": GOOD_URL, "basicAuth": {"username": "u"}}]
                }
            },
            "desiredSet.endpoints.0.basicAuth",
        ),
        (
            {"desiredSet": {"endpoints": [{"name": "typo", "url": GOOD_URL, "timeoutMS": 5000}]}},
            "desiredSet.endpoints.0.timeoutMS",
        ),
        ({"desiredSet": {"endpoints": []}, "prune": "maybe"}, "prune"),
        ({"desiredSet": {"endpoints": []}, "extra": 1}, "extra"),
        (
            {
                "desiredSet": {
                    "endpoints": [
                        {
                            "name": "twice",
                            "url": GOOD_URL,
                            "basicAuth": {"username": "u", "password": PASSWORD},
                        },
                        {"name": "twice", "url": GOOD_URL},
                    ]
                }
            },
            "desiredSet.endpoints.1.name",
        ),
    ],
)
@pytest.mark.parametrize("route", ["/plans", "/executions"])
def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(
    h: Harness, api: Api, route: str, body: Any, field: str
) -> None:
    before = _stored_nothing(h)

    answer = api.post(route, raw=body) if isinstance(body, bytes) else api.post(route, body)

    assert answer.status_code == 422, answer.text
    assert answer.json()["message"] == "invalid request"
    assert field in [e["field"] for e in answer.json()["errors"]], answer.text
    assert _stored_nothing(h) == before  # no execution, no desired-set version, no secret
    _no_secret_in(api.bodies, PASSWORD)


def test_an_endpoint_the_dialect_cannot_take_is_refused_in_the_plan_naming_the_field(
    h: Harness, api: Api
) -> None:
    signed = {**h.endpoint("signed"), "signatureHeader": "X-Sig", "signatureSecret": "s" * 40}

    plan = api.post("/plans", {"desiredSet": _desired(signed, _endpoint(h, "fine"))}).json()

    refused, fine = plan["entries"]
    assert (refused["name"], refused["action"]) == ("signed", "refused")
    assert {"signatureHeader", "signatureSecret"} <= {e["field"] for e in refused["errors"]}
    assert all(e["endpoint"] == "signed" for e in refused["errors"])
    assert fine["action"] == "create"
    _no_secret_in(api.bodies, "s" * 40, PASSWORD)


def test_what_does_not_exist_is_404_and_an_unknown_route_403(api: Api, stack: LocalStack) -> None:
    other = stack.outputs["ReconcileStateMachineArn"].replace(":stateMachine:", ":execution:") + "x:y"
    for method, path in [
        ("GET", "/endpoints/no-such-endpoint"),
        ("DELETE", "/endpoints/no-such-endpoint"),
        ("POST", "/endpoints/no-such-endpoint/probe"),
        ("GET", "/executions/no-such-execution"),
        ("DELETE", "/executions/no-such-execution"),
        ("GET", "/executions/" + other.replace(":", "%3A")),
    ]:
        answer = api.call(method, path)
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["errors"][0]["message"] == "not found"
    assert api.call("PUT", "/endpoints").status_code == 403  # API Gateway: no such route


# --- executions: stop one ------------------------------------------------------------------------------


def test_a_running_execution_is_stopped_and_an_ended_one_left(h: Harness, api: Api) -> None:
    # Given an execution held in its probe step
    release = threading.Event()
    dispatch = h.stack.dispatch

    def held(function: str, *args: Any, **kwargs: Any) -> Any:
        if "ProbeFunction" in function:
            release.wait(60)
        return dispatch(function, *args, **kwargs)

    h.stack.dispatch = held  # type: ignore[method-assign]
    try:
        started = api.post("/executions", {"desiredSet": _desired(_endpoint(h, "held"))}).json()
        # When it is stopped
        stopped = api.delete(f"/executions/{started['executionId']}")
        # Then it is ABORTED, with the cause said
        assert stopped.status_code == 200, stopped.text
        assert stopped.json() == {"executionId": started["executionId"], "stopped": True, "status": "ABORTED"}
    finally:
        release.set()
        h.stack.dispatch = dispatch  # type: ignore[method-assign]
    assert h.stack.wait_execution(started["executionArn"])["status"] == "ABORTED"  # moto ends it after
    h.in_flight.wait_idle()
    view = api.get(f"/executions/{started['executionId']}").json()
    assert (view["status"], view["summary"]) == ("ABORTED", None)
    # (its cause: Step Functions keeps it; moto's DescribeExecution leaves it out)
    again = api.delete(f"/executions/{started['executionArn']}")  # by ARN too
    assert again.json()["stopped"] is False


# --- the open routes: OpenAPI and Swagger UI with no internet -------------------------------------------


def test_openapi_lists_every_route_and_docs_load_everything_from_the_stack(base_url: str) -> None:
    with httpx.Client(timeout=30) as client:  # unsigned: these two hold no data
        document = client.get(base_url + "/v1/openapi.json")
        assert document.status_code == 200
        paths = document.json()["paths"]
        assert {
            "/endpoints",
            "/endpoints/{name}",
            "/endpoints/{name}/audit",
            "/endpoints/{name}/probe",
            "/plans",
            "/executions",
            "/executions/{id}",
            "/watches",
            "/watches/{id}",
            "/health",
        } <= set(paths)
        assert set(paths["/endpoints/{name}"]) == {"get", "delete"}
        assert (set(paths["/watches"]), set(paths["/watches/{id}"]), set(paths["/health"])) == (
            {"post"},
            {"get"},
            {"get"},
        )
        watch_body = paths["/watches"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert "WatchRequest" in str(watch_body)  # the body's fields are documented (at, names)
        assert document.json()["components"]["securitySchemes"]["sigv4"]["in"] == "header"

        for docs in (base_url + "/v1/docs", base_url + "/docs"):
            page = client.get(docs)
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            assets = re.findall(r"(?:src|href)\s*=\s*['\"]([^'\"]+)['\"]", page.text)
            assert len(assets) == 2  # the script and the stylesheet
            for asset in assets:
                url = urljoin(docs, asset)
                assert urlsplit(url).netloc == urlsplit(base_url).netloc, f"{asset} is off-host"
                fetched = client.get(url)
                assert fetched.status_code == 200, url
                assert len(fetched.content) > 10_000
                kind = "javascript" if asset.endswith(".js") else "css"
                assert kind in fetched.headers["content-type"]
            assert not re.search(r"https?://", " ".join(assets))
        assert client.get(base_url + "/v1/docs/other.js").status_code == 404


# --- the sample event --------------------------------------------------------------------------------


def test_the_sample_event_lists_records(h: Harness) -> None:
    event = json.loads((ROOT / "events" / "api_list_endpoints.json").read_text(encoding="utf-8"))
    _seed_records(h, ["sample-a", "sample-b", "sample-c"], "sample-a", events=1)

    answer = h.stack.invoke("ApiFunction", event)

    assert answer["statusCode"] == 200
    body = json.loads(answer["body"])
    assert [r["name"] for r in body["items"]] == ["sample-a", "sample-b"]  # limit=2
    assert body["nextCursor"]
