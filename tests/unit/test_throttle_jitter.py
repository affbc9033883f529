"""The state machine's Retry-After waits carry a bounded whole-second jitter (issue 8, item 12): Map
workers throttled together must not all come back in the same second. The rng is injected."""

from __future__ import annotations

import json
import random

import pytest

from cognigy_webhooks.errors import CognigyThrottled
from cognigy_webhooks.reconcile import throttle_jitter_bound, throttled_for_state_machine


def _carried(exc: CognigyThrottled) -> dict[str, int]:
    message = json.loads(str(exc))
    return {"retryAfterSeconds": message["retryAfterSeconds"], "waitSeconds": message["waitSeconds"]}


@pytest.mark.parametrize(("retry_after", "whole"), [(0.2, 1), (1, 1), (2.5, 3), (7, 7), (40, 40), (900, 900)])
def test_waits_spread_over_every_whole_second_of_the_bound_and_never_come_early(
    retry_after: float, whole: int
) -> None:
    rng = random.Random(8)
    bound = throttle_jitter_bound(whole)

    carried = [
        _carried(throttled_for_state_machine(CognigyThrottled("slow down", retry_after=retry_after), rng))
        for _ in range(300)
    ]

    assert {c["retryAfterSeconds"] for c in carried} == {whole}
    waits = [c["waitSeconds"] for c in carried]
    assert set(waits) == set(range(whole, whole + bound + 1))  # every second of the spread is used
    assert all(isinstance(w, int) for w in waits)  # a Wait state's SecondsPath needs whole seconds


def test_the_bound_is_a_fifth_of_the_wait_from_one_to_thirty_seconds() -> None:
    assert [throttle_jitter_bound(s) for s in (1, 5, 6, 40, 150, 151, 3600)] == [1, 1, 2, 8, 30, 30, 30]


def test_a_throttle_without_retry_after_waits_the_default_plus_jitter() -> None:
    carried = _carried(throttled_for_state_machine(CognigyThrottled("429"), random.Random(1)))
    assert carried["retryAfterSeconds"] == 5
    assert 5 <= carried["waitSeconds"] <= 6


def test_the_wait_is_also_the_errors_retry_after() -> None:
    exc = throttled_for_state_machine(CognigyThrottled("429", retry_after=12), random.Random(4))
    assert exc.retry_after == float(_carried(exc)["waitSeconds"])
    assert "429" in json.loads(str(exc))["message"]
