"""A throttle, re-stated for the state machine: the wait the ASL's Wait state reads, with jitter.

The register task never sleeps on a 429: it raises :class:`~cognigy_webhooks.errors.CognigyThrottled`
and the reconcile state machine waits. :func:`throttled_for_state_machine` turns Cognigy's (or the
shared limiter's) throttle into the one the ASL reads: its ``errorMessage`` is JSON with whole
seconds, ``retryAfterSeconds`` (what was asked for, rounded up; :data:`DEFAULT_THROTTLE_WAIT` when
nothing usable was given) and ``waitSeconds``, that plus a whole-second jitter from 0 to
:func:`throttle_jitter_bound`, so Map workers throttled together do not all come back in the same
second.
"""

from __future__ import annotations

import json
import math
import random

from cognigy_webhooks.errors import CognigyThrottled

__all__ = ["DEFAULT_THROTTLE_WAIT", "throttle_jitter_bound", "throttled_for_state_machine"]

DEFAULT_THROTTLE_WAIT = 5

_JITTER = random.Random()


def throttle_jitter_bound(seconds: int) -> int:
    """The most whole seconds of jitter added to a wait of ``seconds``: a fifth of it, 1 to 30."""
    return max(1, min(30, math.ceil(seconds / 5)))


def throttled_for_state_machine(exc: CognigyThrottled, rng: random.Random | None = None) -> CognigyThrottled:
    """Re-state a throttle so the ASL can read the wait: errorMessage is JSON with whole seconds,
    ``retryAfterSeconds`` (what Cognigy or the shared limiter asked for, rounded up; 5 when it gave
    nothing usable) and ``waitSeconds``, what the Wait state waits: that plus a whole-second jitter
    from 0 to :func:`throttle_jitter_bound`, so Map workers throttled together do not all come back
    in the same second. ``rng`` is injectable (tests); the default is a process-wide one."""
    seconds = DEFAULT_THROTTLE_WAIT if exc.retry_after is None else max(1, math.ceil(exc.retry_after))
    wait = seconds + (rng or _JITTER).randint(0, throttle_jitter_bound(seconds))
    return CognigyThrottled(
        json.dumps({"retryAfterSeconds": seconds, "waitSeconds": wait, "message": str(exc)}),
        retry_after=float(wait),
    )
