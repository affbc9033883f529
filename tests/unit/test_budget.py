"""The shared budget's arithmetic (cognigy_webhooks.budget) on its own: random processes reserving
slots, leasing, sending, settling, dying and waking late never send more than the budget in any
window, request by request; and each rule of an exchange (reserve then sleep, half of what is free,
settle, reclaim, the horizon) as the module docstring states it. No I/O, no real time."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from cognigy_webhooks.budget import (
    LEASE_SECONDS,
    SKEW_SECONDS,
    BucketState,
    Budget,
    Lease,
    exchange,
)
from tests.support.budget import excess


@dataclass
class Process:
    lease: Lease | None = None
    left: int = 0
    sent: int = 0


def replay(seed: int, *, late: bool) -> tuple[float, Budget]:
    """Random processes against one bucket: the worst window's excess and the budget."""
    rng = random.Random(seed)
    budget = Budget.of(
        rng.choice([6, 60, 300, 600]), rng.choice([1, 2, 3, 5, 10]), margin=rng.choice([None, 0.0])
    )
    state, now = BucketState(), 1_000.0
    processes = [Process() for _ in range(rng.randint(1, 4))]
    sends: list[float] = []
    for _ in range(250):
        now += rng.choice(
            [0.0, 0.0, budget.interval * rng.random(), 3 * budget.interval * rng.random(), 5 * rng.random()]
        )
        process = rng.choice(processes)
        event = rng.random()
        if event < 0.45:  # a write: settle, reserve slots for the callers waiting, maybe lease
            done = exchange(
                state,
                budget,
                now,
                slots=rng.randint(1, 3),
                hold=rng.choice([0, 0, 1, 3, 10]),
                settle=process.lease,
                sent=process.sent,
                horizon=rng.choice([0.0, 0.5, 2.0, 5.0]),
            )
            if done.wait > 0:
                continue
            state = done.state
            for slot in done.slots:  # sent when due, or late (before the deadline), or dropped
                window = slot.deadline - slot.due
                at = slot.due + (rng.choice([0.0, 0.999 * window, 2 * window]) if late else 0.0)
                if at < slot.deadline:
                    sends.append(max(at, now))
            process.lease, process.sent = done.lease, 0
            process.left = done.lease.tokens if done.lease else 0
        elif event < 0.9:  # a held token sent, while the lease is good
            if process.lease is not None and process.left and process.lease.usable(now):
                process.left -= 1
                process.sent += 1
                sends.append(now)
        else:  # the process dies (or freezes): its lease is never settled
            processes[processes.index(process)] = Process()
    return excess(sends, budget), budget


@pytest.mark.parametrize("seed", range(60))
def test_random_processes_never_send_more_than_the_budget_in_any_window(seed: int) -> None:
    worst, budget = replay(seed, late=False)
    assert worst <= 1e-9, (seed, budget)


@pytest.mark.parametrize("seed", range(30))
def test_a_late_wake_up_before_its_deadline_puts_at_most_one_request_more_in_a_window(seed: int) -> None:
    worst, budget = replay(seed, late=True)
    assert worst < 1.0, (seed, budget)


# --- each rule of an exchange --------------------------------------------------------------------

BUDGET = Budget.of(60, 5, margin=0.0)  # one a second, five at once, nothing held back
NOW = 10_000.0


def test_an_idle_bucket_gives_the_whole_burst_at_once_then_one_slot_a_second() -> None:
    done = exchange(BucketState(), BUDGET, NOW, slots=7, horizon=2.0)
    assert [slot.due for slot in done.slots] == [NOW - 4, NOW - 3, NOW - 2, NOW - 1, NOW, NOW + 1, NOW + 2]
    # each slot's deadline is its place in the schedule: until then the bucket still counts it
    assert [slot.deadline for slot in done.slots] == [NOW + i for i in range(1, 8)]
    assert done.state.settled == NOW + 7
    assert done.state.version == 1


def test_a_caller_whose_slot_is_beyond_the_horizon_is_told_how_long_and_nothing_changes() -> None:
    busy = BucketState(settled=NOW + 10, version=3)
    done = exchange(busy, BUDGET, NOW, need=2, slots=4, horizon=2.0)
    assert done.slots == ()
    assert done.state == busy
    assert done.wait == pytest.approx(7.0)  # the second slot: place NOW + 12, due five places earlier


def test_others_waiting_get_the_slots_that_fit_the_horizon_and_the_writer_its_own() -> None:
    done = exchange(BucketState(settled=NOW + 4), BUDGET, NOW, need=1, slots=10, horizon=2.0)
    assert [slot.due for slot in done.slots] == [NOW, NOW + 1, NOW + 2]


def test_a_lease_takes_at_most_half_of_what_is_free_and_costs_burst_not_rate() -> None:
    done = exchange(BucketState(), BUDGET, NOW, slots=1, hold=100)
    assert done.lease is not None
    assert done.lease.tokens == 2  # free after the slot: 4, half of it
    assert done.lease.ends % 2 == 0
    assert done.lease.ends >= NOW + LEASE_SECONDS
    assert done.state.outstanding == 2
    # what it holds is out of what others may take, until it is settled
    assert done.state.free(BUDGET, NOW) == pytest.approx(2)
    assert done.state.free(BUDGET, NOW + 100) == pytest.approx(3)


def test_settling_charges_what_was_sent_and_gives_the_rest_back() -> None:
    leased = exchange(BucketState(), BUDGET, NOW, slots=1, hold=2)
    assert leased.lease is not None
    later = NOW + 5  # idle since, the lease still good: the sent token is charged from now
    done = exchange(leased.state, BUDGET, later, slots=1, settle=leased.lease, sent=1)
    assert (done.returned, done.reclaimed) == (1, 0)
    assert done.state.outstanding == 0
    assert done.state.settled == later + 2  # the token sent, then the new slot


def test_a_lease_never_settled_is_reclaimed_in_full_skew_after_its_end_and_not_before() -> None:
    leased = exchange(BucketState(), BUDGET, NOW, slots=1, hold=2)
    assert leased.lease is not None
    ends = leased.lease.ends
    assert not leased.lease.usable(ends - SKEW_SECONDS)  # its holder stops before its end
    kept = exchange(leased.state, BUDGET, ends + SKEW_SECONDS, slots=1)
    assert (kept.reclaimed, kept.state.outstanding) == (0, 2)
    done = exchange(leased.state, BUDGET, ends + SKEW_SECONDS + 0.5, slots=1)
    assert (done.reclaimed, done.state.outstanding) == (2, 0)
    # and its holder's late settlement finds nothing to settle (never counted twice)
    again = exchange(done.state, BUDGET, ends + 5, slots=1, settle=leased.lease, sent=2)
    assert again.returned == 0


def test_the_margin_is_held_back_while_pacing_and_whole_again_after_an_idle_spell() -> None:
    budget = Budget.of(60, 5)  # margin: half the burst's time, at most 1 s -> 1 s
    assert budget.margin == 1.0
    idle = exchange(BucketState(), budget, NOW, slots=5)
    assert [slot.due for slot in idle.slots] == [NOW - 4, NOW - 3, NOW - 2, NOW - 1, NOW]
    pacing = exchange(idle.state, budget, NOW, slots=1, horizon=10.0)
    assert pacing.slots[0].due == NOW + 1  # one second later: the margin is not lent ahead


@pytest.mark.parametrize(
    ("rate", "burst", "margin", "field"),
    [
        (0, 5, None, "rate_per_minute"),
        (60, 0, None, "burst"),
        (60, 5, 5.0, "margin"),
        (60, 5, -1.0, "margin"),
    ],
)
def test_a_budget_out_of_range_names_what_is_wrong(
    rate: float, burst: int, margin: float | None, field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        Budget.of(rate, burst, margin=margin)
