"""Pacing calls to Cognigy so a batch stays inside the API key's request budget: both limiters, side
by side.

:class:`RateLimiter` is the one thing the Cognigy client needs: ``await limiter.acquire()`` before
each request. Two implementations, one algorithm (GCRA, a token bucket stated as a "theoretical
arrival time"):

- :class:`TokenBucket`, in process (one event loop, e.g. one batch of the tutorial's registrations):
  waits in place, serves callers first come, first served;
- :class:`DynamoRateLimiter`, shared by every concurrent Lambda that uses one API key (the plan and
  register tasks): the bucket is one RateLimitTable item (key ``bucket``, attribute ``tat``) moved
  only by conditional updates, so no two callers spend the same capacity; a wait too long to spend in
  a Lambda is raised as :class:`~cognigy_webhooks.errors.CognigyThrottled` for the state machine to
  wait out. It is the RateLimitTable's only writer; a DynamoDB failure is a
  :class:`~cognigy_webhooks.errors.StoreError` (the task is retried).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from botocore.exceptions import BotoCoreError, ClientError

from cognigy_webhooks.errors import CognigyThrottled, StoreError, aws_error_code

__all__ = ["DynamoRateLimiter", "RateLimiter", "TokenBucket"]


@runtime_checkable
class RateLimiter(Protocol):
    """Anything that can make a caller wait for its turn to send one request."""

    async def acquire(self) -> None:
        """Return once the caller may send one request (the request's token is then spent)."""
        ...


class TokenBucket:
    """A token bucket holding at most ``burst`` tokens and refilling at ``rate_per_minute``.

    It is implemented as the equivalent virtual-scheduling form (GCRA): each :meth:`acquire`
    reserves the next free slot at once, in call order, then sleeps until that slot, so no window
    of time ever holds more than ``burst + rate * window`` acquisitions and no lock is needed.

    Callers are served strictly first come, first served (FIFO): :meth:`acquire` returns in the
    order the slots were reserved, whatever the timers do. Slot times alone do not give that: two
    sleeps whose deadlines are a fraction of a millisecond apart can wake out of order on a busy
    machine, and a caller that arrives after its slot has already passed (it was preempted between
    two others) has nothing to wait for and would overtake the callers still asleep. So each caller
    also waits for the one before it to be released. Waiting longer never spends more budget. A
    caller cancelled while waiting forfeits its slot (the budget is never exceeded, a little of it
    may go unused) and its successor is released once its predecessor is, not before.

    The bucket starts full. ``clock`` must be monotonic (default :func:`time.monotonic`); ``clock``
    and ``sleep`` are injectable so tests can drive time by hand.
    """

    def __init__(
        self,
        rate_per_minute: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if isinstance(rate_per_minute, bool) or not math.isfinite(rate_per_minute) or rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be a positive finite number")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError("burst must be an integer >= 1")
        self.rate_per_minute = float(rate_per_minute)
        self.burst = burst
        self._interval = 60.0 / self.rate_per_minute  # seconds per token
        self._tolerance = (burst - 1) * self._interval  # how far ahead of the schedule a burst may run
        self._clock = clock
        self._sleep = sleep
        self._tat = clock()  # theoretical arrival time of the next request at the steady rate
        self._last: asyncio.Future[None] | None = None  # released when the latest caller is

    def __repr__(self) -> str:
        return f"TokenBucket(rate_per_minute={self.rate_per_minute:g}, burst={self.burst})"

    @property
    def available(self) -> float:
        """Tokens in the bucket now (fractional while refilling); for reports and tests."""
        now = self._clock()
        return max(0.0, min(float(self.burst), (now - (self._tat - self._tolerance)) / self._interval + 1.0))

    def reserve(self) -> float:
        """Take the next slot without waiting; returns the delay (seconds, >= 0) until it is due."""
        now = self._clock()
        tat = max(self._tat, now)
        due = tat - self._tolerance
        self._tat = tat + self._interval
        return max(0.0, due - now)

    async def acquire(self) -> None:
        """Wait for the next slot and for every earlier caller to have been released (FIFO)."""
        loop = asyncio.get_running_loop()
        delay = self.reserve()
        previous = self._last
        if previous is not None and (previous.done() or previous.get_loop() is not loop):
            previous = None  # already released (or left behind by another event loop)
        mine: asyncio.Future[None] = loop.create_future()
        self._last = mine
        try:
            if delay > 0:
                await self._sleep(delay)
            if previous is not None:
                await asyncio.shield(previous)  # cancelling us must not cancel the caller before us
        finally:
            if previous is None or previous.done():
                _release(mine)
            else:  # cancelled before our turn: hand on our place once the caller before us goes
                previous.add_done_callback(lambda _: _release(mine))


def _release(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


# --- shared by every Lambda: one DynamoDB item per API key ------------------------------------------


class DynamoRateLimiter:
    """One shared request budget per Cognigy API key across every concurrent Lambda: GCRA (a token
    bucket stated as a 'theoretical arrival time') kept in one DynamoDB item, moved only by
    conditional updates, so no two callers can spend the same capacity.

    ``acquire(n)`` takes n requests' worth. When the budget needs a wait of at most ``max_inline_wait``
    seconds it waits in place; a longer wait raises :class:`CognigyThrottled` with the seconds, which the
    state machine waits out without holding a Lambda.

    One write per acquire in the steady state: the pacing update also takes a bucket whose time passed
    less than ``slack`` seconds ago (adding the cost to it, not to now), and gives up ``slack`` of the
    tolerance for it, so the budget is never exceeded; only a bucket idle for longer needs the restart
    update, which goes first when the last look at the bucket saw it idle.
    """

    def __init__(
        self,
        client: Any,
        *,
        table: str,
        bucket: str,
        rate_per_minute: float,
        burst: int,
        clock: Callable[[], float] = time.time,
        max_inline_wait: float = 2.0,
        slack: float | None = None,
    ) -> None:
        if rate_per_minute <= 0 or burst < 1 or (slack is not None and slack < 0):
            raise ValueError("rate_per_minute must be > 0, burst >= 1 and slack >= 0")
        self._ddb = client
        self.table = table
        self.bucket = bucket
        self.interval = 60.0 / rate_per_minute
        self.tolerance = burst * self.interval
        self.burst = burst
        self._clock = clock
        self.max_inline_wait = max_inline_wait
        # Half the tolerance (at most 1 s): restarts (and their races) stay rare, the burst stays whole
        # after an idle spell and half of it remains ahead of a busy one.
        self.slack = min(1.0, self.tolerance / 2) if slack is None else slack
        self.writes = 0  # write requests sent (for benchmarks)

    async def acquire(self, n: int = 1) -> None:
        n = max(1, min(n, self.burst))
        while True:
            wait = self._try_take(n)
            if wait <= 0:
                return
            if wait > self.max_inline_wait:
                raise CognigyThrottled(
                    f"the shared Cognigy request budget is spent; wait {wait:.1f} s", retry_after=wait
                )
            await asyncio.sleep(wait)

    def _try_take(self, n: int) -> float:
        """Returns 0 when taken, else the seconds to wait. Pacing (the bucket's time is at most
        ``slack`` in the past: add the cost) and restart (longer idle: now + cost) are one conditional
        update each, their conditions complementary; the one the last look suggests goes first."""
        now = self._clock()
        cost = n * self.interval
        floor = now - self.slack
        limit = now + self.tolerance - cost - self.slack
        hint = _LAST_TAT.get(self.bucket)
        idle_first = hint is None or hint < floor
        for idle in (idle_first, not idle_first):
            old = self._restart(now, cost, floor) if idle else self._pace(cost, floor, limit)
            if old is None:
                return 0.0
            if old > limit:
                return old - limit
        return 0.001  # another caller moved it between the two updates: look again at once

    def _restart(self, now: float, cost: float, floor: float) -> float | None:
        # From the floor, not from now: that is GCRA's max(tat, now) with the idle credit capped at
        # ``slack``, so two callers restarting at once both succeed unless they are within ``cost``
        # of each other (the second one's floor is then still below the first one's new tat).
        return self._update(
            "SET tat = :new",
            "attribute_not_exists(tat) OR tat < :floor",
            {":new": {"N": _num(floor + cost)}, ":floor": {"N": _num(floor)}},
        )

    def _pace(self, cost: float, floor: float, limit: float) -> float | None:
        return self._update(
            "SET tat = tat + :cost",
            "tat BETWEEN :floor AND :limit",
            {":cost": {"N": _num(cost)}, ":floor": {"N": _num(floor)}, ":limit": {"N": _num(limit)}},
        )

    def _update(self, expression: str, condition: str, values: dict[str, Any]) -> float | None:
        """One conditional update of the bucket: None when it applied, else the tat it found
        (-inf when the bucket has none). Either way the tat seen is kept as the next hint."""
        try:
            self.writes += 1
            resp = self._ddb.update_item(
                TableName=self.table,
                Key={"bucket": {"S": self.bucket}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if aws_error_code(exc) != "ConditionalCheckFailedException":
                raise StoreError.from_aws("rate limiter update", exc) from exc
            item: dict[str, Any] = exc.response.get("Item") or {}  # type: ignore[assignment]
            old = float(item["tat"]["N"]) if "tat" in item else float("-inf")
            _LAST_TAT[self.bucket] = old
            return old
        except BotoCoreError as exc:
            raise StoreError.from_aws("rate limiter update", exc) from exc
        _LAST_TAT[self.bucket] = float(resp["Attributes"]["tat"]["N"])
        return None


# The last tat seen per bucket, shared by every limiter in this process (a warm Lambda's invocations,
# the local stack's threads): only a hint for which update to try first, never trusted for the budget.
_LAST_TAT: dict[str, float] = {}


def _num(value: float) -> str:
    return f"{value:.6f}"
