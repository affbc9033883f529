"""The metrics the functions print (EMF on stdout, read back with capsys), from real parts: the probe
handler against real TLS servers on 127.0.0.1; Cognigy calls through the simulator over TLS (429,
401, 403, a dropped connection), inside a handler wrapped by ``metrics.log_metrics`` as the register,
plan and watch functions are, and outside one (the CLI's own calls: nothing printed, even past
Powertools' 100 values); the receive function on the local stack (deliveries by status, loop stops,
replays). No document ever holds a secret."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import json
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cognigy_webhooks import CognigyClient, WebhookEndpoint
from cognigy_webhooks.errors import CognigyError
from cognigy_webhooks.metric_names import is_registered
from cognigy_webhooks.observability import logger, metrics
from cogwh.certs import LocalCA
from tests.support.emf import dimensions, documents, metric_names, total, unit_of, values
from tests.support.receiver import (
    LOOP_MAX_HOPS,
    LOOP_MAX_PER_WINDOW,
    STACK,
    ReceiverWorld,
    json_body,
    new_secret,
    receiver_stack,
)
from tests.support.simulator import RunningSimulator
from tests.support.tls_servers import LocalServer, answer, refused_port, server_context

ROOT = Path(__file__).resolve().parents[2]
PROBE = ROOT / "functions" / "probe" / "app.py"
EVENT = json.loads((ROOT / "events" / "probe.json").read_text())


@dataclass
class FakeContext:
    function_name: str = "cognigy-webhooks-fn"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-central-1:123456789012:function:cognigy-webhooks-fn"
    aws_request_id: str = "7f1c1c0e-0000-4000-8000-000000000002"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture(autouse=True)
def clean_metrics() -> Iterator[None]:
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def registered_only(docs: list[dict[str, Any]]) -> None:
    names = {name for doc in docs for name in metric_names(doc)}
    assert names
    assert {n for n in names if not is_registered(n)} == set()
    for doc in docs:
        assert doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "CognigyWebhooks"
        assert dimensions(doc)["service"] == "cognigy-webhooks"


# --- the probe function -------------------------------------------------------------------------------


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch, local_ca: LocalCA) -> ModuleType:
    monkeypatch.setenv("PROBE_ALLOW_PRIVATE_NETWORKS", "true")
    monkeypatch.setenv("PROBE_CA_BUNDLE", str(local_ca.ca_file))
    spec = importlib.util.spec_from_file_location("probe_app_metrics_under_test", PROBE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    return module


def _probe_event(url: str) -> dict[str, Any]:
    return {"endpoint": {**EVENT["endpoint"], "url": url, "fallbackUrls": []}}


def test_the_probe_counts_its_latency_and_its_result_by_reason(
    probe: ModuleType, local_ca: LocalCA, capsys: pytest.CaptureFixture[str]
) -> None:
    other_ca = LocalCA()
    try:
        with (
            LocalServer(answer(200), server_context(local_ca.issue("localhost", "127.0.0.1"))) as good,
            LocalServer(answer(200), server_context(other_ca.issue("localhost", "127.0.0.1"))) as untrusted,
            refused_port() as dead,
        ):
            capsys.readouterr()
            passed = probe.lambda_handler(_probe_event(good.url("localhost", "/hook")), FakeContext())
            refused = probe.lambda_handler(_probe_event(f"https://localhost:{dead}/hook"), FakeContext())
            invalid = probe.lambda_handler(_probe_event(untrusted.url("localhost", "/hook")), FakeContext())
    finally:
        other_ca.close()
    out = capsys.readouterr().out
    docs = documents(out)

    assert (passed["reason"], refused["reason"], invalid["reason"]) == (
        "ok",
        "connection_refused",
        "certificate_invalid",
    )
    registered_only(docs)
    assert total(docs, "ProbeResult", Reason="ok") == 1
    assert total(docs, "ProbeResult", Reason="connection_refused") == 1
    assert total(docs, "ProbeResult", Reason="certificate_invalid") == 1
    assert (total(docs, "ProbeRequested"), total(docs, "ProbePassed"), total(docs, "ProbeFailed")) == (
        3,
        1,
        2,
    )
    # the primary's total, in milliseconds, as the report gives it
    latencies = values(docs, "ProbeLatency")
    assert passed["primary"]["timingsMs"]["total"] in latencies
    assert all(v > 0 for v in latencies)
    assert {unit_of(d, "ProbeLatency") for d in docs if "ProbeLatency" in metric_names(d)} == {"Milliseconds"}
    # a dimensional metric is alone in its document, with only its own dimension besides service
    for doc in docs:
        if "ProbeResult" in metric_names(doc):
            assert metric_names(doc) == ["ProbeResult"]
            assert set(dimensions(doc)) == {"service", "Reason"}


# --- Cognigy calls ------------------------------------------------------------------------------------


@metrics.log_metrics
def cognigy_task(event: dict[str, Any], context: Any) -> list[str]:
    """A handler as the register, plan and watch functions are: wrapped, its Cognigy work in asyncio."""

    async def work() -> list[str]:
        outcomes = []
        async with CognigyClient(event["key"], event["base_url"], verify=event["ca"]) as cognigy:
            for step in event["steps"]:
                try:
                    if step == "create":
                        await cognigy.create_webhook(
                            WebhookEndpoint(name="metered-hook", url="https://hooks.example.test/a"),
                            signature_secret=event["secret"],
                        )
                    else:
                        await cognigy.list_webhooks()
                    outcomes.append("ok")
                except CognigyError as exc:
                    outcomes.append(type(exc).__name__)
        return outcomes

    return asyncio.run(work())


def _task(simulator: RunningSimulator, steps: list[str], key: str | None = None) -> dict[str, Any]:
    return {
        "key": key or simulator.api_key,
        "base_url": simulator.base_url,
        "ca": str(simulator.ca_file),
        "steps": steps,
        "secret": "whsec-" + secrets.token_urlsafe(24),
    }


def test_cognigy_calls_throttles_and_auth_failures_are_counted_in_a_handler(
    simulator: RunningSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong_key = "ck_revoked_" + secrets.token_urlsafe(24)
    simulator.state.set_faults({"script": ["pass", "429", "drop", "pass"], "retry_after_s": 1})
    capsys.readouterr()

    ok = _task(simulator, ["list", "list", "list", "create"])
    assert cognigy_task(ok, None) == ["ok", "CognigyThrottled", "CognigyUnavailable", "ok"]
    assert cognigy_task(_task(simulator, ["list", "list"], key=wrong_key), None) == ["CognigyAuthError"] * 2
    forbidden = _task(simulator, ["create"], key=simulator.read_only_key)
    assert cognigy_task(forbidden, None) == ["CognigyForbidden"]
    out = capsys.readouterr().out
    docs = documents(out)

    registered_only(docs)
    assert total(docs, "CognigyCalls") == 7  # the dropped one too: a call with no answer
    assert total(docs, "CognigyThrottles") == simulator.state.count(status=429) == 1
    assert total(docs, "CognigyAuthFailures") == 3
    assert simulator.state.count(status=401) + simulator.state.count(status=403) == 3
    for secret in (simulator.api_key, wrong_key, simulator.read_only_key, ok["secret"], forbidden["secret"]):
        assert secret not in out


def test_cognigy_calls_outside_a_handler_print_nothing_even_past_100(
    simulator: RunningSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the CLI's own calls (no handler): throttled, refused and plain ones, far past 100
    simulator.state.set_faults({"script": ["429"] * 20, "retry_after_s": 1})

    async def cli() -> None:
        async with CognigyClient(simulator.api_key, simulator.base_url, verify=simulator.ca_file) as cognigy:
            for _ in range(110):
                with contextlib.suppress(CognigyError):
                    await cognigy.list_webhooks()
        async with CognigyClient("ck_wrong_" + "x" * 24, simulator.base_url, verify=simulator.ca_file) as bad:
            for _ in range(5):
                with pytest.raises(CognigyError):
                    await bad.list_webhooks()

    capsys.readouterr()
    asyncio.run(cli())

    assert simulator.state.count() >= 115
    assert capsys.readouterr().out == ""
    assert metrics.provider.metric_set == {}


# --- the receive function ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world() -> Iterator[ReceiverWorld]:
    yield from receiver_stack()


def _status(response: dict[str, Any]) -> int:
    return int(response["statusCode"])


def test_the_receiver_counts_deliveries_by_status_loop_stops_and_replays(
    world: ReceiverWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = world.register("metered")
    capsys.readouterr()
    statuses: list[int] = []

    def send(body: bytes, headers: dict[str, str]) -> None:
        statuses.append(_status(world.invoke(world.event(reg, body, headers))))

    # accepted, then the same delivery again (a replay: 200)
    body = json_body()
    send(body, reg.sign(body))
    send(body, reg.sign(body))
    # a forgery (401)
    forged = json_body()
    send(forged, reg.sign(forged, secret=new_secret()))
    # a hop header past the bound (508), twice: refused before any claim, so no replay
    hops = json_body()
    send(hops, reg.sign(hops) | {"X-Cogwh-Hop": str(LOOP_MAX_HOPS + 1)})
    send(hops, reg.sign(hops) | {"X-Cogwh-Hop": str(LOOP_MAX_HOPS + 1)})
    # an echoing conversation: stopped past the window's bound (508), and its re-send (508, a replay)
    turns = [
        json.dumps({"sessionId": "s-metered", "text": f"echo {n}"}).encode()
        for n in range(LOOP_MAX_PER_WINDOW + 1)
    ]
    for turn in turns:
        send(turn, reg.sign(turn))
    send(turns[-1], reg.sign(turns[-1]))
    out = capsys.readouterr().out
    docs = documents(out)

    assert statuses == [202, 200, 401, 508, 508] + [202] * LOOP_MAX_PER_WINDOW + [508, 508]
    registered_only(docs)
    by_status = {s: total(docs, "Deliveries", Status=str(s)) for s in (202, 200, 401, 508)}
    assert by_status == {202: LOOP_MAX_PER_WINDOW + 1, 200: 1, 401: 1, 508: 4}
    assert total(docs, "Deliveries") == len(statuses)
    assert total(docs, "LoopStops") == 4
    assert total(docs, "Replays") == 2  # the duplicate and the looped one's re-send
    # and what the receiver counted before stays as it was
    assert total(docs, "DeliveriesAccepted") == LOOP_MAX_PER_WINDOW + 1
    assert total(docs, "DeliveriesDuplicate") == 1
    assert total(docs, "RejectedSignatureMismatch") == 1
    assert total(docs, "LoopsDetected") == 4
    assert total(docs, "RejectedHopLimit") == 2
    assert total(docs, "RejectedConversationLimit") == 1
    assert total(docs, "RejectedLoopRepeated") == 1
    # every document carries the stack it came from
    assert {dimensions(d)["stack"] for d in docs} == {STACK}
    for status_doc in (d for d in docs if "Deliveries" in metric_names(d)):
        assert set(dimensions(status_doc)) == {"service", "stack", "Status"}
    for secret in reg.secrets_seen:
        assert secret not in out


def test_each_reply_is_one_emf_line_and_an_accepted_delivery_one_info_line(
    world: ReceiverWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a delivery, its retry and a forgery, sent through the Lambda handler
    reg = world.register("one-line")
    body = json_body()
    events = [
        world.event(reg, body, reg.sign(body)),
        world.event(reg, body, reg.sign(body)),
        world.event(reg, body, reg.sign(body, secret=new_secret())),
    ]
    capsys.readouterr()
    handler = logger.registered_handler
    logged = io.StringIO()
    saved = handler.setStream(logged)  # type: ignore[attr-defined]
    try:
        statuses = [_status(world.invoke(event)) for event in events]
    finally:
        handler.setStream(saved)  # type: ignore[attr-defined]
    out = capsys.readouterr().out
    docs = documents(out)

    # Then each reply printed exactly one EMF line, its own counts and Deliveries by Status in it
    assert statuses == [202, 200, 401]
    assert len(docs) == 3
    for doc, status in zip(docs, statuses, strict=True):
        dims = [d["Dimensions"] for d in doc["_aws"]["CloudWatchMetrics"]]
        assert dims == [[["service", "stack"]], [["service", "stack", "Status"]]]
        assert doc["Status"] == str(status)
        assert doc["Deliveries"] == [1.0]
    assert [sorted(metric_names(d)) for d in docs] == [
        ["Deliveries", "DeliveriesAccepted"],
        ["Deliveries", "DeliveriesDuplicate", "Replays"],
        ["Deliveries", "DeliveriesRejected", "RejectedSignatureMismatch"],
    ]
    # and the accepted delivery was logged at INFO with its fields, the Lambda context and, as the
    # correlation id, API Gateway's request id
    lines = [json.loads(line) for line in logged.getvalue().splitlines()]
    [accepted] = [line for line in lines if line["message"] == "delivery accepted"]
    delivery_id = json.loads(world.invoke(events[1])["body"])["deliveryId"]
    assert accepted["level"] == "INFO"
    assert (accepted["endpoint"], accepted["deliveryId"]) == (reg.name, delivery_id)
    assert accepted["correlation_id"] == events[0]["requestContext"]["requestId"]
    assert accepted["function_name"].endswith("ReceiveFunction")
    assert accepted["function_request_id"]
    assert isinstance(accepted["cold_start"], bool)
    assert accepted["service"] == "cognigy-webhooks"
    for secret in reg.secrets_seen:
        assert secret not in logged.getvalue()
        assert secret not in out
