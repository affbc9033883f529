"""The tutorial's registration flows (fixed) against the simulator over TLS, and the token bucket.

Retry waits go through an injected ``sleep`` that records them, so no test waits for real."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cognigy_webhooks import (
    CognigyAuthError,
    CognigyClient,
    CognigyForbidden,
    CognigyRejected,
    CognigyThrottled,
    CognigyUnavailable,
    InvalidSpec,
    WebhookEndpoint,
    configure_timeout_pipeline,
    create_cognigy_client,
    process_registration_jobs,
    register_webhook_with_retry,
)
from cognigy_webhooks.ratelimit import RateLimiter, TokenBucket
from cognigy_webhooks.tutorial import RegistrationResult
from cogwh.simulator import WEBHOOKS_PATH
from tests.support.clocks import ManualClock, ParkedSleeps
from tests.support.simulator import (
    READ_ONLY_KEY,
    RunningSimulator,
)

SECRET = "reg-secret-" + "r" * 40


def endpoint(name: str = "orders-hook", **extra: Any) -> WebhookEndpoint:
    return WebhookEndpoint(name=name, url=f"https://hooks.example.test/{name}", **extra)


class Waits:
    """An injected sleep: records each wait instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
async def cognigy(simulator: RunningSimulator) -> AsyncIterator[CognigyClient]:
    async with CognigyClient(simulator.api_key, simulator.base_url, verify=simulator.ca_file) as client:
        yield client


def posts(simulator: RunningSimulator) -> int:
    return simulator.state.count(method="POST", path=WEBHOOKS_PATH)


# --- configure_timeout_pipeline -------------------------------------------------------------------


def test_timeouts_follow_the_endpoints_timeout_ms() -> None:
    assert configure_timeout_pipeline(3000) == httpx.Timeout(connect=3.0, read=3.0, write=3.0, pool=3.0)
    assert configure_timeout_pipeline(endpoint(timeout_ms=30000)) == httpx.Timeout(
        connect=10.0, read=30.0, write=30.0, pool=10.0
    )
    default = configure_timeout_pipeline(endpoint())
    assert (default.connect, default.read) == (10.0, 10.0)
    for bad in (999, 30001, True, "5000"):
        with pytest.raises(InvalidSpec) as caught:
            configure_timeout_pipeline(bad)
        assert caught.value.errors[0]["field"] == "timeoutMs"


# --- register_webhook_with_retry ------------------------------------------------------------------


@pytest.mark.anyio
async def test_happy_path_is_exactly_one_call(cognigy: CognigyClient, simulator: RunningSimulator) -> None:
    waits = Waits()

    webhook = await register_webhook_with_retry(cognigy, endpoint(), sleep=waits)

    assert webhook["name"] == "orders-hook"
    assert webhook["id"] in simulator.state.webhooks
    assert len(simulator.state.requests) == 1
    assert waits.waits == []


@pytest.mark.anyio
async def test_accepts_the_tutorials_httpx_client(simulator: RunningSimulator) -> None:
    async with create_cognigy_client(simulator.api_key, simulator.base_url, verify=simulator.ca_file) as http:
        webhook = await register_webhook_with_retry(
            http, endpoint(signature_header="X-Sig", signature_secret=SECRET)
        )

    assert webhook["signatureHeader"] == "X-Sig"
    assert "signatureSecret" not in webhook
    assert SECRET not in json.dumps(webhook)


@pytest.mark.anyio
async def test_retries_through_a_5xx_burst_with_capped_jittered_backoff(
    cognigy: CognigyClient, simulator: RunningSimulator
) -> None:
    # Given three 5xx answers in a row (the create, then the look-ups a lost create calls for)
    simulator.state.set_faults({"script": ["503", "500", "502"]})
    waits = Waits()

    webhook = await register_webhook_with_retry(
        cognigy, endpoint(), max_attempts=5, base_delay=0.5, max_delay=1.5, sleep=waits, rng=random.Random(1)
    )

    # Then it got through, made exactly one webhook, and backed off within the caps
    assert [w["id"] for w in simulator.state.webhooks_named("orders-hook")] == [webhook["id"]]
    assert len(waits.waits) == 3
    for attempt, wait in enumerate(waits.waits, start=1):
        assert 0 <= wait <= min(1.5, 0.5 * 2 ** (attempt - 1))
    # A 5xx on a create may have applied: every later attempt looked the name up before creating.
    methods = [r["method"] for r in simulator.state.requests]
    assert methods == ["POST", "GET", "GET", "GET", "POST"]


@pytest.mark.anyio
async def test_gives_up_after_max_attempts(cognigy: CognigyClient, simulator: RunningSimulator) -> None:
    simulator.state.set_faults({"fault_5xx": 1.0})
    waits = Waits()

    with pytest.raises(CognigyUnavailable):
        await register_webhook_with_retry(cognigy, endpoint(), max_attempts=3, sleep=waits)

    assert len(simulator.state.requests) == 3
    assert len(waits.waits) == 2


@pytest.mark.anyio
@pytest.mark.parametrize("http_date", [False, True])
async def test_429_waits_honour_retry_after(
    cognigy: CognigyClient, simulator: RunningSimulator, http_date: bool
) -> None:
    simulator.state.set_faults(
        {"script": ["429", "429"], "retry_after_s": 7, "retry_after_http_date": http_date}
    )
    waits = Waits()

    webhook = await register_webhook_with_retry(cognigy, endpoint(), sleep=waits, rng=random.Random(3))

    assert webhook["name"] == "orders-hook"
    assert len(waits.waits) == 2
    # Never earlier than the server asked (an HTTP-date has whole-second precision), at most 1 s jitter.
    low, high = (6.0, 9.0) if http_date else (7.0, 8.0)
    assert all(low <= w <= high for w in waits.waits), waits.waits
    assert posts(simulator) == 3  # a 429 means not applied: no look-up needed


@pytest.mark.anyio
async def test_429_without_retry_after_backs_off(cognigy: CognigyClient, simulator: RunningSimulator) -> None:
    simulator.state.set_faults({"script": ["429", "429"], "retry_after_raw": ""})
    waits = Waits()

    await register_webhook_with_retry(cognigy, endpoint(), base_delay=0.25, sleep=waits)

    assert len(waits.waits) == 2
    assert waits.waits[0] <= 0.25
    assert waits.waits[1] <= 0.5


@pytest.mark.anyio
async def test_a_retry_after_beyond_the_limit_is_raised(
    cognigy: CognigyClient, simulator: RunningSimulator
) -> None:
    simulator.state.set_faults({"script": ["429"], "retry_after_s": 3600})
    waits = Waits()

    with pytest.raises(CognigyThrottled) as caught:
        await register_webhook_with_retry(cognigy, endpoint(), sleep=waits, max_retry_after=300)

    assert caught.value.retry_after == 3600
    assert waits.waits == []


@pytest.mark.anyio
async def test_a_lost_create_response_makes_exactly_one_webhook(
    cognigy: CognigyClient, simulator: RunningSimulator
) -> None:
    # Given a server that would happily store a duplicate, and loses the answer to every create
    simulator.configure(allow_duplicate_names=True)
    simulator.state.set_faults({"drop_after_create": True})
    waits = Waits()

    webhook = await register_webhook_with_retry(cognigy, endpoint(), sleep=waits)

    # Then the retry looked the name up and adopted what the lost create made
    assert [w["id"] for w in simulator.state.webhooks_named("orders-hook")] == [webhook["id"]]
    assert simulator.state.create_attempts_by_name["orders-hook"] == 1
    assert [r["method"] for r in simulator.state.requests] == ["POST", "GET"]
    assert len(waits.waits) == 1


@pytest.mark.anyio
async def test_a_create_lost_to_a_read_timeout_is_adopted(simulator: RunningSimulator) -> None:
    simulator.configure(allow_duplicate_names=True)
    simulator.state.set_faults({"script": ["slow:400"]})  # the create is applied, its answer too late
    http = create_cognigy_client(simulator.api_key, simulator.base_url, verify=simulator.ca_file)
    http.timeout = httpx.Timeout(5.0, read=0.1)

    async with http:
        webhook = await register_webhook_with_retry(http, endpoint(), sleep=Waits())

    assert [w["id"] for w in simulator.state.webhooks_named("orders-hook")] == [webhook["id"]]
    assert posts(simulator) == 1


@pytest.mark.anyio
async def test_a_connection_dropped_before_the_create_creates_once(
    cognigy: CognigyClient, simulator: RunningSimulator
) -> None:
    simulator.configure(allow_duplicate_names=True)
    simulator.state.set_faults({"script": ["drop"]})

    webhook = await register_webhook_with_retry(cognigy, endpoint(), sleep=Waits())

    assert [w["id"] for w in simulator.state.webhooks_named("orders-hook")] == [webhook["id"]]
    assert [r["method"] for r in simulator.state.requests] == ["POST", "GET", "POST"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("key", "spec", "error"),
    [
        ("ck_not_a_key_000", endpoint(), CognigyAuthError),
        (READ_ONLY_KEY, endpoint(), CognigyForbidden),
        (None, endpoint(headers={"X-Cognigy-Route": "a"}), CognigyRejected),
    ],
    ids=["revoked-key", "read-only-key", "rejected-spec"],  # the keys are random: never in an id
)
async def test_permanent_errors_are_raised_at_once(
    simulator: RunningSimulator, key: str | None, spec: WebhookEndpoint, error: type[Exception]
) -> None:
    waits = Waits()
    async with CognigyClient(
        key or simulator.api_key, simulator.base_url, verify=simulator.ca_file
    ) as cognigy:
        with pytest.raises(error):
            await register_webhook_with_retry(cognigy, spec, sleep=waits)

    assert len(simulator.state.requests) == 1
    assert waits.waits == []


@pytest.mark.anyio
async def test_a_name_taken_by_someone_else_is_not_adopted(
    cognigy: CognigyClient, simulator: RunningSimulator
) -> None:
    await cognigy.create_webhook(endpoint())

    with pytest.raises(CognigyRejected) as caught:
        await register_webhook_with_retry(cognigy, endpoint(), sleep=Waits())

    assert caught.value.status_code == 409


@pytest.mark.anyio
async def test_a_409_after_a_lost_create_is_adopted(
    cognigy: CognigyClient, simulator: RunningSimulator
) -> None:
    # Given a create whose answer is lost, then a look-up that does not show it yet (a listing that has
    # not caught up): the next create is answered 409, the name being taken by that very webhook
    simulator.state.set_faults({"script": ["drop_after", "stale"]})

    webhook = await register_webhook_with_retry(cognigy, endpoint(), sleep=Waits(), rng=random.Random(2))

    # Then the 409 led to another look-up and the webhook was adopted: one webhook, its id returned
    [stored] = simulator.state.webhooks_named("orders-hook")
    assert webhook["id"] == stored["id"]
    assert [(r["method"], r["status"]) for r in simulator.state.requests] == [
        ("POST", None),
        ("GET", 200),
        ("POST", 409),
        ("GET", 200),
    ]


@pytest.mark.anyio
async def test_retry_after_waits_are_spread_by_jitter(
    cognigy: CognigyClient, simulator: RunningSimulator
) -> None:
    # Many callers throttled together must not all come back in the same instant
    simulator.state.set_faults({"script": ["429"] * 4, "retry_after_s": 7})
    waits = Waits()

    await register_webhook_with_retry(cognigy, endpoint(), sleep=waits, rng=random.Random(11))

    assert len(waits.waits) == 4
    assert all(7.0 < w <= 8.0 for w in waits.waits), waits.waits  # later than asked, at most 1 s more
    assert len(set(waits.waits)) == 4


# --- process_registration_jobs --------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_paced_batch_gets_no_429_and_keeps_input_order(simulator: RunningSimulator) -> None:
    # Given a tight budget: 3000 requests/min (one per 20 ms), burst 5 for the client; the server's
    # bucket holds 3 more (60 ms of arrival jitter: on a loaded 2-core runner, requests paced 20 ms
    # apart can reach the server bunched up). 30 requests at once would still be throttled (below).
    simulator.configure(rate_per_minute=3000, burst=8)
    names = [f"batch-{i:02d}" for i in reversed(range(30))]

    results = await process_registration_jobs(
        [endpoint(n) for n in names],
        simulator.api_key,
        base_url=simulator.base_url,
        verify=simulator.ca_file,
        max_concurrency=10,
        requests_per_minute=3000,
        burst=5,
        sleep=Waits(),
    )

    assert [r.name for r in results] == names
    assert all(r.success and r.status == "registered" for r in results), results
    assert {r.webhook_id for r in results} == set(simulator.state.webhooks)
    assert simulator.state.status_counts[429] == 0
    # each name created exactly once (counted per name: a slow answer left over from an earlier test
    # may still be counted in status_counts after the reset)
    assert [simulator.state.creates_by_name[n] for n in names] == [1] * 30


@pytest.mark.anyio
async def test_the_same_batch_unpaced_is_throttled(simulator: RunningSimulator) -> None:
    # The contrast that gives the test above its meaning: without pacing the server does throttle.
    simulator.configure(rate_per_minute=3000, burst=5)

    results = await process_registration_jobs(
        [endpoint(f"rush-{i:02d}") for i in range(30)],
        simulator.api_key,
        base_url=simulator.base_url,
        verify=simulator.ca_file,
        max_concurrency=30,
        requests_per_minute=1_000_000,
        burst=1000,
        max_attempts=1,
    )

    assert simulator.state.status_counts[429] > 0
    throttled = [r for r in results if not r.success]
    assert throttled
    assert {r.error_type for r in throttled} == {"CognigyThrottled"}


@pytest.mark.anyio
async def test_one_rejected_endpoint_does_not_stop_the_others(simulator: RunningSimulator) -> None:
    specs: list[WebhookEndpoint | dict[str, Any]] = [
        endpoint("good-one"),
        endpoint("reserved-header", headers={"X-Cognigy-Bot": "1"}),
        {"name": "bad-spec", "url": "http://plain.example.test"},
        endpoint("good-two"),
    ]

    results = await process_registration_jobs(
        specs, simulator.api_key, base_url=simulator.base_url, verify=simulator.ca_file, sleep=Waits()
    )

    assert [(r.name, r.status) for r in results] == [
        ("good-one", "registered"),
        ("reserved-header", "failed"),
        ("bad-spec", "failed"),
        ("good-two", "registered"),
    ]
    rejected, invalid = results[1], results[2]
    assert rejected.error_type == "CognigyRejected"
    assert rejected.status_code == 422
    assert rejected.field_errors[0]["field"] == "headers.X-Cognigy-Bot"
    assert invalid.error_type == "InvalidSpec"
    assert invalid.field_errors[0]["field"] == "url"
    assert sorted(w["name"] for w in simulator.state.webhooks.values()) == ["good-one", "good-two"]


@pytest.mark.anyio
async def test_results_never_carry_a_secret(simulator: RunningSimulator) -> None:
    wrong_key = "ck_wrong_" + "w" * 24

    results = await process_registration_jobs(
        [endpoint(signature_header="X-Sig", signature_secret=SECRET)],
        wrong_key,
        base_url=simulator.base_url,
        verify=simulator.ca_file,
    )

    assert results[0].error_type == "CognigyAuthError"
    dumped = json.dumps([r.model_dump(mode="json", by_alias=True) for r in results]) + repr(results)
    assert wrong_key not in dumped
    assert SECRET not in dumped


@pytest.mark.anyio
async def test_a_given_client_and_a_shared_limiter_are_used(
    cognigy: CognigyClient, simulator: RunningSimulator
) -> None:
    class Counting:
        def __init__(self) -> None:
            self.taken = 0

        async def acquire(self) -> None:
            self.taken += 1

    limiter = Counting()
    assert isinstance(limiter, RateLimiter)

    results = await process_registration_jobs(
        [endpoint("a-hook"), endpoint("b-hook")], client=cognigy, limiter=limiter
    )

    assert [r.success for r in results] == [True, True]
    assert limiter.taken == 2
    assert cognigy.limiter is None  # the caller's client is left as it was
    assert await cognigy.list_webhooks()  # and still open


def test_result_shape_is_simple() -> None:
    result = RegistrationResult(name="a-hook", success=True, status="registered", webhook_id="w1")

    assert result.model_dump(by_alias=True) == {
        "name": "a-hook",
        "success": True,
        "status": "registered",
        "webhookId": "w1",
        "errorType": None,
        "errorMessage": None,
        "statusCode": None,
        "fieldErrors": [],
    }


# --- the token bucket -----------------------------------------------------------------------------


def test_bucket_allows_a_burst_then_paces_at_the_rate() -> None:
    clock = ManualClock()
    bucket = TokenBucket(60, 5, clock=clock)  # one token per second

    delays = [bucket.reserve() for _ in range(8)]

    assert delays == [0.0] * 5 + [1.0, 2.0, 3.0]
    assert bucket.available == 0.0


def test_bucket_refills_but_never_beyond_burst() -> None:
    clock = ManualClock()
    bucket = TokenBucket(60, 3, clock=clock)
    for _ in range(3):
        bucket.reserve()

    clock.now += 1.5
    assert bucket.available == pytest.approx(1.5)
    clock.now += 3600
    assert bucket.available == 3.0
    assert [bucket.reserve() for _ in range(4)] == [0.0, 0.0, 0.0, 1.0]


def test_bucket_never_exceeds_the_budget_in_any_window() -> None:
    clock = ManualClock()
    rng = random.Random(5)
    rate, burst = 120.0, 4  # 2 per second
    bucket = TokenBucket(rate, burst, clock=clock)
    due: list[float] = []
    for _ in range(300):
        clock.now += rng.choice([0.0, 0.0, 0.01, 0.2, 1.5])
        due.append(clock.now + bucket.reserve())

    assert due == sorted(due)  # served first come, first served
    for i, start in enumerate(due):
        for end in due[i:]:
            in_window = sum(1 for t in due if start <= t <= end)
            assert in_window <= burst + (end - start) * rate / 60 + 1e-9


@pytest.mark.anyio
async def test_bucket_serves_concurrent_callers_in_arrival_order() -> None:
    # It ran on the real clock with 0.1 ms slots and failed about 1 run in 13 on a busy machine:
    # sleeps whose deadlines are 0.1 ms apart woke out of order, and a caller preempted past its
    # own slot had nothing to wait for and overtook the callers still asleep. Here the worst of
    # both happens on purpose, deterministically.
    # Given a bucket (one token a second) whose sleeps end in the reverse of their start order
    clock = ManualClock()
    sleeps = ParkedSleeps()
    bucket = TokenBucket(60, 1, clock=clock, sleep=sleeps)
    order: list[int] = []

    async def caller(i: int) -> None:
        await bucket.acquire()
        order.append(i)

    async def wake() -> None:
        sleeps.wake_all_in_reverse()

    # When 10 callers arrive at once, then a latecomer after every slot so far has passed
    async with asyncio.TaskGroup() as group:
        for i in range(10):
            group.create_task(caller(i))
        await sleeps.wait_for(9)  # caller 0 took the token; 1-9 wait for their slots
        clock.now += 60
        group.create_task(caller(10))  # its slot is due already: it does not sleep
        group.create_task(wake())  # tasks start in creation order: the latecomer has reserved

    # Then they are served in the order they arrived
    assert order == list(range(11))
    assert len(sleeps.parked) == 9


def test_bucket_checks_its_arguments() -> None:
    for rate, burst in [(0, 1), (-1, 1), (float("inf"), 1), (60, 0), (60, 1.5)]:
        with pytest.raises(ValueError, match=r"rate_per_minute|burst"):
            TokenBucket(rate, burst)  # type: ignore[arg-type]
    assert repr(TokenBucket(60, 2)) == "TokenBucket(rate_per_minute=60, burst=2)"
