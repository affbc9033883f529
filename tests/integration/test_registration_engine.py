"""One registration engine under both flows, and its policy objects (issue 9, items 2, 4 and 8),
against the simulator over TLS (and moto for Secrets Manager and DynamoDB).

The tutorial's flows and the register task both run :class:`~cognigy_webhooks.reconcile.Placement`:
in create mode a lost create is adopted as it is, in reconcile mode an adopted webhook is updated to
the spec. The tutorial's retry loop and the monitoring sync wait what the one full-jitter backoff
draws. Retry waits go through an injected ``sleep`` that records them: no test waits for real."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cognigy_webhooks import (
    CognigyClient,
    CognigyUnavailable,
    WebhookAuditLog,
    WebhookEndpoint,
    process_registration_jobs,
    register_webhook_with_retry,
    sync_to_monitoring_platform,
)
from cognigy_webhooks.backoff import Backoff, full_jitter
from cognigy_webhooks.dal.secretsmanager import SecretResolver
from cognigy_webhooks.loopguard import with_loop_marks
from cognigy_webhooks.reconcile import CognigySession, Connection, Known, Placement, limiter_bucket
from cognigy_webhooks.settings import RegisterSettings
from cognigy_webhooks.tutorial import Pacing
from cogwh.localstack.template import load_template_file
from cogwh.servers import serve_in_thread
from tests.support.simulator import (
    API_KEY,
    RunningSimulator,
)

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


def endpoint(name: str = "engine-hook", **extra: Any) -> WebhookEndpoint:
    return WebhookEndpoint(name=name, url=f"https://hooks.example.test/{name}", **extra)


@dataclass
class Waits:
    """An injected sleep that records each wait instead of sleeping."""

    waits: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class Counting:
    """A shared limiter that only counts the tokens taken."""

    def __init__(self) -> None:
        self.taken = 0

    async def acquire(self, n: int = 1) -> None:
        self.taken += n


@pytest.fixture
async def cognigy(simulator: RunningSimulator) -> AsyncIterator[CognigyClient]:
    async with CognigyClient(simulator.api_key, simulator.base_url, verify=simulator.ca_file) as client:
        yield client


def calls(simulator: RunningSimulator) -> list[tuple[str, int | None]]:
    return [(r["method"], r["status"]) for r in simulator.state.requests]


# --- the engine, in its two modes -----------------------------------------------------------------


async def test_create_mode_adopts_a_lost_create_as_it_is(
    cognigy: CognigyClient, simulator: RunningSimulator
) -> None:
    # Given a create whose answer is lost (the webhook is made)
    simulator.configure(allow_duplicate_names=True)
    simulator.state.set_faults({"script": ["drop_after"]})
    placement = Placement(cognigy, endpoint(), known=Known(mode="create"))

    with pytest.raises(CognigyUnavailable) as lost:
        await placement.attempt()
    assert placement.failed(lost.value) is True  # it may have been applied: look first next time
    placed = await placement.attempt()

    # Then the next attempt looked the name up and took what the lost create made, without a write
    [made] = simulator.state.webhooks_named("engine-hook")
    assert (placed.outcome, placed.webhook_id, placed.status_code) == ("adopted", made["id"], None)
    assert [m for m, _ in calls(simulator)] == ["POST", "GET"]


async def test_reconcile_mode_looks_first_and_updates_what_it_adopts(
    cognigy: CognigyClient, simulator: RunningSimulator
) -> None:
    # Given a webhook holding the name that no record names (made by hand, an older spec)
    made = await cognigy.create_webhook(endpoint(timeout_ms=3000))
    before = len(simulator.state.requests)
    limiter = Counting()
    entered: list[str] = []
    spec = with_loop_marks(endpoint(timeout_ms=7000))

    placement = Placement(
        cognigy, spec, known=Known(), limiter=limiter, before_look_up=lambda: entered.append("claim")
    )
    placed = await placement.attempt()

    # Then the name was claimed and looked up before anything else, and the webhook adopted in place
    assert entered == ["claim"]
    assert (placed.outcome, placed.webhook_id, placed.status_code) == ("adopted", made.id, 200)
    assert [m for m, _ in calls(simulator)[before:]] == ["GET", "PATCH"]
    assert limiter.taken == 2  # the look-up and the write after it, asked for up front
    assert (await cognigy.get_webhook(made.id)).timeout == 7000


async def test_a_409_the_listing_cannot_explain_yet_is_settled_by_the_next_attempt(
    cognigy: CognigyClient, simulator: RunningSimulator
) -> None:
    # Given a lost create, then two look-ups that do not show it yet (a listing that lags behind)
    simulator.state.set_faults({"script": ["drop_after", "stale", "pass", "stale"]})

    webhook = await register_webhook_with_retry(cognigy, endpoint(), sleep=Waits(), rng=random.Random(4))

    # Then one webhook, adopted; no create was sent after the lost one without a look-up before it
    [stored] = simulator.state.webhooks_named("engine-hook")
    assert webhook["id"] == stored["id"]
    seen = calls(simulator)
    assert seen[-1] == ("GET", 200)
    for index, (method, _status) in enumerate(seen[1:], start=1):
        if method == "POST":
            assert seen[index - 1][0] == "GET"
    assert ("POST", 409) in seen


# --- one backoff, its policy object ---------------------------------------------------------------


async def test_the_tutorials_waits_are_the_one_backoffs_whatever_form_the_settings_take(
    cognigy: CognigyClient, simulator: RunningSimulator
) -> None:
    expected_source = random.Random(1)
    expected = [full_jitter(attempt, 0.5, 1.5, expected_source) for attempt in (1, 2, 3)]

    simulator.state.set_faults({"script": ["503", "500", "502"]})
    as_policy = Waits()
    await register_webhook_with_retry(
        cognigy,
        endpoint("policy-hook"),
        retry=Backoff(max_attempts=5, base_delay=0.5, max_delay=1.5, sleep=as_policy, rng=random.Random(1)),
    )
    simulator.state.set_faults({"script": ["503", "500", "502"]})
    as_keywords = Waits()
    await register_webhook_with_retry(
        cognigy,
        endpoint("keyword-hook"),
        5,
        base_delay=0.5,
        max_delay=1.5,
        sleep=as_keywords,
        rng=random.Random(1),
    )

    assert as_policy.waits == as_keywords.waits == expected


async def test_the_monitoring_sync_waits_what_the_same_backoff_draws() -> None:
    answers = [503, 502]

    async def ingest(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({}, status_code=answers.pop(0) if answers else 200)

    waits = Waits()
    logs = [WebhookAuditLog(webhook_id="w1", action="register", status_code=201)]
    with serve_in_thread(Starlette(routes=[Route("/ingest", ingest, methods=["POST"])])) as served:
        result = await sync_to_monitoring_platform(
            logs,
            f"{served.base_url}/ingest",
            retry=Backoff(max_attempts=4, base_delay=0.5, max_delay=30.0, sleep=waits, rng=random.Random(2)),
        )

    source = random.Random(2)
    assert result.sent == 1
    assert waits.waits == [full_jitter(attempt, 0.5, 30.0, source) for attempt in (1, 2)]


async def test_a_batch_takes_its_retry_and_pacing_settings_as_one_value_each(
    cognigy: CognigyClient, simulator: RunningSimulator
) -> None:
    simulator.state.set_faults({"script": ["503"]})
    waits = Waits()
    limiter = Counting()

    results = await process_registration_jobs(
        [endpoint("a-hook"), endpoint("b-hook"), endpoint("c-hook")],
        client=cognigy,
        retry=Backoff(max_attempts=3, sleep=waits, rng=random.Random(5)),
        pacing=Pacing(limiter=limiter),
    )

    assert [(r.name, r.status) for r in results] == [
        ("a-hook", "registered"),
        ("b-hook", "registered"),
        ("c-hook", "registered"),
    ]
    assert len(waits.waits) == 1  # the one 503, waited out once
    assert limiter.taken == len(simulator.state.requests)  # every request, retries and look-ups too


async def test_a_policy_and_its_separate_keywords_together_are_refused(
    cognigy: CognigyClient, simulator: RunningSimulator
) -> None:
    with pytest.raises(ValueError, match="not both"):
        await register_webhook_with_retry(cognigy, endpoint(), 3, retry=Backoff())
    with pytest.raises(ValueError, match="not both"):
        await process_registration_jobs([endpoint()], client=cognigy, burst=5, pacing=Pacing())
    with pytest.raises(ValueError, match="not both"):
        await process_registration_jobs([endpoint()], client=cognigy, base_delay=1.0, retry=Backoff())
    with pytest.raises(ValueError, match="not both"):
        await sync_to_monitoring_platform(
            [], "https://mon.example.test/ingest", max_attempts=2, retry=Backoff()
        )
    assert simulator.state.requests == []


# --- the reconcile tasks' session, built from the settings ----------------------------------------


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        table = load_template_file(ROOT / "template.yaml")["Resources"]["RateLimitTable"]["Properties"]
        ddb.create_table(
            TableName="rate-limit",
            KeySchema=table["KeySchema"],
            AttributeDefinitions=table["AttributeDefinitions"],
            BillingMode=table["BillingMode"],
        )
        yield ddb, boto3.client("secretsmanager", region_name="us-east-1")


async def test_a_session_paces_through_the_shared_limiter_and_follows_a_key_rotation(
    simulator: RunningSimulator, aws: tuple[Any, Any]
) -> None:
    ddb, secretsmanager = aws
    secretsmanager.create_secret(Name="cognigy-api-key", SecretString=API_KEY)
    settings = RegisterSettings.from_env(
        {
            "ENDPOINTS_TABLE": "endpoints",
            "AUDIT_TABLE": "audit",
            "RATE_LIMIT_TABLE": "rate-limit",
            "COGNIGY_API": "tutorial",
            "COGNIGY_BASE_URL": simulator.base_url,
            "COGNIGY_API_KEY_SECRET": "cognigy-api-key",
            "COGNIGY_CA_BUNDLE": str(simulator.ca_file),
        }
    )
    session = CognigySession(
        settings, dynamodb=ddb, secrets=SecretResolver(max_age=300, client=secretsmanager)
    )

    async def listing(cognigy: Connection) -> int:
        return len(await cognigy.api.list_webhooks())

    # The paced client takes its tokens from the key's shared bucket (a fingerprint, never the key)
    async with session.open(paced=True) as cognigy:
        await cognigy.api.list_webhooks()
    items = ddb.scan(TableName="rate-limit")["Items"]
    assert [item["bucket"]["S"] for item in items] == [limiter_bucket(API_KEY)]
    assert API_KEY not in repr(items) + repr(session)

    # When the key rotates behind the cached one, a 401 makes one fresh read and the work runs again
    rotated = "ck_rotated_" + "r" * 24
    simulator.configure(api_keys=(rotated,))
    secretsmanager.put_secret_value(SecretId="cognigy-api-key", SecretString=rotated)
    assert await session.with_rotated_key(listing) == 0
    assert calls(simulator) == [("GET", 401), ("GET", 200)]
