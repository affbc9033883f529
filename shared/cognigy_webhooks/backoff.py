"""Retrying with exponential backoff and full jitter: the one implementation, and the policy that carries it.

Every retry loop of the library (the tutorial's registration flows, the monitoring sync) waits
:meth:`Backoff.delay` between attempts: full jitter, uniform in
``[0, min(max_delay, base_delay * 2 ** (attempt - 1))]`` seconds after the ``attempt``-th failure
(1-based), so callers that failed together spread out instead of coming back in step.

:class:`Backoff` is the policy object those settings travel in (attempts, delays, and the
injectable ``sleep`` and random source): one value from the configuration down to the loop,
instead of five parameters handed on layer by layer. It checks nothing itself: each caller
validates what it accepts (its messages name its own parameters). Standard library only.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["Backoff", "Sleep", "full_jitter"]

Sleep = Callable[[float], Awaitable[object]]

_RNG = random.Random()  # the default source when the caller injects none


def full_jitter(attempt: int, base_delay: float, max_delay: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after the ``attempt``-th failure (1-based): uniform in
    ``[0, min(max_delay, base_delay * 2 ** (attempt - 1))]``."""
    return (rng or _RNG).uniform(0.0, min(max_delay, base_delay * 2 ** (attempt - 1)))


@dataclass(frozen=True, slots=True)
class Backoff:
    """How often to try and how long to wait in between.

    ``max_attempts`` counts every attempt (the first one too); ``base_delay`` and ``max_delay`` (seconds)
    shape :func:`full_jitter`. ``sleep`` waits (None: the caller's default, e.g. ``asyncio.sleep``);
    ``rng`` draws the jitter (None: a process-wide source). Tests inject both to record the waits
    instead of waiting."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    sleep: Sleep | None = None
    rng: random.Random | None = None

    def delay(self, attempt: int) -> float:
        """The wait after the ``attempt``-th failure (full jitter)."""
        return full_jitter(attempt, self.base_delay, self.max_delay, self.rng)

    def sleeper(self, default: Sleep) -> Sleep:
        """The ``sleep`` to use: the injected one, else ``default``."""
        return self.sleep if self.sleep is not None else default
