"""``cognigy_webhooks.cognigy.say``, the way back into the bot: against the simulator's Endpoint service
and against failing servers of the test's own, over real TLS on 127.0.0.1. The URLToken must never
show in a message, a repr or a log line, whatever the server does."""

from __future__ import annotations

import base64
import json
import logging
import ssl
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cognigy_webhooks.cognigy import SayResult, say, say_body
from cognigy_webhooks.cognigy.say import TOKEN_PLACEHOLDER, WEBHOOK_KEY_HEADER
from cognigy_webhooks.errors import (
    CognigyAuthError,
    CognigyError,
    CognigyForbidden,
    CognigyNotFound,
    CognigyRejected,
    CognigyThrottled,
    CognigyUnavailable,
    InvalidInput,
)
from cogwh.certs import LocalCA
from cogwh.sim_endpoints import ENDPOINTS_PATH, EndpointStore, store_of
from tests.support.simulator import RunningSimulator
from tests.support.tls_servers import LocalServer, answer, never_answer, refused_port, server_context

pytestmark = pytest.mark.anyio

PROJECT = "65a1b2c3d4e5f60718293a4b"
# a URLToken of the real shape, made fresh per run so a leak check can look for it
TOKEN = uuid.uuid4().hex + uuid.uuid4().hex
WEBHOOK_KEY = "whk-" + uuid.uuid4().hex


class CountingLimiter:
    """A RateLimiter (the acquire() protocol) that counts the tokens taken."""

    def __init__(self, refuse: BaseException | None = None) -> None:
        self.taken = 0
        self.refuse = refuse

    async def acquire(self) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.taken += 1


def secret_forms(*values: str) -> list[str]:
    forms = []
    for value in values:
        forms += [value, base64.b64encode(value.encode()).decode(), json.dumps(value)]
    return forms


def assert_hidden(*texts: str) -> None:
    for text in texts:
        for form in secret_forms(TOKEN, WEBHOOK_KEY):
            assert form not in text


def assert_clean_error(exc: CognigyError, caplog: pytest.LogCaptureFixture) -> None:
    """The token is nowhere: message, repr, args, field errors, chained exceptions, log lines."""
    assert TOKEN_PLACEHOLDER in str(exc)
    texts = [str(exc), repr(exc), repr(exc.args), repr(vars(exc)), caplog.text, *SERVICE_LINES]
    texts += [r.getMessage() for r in caplog.records]
    assert any("cognigy say" in line and TOKEN_PLACEHOLDER in line for line in SERVICE_LINES)
    assert_hidden(*texts)
    assert exc.__cause__ is None
    assert exc.__context__ is None


SERVICE_LINES: list[str] = []


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every logger at DEBUG into caplog (httpx, httpcore, ...), and the service's own Powertools
    logger (which does not propagate) formatted by its own JSON formatter, extras included."""
    caplog.set_level(logging.DEBUG)
    service = logging.getLogger("cognigy-webhooks")
    formatter = next((h.formatter for h in service.handlers if h.formatter is not None), None)

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            SERVICE_LINES.append(self.format(record))

    handler = Collect()
    handler.setFormatter(formatter)
    level = service.level
    service.setLevel(logging.DEBUG)
    service.addHandler(handler)
    SERVICE_LINES.clear()
    try:
        yield
    finally:
        service.removeHandler(handler)
        service.setLevel(level)


@pytest.fixture(scope="module")
def tls(local_ca: LocalCA) -> ssl.SSLContext:
    return server_context(local_ca.issue("localhost", "127.0.0.1"))


@pytest.fixture
def ca(local_ca: LocalCA) -> str:
    return str(local_ca.ca_file)


def serve(
    tls: ssl.SSLContext, status: int, body: Any = None, headers: dict[str, str] | None = None
) -> LocalServer:
    raw = json.dumps(body).encode() if body is not None else b""
    return LocalServer(
        answer(status, body=raw, headers={"Content-Type": "application/json", **(headers or {})}), tls
    )


async def say_to(server: LocalServer, ca: str, **kwargs: Any) -> SayResult:
    url = f"https://localhost:{server.port}"
    fields: dict[str, Any] = {"user_id": "user-1", "session_id": "session-1", "text": "hello", "verify": ca}
    return await say(url, TOKEN, **(fields | kwargs))


# --- against the simulator's Endpoint service -----------------------------------------------------


@pytest.fixture
def sim(simulator: RunningSimulator) -> RunningSimulator:
    simulator.configure(project_ids=(PROJECT,), delivery_ca_bundle=str(simulator.ca_file))
    return simulator


@pytest.fixture
def store(sim: RunningSimulator) -> EndpointStore:
    return store_of(sim.state)


@pytest.fixture
def endpoint(sim: RunningSimulator) -> Iterator[dict[str, Any]]:
    ctx = ssl.create_default_context(cafile=str(sim.ca_file))
    headers = {"X-API-Key": sim.api_key, "Accept": "application/json"}
    with httpx.Client(base_url=sim.base_url, verify=ctx, headers=headers) as api:
        body = {
            "projectId": PROJECT,
            "name": "say-target",
            "channel": "webhook",
            "settings": {"webhookUrl": "https://localhost:9/unused"},
        }
        created = api.post(ENDPOINTS_PATH, json=body)
        assert created.status_code == 201
        yield dict(created.json())


async def test_say_sends_one_input_that_runs_the_flow(
    sim: RunningSimulator, store: EndpointStore, endpoint: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    limiter = CountingLimiter()
    result = await say(
        sim.base_url,
        endpoint["URLToken"],
        user_id="user-7",
        session_id="session-7",
        text="where is my order?",
        data={"orderId": 42},
        verify=str(sim.ca_file),
        limiter=limiter,
    )
    assert result.status_code == 200
    assert (result.user_id, result.session_id) == ("user-7", "session-7")
    (trace_id,) = result.answer["traceIds"]
    assert result.to_json() == {
        "statusCode": 200,
        "userId": "user-7",
        "sessionId": "session-7",
        "answer": result.answer,
    }
    assert limiter.taken == 1
    (attempt,) = store.wait_deliveries(1)
    assert (attempt["endpointId"], attempt["traceId"]) == (endpoint["_id"], trace_id)
    token = endpoint["URLToken"]
    assert token not in caplog.text
    assert f"{sim.base_url}/{TOKEN_PLACEHOLDER}" in caplog.text  # httpx's own line, rewritten
    assert token not in "".join(SERVICE_LINES)
    assert any(f"{sim.base_url}/{TOKEN_PLACEHOLDER}" in line for line in SERVICE_LINES)


async def test_say_accepts_the_token_as_a_secret_str_and_a_shared_client(
    sim: RunningSimulator, store: EndpointStore, endpoint: dict[str, Any]
) -> None:
    from pydantic import SecretStr

    ctx = ssl.create_default_context(cafile=str(sim.ca_file))
    async with httpx.AsyncClient(verify=ctx) as client:
        for n in (1, 2):
            result = await say(
                sim.base_url + "/",
                SecretStr(endpoint["URLToken"]),
                user_id="u",
                session_id="s",
                data={"n": n},
                client=client,
            )
            assert result.status_code == 200
        assert not client.is_closed  # a shared client is the caller's to close
    assert len(store.wait_deliveries(2)) == 2


async def test_an_unknown_token_is_not_found(sim: RunningSimulator, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(CognigyNotFound) as raised:
        await say(sim.base_url, TOKEN, user_id="u", session_id="s", text="hi", verify=str(sim.ca_file))
    assert raised.value.status_code == 404
    assert "HTTP 404" in str(raised.value)
    assert_clean_error(raised.value, caplog)


async def test_an_inactive_endpoint_is_forbidden(
    sim: RunningSimulator, endpoint: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    ctx = ssl.create_default_context(cafile=str(sim.ca_file))
    headers = {"X-API-Key": sim.api_key, "Accept": "application/json"}
    async with httpx.AsyncClient(base_url=sim.base_url, verify=ctx, headers=headers) as api:
        patched = await api.patch(f"{ENDPOINTS_PATH}/{endpoint['_id']}", json={"active": False})
        assert patched.status_code == 200
    with pytest.raises(CognigyForbidden, match="not active") as raised:
        await say(
            sim.base_url,
            endpoint["URLToken"],
            user_id="u",
            session_id="s",
            text="hi",
            verify=str(sim.ca_file),
        )
    assert endpoint["URLToken"] not in str(raised.value) + caplog.text


# --- validation: nothing is sent --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"user_id": ""}, "userId"),
        ({"user_id": "u" * 257}, "userId"),
        ({"user_id": None}, "userId"),
        ({"session_id": ""}, "sessionId"),
        ({"session_id": "s" * 257}, "sessionId"),
        ({"text": "t" * 10_001}, "text"),
        ({"text": 12}, "text"),
        ({"text": "\ud83d"}, "text"),
        ({"user_id": "\udc00"}, "userId"),
        ({"text": None}, "text"),
        ({"text": ""}, "text"),
        ({"text": None, "data": [1, 2]}, "data"),
        ({"text": None, "data": "x"}, "data"),
        ({"data": {"x": float("nan")}}, "data"),
        ({"data": {"x": float("inf")}}, "data"),
        ({"data": {1: "non-string key"}}, "data"),
        ({"data": {"x": {1, 2}}}, "data"),
        ({"data": {"x": "\ud800"}}, "data"),
        ({"webhook_key": "has space"}, "webhookKey"),
        ({"verify": "/no/such/bundle.pem"}, "verify"),
    ],
)
async def test_bad_input_names_the_field_and_sends_nothing(
    tls: ssl.SSLContext, ca: str, fields: dict[str, Any], field: str
) -> None:
    with serve(tls, 200, {}) as server:
        with pytest.raises(InvalidInput) as raised:
            await say_to(server, ca, **fields)
        assert field in {e["field"] for e in raised.value.errors}
        assert isinstance(raised.value, ValueError)
        assert server.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://endpoint.example.test",  # plain http off loopback
        "https://endpoint.example.test?x=1",
        "https://endpoint.example.test/?",
        "https://endpoint.example.test/#frag",
        "https://user:pw@endpoint.example.test",
        "ftp://endpoint.example.test",
        "endpoint.example.test",
        "",
    ],
)
async def test_a_bad_endpoint_url_is_refused(url: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        await say(url, TOKEN, user_id="u", session_id="s", text="hi")
    assert [e["field"] for e in raised.value.errors] == ["endpointUrl"]


@pytest.mark.parametrize(
    "token", ["", "short", "a/b" + "c" * 20, "x" * 20 + "?q=1", "%2F" * 10, "t" * 257, None]
)
async def test_a_malformed_token_is_refused_without_echoing_it(token: Any) -> None:
    with pytest.raises(InvalidInput) as raised:
        await say("https://endpoint.example.test", token, user_id="u", session_id="s", text="hi")
    assert [e["field"] for e in raised.value.errors] == ["urlToken"]
    if token:
        assert token not in str(raised.value)


def test_say_body_is_the_checked_body() -> None:
    assert say_body(user_id="u", session_id="s", text="hi") == {"userId": "u", "sessionId": "s", "text": "hi"}
    assert say_body(user_id="u", session_id="s", data={}) == {"userId": "u", "sessionId": "s", "data": {}}
    body = say_body(user_id="u" * 256, session_id="s" * 256, text="t" * 10_000, data={"a": [1, None, True]})
    assert len(body["text"]) == 10_000


# --- failing servers: typed, never retried, the token hidden ------------------------------------------


async def test_a_500_is_unavailable_maybe_applied_and_not_retried(
    tls: ssl.SSLContext, ca: str, caplog: pytest.LogCaptureFixture
) -> None:
    problem = {"title": "Internal Server Error", "detail": f"flow failed for /{TOKEN}", "traceId": "t-1"}
    with serve(tls, 500, problem) as server:
        with pytest.raises(CognigyUnavailable) as raised:
            await say_to(server, ca)
        assert len(server.requests) == 1  # one POST: a duplicate input would run the flow twice
        assert server.requests[0].target == f"/{TOKEN}"
    assert raised.value.maybe_applied is True
    assert raised.value.status_code == 500
    assert "flow failed for /" in str(raised.value)  # what the server said, quoted, token scrubbed
    assert_clean_error(raised.value, caplog)


async def test_a_429_is_throttled_with_its_retry_after(
    tls: ssl.SSLContext, ca: str, caplog: pytest.LogCaptureFixture
) -> None:
    with serve(tls, 429, {"detail": f"slow down {TOKEN}"}, {"Retry-After": "7"}) as server:
        limiter = CountingLimiter()
        with pytest.raises(CognigyThrottled) as raised:
            await say_to(server, ca, limiter=limiter)
        assert len(server.requests) == 1
    assert raised.value.retry_after == 7.0
    assert limiter.taken == 1
    assert_clean_error(raised.value, caplog)


async def test_a_429_with_a_date_retry_after(
    tls: ssl.SSLContext, ca: str, caplog: pytest.LogCaptureFixture
) -> None:
    past = {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}
    with serve(tls, 429, {}, past) as server, pytest.raises(CognigyThrottled) as raised:
        await say_to(server, ca)
    assert raised.value.retry_after == 0.0  # a date in the past: retry now
    assert_clean_error(raised.value, caplog)


async def test_a_redirect_is_refused_not_followed(
    tls: ssl.SSLContext, ca: str, caplog: pytest.LogCaptureFixture
) -> None:
    with serve(tls, 302, None, {"Location": f"https://localhost:1/{TOKEN}"}) as server:
        with pytest.raises(CognigyRejected) as raised:
            await say_to(server, ca)
        assert len(server.requests) == 1
    assert raised.value.status_code == 302
    assert_clean_error(raised.value, caplog)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, CognigyRejected),
        (401, CognigyAuthError),
        (403, CognigyForbidden),
        (404, CognigyNotFound),
        (501, CognigyRejected),
    ],
)
async def test_refusals_are_typed(
    tls: ssl.SSLContext, ca: str, caplog: pytest.LogCaptureFixture, status: int, kind: type[CognigyError]
) -> None:
    problem = {
        "title": "Bad",
        "detail": f"no endpoint for token {TOKEN}",
        "instance": f"/{TOKEN}",
        "status": status,
        "details": [{"field": "text", "message": f"bad for {TOKEN}"}],
    }
    with serve(tls, status, problem) as server, pytest.raises(kind) as raised:
        await say_to(server, ca)
    assert raised.value.status_code == status
    if isinstance(raised.value, CognigyRejected):
        assert [e["field"] for e in raised.value.field_errors] == ["text"]
        assert_hidden(repr(raised.value.field_errors))
    assert_clean_error(raised.value, caplog)


async def test_connection_refused_is_unavailable_not_applied(
    ca: str, caplog: pytest.LogCaptureFixture
) -> None:
    with refused_port() as port, pytest.raises(CognigyUnavailable) as raised:
        await say(f"https://localhost:{port}", TOKEN, user_id="u", session_id="s", text="hi", verify=ca)
    assert raised.value.maybe_applied is False
    assert_clean_error(raised.value, caplog)


async def test_an_untrusted_certificate_is_unavailable_not_applied(
    tls: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    with serve(tls, 200, {}) as server, pytest.raises(CognigyUnavailable) as raised:
        await say_to(server, True)  # type: ignore[arg-type]
    assert raised.value.maybe_applied is False
    assert_clean_error(raised.value, caplog)


async def test_a_read_timeout_is_unavailable_maybe_applied(
    tls: ssl.SSLContext, ca: str, caplog: pytest.LogCaptureFixture
) -> None:
    with LocalServer(never_answer(), tls) as server, pytest.raises(CognigyUnavailable) as raised:
        await say_to(server, ca, timeout=httpx.Timeout(5.0, read=0.2))
    assert raised.value.maybe_applied is True
    assert_clean_error(raised.value, caplog)


async def test_a_limiter_refusal_sends_nothing(tls: ssl.SSLContext, ca: str) -> None:
    with serve(tls, 200, {}) as server:
        with pytest.raises(CognigyThrottled):
            await say_to(
                server, ca, limiter=CountingLimiter(refuse=CognigyThrottled("budget spent", retry_after=3))
            )
        assert server.requests == []


# --- a 2xx ---------------------------------------------------------------------------------------------


async def test_any_2xx_is_success_and_an_echoed_token_is_scrubbed(
    tls: ssl.SSLContext, ca: str, caplog: pytest.LogCaptureFixture
) -> None:
    echo = {"url": f"https://endpoint.example.test/{TOKEN}", "nested": [{"token": TOKEN}], "ok": True}
    with serve(tls, 202, echo) as server:
        result = await say_to(server, ca, webhook_key=WEBHOOK_KEY)
        (request,) = server.requests
    assert result.status_code == 202
    assert result.answer["ok"] is True
    assert result.answer["nested"] == [{"token": TOKEN_PLACEHOLDER}]
    assert request.header(WEBHOOK_KEY_HEADER) == WEBHOOK_KEY
    assert request.header("content-type") == "application/json"
    assert request.header("accept") == "application/json"
    assert_hidden(repr(result), json.dumps(result.to_json()), caplog.text)


async def test_a_2xx_without_json_has_no_answer(tls: ssl.SSLContext, ca: str) -> None:
    with LocalServer(answer(200, body=b"ok"), tls) as server:
        result = await say_to(server, ca)
    assert (result.status_code, result.answer) == (200, None)


async def test_the_webhook_key_is_scrubbed_from_errors(
    tls: ssl.SSLContext, ca: str, caplog: pytest.LogCaptureFixture
) -> None:
    refusal = {"detail": f"wrong X-Webhook-Key {WEBHOOK_KEY}"}
    with serve(tls, 401, refusal) as server, pytest.raises(CognigyAuthError) as raised:
        await say_to(server, ca, webhook_key=WEBHOOK_KEY)
    assert_clean_error(raised.value, caplog)
