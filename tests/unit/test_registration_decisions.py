"""The one registration engine's decisions, and the policy objects the retry loops share (issue 9,
items 2 and 8): what an attempt calls first given what is known about a name, full jitter from one
implementation, the tutorial's retry and pacing settings as one value each, and the monitoring
sync's retry settings as one value from its environment down to the sync."""

from __future__ import annotations

import asyncio
import random

import pytest

from cognigy_webhooks.audit_sync import AuditSync
from cognigy_webhooks.backoff import Backoff, full_jitter
from cognigy_webhooks.ratelimit import TokenBucket
from cognigy_webhooks.reconcile import Known, first_step
from cognigy_webhooks.settings import AuditSyncSettings
from cognigy_webhooks.tutorial import Pacing


@pytest.mark.parametrize(
    ("known", "step"),
    [
        # the tutorial's create: the happy path is one POST; only a possibly applied create looks first
        (Known(mode="create"), "create"),
        (Known(mode="create", maybe_applied=True), "look_up"),
        (Known(mode="create", in_doubt=True), "look_up"),
        # reconcile: the desired set owns the name, so an unrecorded name is always looked up first
        (Known(), "look_up"),
        (Known(recorded_id="w1"), "update"),
        (Known(recorded_id="w1", up_to_date=True), "nothing"),
        # a listing's duplicates or a missing recorded id, or a lost create: look before acting
        (Known(recorded_id="w1", up_to_date=True, in_doubt=True), "look_up"),
        (Known(recorded_id="w1", up_to_date=True, maybe_applied=True), "look_up"),
    ],
)
def test_what_an_attempt_calls_first(known: Known, step: str) -> None:
    assert first_step(known) == step


def test_create_mode_keeps_no_record() -> None:
    with pytest.raises(ValueError, match="recorded_id"):
        Known(mode="create", recorded_id="w1")


def test_full_jitter_stays_within_the_capped_exponential_bound() -> None:
    rng = random.Random(5)
    for attempt in range(1, 12):
        bound = min(4.0, 0.25 * 2 ** (attempt - 1))
        draws = [full_jitter(attempt, 0.25, 4.0, rng) for _ in range(200)]
        assert all(0.0 <= d <= bound for d in draws)
        assert max(draws) > bound * 0.8  # the whole range is used, not only its start


def test_a_backoff_policy_draws_from_its_own_source() -> None:
    policy = Backoff(max_attempts=3, base_delay=0.5, max_delay=1.5, rng=random.Random(9))
    expected = random.Random(9)

    assert [policy.delay(a) for a in (1, 2, 3)] == [full_jitter(a, 0.5, 1.5, expected) for a in (1, 2, 3)]
    assert policy.sleeper(asyncio.sleep) is asyncio.sleep  # none injected: the caller's default


def test_pacing_holds_back_the_delay_tolerance_and_checks_it() -> None:
    class Shared:
        async def acquire(self) -> None:
            return None

    shared = Shared()
    assert Pacing(limiter=shared).batch_limiter() is shared  # a budget beyond the batch: used as is
    bucket = Pacing(requests_per_minute=600, burst=10, delay_tolerance=0.5).batch_limiter()
    assert isinstance(bucket, TokenBucket)
    delays = [bucket.reserve() for _ in range(10)]
    assert delays[:5] == [0.0] * 5  # 0.5 s of 10/s = 5 tokens held back from the burst of 10
    assert delays[5] > 0.0
    with pytest.raises(ValueError, match="delay_tolerance"):
        Pacing(delay_tolerance=-1).batch_limiter()


def test_the_monitoring_syncs_retry_settings_travel_as_one_policy() -> None:
    settings = AuditSyncSettings.from_env(
        {
            "MONITORING_URL": "https://mon.example.test/ingest",
            "MONITORING_MAX_ATTEMPTS": "2",
            "MONITORING_BASE_DELAY_SECONDS": "0.25",
            "MONITORING_MAX_DELAY_SECONDS": "4",
        }
    )

    assert settings.retry == Backoff(max_attempts=2, base_delay=0.25, max_delay=4.0)
    assert AuditSync("https://mon.example.test/ingest", retry=settings.retry).retry == settings.retry

    async def sleep(seconds: float) -> None:
        return None

    legacy = AuditSync("https://mon.example.test/ingest", max_attempts=2, sleep=sleep)
    assert legacy.retry == Backoff(max_attempts=2, base_delay=0.5, max_delay=10.0, sleep=sleep)
