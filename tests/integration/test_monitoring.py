"""Audit sync to a monitoring platform: a real local server records what arrives."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import socket
import threading
from collections.abc import AsyncGenerator, Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cognigy_webhooks import WebhookAuditLog, sync_to_monitoring_platform
from cognigy_webhooks.cognigy import create_cognigy_client, parse_retry_after
from cognigy_webhooks.monitoring import SyncResult
from cogwh.servers import serve_in_thread
from tests.support.monitoring_platform import WIRE_FIELDS

pytestmark = pytest.mark.anyio

TOKEN = "mon-token-7f3a9c1e5b2d4a6c8e0f"
COGNIGY_KEY = "cognigy-key-0123456789abcdef0123"


@dataclass
class Received:
    headers: list[tuple[str, str]]
    body: dict[str, Any]

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name.lower()]


@dataclass
class Sink:
    """A monitoring platform: records every request and answers from a script (then 200)."""

    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    echo_authorization: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def ingest(self, request: Request) -> Response:
        body = json.loads(await request.body())
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        with self.lock:
            self.received.append(Received(headers, body))
            status, extra = self.script.pop(0) if self.script else (200, {})
        payload: dict[str, Any] = {"accepted": len(body["events"])} if status < 300 else {"error": "nope"}
        if self.echo_authorization:  # a hostile or careless platform repeating the credential
            payload["auth"] = request.headers.get("authorization")
        return JSONResponse(payload, status_code=status, headers=extra)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/ingest", self.ingest, methods=["POST"])])

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for request in self.received for event in request.body["events"]]


@pytest.fixture(scope="module")
def served_sink() -> Iterator[tuple[Sink, str]]:
    recorder = Sink()
    with serve_in_thread(recorder.app()) as served:
        yield recorder, f"{served.base_url}/ingest"


@pytest.fixture
def sink(served_sink: tuple[Sink, str]) -> tuple[Sink, str]:
    """The module's platform, with a fresh script and record for each test."""
    recorder, url = served_sink
    with recorder.lock:
        recorder.script.clear()
        recorder.received.clear()
        recorder.echo_authorization = False
    return recorder, url


class Sleeps:
    """Records the waits instead of waiting; optionally runs an action on each one."""

    def __init__(self, on_sleep: Any = None) -> None:
        self.delays: list[float] = []
        self.on_sleep = on_sleep

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self.on_sleep is not None:
            self.on_sleep()


def audit_logs(n: int) -> list[WebhookAuditLog]:
    start = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    return [
        WebhookAuditLog(
            webhook_id=f"wh-{i:04d}",
            action="register",
            timestamp=start + timedelta(seconds=i),
            latency_ms=12.5 + i,
            success_rate=1.0,
            tls_version="TLSv1.3",
            status_code=201,
            endpoint_url=f"https://hooks.example.com/{i}",
        )
        for i in range(n)
    ]


class Reserved:
    """A port bound but not listening: connecting to it is refused, for real."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/ingest"

    def close(self) -> None:
        self.sock.close()


@contextlib.contextmanager
def refused_port() -> Generator[Reserved, None, None]:
    reserved = Reserved()
    try:
        yield reserved
    finally:
        reserved.close()


# --- delivery -------------------------------------------------------------------------------------


async def test_batches_arrive_complete_and_in_order(sink: tuple[Sink, str]) -> None:
    recorder, url = sink
    logs = audit_logs(250)

    result = await sync_to_monitoring_platform(logs, url, api_token=TOKEN, batch_size=100, sleep=Sleeps())

    assert result == SyncResult(sent=250, failed=[], requests=3)
    assert result.complete
    assert [len(r.body["events"]) for r in recorder.received] == [100, 100, 50]
    assert [e["webhookId"] for e in recorder.events] == [log.webhook_id for log in logs]
    assert recorder.events[0] == {
        "eventId": None,
        "webhookId": "wh-0000",
        "action": "register",
        "timestamp": "2024-05-01T12:00:00Z",
        "latencyMs": 12.5,
        "successRate": 1.0,
        "tlsVersion": "TLSv1.3",
        "statusCode": 201,
        "endpointUrl": "https://hooks.example.com/0",
    }
    assert all(set(event) == WIRE_FIELDS for event in recorder.events)
    first = recorder.received[0]
    assert first.header("authorization") == [f"Bearer {TOKEN}"]
    assert first.header("content-type") == ["application/json"]
    assert len({r.header("idempotency-key")[0] for r in recorder.received}) == 3


async def test_nothing_to_send_sends_nothing(sink: tuple[Sink, str]) -> None:
    recorder, url = sink

    result = await sync_to_monitoring_platform([], url, api_token=TOKEN)

    assert result == SyncResult(sent=0, failed=[], requests=0)
    assert recorder.received == []


async def test_5xx_then_success_is_retried_with_the_same_batch(sink: tuple[Sink, str]) -> None:
    recorder, url = sink
    recorder.script = [(503, {}), (500, {})]
    sleeps = Sleeps()
    logs = audit_logs(10)

    result = await sync_to_monitoring_platform(logs, url, sleep=sleeps, base_delay=0.5, max_delay=30)

    assert result.sent == 10
    assert result.failed == []
    assert result.requests == 3
    bodies = [r.body for r in recorder.received]
    assert bodies[0] == bodies[1] == bodies[2]
    keys = {r.header("idempotency-key")[0] for r in recorder.received}
    assert len(keys) == 1  # the platform can drop a duplicate of a batch whose answer was lost
    # full jitter: each wait is drawn from [0, base * 2**(attempt-1)]
    assert len(sleeps.delays) == 2
    assert 0 <= sleeps.delays[0] <= 0.5
    assert 0 <= sleeps.delays[1] <= 1.0


async def test_retry_after_is_honoured(sink: tuple[Sink, str]) -> None:
    recorder, url = sink
    recorder.script = [(429, {"Retry-After": "7"}), (503, {"Retry-After": "3"})]
    sleeps = Sleeps()

    result = await sync_to_monitoring_platform(audit_logs(3), url, sleep=sleeps, base_delay=0.01)

    assert result.sent == 3
    assert len(recorder.received) == 3
    assert sleeps.delays[0] >= 7
    assert sleeps.delays[1] >= 3


async def test_a_retry_after_longer_than_max_delay_keeps_the_events(sink: tuple[Sink, str]) -> None:
    recorder, url = sink
    recorder.script = [(429, {"Retry-After": "3600"})]
    sleeps = Sleeps()
    logs = audit_logs(5)

    result = await sync_to_monitoring_platform(logs, url, sleep=sleeps, batch_size=2, max_delay=30)

    assert result.sent == 0
    assert result.failed == logs
    assert sleeps.delays == []
    assert len(recorder.received) == 1
    assert "429" in (result.last_error or "")


def test_retry_after_forms() -> None:
    # the monitoring sync reads Retry-After with the Cognigy client's parser (one parser for both)
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC).timestamp()

    assert parse_retry_after("120", now=now) == 120
    assert parse_retry_after(" 0 ", now=now) == 0
    assert parse_retry_after("Wed, 01 May 2024 12:00:30 GMT", now=now) == 30
    assert parse_retry_after("Wed, 01 May 2024 11:00:00 GMT", now=now) == 0
    for garbage in (None, "", "soon", "-5", "1.5e3", "\u0661\u0662", "Wed, 99 Foo 2024"):
        assert parse_retry_after(garbage, now=now) is None


async def test_persistent_failure_returns_every_event_as_failed(sink: tuple[Sink, str]) -> None:
    recorder, url = sink
    recorder.script = [(500, {})] * 10
    sleeps = Sleeps()
    logs = audit_logs(25)

    result = await sync_to_monitoring_platform(logs, url, batch_size=10, max_attempts=3, sleep=sleeps)

    assert result.sent == 0
    assert result.failed == logs  # every event, in order, for the caller to keep
    assert all(a is b for a, b in zip(result.failed, logs, strict=True))
    assert len(recorder.received) == 3  # retries ran out: later batches are kept, not hammered
    assert len(sleeps.delays) == 2
    assert result.last_error == "HTTP 500 (after 3 attempts)"


async def test_a_refused_batch_is_kept_and_the_next_ones_still_go(sink: tuple[Sink, str]) -> None:
    recorder, url = sink
    recorder.script = [(200, {}), (422, {}), (200, {})]
    logs = audit_logs(30)

    result = await sync_to_monitoring_platform(logs, url, batch_size=10, sleep=Sleeps())

    assert result.sent == 20
    assert result.failed == logs[10:20]
    assert len(recorder.received) == 3
    assert result.last_error == "HTTP 422"


@pytest.mark.parametrize("status", [401, 403, 404, 307])
async def test_an_answer_every_batch_would_get_stops_the_sync(sink: tuple[Sink, str], status: int) -> None:
    recorder, url = sink
    recorder.script = [(status, {"Location": "https://elsewhere.example/ingest"})]
    sleeps = Sleeps()
    logs = audit_logs(30)

    result = await sync_to_monitoring_platform(logs, url, batch_size=10, sleep=sleeps)

    assert result.failed == logs
    assert len(recorder.received) == 1  # a redirect is not followed either
    assert sleeps.delays == []


async def test_network_errors_are_retried_until_the_platform_answers() -> None:
    recorder = Sink()
    with contextlib.ExitStack() as stack:
        reserved = stack.enter_context(refused_port())

        def come_up() -> None:  # during the second wait the platform starts listening on that port
            if len(sleeps.delays) == 2:
                reserved.close()
                stack.enter_context(serve_in_thread(recorder.app(), port=reserved.port))

        sleeps = Sleeps(on_sleep=come_up)
        logs = audit_logs(4)

        result = await sync_to_monitoring_platform(logs, reserved.url, api_token=TOKEN, sleep=sleeps)

    assert result.sent == 4
    assert result.requests == 3  # refused, refused, then delivered
    assert len(sleeps.delays) == 2
    assert [e["webhookId"] for e in recorder.events] == [log.webhook_id for log in logs]


async def test_an_unreachable_platform_keeps_every_event() -> None:
    sleeps = Sleeps()
    logs = audit_logs(7)
    with refused_port() as reserved:
        result = await sync_to_monitoring_platform(
            logs,
            reserved.url,
            api_token=TOKEN,
            batch_size=3,
            max_attempts=3,
            sleep=sleeps,
        )

    assert result.failed == logs
    assert result.sent == 0
    assert len(sleeps.delays) == 2
    assert (result.last_error or "").startswith("ConnectError")


# --- credentials ------------------------------------------------------------------------------------


@pytest.fixture
async def cognigy_client(sink: tuple[Sink, str]) -> AsyncGenerator[httpx.AsyncClient, None]:
    """The real Cognigy client (its key is added by an auth hook as each request goes out)."""
    _, url = sink
    client = create_cognigy_client(COGNIGY_KEY, base_url=url.rsplit("/", 1)[0])
    try:
        yield client
    finally:
        await client.aclose()


async def test_the_cognigy_client_never_sends_its_key_to_the_monitoring_platform(
    sink: tuple[Sink, str], cognigy_client: httpx.AsyncClient
) -> None:
    recorder, url = sink

    with_token = await sync_to_monitoring_platform(audit_logs(3), url, api_token=TOKEN, client=cognigy_client)
    without_token = await sync_to_monitoring_platform(audit_logs(3), url, client=cognigy_client)

    assert with_token.sent == 3
    assert without_token.sent == 3
    for request in recorder.received:
        assert request.header("x-api-key") == []
        assert all(COGNIGY_KEY not in value for _, value in request.headers)
    assert recorder.received[0].header("authorization") == [f"Bearer {TOKEN}"]
    assert recorder.received[1].header("authorization") == []
    # the client itself still carries its key to Cognigy: nothing of the caller's was changed
    assert cognigy_client.auth is not None
    to_cognigy = cognigy_client.build_request("GET", "/api/v2/webhooks")
    assert next(cognigy_client.auth.sync_auth_flow(to_cognigy)).headers["X-API-Key"] == COGNIGY_KEY


async def test_the_tutorials_client_with_a_default_key_header_does_not_leak_it(
    sink: tuple[Sink, str],
) -> None:
    recorder, url = sink
    async with httpx.AsyncClient(headers={"X-API-Key": COGNIGY_KEY, "x-api-key": COGNIGY_KEY}) as client:
        result = await sync_to_monitoring_platform(
            audit_logs(2), url, api_token=SecretStr(TOKEN), client=client
        )
        assert client.headers.get_list("X-API-Key") == [COGNIGY_KEY, COGNIGY_KEY]  # untouched

    assert result.sent == 2
    assert recorder.received[0].header("x-api-key") == []
    assert recorder.received[0].header("authorization") == [f"Bearer {TOKEN}"]


class _KeyAuth(httpx.Auth):
    """An auth flow that adds the key in several spellings, then retries once on 401."""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["X-API-Key"] = COGNIGY_KEY
        request.headers["x-api-KEY"] = COGNIGY_KEY
        response = yield request
        if response.status_code == 401:
            request.headers["X-Api-Key"] = COGNIGY_KEY
            yield request


async def test_a_multi_step_auth_flow_is_stripped_on_every_step(sink: tuple[Sink, str]) -> None:
    recorder, url = sink
    recorder.script = [(401, {})]
    async with httpx.AsyncClient(auth=_KeyAuth()) as client:
        result = await sync_to_monitoring_platform(audit_logs(2), url, client=client, sleep=Sleeps())

    assert result.sent == 2
    assert len(recorder.received) == 2
    assert all(r.header("x-api-key") == [] for r in recorder.received)


async def test_the_token_never_shows_in_logs_results_or_errors(
    sink: tuple[Sink, str], caplog: pytest.LogCaptureFixture
) -> None:
    recorder, url = sink
    recorder.echo_authorization = True
    recorder.script = [(500, {}), (500, {}), (400, {})]
    caplog.set_level(logging.DEBUG)

    echoed = await sync_to_monitoring_platform(
        audit_logs(3), url + "?source=cogwh", api_token=TOKEN, max_attempts=2, sleep=Sleeps()
    )
    refused = await sync_to_monitoring_platform(audit_logs(3), url, api_token=TOKEN, sleep=Sleeps())
    with refused_port() as reserved:
        unreachable = await sync_to_monitoring_platform(
            audit_logs(3), reserved.url, api_token=TOKEN, max_attempts=2, sleep=Sleeps()
        )

    assert caplog.records, "the retries and failures were logged"
    assert any(r.getMessage() == "monitoring sync retry" for r in caplog.records)
    texts = [caplog.text, *(repr(vars(record)) for record in caplog.records)]
    for result in (echoed, refused, unreachable):
        assert result.failed
        texts += [repr(result), str(result.last_error)]
    for text in texts:
        assert TOKEN not in text
        assert hashlib.sha256(TOKEN.encode()).hexdigest()[:16] not in text


@pytest.mark.parametrize(
    "token", ["has space", "line\r\nbreak", "caf\u00e9", "", "x" * 5000, SecretStr("tab\there")]
)
async def test_an_unusable_token_is_refused_without_echoing_it(sink: tuple[Sink, str], token: object) -> None:
    recorder, url = sink

    with pytest.raises(ValueError, match="api_token") as caught:
        await sync_to_monitoring_platform(audit_logs(1), url, api_token=token)  # type: ignore[arg-type,unused-ignore]

    secret = token.get_secret_value() if isinstance(token, SecretStr) else str(token)
    assert not secret or secret not in str(caught.value)
    assert recorder.received == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"monitoring_url": "/relative/ingest"}, "absolute"),
        ({"monitoring_url": "ftp://example.com/ingest"}, "absolute"),
        ({"monitoring_url": f"https://user:{TOKEN}@example.com/ingest"}, "credentials"),
        ({"monitoring_url": "https://example.com:99999/ingest"}, "valid URL"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": True}, "batch_size"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"base_delay": -1}, "delays"),
    ],
)
async def test_unusable_arguments_are_refused(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"monitoring_url": "https://monitoring.example.com/ingest", **kwargs}
    url = arguments.pop("monitoring_url")

    with pytest.raises(ValueError, match=message) as caught:
        await sync_to_monitoring_platform(audit_logs(1), url, **arguments)

    assert TOKEN not in str(caught.value)
