"""The simulator's Endpoint service (cogwh.sim_endpoint_service) over real TLS: input posted to
/<URLToken>, the trivial flow's one output delivered to a real https webhook of the test's own."""

from __future__ import annotations

import base64
import dataclasses
import json
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cogwh.certs import LocalCA
from cogwh.sim_endpoints import ENDPOINTS_PATH, DeliveryLog, EndpointStore, store_of
from cogwh.simulator import SimulatorConfig
from cogwh.targets import closed_port
from tests.support.simulator import TEST_CONFIG, RunningSimulator
from tests.support.webhook_receiver import WebhookReceiver, running_receiver

PROJECT = "65a1b2c3d4e5f60718293a4b"
PASSWORD = "sim-basic-pw-" + uuid.uuid4().hex
RFC7807_KEYS = {"type", "title", "detail", "instance", "status", "traceId", "code"}
# what an HTTP client sends by itself; anything else would be a header Cognigy cannot send
TRANSPORT_HEADERS = {"host", "accept", "accept-encoding", "connection", "user-agent", "content-length"}


@pytest.fixture(scope="module")
def receiver(local_ca: LocalCA) -> Iterator[WebhookReceiver]:
    with running_receiver(local_ca) as rx:
        yield rx


@pytest.fixture
def sim(simulator: RunningSimulator, receiver: WebhookReceiver) -> RunningSimulator:
    simulator.configure(project_ids=(PROJECT,), delivery_ca_bundle=str(simulator.ca_file))
    receiver.reset()
    return simulator


@pytest.fixture
def store(sim: RunningSimulator) -> EndpointStore:
    return store_of(sim.state)


@pytest.fixture
def api(sim: RunningSimulator) -> Iterator[httpx.Client]:
    ctx = ssl.create_default_context(cafile=str(sim.ca_file))
    headers = {"X-API-Key": sim.api_key, "Accept": "application/json"}
    with httpx.Client(base_url=sim.base_url, verify=ctx, headers=headers) as client:
        yield client


@pytest.fixture
def service(sim: RunningSimulator) -> Iterator[httpx.Client]:
    """The Endpoint service, as a bot's user calls it: no API key."""
    ctx = ssl.create_default_context(cafile=str(sim.ca_file))
    with httpx.Client(base_url=sim.base_url, verify=ctx) as client:
        yield client


def create(api: httpx.Client, url: str, *, user: str | None = "cognigy", **extra: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {"webhookUrl": url}
    if user is not None:
        settings.update(basicAuthUser=user, basicAuthPassword=PASSWORD)
    body = {"projectId": PROJECT, "name": "orders", "channel": "webhook", "settings": settings, **extra}
    created = api.post(ENDPOINTS_PATH, json=body)
    assert created.status_code == 201, created.text
    return dict(created.json())


def user_input(**fields: Any) -> dict[str, Any]:
    return {"userId": "user-1", "sessionId": "session-" + uuid.uuid4().hex, **fields}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    problem = response.json()
    assert problem.keys() >= RFC7807_KEYS
    assert problem["status"] == status
    return dict(problem)


# --- the round: input, answer, delivery ----------------------------------------------------------


def test_an_input_is_delivered_once_to_the_webhook_with_basic_auth(
    api: httpx.Client, service: httpx.Client, store: EndpointStore, receiver: WebhookReceiver
) -> None:
    # Given a webhook endpoint with Basic auth, pointing at our https receiver
    endpoint = create(api, receiver.url("/hook"))
    sent = user_input(text="where is my order?", data={"orderId": 42})
    # When a user's input is posted to its URLToken (no API key)
    answered = service.post("/" + endpoint["URLToken"], json=sent)
    # Then it is answered 200, naming the output's traceId
    assert answered.status_code == 200, answered.text
    answer = answered.json()
    assert answer["userId"] == sent["userId"]
    assert answer["sessionId"] == sent["sessionId"]
    (trace_id,) = answer["traceIds"]
    # and exactly one output is POSTed to the webhook, with the documented body and Basic auth
    (attempt,) = store.wait_deliveries(1)
    (got,) = receiver.received
    assert got.path == "/hook"
    assert json.loads(got.body) == {
        "userId": sent["userId"],
        "sessionId": sent["sessionId"],
        "AIOutput": {
            "text": "where is my order?",
            "data": {"orderId": 42},
            "traceId": trace_id,
            "disableSensitiveLogging": False,
            "source": "bot",
        },
    }
    assert got.header("content-type") == "application/json"
    expected = base64.b64encode(f"cognigy:{PASSWORD}".encode()).decode()
    assert got.header("authorization") == f"Basic {expected}"
    assert got.header_names <= TRANSPORT_HEADERS | {"content-type", "authorization"}
    # and the attempt is recorded with the webhook's status, never the credential
    assert attempt == {
        "seq": 1,
        "endpointId": endpoint["_id"],
        "url": receiver.url("/hook"),
        "traceId": trace_id,
        "userId": sent["userId"],
        "sessionId": sent["sessionId"],
        "basicAuth": True,
        "status": 202,
        "error": None,
    }


def test_the_input_is_answered_before_the_output_is_delivered(
    api: httpx.Client, service: httpx.Client, store: EndpointStore, receiver: WebhookReceiver
) -> None:
    endpoint = create(api, receiver.url("/slow"))
    receiver.hold()  # the webhook takes the delivery but does not answer it yet
    answered = service.post("/" + endpoint["URLToken"], json=user_input(text="hi"))
    assert answered.status_code == 200
    assert store.deliveries() == []  # the delivery has not ended: the input was answered first
    receiver.release()
    (attempt,) = store.wait_deliveries(1)
    assert attempt["status"] == 202


def test_data_only_input_delivers_null_text_and_text_only_delivers_empty_data(
    api: httpx.Client, service: httpx.Client, store: EndpointStore, receiver: WebhookReceiver
) -> None:
    endpoint = create(api, receiver.url())
    assert service.post("/" + endpoint["URLToken"], json=user_input(data={"a": [1, 2]})).status_code == 200
    store.wait_deliveries(1)
    assert service.post("/" + endpoint["URLToken"], json=user_input(text="only text")).status_code == 200
    store.wait_deliveries(2)
    first, second = (json.loads(r.body)["AIOutput"] for r in receiver.received)
    assert (first["text"], first["data"]) == (None, {"a": [1, 2]})
    assert (second["text"], second["data"]) == ("only text", {})
    assert first["traceId"] != second["traceId"]  # a fresh id per output


def test_no_authorization_header_without_a_basic_auth_user(
    api: httpx.Client, service: httpx.Client, store: EndpointStore, receiver: WebhookReceiver
) -> None:
    endpoint = create(api, receiver.url(), user=None)
    assert service.post("/" + endpoint["URLToken"], json=user_input(text="hi")).status_code == 200
    (attempt,) = store.wait_deliveries(1)
    (got,) = receiver.received
    assert got.header("authorization") is None
    assert attempt["basicAuth"] is False


def test_user_info_in_the_webhook_url_is_never_sent_nor_recorded(
    api: httpx.Client, service: httpx.Client, store: EndpointStore, receiver: WebhookReceiver
) -> None:
    url = receiver.url("/ui").replace("https://", "https://someone:url-secret@")
    endpoint = create(api, url, user=None)
    assert service.post("/" + endpoint["URLToken"], json=user_input(text="hi")).status_code == 200
    (attempt,) = store.wait_deliveries(1)
    assert attempt["url"] == receiver.url("/ui")
    assert receiver.received[0].header("authorization") is None


# --- what the webhook answers ----------------------------------------------------------------------


def test_a_redirect_is_recorded_never_followed(
    api: httpx.Client, service: httpx.Client, store: EndpointStore, receiver: WebhookReceiver
) -> None:
    receiver.reset(status=307, headers={"Location": receiver.url("/elsewhere")})
    endpoint = create(api, receiver.url("/moved"))
    assert service.post("/" + endpoint["URLToken"], json=user_input(text="hi")).status_code == 200
    (attempt,) = store.wait_deliveries(1)
    assert attempt["status"] == 307
    assert [r.path for r in receiver.received] == ["/moved"]


def test_a_webhook_refusal_is_recorded_with_its_status(
    api: httpx.Client, service: httpx.Client, store: EndpointStore, receiver: WebhookReceiver
) -> None:
    receiver.reset(status=401)
    endpoint = create(api, receiver.url())
    assert service.post("/" + endpoint["URLToken"], json=user_input(text="hi")).status_code == 200
    assert store.wait_deliveries(1)[0]["status"] == 401


def test_an_unreachable_webhook_is_recorded_as_an_error(
    api: httpx.Client, service: httpx.Client, store: EndpointStore
) -> None:
    endpoint = create(api, f"https://localhost:{closed_port()}/hook")
    assert service.post("/" + endpoint["URLToken"], json=user_input(text="hi")).status_code == 200
    (attempt,) = store.wait_deliveries(1)
    assert attempt["status"] is None
    assert attempt["error"].startswith("ConnectError")


def test_deliveries_trust_only_the_configured_ca(
    sim: RunningSimulator,
    api: httpx.Client,
    service: httpx.Client,
    store: EndpointStore,
    receiver: WebhookReceiver,
    tmp_path: Path,
) -> None:
    other = LocalCA(tmp_path / "other")
    try:
        sim.configure(project_ids=(PROJECT,), delivery_ca_bundle=str(other.ca_file))
        endpoint = create(api, receiver.url())
        assert service.post("/" + endpoint["URLToken"], json=user_input(text="hi")).status_code == 200
        (attempt,) = store.wait_deliveries(1)
    finally:
        other.close()
    assert attempt["status"] is None
    assert "CERTIFICATE_VERIFY_FAILED" in attempt["error"]
    assert receiver.received == []


def test_an_endpoint_without_a_webhook_url_records_why_nothing_was_sent(
    api: httpx.Client, service: httpx.Client, store: EndpointStore
) -> None:
    created = api.post(ENDPOINTS_PATH, json={"projectId": PROJECT, "name": "bare", "channel": "webhook"})
    token = created.json()["URLToken"]
    assert service.post("/" + token, json=user_input(text="hi")).status_code == 200
    (attempt,) = store.wait_deliveries(1)
    assert (attempt["status"], attempt["error"]) == (None, "settings.webhookUrl is not set")


# --- refusals ----------------------------------------------------------------------------------------


def test_an_unknown_or_malformed_token_is_404(service: httpx.Client, store: EndpointStore) -> None:
    for token in ("A" * 64, "short", "a" * 65, "x" * 63 + "-"):
        problem = assert_problem(service.post("/" + token, json=user_input(text="hi")), 404)
        assert problem["code"] == 1002
        assert token not in problem["detail"]
    assert store.deliveries() == []


def test_an_inactive_endpoint_refuses_input(
    api: httpx.Client, service: httpx.Client, store: EndpointStore, receiver: WebhookReceiver
) -> None:
    endpoint = create(api, receiver.url(), active=False)
    problem = assert_problem(service.post("/" + endpoint["URLToken"], json=user_input(text="hi")), 403)
    assert "not active" in problem["detail"]
    # switched on, the same token works
    assert api.patch(f"{ENDPOINTS_PATH}/{endpoint['_id']}", json={"active": True}).status_code == 200
    assert service.post("/" + endpoint["URLToken"], json=user_input(text="hi")).status_code == 200
    assert len(store.wait_deliveries(1)) == 1


def test_another_channel_is_not_played(api: httpx.Client, service: httpx.Client) -> None:
    created = api.post(ENDPOINTS_PATH, json={"projectId": PROJECT, "name": "rest", "channel": "rest"})
    problem = assert_problem(service.post("/" + created.json()["URLToken"], json=user_input(text="hi")), 501)
    assert "webhook endpoints only" in problem["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sessionId": "s", "text": "hi"}, "userId"),
        ({"userId": "", "sessionId": "s", "text": "hi"}, "userId"),
        ({"userId": "u" * 257, "sessionId": "s", "text": "hi"}, "userId"),
        ({"userId": 7, "sessionId": "s", "text": "hi"}, "userId"),
        ({"userId": "u", "text": "hi"}, "sessionId"),
        ({"userId": "u", "sessionId": "s" * 257, "text": "hi"}, "sessionId"),
        ({"userId": "u", "sessionId": "s", "text": "t" * 10_001}, "text"),
        ({"userId": "u", "sessionId": "s", "text": 5}, "text"),
        ({"userId": "u", "sessionId": "s", "data": [1]}, "data"),
        ({"userId": "u", "sessionId": "s", "data": "x"}, "data"),
        ({"userId": "u", "sessionId": "s"}, "text"),
        ({"userId": "u", "sessionId": "s", "text": ""}, "text"),
        ({"userId": "u", "sessionId": "s", "text": None, "data": None}, "text"),
        ({"userId": "\ud83d", "sessionId": "s", "text": "hi"}, "userId"),
        ({"userId": "u", "sessionId": "s", "data": {"k": "\udc00"}}, "data"),
        (["not", "an", "object"], "body"),
    ],
)
def test_invalid_input_is_400_naming_the_field_and_delivers_nothing(
    api: httpx.Client,
    service: httpx.Client,
    store: EndpointStore,
    receiver: WebhookReceiver,
    body: Any,
    field: str,
) -> None:
    endpoint = create(api, receiver.url())
    content = json.dumps(body).encode()  # ensure_ascii: lone surrogates travel as \\u escapes
    refused = service.post(
        "/" + endpoint["URLToken"], content=content, headers={"Content-Type": "application/json"}
    )
    problem = assert_problem(refused, 400)
    assert field in {d["field"] for d in problem["details"]}
    # nothing was delivered: the next valid input is the first delivery
    assert service.post("/" + endpoint["URLToken"], json=user_input(text="ok")).status_code == 200
    (attempt,) = store.wait_deliveries(1)
    assert len(receiver.received) == 1
    assert attempt["seq"] == 1


def test_the_longest_valid_fields_are_accepted(
    api: httpx.Client, service: httpx.Client, store: EndpointStore, receiver: WebhookReceiver
) -> None:
    endpoint = create(api, receiver.url())
    body = {"userId": "u" * 256, "sessionId": "s" * 256, "text": "t" * 10_000, "extra": "ignored"}
    assert service.post("/" + endpoint["URLToken"], json=body).status_code == 200
    store.wait_deliveries(1)
    assert json.loads(receiver.received[0].body)["AIOutput"]["text"] == "t" * 10_000


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"userId": "u", "sessionId": "s", "text": "hi"}', "text/plain", 415),
        (b"{not json", "application/json", 400),
        (b'{"userId": "u", "sessionId": "s", "data": {"x": NaN}}', "application/json", 400),
        (b"", "application/json", 400),
        (b"[" * 100_000, "application/json", 400),
        (b" " * 1_000_001, "application/json", 413),
    ],
)
def test_a_body_that_is_not_a_json_input_is_refused(
    api: httpx.Client,
    service: httpx.Client,
    receiver: WebhookReceiver,
    content: bytes,
    content_type: str,
    status: int,
) -> None:
    endpoint = create(api, receiver.url())
    refused = service.post(
        "/" + endpoint["URLToken"], content=content, headers={"Content-Type": content_type}
    )
    assert_problem(refused, status)


# --- secrets and the admin views ------------------------------------------------------------------


def test_the_password_is_never_in_an_admin_view_a_record_or_a_repr(
    api: httpx.Client, service: httpx.Client, store: EndpointStore, receiver: WebhookReceiver
) -> None:
    endpoint = create(api, receiver.url())
    assert service.post("/" + endpoint["URLToken"], json=user_input(text="hi")).status_code == 200
    store.wait_deliveries(1)
    authorization = receiver.received[0].header("authorization")
    assert authorization is not None
    encoded = authorization.removeprefix("Basic ")
    for path in ("/_admin/requests", "/_admin/deliveries", "/_admin/config", "/_admin/faults"):
        text = service.get(path).text
        for secret in (PASSWORD, encoded, authorization):
            assert secret not in text, path
    assert service.get("/_admin/deliveries").json() == {"deliveries": store.deliveries()}
    target = store.delivery_target(endpoint["URLToken"])
    assert target is not None
    for text in (repr(store), repr(target), repr(store.deliveries()), repr(store.endpoints)):
        assert PASSWORD not in text
        assert encoded not in text


def test_reset_clears_the_deliveries(
    sim: RunningSimulator,
    api: httpx.Client,
    service: httpx.Client,
    store: EndpointStore,
    receiver: WebhookReceiver,
) -> None:
    endpoint = create(api, receiver.url())
    assert service.post("/" + endpoint["URLToken"], json=user_input(text="hi")).status_code == 200
    assert len(store.wait_deliveries(1)) == 1
    assert service.post("/_admin/reset").status_code == 204
    assert store.deliveries() == []
    assert service.get("/_admin/deliveries").json() == {"deliveries": []}


def test_an_attempt_begun_before_a_reset_is_dropped_when_it_ends() -> None:
    log = DeliveryLog()
    begun = log.generation  # what the service notes when it takes the input
    log.reset()
    log.add(begun, {"endpointId": "old"})
    log.add(log.generation, {"endpointId": "new"})
    assert [(d["seq"], d["endpointId"]) for d in log.snapshot()] == [(1, "new")]


def test_waiting_for_more_deliveries_than_come_raises_timeout(store: EndpointStore) -> None:
    with pytest.raises(TimeoutError, match="0 delivery attempt"):
        store.wait_deliveries(1, timeout=0.01)


def test_the_delivery_ca_bundle_must_be_a_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="delivery_ca_bundle"):
        dataclasses.replace(TEST_CONFIG, delivery_ca_bundle=str(tmp_path / "missing.pem"))
    assert SimulatorConfig(api_keys=("k",)).delivery_ca_bundle is None


def test_cogwh_simulator_refuses_an_unreadable_delivery_ca_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cogwh.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["simulator", "--api-key", "k", "--delivery-ca-bundle", str(tmp_path / "missing.pem")])
    assert exited.value.code == 2
    assert "--delivery-ca-bundle" in capsys.readouterr().err
