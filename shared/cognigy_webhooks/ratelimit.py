"""Pacing calls to Cognigy so a batch stays inside the API key's request budget: both limiters, side
by side.

:class:`RateLimiter` is the one thing the Cognigy client needs: ``await limiter.acquire()`` before
each request. Two implementations, one algorithm (GCRA, a token bucket stated as a "theoretical
arrival time"):

- :class:`TokenBucket`, in process (one event loop, e.g. one batch of the tutorial's registrations):
  waits in place, serves callers first come, first served;
- :class:`DynamoRateLimiter`, shared by every concurrent Lambda that uses one API key (the plan and
  register tasks, the watch): the bucket is one RateLimitTable item holding the state of
  :mod:`cognigy_webhooks.budget` (the arithmetic, and why the budget is never exceeded), changed
  only by a conditional write on the version it was read at, so no two processes spend the same
  capacity. A process's writes reserve slots for every caller it has waiting (each then sleeps
  until its own) and, when it is busy and the budget fast, lease tokens its next callers take with
  no write at all (:class:`LeasePool`): a few writes per apply instead of one or more per request.
  A wait too long to spend in a Lambda is raised as
  :class:`~cognigy_webhooks.errors.CognigyThrottled` for the state machine to wait out. It is the
  RateLimitTable's only writer; a DynamoDB failure is a
  :class:`~cognigy_webhooks.errors.StoreError` (the task is retried).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol, runtime_checkable

from botocore.exceptions import BotoCoreError, ClientError

from cognigy_webhooks.budget import (
    LEASE_SECONDS,
    SKEW_SECONDS,
    BucketState,
    Budget,
    Exchange,
    Lease,
    Slot,
    exchange,
)
from cognigy_webhooks.errors import CognigyThrottled, StoreError, aws_error_code

__all__ = ["MAX_HELD_SECONDS", "DynamoRateLimiter", "LeasePool", "RateLimiter", "TokenBucket", "pool_for"]


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

#: Write attempts per acquire before giving up on a bucket other processes keep changing under us.
_MAX_WRITES = 8
#: A lease never holds more than this much of the budget's time (tokens x interval): what a lessee
#: that stops early can waste of everyone's budget. At a low rate that is less than one token, so
#: there is no lease and every acquire reserves its own slot.
MAX_HELD_SECONDS = 0.1


class LeasePool:
    """What one process (a warm Lambda; the local stack's threads) holds of one shared bucket: the
    lease its writes took, the slots reserved for callers queued behind a write, the bucket as it
    last saw it (a hint: a write it made stale is refused and retried) and how fast it hands tokens
    out (the next lease is sized to that). Shared by every :class:`DynamoRateLimiter` of the process
    for that bucket (:func:`pool_for`); thread-safe, its locks never held across an await."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards what follows; held for no I/O
        self.writing = threading.Lock()  # one write at a time from this process
        self.state: BucketState | None = None
        self._lease: Lease | None = None
        self._left = 0  # held tokens not handed out yet
        self._slots: collections.deque[Slot] = collections.deque()
        self._waiting = 0  # tokens asked for by callers not served yet
        self._since: float | None = None  # when this pool last wrote
        self._served = 0  # tokens handed out since

    def take(self, n: int, now: float) -> Slot | None:
        """``n`` tokens from the lease (due now) or from the slots queued (dropping stale ones), or
        None when a write is needed."""
        with self._lock:
            lease = self._lease
            if lease is not None and self._left >= n and lease.usable(now):
                self._left -= n
                self._served += n
                return Slot(due=now, deadline=lease.ends - SKEW_SECONDS)
            while self._slots and self._slots[0].deadline <= now:
                self._slots.popleft()
            if len(self._slots) < n:
                return None
            taken = [self._slots.popleft() for _ in range(n)]
            self._served += n
            return Slot(due=taken[-1].due, deadline=taken[0].deadline)

    @contextlib.contextmanager
    def queued(self, n: int) -> Iterator[None]:
        """Count ``n`` tokens as wanted while the caller waits for a write."""
        with self._lock:
            self._waiting += n
        try:
            yield
        finally:
            with self._lock:
                self._waiting -= n

    @property
    def waiting(self) -> int:
        with self._lock:
            return self._waiting

    def detach(self) -> tuple[Lease | None, int]:
        """Stop handing out the lease (the write about to be made settles it): (lease, tokens sent)."""
        with self._lock:
            lease, sent = self._lease, (self._lease.tokens - self._left) if self._lease else 0
            self._lease, self._left = None, 0
            return lease, sent

    def reattach(self, lease: Lease | None, sent: int) -> None:
        """No write was made after all: the lease still holds what it held."""
        with self._lock:
            if lease is not None and self._lease is None:
                self._lease, self._left = lease, lease.tokens - sent

    def hold_wanted(self, now: float, budget: Budget) -> int:
        """The tokens to lease: what this pool hands out in half a lease at its pace since its last
        write, at most :data:`MAX_HELD_SECONDS` of the budget (none before it has a pace)."""
        with self._lock:
            if self._since is None:
                return 0
            pace = self._served / max(now - self._since, 0.05)
        return min(math.ceil(pace * LEASE_SECONDS / 2), math.floor(MAX_HELD_SECONDS / budget.interval))

    def install(self, done: Exchange, n: int, now: float) -> Slot:
        """A write went through: keep its lease and the slots beyond the caller's ``n`` for the
        callers queued behind it; the caller's own."""
        with self._lock:
            self.state = done.state
            self._lease = done.lease
            self._left = done.lease.tokens if done.lease else 0
            mine, rest = done.slots[:n], done.slots[n:]
            self._slots.extend(rest)
            self._since, self._served = now, n
            return Slot(due=mine[-1].due, deadline=mine[0].deadline)


_POOLS: weakref.WeakKeyDictionary[Any, dict[tuple[str, str, float, int], LeasePool]] = (
    weakref.WeakKeyDictionary()
)
_POOLS_LOCK = threading.Lock()


def pool_for(client: Any, table: str, bucket: str, budget: Budget) -> LeasePool:
    """This process's pool for ``bucket`` in ``table`` reached through ``client`` (one per DynamoDB
    client: a warm Lambda has one; each function of the local stack has its own, as on AWS)."""
    key = (table, bucket, budget.interval, budget.burst)
    with _POOLS_LOCK:
        try:
            pools = _POOLS.setdefault(client, {})
        except TypeError:  # a client that cannot be weakly referenced: a pool of its own
            return LeasePool()
        return pools.setdefault(key, LeasePool())


class DynamoRateLimiter:
    """One shared request budget per Cognigy API key across every concurrent Lambda: the
    :mod:`cognigy_webhooks.budget` bucket kept in one RateLimitTable item (``s``: settled, ``held``:
    tokens leased out by lease end, ``v``: its version), changed only by a conditional write on the
    version it was read at, so no two processes spend the same capacity.

    ``acquire(n)`` takes n requests' worth: from this process's lease when it holds enough (no
    write), else in one write that settles the previous lease, reserves a slot for every caller of
    the process waiting now (each then sleeps until its slot: reserve, then sleep) and leases tokens
    for the callers to come when the process has been busy and the budget is fast enough for a lease
    to be worth its keep (:class:`LeasePool`). When the caller's slot is further away than
    ``max_inline_wait`` seconds, :class:`CognigyThrottled` is raised with the seconds instead (the
    state machine waits without holding a Lambda; nothing is written). A write refused because
    another process wrote first is made again from the state the refusal returned.

    ``slack`` (seconds, default half the burst's time and at most 1 s) is held back from the burst
    while pacing (:class:`~cognigy_webhooks.budget.Budget`'s ``margin``). ``clock`` must be epoch
    seconds shared with the other processes (leases end on it); ``clock`` and ``sleep`` are
    injectable; ``pool`` defaults to the process's own for the bucket (:func:`pool_for`).
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
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        max_inline_wait: float = 2.0,
        slack: float | None = None,
        pool: LeasePool | None = None,
    ) -> None:
        if (slack is not None and slack < 0) or max_inline_wait < 0:
            raise ValueError("slack and max_inline_wait must be >= 0")
        self._ddb = client
        self.table = table
        self.bucket = bucket
        self.budget = Budget.of(rate_per_minute, burst, margin=slack)
        self.interval = self.budget.interval
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self.max_inline_wait = max_inline_wait
        self.pool = pool if pool is not None else pool_for(client, table, bucket, self.budget)
        self.writes = 0  # write requests sent, refused ones included (for benchmarks)
        self.refused = 0  # of which refused (another process wrote first)

    def __repr__(self) -> str:
        return (
            f"DynamoRateLimiter(table={self.table!r}, bucket={self.bucket!r}, "
            f"rate_per_minute={60 / self.interval:g}, burst={self.burst})"
        )

    async def acquire(self, n: int = 1) -> None:
        n = max(1, min(n, self.budget.most_at_once))
        while True:
            slot = self.pool.take(n, self._clock())
            if slot is None:
                with self.pool.queued(n), self.pool.writing:
                    slot = self.pool.take(n, self._clock()) or self._write(n)
            wait = slot.due - self._clock()
            if wait > 0:
                await self._sleep(wait)
            if self._clock() < slot.deadline:
                return
            # woken after the slot's deadline (a starved or frozen process): it is never sent

    def _write(self, n: int) -> Slot:
        """One exchange with the bucket (see :func:`~cognigy_webhooks.budget.exchange`), written on
        the version it was computed from; made again from the refusal's state when another process
        wrote first."""
        pool = self.pool
        lease, sent = pool.detach()
        written = False
        try:
            state, fresh = pool.state, False
            for _ in range(_MAX_WRITES):
                if state is None:
                    state, fresh = self._read(), True
                now = self._clock()
                done = exchange(
                    state,
                    self.budget,
                    now,
                    need=n,
                    slots=max(n, pool.waiting),
                    hold=pool.hold_wanted(now, self.budget),
                    settle=lease,
                    sent=sent,
                    horizon=self.max_inline_wait,
                )
                if done.wait > 0:
                    if not fresh:  # only what this process saw last: look again before refusing
                        state = None
                        continue
                    raise CognigyThrottled(
                        f"the shared Cognigy request budget is spent; wait {done.wait:.1f} s",
                        retry_after=done.wait,
                    )
                current = self._put(done.state, expected=state)
                if current is None:
                    written = True
                    return pool.install(done, n, now)
                pool.state = state = current
                fresh = True
            raise CognigyThrottled(
                f"the shared Cognigy request budget changed under {_MAX_WRITES} writes in a row",
                retry_after=self.max_inline_wait or 1.0,
            )
        finally:
            if not written:
                pool.reattach(lease, sent)

    def _read(self) -> BucketState:
        try:
            resp = self._ddb.get_item(
                TableName=self.table, Key={"bucket": {"S": self.bucket}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreError.from_aws("rate limiter read", exc) from exc
        return _state_of(resp.get("Item"))

    def _put(self, state: BucketState, *, expected: BucketState) -> BucketState | None:
        """Write ``state`` if the item is still at ``expected``'s version: None when written, else
        the item as it is (the refusal's state)."""
        values: dict[str, Any] = {
            ":s": {"N": _num(state.settled)},
            ":h": {"M": {str(ends): {"N": str(tokens)} for ends, tokens in state.held.items()}},
            ":v": {"N": str(state.version)},
        }
        if expected.version:
            condition = "v = :was"
            values[":was"] = {"N": str(expected.version)}
        else:  # never written (or written by the single-attribute limiter before leases)
            condition = "attribute_not_exists(v)"
        self.writes += 1
        try:
            self._ddb.update_item(
                TableName=self.table,
                Key={"bucket": {"S": self.bucket}},
                UpdateExpression="SET s = :s, held = :h, v = :v REMOVE tat",
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if aws_error_code(exc) != "ConditionalCheckFailedException":
                raise StoreError.from_aws("rate limiter update", exc) from exc
            self.refused += 1
            return _state_of(exc.response.get("Item"))  # type: ignore[arg-type]
        except BotoCoreError as exc:
            raise StoreError.from_aws("rate limiter update", exc) from exc
        return None


def _state_of(item: dict[str, Any] | None) -> BucketState:
    """The bucket an item holds (none: a bucket never written; an item of the limiter before
    leases, with ``tat`` alone: that is its settled time)."""
    if not item:
        return BucketState()
    settled = item.get("s") or item.get("tat")
    held = {int(ends): int(count["N"]) for ends, count in (item.get("held") or {}).get("M", {}).items()}
    version = int(item["v"]["N"]) if "v" in item else 0
    return BucketState(settled=float(settled["N"]) if settled else 0.0, held=held, version=version)


def _num(value: float) -> str:
    return f"{value:.9f}"
