"""The token bucket's first-come-first-served promise, whatever order its sleeps end in.

Sleeps are injected and parked until the test wakes them, so every order a busy machine's timers
could produce is played on purpose (no real waiting, no timing in any assertion)."""

from __future__ import annotations

import asyncio
import random

import pytest

from cognigy_webhooks.ratelimit import TokenBucket
from tests.support.clocks import ManualClock, ParkedSleeps

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("seed", range(25))
async def test_any_wake_order_and_late_arrivals_still_serve_first_come_first_served(seed: int) -> None:
    # Given sleeps that end in a random order and callers arriving at random times
    rng = random.Random(seed)
    clock = ManualClock()
    sleeps = ParkedSleeps()
    bucket = TokenBucket(60, rng.randint(1, 3), clock=clock, sleep=sleeps)
    order: list[int] = []

    async def caller(i: int, arrived: asyncio.Event) -> None:
        arrived.set()
        await bucket.acquire()  # its slot is reserved before it first waits
        order.append(i)

    # When callers arrive, some long after their own slot has passed, then the sleeps end scrambled
    async with asyncio.TaskGroup() as group:
        for i in range(15):
            clock.now += rng.choice([0.0, 0.0, 0.3, 2.5, 30.0])
            arrived = asyncio.Event()
            group.create_task(caller(i, arrived))
            await arrived.wait()
        wake_order = list(range(len(sleeps.parked)))
        rng.shuffle(wake_order)
        sleeps.wake(wake_order)

    # Then every caller was served in arrival order
    assert order == list(range(15))


async def test_a_cancelled_caller_hands_on_its_place_without_letting_the_next_one_jump_ahead() -> None:
    # Given five callers asleep on their slots
    clock = ManualClock()
    sleeps = ParkedSleeps()
    bucket = TokenBucket(60, 1, clock=clock, sleep=sleeps)
    order: list[int] = []

    async def caller(i: int) -> None:
        await bucket.acquire()
        order.append(i)

    tasks = [asyncio.create_task(caller(i)) for i in range(6)]
    await sleeps.wait_for(5)  # caller 0 went at once

    # When caller 3 is cancelled, then caller 4's sleep ends before those of callers 1 and 2
    tasks[3].cancel()
    sleeps.wake([3])  # caller 4
    await asyncio.wait([tasks[3]])
    assert order == [0]  # caller 4 still waits for 1 and 2
    sleeps.wake([0, 1, 2, 4])
    await asyncio.gather(*tasks, return_exceptions=True)

    # Then the others are served in order and the cancelled one is not
    assert order == [0, 1, 2, 4, 5]
    assert tasks[3].cancelled()


async def test_a_caller_whose_slot_is_due_does_not_wait_when_nobody_is_ahead() -> None:
    clock = ManualClock()
    sleeps = ParkedSleeps()
    bucket = TokenBucket(60, 2, clock=clock, sleep=sleeps)

    await bucket.acquire()
    await bucket.acquire()  # the burst: no sleep, nobody ahead
    clock.now += 10
    await bucket.acquire()

    assert sleeps.parked == []


def test_the_bucket_can_be_reused_by_another_event_loop() -> None:
    clock = ManualClock()
    bucket = TokenBucket(60, 1, clock=clock)

    asyncio.run(bucket.acquire())
    clock.now += 5
    asyncio.run(bucket.acquire())

    assert bucket.available == pytest.approx(0.0)


def test_the_real_clock_keeps_arrival_order_under_sub_millisecond_slots() -> None:
    # The flake's own set-up (0.1 ms slots on the real clock): order holds however the timers fire.
    async def run() -> list[int]:
        bucket = TokenBucket(600_000, 1)
        order: list[int] = []

        async def caller(i: int) -> None:
            await bucket.acquire()
            order.append(i)

        async with asyncio.TaskGroup() as group:
            for i in range(20):
                group.create_task(caller(i))
        return order

    for _ in range(50):
        assert asyncio.run(run()) == list(range(20))
