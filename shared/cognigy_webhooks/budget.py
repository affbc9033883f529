"""The shared Cognigy request budget's arithmetic: one bucket's state and the one change a process
makes to it per write (:func:`exchange`), as pure functions with no I/O and no clock of their own, so
the budget's promise can be checked on its own:

    in any window of time [a, b], at most ``burst + (b - a) / interval`` requests are sent, whoever
    sends them: each process sends from its own lease or its own slots, never from another's.

(A caller that wakes up later than its slot was due, but before the slot's deadline, can put one
request more into some window: a late send bunches up with the next one. ``margin`` is there for
that, and for the network's own jitter.)

:class:`~cognigy_webhooks.ratelimit.DynamoRateLimiter` keeps a :class:`BucketState` in one
RateLimitTable item and writes each :class:`Exchange` with one conditional write.

The state is GCRA's theoretical arrival time of the requests already charged (``settled``) and the
tokens leased out and not settled yet (``held``, counted by the second their lease ends, so the item
holds a handful of counters however many processes lease). What may be taken at ``now``::

    free(now) = burst - outstanding - max(0, settled - (now - margin)) / interval

``margin`` (seconds) is held back from the burst while requests are paced (after an idle spell the
whole burst is free again): the room Cognigy's own bucket keeps for requests that arrive later than
they were granted (network jitter bunches them up).

Tokens leave the bucket two ways:

- a **slot** for a caller waiting now: charged at once (``settled`` moves one interval on) and due
  when ``free`` would cover it, which may be in the future: the caller sleeps until then and sends
  (reserve, then sleep: one write however long the queue, never a refused write to ask again). A slot
  must be sent before its deadline, when ``now - margin`` passes its place in the schedule (``free``
  stops counting it then); a caller that wakes later drops it (it is never sent).
- a **held** token (a lease) for callers yet to come: taken only from what is free now and never
  more than half of it, usable at once at any time until the lease ends. While held it costs burst,
  not rate: ``free`` counts it out until the lessee's next write settles it (the tokens sent are
  charged, the others given back), or, when the lessee never writes again (a frozen or dead Lambda),
  until any writer reclaims it :data:`SKEW_SECONDS` after its end, charging it in full. A lessee stops
  using a lease :data:`SKEW_SECONDS` before its end, so clocks that disagree by less than that never
  let a reclaimed token be sent.

Why the promise holds: ``free + outstanding = burst - max(0, settled - now + margin) / interval``
never exceeds ``burst`` and grows by one token per interval at most; a slot takes one from it, a
lease moves tokens from ``free`` to ``outstanding``, a settlement or a reclaim turns held tokens into
charged ones, a return moves them back to ``free``. So the requests sent in [a, b] are at most what
was held or free at ``a`` plus one per interval since: ``burst + (b - a) / interval``.
tests/unit/test_budget.py replays random processes (leasing, settling, dying, waking late) against
exactly that, request by request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "LEASE_SECONDS",
    "QUANTUM_SECONDS",
    "SKEW_SECONDS",
    "BucketState",
    "Budget",
    "Exchange",
    "Lease",
    "Slot",
    "exchange",
]

#: How long a lease's tokens may be held (its end is rounded up to :data:`QUANTUM_SECONDS`).
LEASE_SECONDS = 10.0
#: Leases end on whole multiples of this many seconds: one counter per quantum in the item.
QUANTUM_SECONDS = 2
#: How far two clocks may disagree: a lessee stops this long before its lease ends, a writer
#: reclaims a lease this long after (Lambda's clocks are NTP-synchronised well within it).
SKEW_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Budget:
    """``interval`` seconds per request, ``burst`` requests at once, ``margin`` seconds of the burst
    held back while pacing (:meth:`of`: the template's CognigyRequestsPerMinute and CognigyBurst)."""

    interval: float
    burst: int
    margin: float

    @classmethod
    def of(cls, rate_per_minute: float, burst: int, *, margin: float | None = None) -> Budget:
        """The budget of ``rate_per_minute`` and ``burst``; ``margin`` defaults to half the burst's
        time, at most one second (what Cognigy's bucket keeps for late arrivals)."""
        if isinstance(rate_per_minute, bool) or not math.isfinite(rate_per_minute) or rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be a positive finite number")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError("burst must be an integer >= 1")
        interval = 60.0 / rate_per_minute
        tolerance = burst * interval
        held_back = min(1.0, tolerance / 2) if margin is None else margin
        if not math.isfinite(held_back) or not 0 <= held_back < tolerance:
            raise ValueError("margin must be >= 0 and less than the burst's time (burst * 60 / rate)")
        return cls(interval=interval, burst=burst, margin=held_back)

    @property
    def most_at_once(self) -> int:
        """The most tokens one acquire may ask for."""
        return max(1, math.floor(self.burst - self.margin / self.interval))


@dataclass(frozen=True, slots=True)
class Lease:
    """Tokens one process holds: ``tokens`` of them, good until :data:`SKEW_SECONDS` before
    ``ends`` (epoch seconds, a multiple of :data:`QUANTUM_SECONDS`)."""

    ends: int
    tokens: int

    def usable(self, now: float) -> bool:
        return now < self.ends - SKEW_SECONDS


@dataclass(frozen=True, slots=True)
class BucketState:
    """One bucket: ``settled`` (epoch seconds: GCRA's theoretical arrival time of what is charged),
    ``held`` (lease end -> tokens outstanding) and ``version`` (0: never written)."""

    settled: float = 0.0
    held: Mapping[int, int] = field(default_factory=dict)
    version: int = 0

    @property
    def outstanding(self) -> int:
        return sum(self.held.values())

    def free(self, budget: Budget, now: float) -> float:
        """Tokens that may be taken at ``now`` (negative while slots are reserved ahead)."""
        ahead = max(0.0, self.settled - (now - budget.margin))
        return budget.burst - self.outstanding - ahead / budget.interval


@dataclass(frozen=True, slots=True)
class Slot:
    """One reserved request: send it at ``due`` or later, and before ``deadline`` (epoch seconds)."""

    due: float
    deadline: float


@dataclass(frozen=True, slots=True)
class Exchange:
    """What one write does: the ``state`` to write, the ``slots`` reserved (in order), the ``lease``
    taken (None: none), the tokens ``returned`` and ``reclaimed``. ``wait`` > 0 when the writer's own
    slots do not fit the horizon: nothing is to be written, and that is how long until they would be
    due."""

    state: BucketState
    slots: tuple[Slot, ...] = ()
    lease: Lease | None = None
    returned: int = 0
    reclaimed: int = 0
    wait: float = 0.0


def _charge(settled: float, budget: Budget, now: float, tokens: int) -> float:
    """``settled`` after charging ``tokens`` sent at or before ``now`` (GCRA: never before now's lag)."""
    return max(settled, now - budget.margin) + tokens * budget.interval


def exchange(
    state: BucketState,
    budget: Budget,
    now: float,
    *,
    need: int = 1,
    slots: int = 1,
    hold: int = 0,
    settle: Lease | None = None,
    sent: int = 0,
    horizon: float = 0.0,
) -> Exchange:
    """One write's change to ``state`` at ``now``, in order:

    1. reclaim every lease that ended more than :data:`SKEW_SECONDS` ago (charged in full);
    2. settle the writer's previous lease ``settle`` of which it ``sent`` tokens (charged; the others
       given back), unless it was reclaimed already;
    3. reserve up to ``slots`` slots (at least ``need``, the writer's own), each due when ``free``
       covers it, none due later than ``now + horizon``; when fewer than ``need`` fit, nothing is
       done and ``wait`` says how long until the ``need``-th would be due;
    4. lease up to ``hold`` tokens, at most half of what is then free, ending
       :data:`LEASE_SECONDS` from now (rounded up to a quantum).
    """
    if need < 1 or hold < 0 or sent < 0 or (settle is not None and sent > settle.tokens):
        raise ValueError("need must be >= 1, hold and sent >= 0, and sent at most the lease's tokens")
    slots = max(slots, need)
    held = dict(state.held)
    settled = state.settled
    reclaimed = 0
    for ends in sorted(held):
        if ends + SKEW_SECONDS < now:
            reclaimed += held.pop(ends)
    if reclaimed:
        settled = _charge(settled, budget, now, reclaimed)
    returned = 0
    if settle is not None and held.get(settle.ends, 0) >= settle.tokens:
        left = held[settle.ends] - settle.tokens
        if left:
            held[settle.ends] = left
        else:
            del held[settle.ends]
        if sent:
            settled = _charge(settled, budget, now, sent)
        returned = settle.tokens - sent
    outstanding = sum(held.values())
    start = max(settled, now - budget.margin)
    room = (budget.burst - outstanding) * budget.interval - budget.margin  # due = position - room
    if outstanding > budget.burst:  # cannot happen (a lease takes half of what is free at most)
        return Exchange(state=state, wait=LEASE_SECONDS + SKEW_SECONDS)
    dues: list[Slot] = []
    for i in range(1, slots + 1):
        place = start + i * budget.interval
        if place - room > now + horizon:
            if i <= need:
                return Exchange(state=state, wait=max(start + need * budget.interval - room - now, 1e-3))
            break
        dues.append(Slot(due=place - room, deadline=place + budget.margin))
    settled = start + len(dues) * budget.interval
    lease = None
    after = BucketState(settled=settled, held=held, version=state.version + 1)
    take = min(hold, math.floor(after.free(budget, now) / 2))
    if take > 0:
        ends = math.ceil((now + LEASE_SECONDS) / QUANTUM_SECONDS) * QUANTUM_SECONDS
        held[ends] = held.get(ends, 0) + take
        lease = Lease(ends=ends, tokens=take)
        after = BucketState(settled=settled, held=held, version=state.version + 1)
    return Exchange(state=after, slots=tuple(dues), lease=lease, returned=returned, reclaimed=reclaimed)
