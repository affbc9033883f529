"""``cogwh say`` against the local stack (the real template on moto, served over HTTP as `cogwh up`
serves it, found through its state file) and the simulator's Endpoint service over real TLS: the record
and the URLToken's secret are put in place the way the endpoints dialect's register task leaves them."""

from __future__ import annotations

import json
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cognigy_webhooks.dal.schema import to_item
from cognigy_webhooks.dal.secretsmanager import put_secret, secret_name
from cognigy_webhooks.models import WebhookEndpoint
from cognigy_webhooks.models.records import EndpointRecord
from cogwh import ops
from cogwh.certs import LocalCA
from cogwh.cli import main
from cogwh.localstack import LocalStack
from cogwh.sim_endpoints import ENDPOINTS_PATH, EndpointStore, store_of
from cogwh.targets import closed_port
from tests.support.simulator import RunningSimulator
from tests.support.webhook_receiver import WebhookReceiver, running_receiver

ROOT = Path(__file__).resolve().parents[2]
STACK = "saycli"
PROJECT = "65a1b2c3d4e5f60718293a4b"


@pytest.fixture(scope="module")
def stack(simulator_server: RunningSimulator) -> Iterator[LocalStack]:
    parameters = {
        "CognigyApiKeySecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:say-cognigy-api-key",
        "CognigyEndpointUrl": simulator_server.base_url,
    }
    with LocalStack(ROOT, stack_name=STACK, parameters=parameters, server=True) as running:
        yield running


@pytest.fixture(scope="module")
def receiver(local_ca: LocalCA) -> Iterator[WebhookReceiver]:
    with running_receiver(local_ca) as rx:
        yield rx


@pytest.fixture
def state(stack: LocalStack, local_ca: LocalCA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The state file `cogwh up` writes, so `--local` finds this stack (and the local CA)."""
    path = tmp_path / "local.json"
    ops.write_state(
        path,
        stack_name=stack.stack_name,
        endpoint_url=stack.endpoint_url,
        region=stack.region,
        outputs=stack.outputs,
        extra={"caFile": str(local_ca.ca_file)},
    )
    monkeypatch.setenv(ops.STATE_FILE_ENV, str(path))
    return path


@pytest.fixture
def sim(simulator: RunningSimulator, receiver: WebhookReceiver, state: Path) -> RunningSimulator:
    simulator.configure(project_ids=(PROJECT,), delivery_ca_bundle=str(simulator.ca_file))
    receiver.reset()
    return simulator


@pytest.fixture
def store(sim: RunningSimulator) -> EndpointStore:
    return store_of(sim.state)


def cognigy_endpoint(sim: RunningSimulator, receiver: WebhookReceiver, **extra: Any) -> dict[str, Any]:
    ctx = ssl.create_default_context(cafile=str(sim.ca_file))
    headers = {"X-API-Key": sim.api_key, "Accept": "application/json"}
    body = {
        "projectId": PROJECT,
        "name": "say-cli",
        "channel": "webhook",
        "settings": {"webhookUrl": receiver.url("/hook")},
        **extra,
    }
    with httpx.Client(base_url=sim.base_url, verify=ctx, headers=headers) as api:
        created = api.post(ENDPOINTS_PATH, json=body)
    assert created.status_code == 201, created.text
    return dict(created.json())


def record(stack: LocalStack, *, token: str | None, secret_arn: str | None = None) -> str:
    """An endpoint record as the endpoints dialect's register task writes it (URLToken in Secrets
    Manager, its ARN in the record); the record's name."""
    name = f"say-{uuid.uuid4().hex[:8]}"
    arn = secret_arn
    if token is not None:
        arn = put_secret(stack.client("secretsmanager"), secret_name(STACK, name, "url-token"), token)
    spec = WebhookEndpoint.model_validate({"name": name, "url": f"https://hooks.example.test/{name}"})
    rec = EndpointRecord(
        name=name,
        spec=spec.public_view(),
        status="registered",
        webhook_id="65a1b2c3d4e5f60718293a4f",
        project_id=PROJECT,
        url_token_arn=arn,
    )
    stack.client("dynamodb").put_item(
        TableName=stack.outputs["EndpointsTableName"],
        Item=to_item(rec.model_dump(mode="json", by_alias=True)),
    )
    return name


def run_say(*args: str) -> int:
    return main(["say", *args])


def assert_no_trace(out: str, err: str, *secrets: str) -> None:
    assert "Traceback" not in out + err
    for secret in secrets:
        assert secret not in out + err


# --- sent ------------------------------------------------------------------------------------------------


def test_say_sends_the_input_through_the_recorded_token(
    sim: RunningSimulator,
    stack: LocalStack,
    store: EndpointStore,
    receiver: WebhookReceiver,
    capsys: pytest.CaptureFixture[str],
) -> None:
    endpoint = cognigy_endpoint(sim, receiver)
    name = record(stack, token=endpoint["URLToken"])

    code = run_say(name, "--user", "u-1", "--session", "s-1", "--text", "where is my order?", "--local")

    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"sent to {name}" in out
    assert "HTTP 200" in out
    assert_no_trace(out, err, endpoint["URLToken"])
    (attempt,) = store.wait_deliveries(1)
    assert attempt["status"] == 202
    (got,) = receiver.received
    assert json.loads(got.body)["AIOutput"]["text"] == "where is my order?"
    assert json.loads(got.body)["userId"] == "u-1"


def test_say_json_prints_the_result(
    sim: RunningSimulator,
    stack: LocalStack,
    store: EndpointStore,
    receiver: WebhookReceiver,
    capsys: pytest.CaptureFixture[str],
) -> None:
    endpoint = cognigy_endpoint(sim, receiver)
    name = record(stack, token=endpoint["URLToken"])

    code = run_say(name, "--user", "u", "--session", "s", "--data", '{"orderId": 42}', "--local", "--json")

    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert result["endpoint"] == name
    assert (result["statusCode"], result["userId"], result["sessionId"]) == (200, "u", "s")
    (trace_id,) = result["answer"]["traceIds"]
    (attempt,) = store.wait_deliveries(1)
    assert attempt["traceId"] == trace_id
    assert json.loads(receiver.received[0].body)["AIOutput"]["data"] == {"orderId": 42}
    assert_no_trace(out, err, endpoint["URLToken"])


def test_the_endpoint_url_and_ca_bundle_can_be_given(
    sim: RunningSimulator,
    stack: LocalStack,
    store: EndpointStore,
    receiver: WebhookReceiver,
    capsys: pytest.CaptureFixture[str],
) -> None:
    endpoint = cognigy_endpoint(sim, receiver)
    name = record(stack, token=endpoint["URLToken"])
    args = ["--endpoint-url", sim.base_url, "--ca-bundle", str(sim.ca_file), "--local"]
    assert run_say(name, "--user", "u", "--session", "s", "--text", "hi", *args) == 0
    assert len(store.wait_deliveries(1)) == 1


# --- bad input: exit 2 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--data", "{not json"], "--data is not valid JSON (line 1 column 2)"),
        (["--data", "[1, 2]"], "--data must be a JSON object"),
        (["--data", "[" * 100_000], "--data"),
        ([], "--text: give text or data"),
        (["--text", ""], "--text: give text or data"),
        (["--text", "t" * 10_001], "--text: must be a string of at most 10000 characters"),
        (["--text", "hi", "--user", "u" * 257], "--user: is required: a string of 1 to 256 characters"),
        (["--text", "hi", "--session", ""], "--session: is required"),
        (
            ["--text", "hi", "--endpoint-url", "http://endpoint.example.test"],
            "--endpoint-url: must use https",
        ),
    ],
)
def test_bad_input_exits_2_naming_the_flag(
    sim: RunningSimulator,
    stack: LocalStack,
    receiver: WebhookReceiver,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    message: str,
) -> None:
    endpoint = cognigy_endpoint(sim, receiver)
    name = record(stack, token=endpoint["URLToken"])
    args = list(flags)
    if "--user" not in args:
        args += ["--user", "u"]
    if "--session" not in args:
        args += ["--session", "s"]

    code = run_say(name, *args, "--local")

    out, err = capsys.readouterr()
    assert code == 2
    assert message in err
    assert err.startswith("cogwh say: ")
    assert_no_trace(out, err, endpoint["URLToken"])
    assert store_of(sim.state).deliveries() == []


def test_an_unknown_endpoint_exits_2(sim: RunningSimulator, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_say("no-such-endpoint", "--user", "u", "--session", "s", "--text", "hi", "--local")
    out, err = capsys.readouterr()
    assert code == 2
    assert "no endpoint named 'no-such-endpoint' is recorded" in err
    assert "cogwh status" in err
    assert_no_trace(out, err)


def test_an_endpoint_without_a_url_token_exits_2(
    sim: RunningSimulator, stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    name = record(stack, token=None)
    code = run_say(name, "--user", "u", "--session", "s", "--text", "hi", "--local")
    out, err = capsys.readouterr()
    assert code == 2
    assert f"endpoint {name!r} has no URLToken recorded" in err
    assert "apply it with the endpoints dialect first" in err
    assert_no_trace(out, err)


def test_an_unreadable_ca_bundle_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        run_say(
            "x",
            "--user",
            "u",
            "--session",
            "s",
            "--text",
            "hi",
            "--local",
            "--ca-bundle",
            str(tmp_path / "no.pem"),
        )
    assert exited.value.code == 2
    assert "--ca-bundle" in capsys.readouterr().err


def test_no_running_local_stack_is_reported(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ops.STATE_FILE_ENV, str(tmp_path / "absent.json"))
    code = run_say("x", "--user", "u", "--session", "s", "--text", "hi", "--local")
    out, err = capsys.readouterr()
    assert code == 3  # the environment, as for every command
    assert "no local stack is running" in err
    assert_no_trace(out, err)


# --- Cognigy refused or failed: exit 1 ------------------------------------------------------------------


def test_an_inactive_endpoint_exits_1(
    sim: RunningSimulator, stack: LocalStack, receiver: WebhookReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = cognigy_endpoint(sim, receiver, active=False)
    name = record(stack, token=endpoint["URLToken"])
    code = run_say(name, "--user", "u", "--session", "s", "--text", "hi", "--local")
    out, err = capsys.readouterr()
    assert code == 1
    assert "HTTP 403" in err
    assert "/<URLToken>" in err
    assert_no_trace(out, err, endpoint["URLToken"])


def test_a_token_cognigy_does_not_know_exits_1(
    sim: RunningSimulator, stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    token = uuid.uuid4().hex + uuid.uuid4().hex
    name = record(stack, token=token)
    code = run_say(name, "--user", "u", "--session", "s", "--text", "hi", "--local")
    out, err = capsys.readouterr()
    assert code == 1
    assert "HTTP 404" in err
    assert_no_trace(out, err, token)


def test_an_unreachable_endpoint_service_exits_1_saying_nothing_was_sent(
    sim: RunningSimulator, stack: LocalStack, receiver: WebhookReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = cognigy_endpoint(sim, receiver)
    name = record(stack, token=endpoint["URLToken"])
    url = f"https://localhost:{closed_port()}"
    code = run_say(name, "--user", "u", "--session", "s", "--text", "hi", "--endpoint-url", url, "--local")
    out, err = capsys.readouterr()
    assert code == 1
    assert "not sent" in err
    assert f"{url}/<URLToken>" in err
    assert_no_trace(out, err, endpoint["URLToken"])


# --- the environment: exit 3 ----------------------------------------------------------------------------


def test_a_missing_secret_exits_3(
    sim: RunningSimulator, stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = (
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:cognigy-webhooks/saycli/gone/url-token-AbCdEf"
    )
    name = record(stack, token=None, secret_arn=missing)
    code = run_say(name, "--user", "u", "--session", "s", "--text", "hi", "--local")
    out, err = capsys.readouterr()
    assert code == 3
    assert f"cannot read the URLToken of {name!r}" in err
    assert_no_trace(out, err)


def test_a_stored_value_that_is_not_a_token_exits_3(
    sim: RunningSimulator, stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    name = record(stack, token="not a token / at all")
    code = run_say(name, "--user", "u", "--session", "s", "--text", "hi", "--local")
    out, err = capsys.readouterr()
    assert code == 3
    assert "is not a URLToken" in err
    assert_no_trace(out, err, "not a token / at all")
