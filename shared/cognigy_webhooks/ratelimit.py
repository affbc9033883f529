"""Pacing calls to Cognigy so a batch stays inside the API key's request budget.

:class:`RateLimiter` is the one thing the Cognigy client needs: ``await limiter.acquire()`` before
each request. :class:`TokenBucket` is the in-process implementation (one event loop, e.g. one batch
of registrations). A limiter shared by concurrent Lambdas (DynamoDB-backed) implements the same
Protocol elsewhere.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

__all__ = ["RateLimiter", "TokenBucket"]


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
