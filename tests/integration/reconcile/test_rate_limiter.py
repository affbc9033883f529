"""The register task's shared Cognigy budget (DynamoRateLimiter, one DynamoDB item) on moto's DynamoDB
with a hand-driven clock: the budget is never exceeded, and the steady state costs one write per
acquire whether the bucket is idle between calls or pacing them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cognigy_webhooks.errors import CognigyThrottled
from cognigy_webhooks.ratelimit import DynamoRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ddb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="budget",
            KeySchema=[{"AttributeName": "bucket", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "bucket", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


async def _take(ddb: Any, clock: Clock, bucket: str, n: int = 1) -> tuple[bool, int]:
    """One acquire as a fresh invocation makes it (60/min, burst 5): (taken, write requests sent)."""
    limiter = DynamoRateLimiter(
        ddb, table="budget", bucket=bucket, rate_per_minute=60, burst=5, clock=clock, max_inline_wait=0
    )
    wait: float | None = None
    try:
        await limiter.acquire(n)
    except CognigyThrottled as exc:
        wait = exc.retry_after
    if wait is None:
        return True, limiter.writes
    assert wait > 0  # a refusal says how long to wait
    return False, limiter.writes


def test_the_budget_is_never_exceeded_by_many_callers(ddb: Any) -> None:
    clock = Clock()
    start = clock.now

    async def callers() -> int:
        taken = 0
        for step in range(100):  # 20 s, two callers every 200 ms
            clock.now = start + step * 0.2
            for _ in range(2):
                ok, _ = await _take(ddb, clock, "many")
                taken += ok
        return taken

    # 60/min for 20 s plus the burst of 5 at most: the budget is never exceeded
    assert 20 <= asyncio.run(callers()) <= 25


def test_one_write_per_acquire_when_idle_and_when_pacing(ddb: Any) -> None:
    clock = Clock()

    async def calls(count: int, step: float) -> list[tuple[bool, int]]:
        results = []
        for _ in range(count):
            clock.now += step
            results.append(await _take(ddb, clock, "steady"))
        return results

    assert asyncio.run(calls(10, 100.0)) == [(True, 1)] * 10  # far apart: idle at each call
    clock.now += 100
    assert asyncio.run(calls(4, 0.0)) == [(True, 1)] * 4  # at one instant: the burst
    assert asyncio.run(calls(20, 1.0)) == [(True, 1)] * 20  # exactly at the rate: pacing
    # over the budget: refused (with the seconds to wait) for one write
    assert asyncio.run(_take(ddb, clock, "steady", n=5)) == (False, 1)
