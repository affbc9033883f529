"""The Cognigy client against the simulator over real TLS: every status, Retry-After in both forms,
network faults, a lost create found by name, pagination, and no secret anywhere."""

from __future__ import annotations

import email.utils
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cognigy_webhooks import (
    CognigyAuthError,
    CognigyClient,
    CognigyForbidden,
    CognigyNotFound,
    CognigyRejected,
    CognigyThrottled,
    CognigyUnavailable,
    WebhookEndpoint,
    create_cognigy_client,
)
from cognigy_webhooks.cognigy import (
    DEFAULT_BASE_URL,
    CognigyWebhook,
    map_cognigy_error,
    parse_retry_after,
)
from cognigy_webhooks.errors import CognigyError
from cognigy_webhooks.observability import logger as library_logger
from cogwh.simulator import WEBHOOKS_PATH, key_fingerprint
from tests.support.simulator import (
    READ_ONLY_KEY,
    RunningSimulator,
)

pytestmark = pytest.mark.anyio

SECRET = "sig-secret-" + "q" * 40


def endpoint(name: str = "orders-hook", **extra: Any) -> WebhookEndpoint:
    return WebhookEndpoint(name=name, url="https://hooks.example.test/orders", **extra)


@pytest.fixture
async def cognigy(simulator: RunningSimulator) -> AsyncIterator[CognigyClient]:
    async with CognigyClient(simulator.api_key, simulator.base_url, verify=simulator.ca_file) as client:
        yield client


class CountingLimiter:
    """A real RateLimiter that only counts (the pacing itself is tested in test_registration)."""

    def __init__(self) -> None:
        self.taken = 0

    async def acquire(self) -> None:
        self.taken += 1


# --- the tutorial's client factory ----------------------------------------------------------------


async def test_create_cognigy_client_keeps_the_contract(simulator: RunningSimulator) -> None:
    client = create_cognigy_client(simulator.api_key, simulator.base_url, verify=simulator.ca_file)
    async with client:
        response = await client.get(WEBHOOKS_PATH)

    assert response.status_code == 200
    assert client.headers["Accept"] == "application/json"
    assert client.headers["Content-Type"] == "application/json"
    assert client.timeout == httpx.Timeout(30.0, connect=10.0, read=20.0)
    assert client.follow_redirects is False
    assert str(client.base_url).rstrip("/") == simulator.base_url
    # The key went out as X-API-Key (the simulator saw its fingerprint) but is not kept in headers.
    assert simulator.state.requests[0]["key"] == key_fingerprint(simulator.api_key)
    assert simulator.api_key not in repr(client.headers)
    assert simulator.api_key not in repr(client.auth)
    assert create_cognigy_client("k").base_url == httpx.URL(DEFAULT_BASE_URL)


def test_create_cognigy_client_refuses_bad_input_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="visible ASCII") as bad_key:
        create_cognigy_client("abc\r\nX-Evil: 1")
    assert "X-Evil" not in str(bad_key.value)
    with pytest.raises(ValueError, match="https"):
        create_cognigy_client("key", "http://api.example.test")
    with pytest.raises(ValueError, match="credentials"):
        create_cognigy_client("key", "https://user:pw@api.example.test")
    with pytest.raises(ValueError, match="non-empty"):
        CognigyClient("")


# --- lifecycle ------------------------------------------------------------------------------------


async def test_create_get_update_delete(cognigy: CognigyClient, simulator: RunningSimulator) -> None:
    spec = endpoint(
        fallback_urls=["https://fallback.example.test/orders"],
        signature_header="X-Signature",
        signature_secret=SECRET,
        timeout_ms=5000,
    )

    created = await cognigy.create_webhook(spec)
    fetched = await cognigy.get_webhook(created.id)
    updated = await cognigy.update_webhook(created.id, spec.model_copy(update={"is_active": False}))
    deleted = await cognigy.delete_webhook(created.id)
    deleted_again = await cognigy.delete_webhook(created.id)

    assert created.name == "orders-hook"
    assert created.fallback_urls == ["https://fallback.example.test/orders"]  # the tutorial dropped them
    assert created.timeout == 5000
    assert created.signature_header == "X-Signature"
    assert fetched == created
    assert updated.is_active is False
    assert (deleted, deleted_again) == (True, False)
    with pytest.raises(CognigyNotFound):
        await cognigy.get_webhook(created.id)
    sent = simulator.state.requests[0]
    assert sent["method"] == "POST"
    assert sent["body"]["fallbackUrls"] == ["https://fallback.example.test/orders"]
    assert "signatureSecret" not in sent["body"]


async def test_list_follows_every_page(cognigy: CognigyClient, simulator: RunningSimulator) -> None:
    ids = [(await cognigy.create_webhook(endpoint(f"hook-{i:02d}"))).id for i in range(7)]

    listed = await cognigy.list_webhooks(page_size=3)
    iterated = [w.id async for w in cognigy.iter_webhooks(page_size=5)]
    one = await cognigy.list_webhooks(name="hook-03")
    found = await cognigy.find_by_name("hook-05")
    missing = await cognigy.find_by_name("hook-99")

    assert [w.id for w in listed] == ids
    assert iterated == ids
    assert [w.id for w in one] == [ids[3]]
    assert found is not None
    assert found.id == ids[5]
    assert missing is None
    pages = [r for r in simulator.state.requests if r["method"] == "GET" and r["query"].get("limit") == "3"]
    assert len(pages) == 3
    assert [("cursor" in r["query"]) for r in pages] == [False, True, True]


async def test_a_limiter_is_asked_before_each_request(simulator: RunningSimulator) -> None:
    limiter = CountingLimiter()
    async with CognigyClient(
        simulator.api_key, simulator.base_url, verify=simulator.ca_file, limiter=limiter
    ) as cognigy:
        created = await cognigy.create_webhook(endpoint())
        await cognigy.get_webhook(created.id)
        await cognigy.list_webhooks(page_size=1)
        simulator.state.set_faults({"script": ["503"]})
        with pytest.raises(CognigyUnavailable):
            await cognigy.get_webhook(created.id)

    assert limiter.taken == len(simulator.state.requests) == 4


# --- every status ---------------------------------------------------------------------------------


async def test_401_is_an_auth_error(simulator: RunningSimulator) -> None:
    async with CognigyClient("ck_wrong_key_0001", simulator.base_url, verify=simulator.ca_file) as cognigy:
        with pytest.raises(CognigyAuthError) as caught:
            await cognigy.create_webhook(endpoint())

    assert caught.value.status_code == 401
    assert "POST /api/v2/webhooks" in str(caught.value)
    assert "401" in str(caught.value)


async def test_403_is_forbidden_for_a_read_only_key(simulator: RunningSimulator) -> None:
    async with CognigyClient(READ_ONLY_KEY, simulator.base_url, verify=simulator.ca_file) as cognigy:
        assert await cognigy.list_webhooks() == []
        with pytest.raises(CognigyForbidden) as caught:
            await cognigy.create_webhook(endpoint())

    assert caught.value.status_code == 403
    assert "webhooks:write" in str(caught.value)


async def test_422_is_rejected_with_the_servers_field_errors(cognigy: CognigyClient) -> None:
    # The models allow X-Cognigy-* headers; the server reserves them.
    spec = endpoint(headers={"X-Cognigy-Trace": "on"})

    with pytest.raises(CognigyRejected) as caught:
        await cognigy.create_webhook(spec)

    assert caught.value.status_code == 422
    assert caught.value.field_errors == [
        {"field": "headers.X-Cognigy-Trace", "message": "X-Cognigy-* headers are reserved for Cognigy"}
    ]


async def test_409_on_a_taken_name_is_rejected(cognigy: CognigyClient) -> None:
    await cognigy.create_webhook(endpoint())

    with pytest.raises(CognigyRejected) as caught:
        await cognigy.create_webhook(endpoint())

    assert caught.value.status_code == 409
    assert not isinstance(caught.value, CognigyNotFound)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_unavailable_and_may_have_applied(
    cognigy: CognigyClient, simulator: RunningSimulator, status: int
) -> None:
    simulator.state.set_faults({"script": [str(status)]})

    with pytest.raises(CognigyUnavailable) as caught:
        await cognigy.create_webhook(endpoint())

    assert caught.value.status_code == status
    assert caught.value.maybe_applied is True


async def test_408_is_unavailable_but_not_applied(
    cognigy: CognigyClient, simulator: RunningSimulator
) -> None:
    simulator.state.set_faults({"script": ["408"]})

    with pytest.raises(CognigyUnavailable) as caught:
        await cognigy.create_webhook(endpoint())

    assert caught.value.status_code == 408
    assert caught.value.maybe_applied is False


@pytest.mark.parametrize("status", [400, 501, 511])
async def test_other_codes_are_rejected(
    cognigy: CognigyClient, simulator: RunningSimulator, status: int
) -> None:
    simulator.state.set_faults({"script": [str(status)]})

    with pytest.raises(CognigyRejected) as caught:
        await cognigy.list_webhooks()

    assert caught.value.status_code == status
    assert f"GET /api/v2/webhooks failed: HTTP {status}" in str(caught.value)


# --- 429 and Retry-After --------------------------------------------------------------------------


async def test_429_from_the_bucket_carries_retry_after_seconds(
    cognigy: CognigyClient, simulator: RunningSimulator
) -> None:
    simulator.configure(rate_per_minute=2, burst=1)  # one token every 30 s

    await cognigy.list_webhooks()
    with pytest.raises(CognigyThrottled) as caught:
        await cognigy.list_webhooks()

    assert caught.value.status_code == 429
    assert caught.value.retry_after is not None
    assert 29 <= caught.value.retry_after <= 30  # whole seconds, rounded up
    assert "retry after" in str(caught.value)


async def test_429_retry_after_as_an_http_date(cognigy: CognigyClient, simulator: RunningSimulator) -> None:
    simulator.state.set_faults({"script": ["429"], "retry_after_s": 20, "retry_after_http_date": True})

    with pytest.raises(CognigyThrottled) as caught:
        await cognigy.list_webhooks()

    assert caught.value.retry_after is not None
    assert 18 <= caught.value.retry_after <= 21.5


@pytest.mark.parametrize("raw", ["soon", "", "-5", "1e3", "Thu, 99 Foo 2024 99:99:99 GMT"])
async def test_429_with_absent_or_garbage_retry_after_gives_none(
    cognigy: CognigyClient, simulator: RunningSimulator, raw: str
) -> None:
    simulator.state.set_faults({"script": ["429"], "retry_after_raw": raw})

    with pytest.raises(CognigyThrottled) as caught:
        await cognigy.list_webhooks()

    assert caught.value.retry_after is None
    assert "no usable Retry-After" in str(caught.value)


def test_parse_retry_after() -> None:
    now = time.time()
    future = email.utils.formatdate(now + 90, usegmt=True)
    past = email.utils.formatdate(now - 90, usegmt=True)

    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 7 ") == 7.0
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after("1.5") == 1.5
    assert 88 <= (parse_retry_after(future, now=now) or 0) <= 90
    assert parse_retry_after(past, now=now) == 0.0
    for garbage in (
        None,
        "",
        "  ",
        "-1",
        "+3",
        "1e3",
        "soon",
        "9" * 40,
        "\uff11\uff12",  # full-width digits are not delta-seconds
        "Mon, 32 Jan 2024 00:00:00 GMT",
    ):
        assert parse_retry_after(garbage) is None, garbage


# --- network faults -------------------------------------------------------------------------------


async def test_a_dropped_connection_is_unavailable(
    cognigy: CognigyClient, simulator: RunningSimulator
) -> None:
    simulator.state.set_faults({"script": ["drop"]})

    with pytest.raises(CognigyUnavailable) as caught:
        await cognigy.create_webhook(endpoint())

    assert caught.value.maybe_applied is True
    assert isinstance(caught.value.__cause__, httpx.TransportError)
    assert simulator.state.webhooks == {}
    assert (await cognigy.create_webhook(endpoint())).name == "orders-hook"  # the client recovers


async def test_a_read_timeout_is_unavailable(simulator: RunningSimulator) -> None:
    http = create_cognigy_client(simulator.api_key, simulator.base_url, verify=simulator.ca_file)
    http.timeout = httpx.Timeout(5.0, read=0.05)
    simulator.state.set_faults({"script": ["slow:400"]})

    async with http, CognigyClient(client=http) as cognigy:
        with pytest.raises(CognigyUnavailable) as caught:
            await cognigy.list_webhooks()

    assert caught.value.maybe_applied is True
    assert "ReadTimeout" in str(caught.value)


async def test_a_refused_connection_is_unavailable_and_not_applied(simulator: RunningSimulator) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with CognigyClient(
        simulator.api_key, f"https://127.0.0.1:{port}", verify=simulator.ca_file
    ) as cognigy:
        with pytest.raises(CognigyUnavailable) as caught:
            await cognigy.create_webhook(endpoint())

    assert caught.value.maybe_applied is False
    assert "ConnectError" in str(caught.value)


async def test_an_untrusted_certificate_is_refused(simulator: RunningSimulator) -> None:
    async with CognigyClient(simulator.api_key, simulator.base_url) as cognigy:  # system CAs only
        with pytest.raises(CognigyUnavailable) as caught:
            await cognigy.list_webhooks()

    assert caught.value.maybe_applied is False
    assert simulator.state.requests == []


async def test_a_lost_create_is_found_by_name_not_sent_again(
    cognigy: CognigyClient, simulator: RunningSimulator
) -> None:
    # Given a server that accepts duplicate names and loses the answer to a create
    simulator.configure(allow_duplicate_names=True)
    simulator.state.set_faults({"drop_after_create": True})

    # When the create's answer is lost
    with pytest.raises(CognigyUnavailable) as caught:
        await cognigy.create_webhook(endpoint())
    assert caught.value.maybe_applied is True

    # Then looking it up by name finds the one the server made: no second create is needed
    found = await cognigy.find_by_name("orders-hook")
    assert found is not None
    assert [w["id"] for w in simulator.state.webhooks_named("orders-hook")] == [found.id]
    assert simulator.state.create_attempts_by_name["orders-hook"] == 1


# --- what Cognigy returns -------------------------------------------------------------------------


def test_webhook_model_never_keeps_a_returned_secret() -> None:
    returned = {
        "id": "abc123",
        "name": "orders-hook",
        "url": "https://hooks.example.test/orders",
        "signatureHeader": "X-Signature",
        "signatureSecret": SECRET,
        "headers": {"Authorization": "Bearer sensitive-token"},
        "someNewField": 1,
    }

    webhook = CognigyWebhook.model_validate(returned)

    assert SECRET not in json.dumps(webhook.to_api_dict())
    assert SECRET not in repr(webhook)
    assert "sensitive-token" not in repr(webhook)
    assert not hasattr(webhook, "signature_secret")


def test_one_mapping_for_every_outcome() -> None:
    request = httpx.Request("GET", "https://x.test/api/v2/webhooks")

    def status(code: int, **headers: str) -> CognigyError | None:
        return map_cognigy_error("GET", WEBHOOKS_PATH, httpx.Response(code, headers=headers, request=request))

    assert status(200) is None
    assert status(201) is None
    assert status(204) is None
    assert isinstance(status(429, **{"Retry-After": "3"}), CognigyThrottled)
    assert type(status(500)) is CognigyUnavailable
    assert type(status(408)) is CognigyUnavailable
    assert type(status(501)) is CognigyRejected
    assert type(status(511)) is CognigyRejected
    assert type(status(302)) is CognigyRejected  # redirects are not followed
    assert type(status(401)) is CognigyAuthError
    assert type(status(403)) is CognigyForbidden
    assert type(status(404)) is CognigyNotFound
    assert type(status(418)) is CognigyRejected
    for exc, applied in [
        (httpx.ConnectError("refused"), False),
        (httpx.ConnectTimeout("slow"), False),
        (httpx.PoolTimeout("busy"), False),
        (httpx.ReadTimeout("slow"), True),
        (httpx.WriteTimeout("slow"), True),
        (httpx.RemoteProtocolError("gone"), True),
        (httpx.ReadError("reset"), True),
    ]:
        mapped = map_cognigy_error("POST", WEBHOOKS_PATH, exc)
        assert isinstance(mapped, CognigyUnavailable)
        assert mapped.maybe_applied is applied


# --- secrets stay secret --------------------------------------------------------------------------


async def test_the_api_key_and_secret_appear_nowhere(
    simulator: RunningSimulator,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Route the library's (Powertools) logger into caplog at DEBUG for this test.
    stdlib_logger = logging.getLogger(library_logger.name)
    stdlib_logger.addHandler(caplog.handler)
    previous = library_logger.log_level
    library_logger.setLevel(logging.DEBUG)
    wrong_key = "ck_wrong_" + "z" * 20
    # Every kind of failure once: 422, 503, a dropped connection, 429, a 409 (the name is taken by
    # the first create), the server's own 422, and a 401 for a wrong key.
    errors: list[BaseException] = []
    try:
        async with CognigyClient(simulator.api_key, simulator.base_url, verify=simulator.ca_file) as cognigy:
            spec = endpoint(signature_header="X-Signature", signature_secret=SECRET)
            await cognigy.create_webhook(spec)
            for faults in (["422"], ["503"], ["drop"], ["429"], ["slow:0"]):
                simulator.state.set_faults({"script": faults})
                try:
                    await cognigy.create_webhook(spec)
                except CognigyError as exc:
                    errors.append(exc)
            try:
                await cognigy.create_webhook(endpoint("other-hook", headers={"X-Cognigy-A": "1"}))
            except CognigyError as exc:
                errors.append(exc)
            text_of_client = repr(cognigy) + repr(cognigy.http.auth) + repr(cognigy.http.headers)
        async with CognigyClient(wrong_key, simulator.base_url, verify=simulator.ca_file) as bad:
            try:
                await bad.create_webhook(endpoint())
            except CognigyError as exc:
                errors.append(exc)
    finally:
        stdlib_logger.removeHandler(caplog.handler)
        library_logger.setLevel(previous or logging.INFO)

    assert len(errors) == 7
    captured = capsys.readouterr()
    texts = [text_of_client, caplog.text, captured.out, captured.err, json.dumps(simulator.state.snapshot())]
    for error in errors:
        texts += [str(error), repr(error), repr(error.args), json.dumps(getattr(error, "field_errors", []))]
        if error.__cause__ is not None:
            texts += [str(error.__cause__), repr(error.__cause__)]
    blob = "\n".join(texts)
    assert simulator.api_key not in blob
    assert wrong_key not in blob
    assert SECRET not in blob
    assert caplog.records, "the library logged nothing: the check above would be empty"


def test_server_text_is_scrubbed_of_known_secrets() -> None:
    request = httpx.Request("POST", "https://x.test/api/v2/webhooks")
    echo = {
        "message": f"bad key {SECRET}\r\ninjected line",
        "fieldErrors": [{"field": "signatureSecret", "message": f"{SECRET} is weak", "value": SECRET}],
    }
    response = httpx.Response(422, json=echo, request=request)

    mapped = map_cognigy_error("POST", WEBHOOKS_PATH, response, secrets=[SECRET])

    assert isinstance(mapped, CognigyRejected)
    assert SECRET not in str(mapped)
    assert "\n" not in str(mapped)
    assert SECRET not in json.dumps(mapped.field_errors)
    assert mapped.field_errors == [{"field": "signatureSecret", "message": "********** is weak"}]
