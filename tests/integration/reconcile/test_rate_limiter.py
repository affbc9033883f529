"""The shared Cognigy budget (DynamoRateLimiter: one RateLimitTable item, built from template.yaml's
own properties, on moto's DynamoDB) with a hand-driven clock and sleeps that record when a request
would go: several processes (each its own LeasePool, as warm Lambdas are) never send more than the
budget in any window; a busy process at a fast budget leases and writes a few times for hundreds of
requests; at a slow budget every request costs one write and no write is ever refused to ask again
(reserve, then sleep); callers queued behind a write are served by it; a lease its holder never
settles is reclaimed after its end; a caller too far from its slot is throttled without a write."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cognigy_webhooks.budget import SKEW_SECONDS, Budget
from cognigy_webhooks.errors import CognigyThrottled
from cognigy_webhooks.ratelimit import DynamoRateLimiter, LeasePool
from cogwh.demo import ROOT
from cogwh.localstack.template import load_template_file
from tests.support.budget import excess

TABLE = "rate-limit"
EXACT = 1e-3  # of a token: float rounding at epoch-sized times, nothing more


class World:
    """One clock for every process; a sleep that records when the caller would wake and send."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.sends: list[float] = []
        self._woke: float | None = None

    def clock(self) -> float:
        return self.now if self._woke is None else self._woke

    async def sleep(self, seconds: float) -> None:
        self._woke = self.now + seconds  # the caller wakes then (for its own deadline check)

    def sent(self) -> None:
        self.sends.append(self.clock())
        self._woke = None


@pytest.fixture
def ddb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        table = load_template_file(ROOT / "template.yaml")["Resources"]["RateLimitTable"]["Properties"]
        client.create_table(
            TableName=TABLE,
            KeySchema=table["KeySchema"],
            AttributeDefinitions=table["AttributeDefinitions"],
            BillingMode=table["BillingMode"],
        )
        yield client


def limiter(ddb: Any, world: World, pool: LeasePool, *, rate: float, burst: int) -> DynamoRateLimiter:
    """One invocation's limiter in the process that ``pool`` stands for."""
    return DynamoRateLimiter(
        ddb,
        table=TABLE,
        bucket="key",
        rate_per_minute=rate,
        burst=burst,
        clock=world.clock,
        sleep=world.sleep,
        pool=pool,
    )


async def send(ddb: Any, world: World, pool: LeasePool, *, rate: float, burst: int) -> DynamoRateLimiter:
    one = limiter(ddb, world, pool, rate=rate, burst=burst)
    await one.acquire()
    world.sent()
    return one


def item(ddb: Any) -> dict[str, Any]:
    return dict(ddb.get_item(TableName=TABLE, Key={"bucket": {"S": "key"}}, ConsistentRead=True)["Item"])


@pytest.mark.parametrize("seed", range(4))
def test_processes_sharing_the_bucket_never_send_more_than_the_budget_in_any_window(
    ddb: Any, seed: int
) -> None:
    rng = random.Random(seed)
    world = World()
    rate, burst = rng.choice([(60, 5), (600, 10), (60_000, 50)])
    pools = [LeasePool() for _ in range(3)]
    waits: list[float] = []

    async def run() -> None:
        for _ in range(150):
            world.now += rng.choice([0.0, 0.01, 0.1, 0.5, 2.0]) * 60 / rate
            try:
                await send(ddb, world, rng.choice(pools), rate=rate, burst=burst)
            except CognigyThrottled as exc:
                waits.append(exc.retry_after or 0.0)

    asyncio.run(run())
    assert excess(world.sends, Budget.of(rate, burst)) <= EXACT
    assert len(world.sends) + len(waits) == 150
    assert all(wait > 0 for wait in waits)  # a refusal says how long to wait


def test_a_busy_process_at_a_fast_budget_leases_and_writes_a_handful_of_times(ddb: Any) -> None:
    world, pool = World(), LeasePool()

    async def run() -> int:
        writes = 0
        for _ in range(300):  # a request every millisecond for 0.3 s
            world.now += 0.001
            writes += (await send(ddb, world, pool, rate=1_000_000, burst=10_000)).writes
        return writes

    writes = asyncio.run(run())
    assert writes <= 3  # a slot, then a lease sized to the pace, then perhaps one more
    assert excess(world.sends, Budget.of(1_000_000, 10_000)) <= EXACT
    assert int(item(ddb)["v"]["N"]) == writes


def test_at_a_slow_budget_each_request_costs_one_write_and_none_is_refused(ddb: Any) -> None:
    world, pool = World(), LeasePool()
    start = world.now

    async def run() -> list[tuple[int, int]]:
        costs = []
        for step in range(12):  # seven callers at once (the burst, then two slots ahead), then one a second
            world.now = start + max(0, step - 6)
            one = await send(ddb, world, pool, rate=60, burst=5)
            costs.append((one.writes, one.refused))
        return costs

    assert asyncio.run(run()) == [(1, 0)] * 12  # no lease: less than a token of held budget is worth it
    # the two beyond the burst reserved their slots at once and slept until them
    assert [round(at - start, 6) for at in world.sends] == [0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7]
    assert excess(world.sends, Budget.of(60, 5)) <= EXACT


def test_callers_queued_behind_a_write_are_served_by_it(ddb: Any) -> None:
    world, pool = World(), LeasePool()

    async def run() -> list[int]:
        with pool.queued(1), pool.queued(1), pool.queued(2):  # three callers waiting on the write
            first = await send(ddb, world, pool, rate=60, burst=5)
        rest = [limiter(ddb, world, pool, rate=60, burst=5) for _ in range(3)]
        for one, n in zip(rest, (1, 1, 2), strict=True):
            await one.acquire(n)
        return [first.writes, *(one.writes for one in rest)]

    assert asyncio.run(run()) == [1, 0, 0, 0]  # one write reserved the five slots


def test_a_lease_whose_holder_never_comes_back_is_reclaimed_after_its_end(ddb: Any) -> None:
    world, frozen, other = World(), LeasePool(), LeasePool()

    async def run() -> None:
        for _ in range(3):  # busy enough to lease, then it freezes (a Lambda no longer invoked)
            world.now += 0.001
            await send(ddb, world, frozen, rate=1_000_000, burst=10_000)
        (ends,) = (int(e) for e in item(ddb)["held"]["M"])
        world.now = ends + SKEW_SECONDS  # not yet: its holder's clock may be behind
        await send(ddb, world, other, rate=1_000_000, burst=10_000)
        assert str(ends) in item(ddb)["held"]["M"]
        world.now = ends + SKEW_SECONDS + 0.5
        await send(ddb, world, other, rate=1_000_000, burst=10_000)
        assert str(ends) not in item(ddb)["held"]["M"]

    asyncio.run(run())
    assert excess(world.sends, Budget.of(1_000_000, 10_000)) <= EXACT


def test_a_write_another_process_made_stale_is_made_again_from_the_refusal(ddb: Any) -> None:
    world, a, b = World(), LeasePool(), LeasePool()

    async def run() -> tuple[int, int]:
        writes = refused = 0
        for step in range(6):  # the two processes take turns: each finds its last look stale
            world.now += 1.0
            one = await send(ddb, world, (a, b)[step % 2], rate=60, burst=5)
            writes, refused = writes + one.writes, refused + one.refused
        return writes, refused

    writes, refused = asyncio.run(run())
    assert (writes - refused, refused) == (6, 4)  # six applied; every turn but the first two refused once
    assert len(world.sends) == 6


def test_a_caller_too_far_from_its_slot_is_throttled_without_a_write(ddb: Any) -> None:
    world, busy, late = World(), LeasePool(), LeasePool()

    async def run() -> DynamoRateLimiter:
        for _ in range(7):  # the burst of 5, then slots up to 2 s ahead
            await send(ddb, world, busy, rate=60, burst=5)
        one = limiter(ddb, world, late, rate=60, burst=5)
        with pytest.raises(CognigyThrottled) as caught:
            await one.acquire()
        assert caught.value.retry_after == pytest.approx(3.0)
        return one

    assert asyncio.run(run()).writes == 0


def test_an_item_of_the_limiter_before_leases_is_honoured_then_replaced(ddb: Any) -> None:
    world, pool = World(), LeasePool()
    ddb.put_item(TableName=TABLE, Item={"bucket": {"S": "key"}, "tat": {"N": str(world.now + 60)}})

    async def run() -> None:
        with pytest.raises(CognigyThrottled):  # its time is honoured: the budget was spent
            await send(ddb, world, pool, rate=60, burst=5)
        world.now += 60
        await send(ddb, world, pool, rate=60, burst=5)

    asyncio.run(run())
    assert set(item(ddb)) == {"bucket", "s", "held", "v"}
