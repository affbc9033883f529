"""The watch's health rules (cognigy_webhooks.watch.rules): a pure function, so every rule is tested
on plain models with an explicit clock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cognigy_webhooks.models import (
    EndpointProbeReport,
    ProbeReason,
    ProbeReport,
    ReachabilityResult,
)
from cognigy_webhooks.watch import (
    CognigyAction,
    Decision,
    DetailType,
    EndpointUrls,
    HealthRules,
    HealthState,
    WatchState,
    decide,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
STEP = timedelta(minutes=15)
PRIMARY = "https://hooks.example.com/in"
FB1 = "https://backup1.example.com/in"
FB2 = "https://backup2.example.com/in"
URLS = EndpointUrls(primary=PRIMARY, fallbacks=(FB1, FB2))
ONLY = EndpointUrls(primary=PRIMARY)
RULES = HealthRules()


def ok(
    url: str, *, days: int | None = 90, issuer: str = "CN=CA", not_after: datetime | None = None
) -> ProbeReport:
    return ProbeReport(
        url=url,
        passed=True,
        reachable=True,
        reason=ProbeReason.OK,
        status_code=200,
        cert_days_left=days,
        cert_issuer=issuer if days is not None else None,
        cert_subject="CN=hooks.example.com" if days is not None else None,
        cert_not_after=(not_after or (T0 + timedelta(days=days))) if days is not None else None,
    )


def down(
    url: str, reason: ProbeReason = ProbeReason.CONNECTION_REFUSED, detail: str | None = None
) -> ProbeReport:
    return ProbeReport(url=url, passed=False, reachable=False, reason=reason, detail=detail)


def gone(url: str) -> ProbeReport:
    # The probe passes a 4xx (reachable, answered); the rules single out 410.
    return ProbeReport(url=url, passed=True, reachable=True, reason=ProbeReason.OK, status_code=410)


def run(
    results_seq: Sequence[Mapping[str, ProbeReport | ReachabilityResult]],
    *,
    urls: EndpointUrls = ONLY,
    rules: HealthRules = RULES,
    state: WatchState | None = None,
    start: datetime = T0,
    step: timedelta = STEP,
) -> tuple[WatchState, list[Decision]]:
    state = state or WatchState()
    decisions = []
    for i, results in enumerate(results_seq):
        decision = decide(state, urls, results, rules, start + i * step)
        decisions.append(decision)
        state = decision.state
    return state, decisions


def types(decisions: list[Decision]) -> list[DetailType]:
    return [t.detail_type for d in decisions for t in d.transitions]


def actions(decisions: list[Decision]) -> list[CognigyAction]:
    return [d.action for d in decisions if d.action is not None]


# --- defaults and models ------------------------------------------------------------------------


def test_defaults_and_camel_case() -> None:
    rules = HealthRules()
    assert (rules.unhealthy_after, rules.deactivate_after_hours, rules.recover_after) == (3, 24.0, 3)
    assert rules.certificate_thresholds == (30, 14, 7)
    assert rules.deactivate_on_gone is True
    assert HealthRules.model_validate({"certificateThresholds": [7, 30, 14, 7]}).certificate_thresholds == (
        30,
        14,
        7,
    )
    dumped = WatchState(consecutive_failures=2, current_url=FB1).model_dump(by_alias=True, mode="json")
    assert dumped["consecutiveFailures"] == 2
    assert dumped["currentUrl"] == FB1
    assert dumped["state"] == "healthy"
    assert WatchState.model_validate(dumped) == WatchState(consecutive_failures=2, current_url=FB1)


@pytest.mark.parametrize(
    "bad",
    [
        {"unhealthyAfter": 0},
        {"recoverAfter": 0},
        {"deactivateAfterHours": 0},
        {"certificateThresholds": [-1]},
    ],
)
def test_rules_refuse_nonsense(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        HealthRules.model_validate(bad)


def test_naive_now_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        decide(WatchState(), ONLY, {PRIMARY: ok(PRIMARY)}, RULES, datetime(2025, 1, 1))


def test_action_without_transition_is_refused() -> None:
    with pytest.raises(ValidationError):
        Decision(state=WatchState(), action=CognigyAction(kind="deactivate"))


# --- nothing changes ----------------------------------------------------------------------------


def test_healthy_watches_change_nothing_and_need_no_cognigy_call() -> None:
    state, decisions = run([{PRIMARY: ok(PRIMARY)}] * 5)
    assert types(decisions) == []
    assert actions(decisions) == []
    assert state.state is HealthState.HEALTHY
    assert state.consecutive_successes == 5


def test_accepts_an_endpoint_probe_report_and_a_reachability_result() -> None:
    report = EndpointProbeReport(
        name="n", passed=False, reason=ProbeReason.CONNECTION_REFUSED, primary=down(PRIMARY)
    )
    assert decide(WatchState(), ONLY, report, RULES, T0).state.consecutive_failures == 1
    reach = ReachabilityResult(
        url=PRIMARY, reachable=True, passed=True, status_code=200, reason=ProbeReason.OK
    )
    assert decide(WatchState(), ONLY, {PRIMARY: reach}, RULES, T0).state.consecutive_successes == 1


def test_no_result_for_the_primary_is_no_observation() -> None:
    state = WatchState(consecutive_failures=2, first_failure_at=T0)
    decision = decide(state, URLS, {FB1: ok(FB1)}, RULES, T0 + STEP)
    assert decision.observed is False
    assert decision.state == state
    assert decision.transitions == ()


# --- unhealthy, deactivated, recovered ----------------------------------------------------------


def test_unhealthy_after_n_consecutive_failures() -> None:
    state, decisions = run([{PRIMARY: down(PRIMARY)}] * 3)
    assert [types([d]) for d in decisions] == [[], [], [DetailType.ENDPOINT_UNHEALTHY]]
    assert state.state is HealthState.UNHEALTHY
    assert actions(decisions) == []  # unhealthy alone never writes to Cognigy
    assert "connection_refused" in decisions[-1].transitions[0].reason


def test_a_success_ends_the_streak() -> None:
    state, decisions = run(
        [{PRIMARY: down(PRIMARY)}] * 2 + [{PRIMARY: ok(PRIMARY)}] + [{PRIMARY: down(PRIMARY)}] * 2
    )
    assert types(decisions) == []
    assert state.consecutive_failures == 2
    assert state.first_failure_at == T0 + 3 * STEP


def test_many_failures_in_a_short_time_never_deactivate() -> None:
    # 500 failed watches one minute apart: 8.3 hours, less than the 24 h span.
    state, decisions = run([{PRIMARY: down(PRIMARY)}] * 500, step=timedelta(minutes=1))
    assert types(decisions) == [DetailType.ENDPOINT_UNHEALTHY]
    assert state.state is HealthState.UNHEALTHY
    assert actions(decisions) == []


def test_deactivated_once_the_failures_span_t_hours() -> None:
    # 97 watches 15 min apart: the last is exactly 24 h after the first failure.
    state, decisions = run([{PRIMARY: down(PRIMARY)}] * 98)
    assert types(decisions) == [DetailType.ENDPOINT_UNHEALTHY, DetailType.ENDPOINT_DEACTIVATED]
    first_deactivation = next(i for i, d in enumerate(decisions) if d.action is not None)
    assert first_deactivation == 96  # T0 + 96 * 15 min = T0 + 24 h
    assert decisions[96].action == CognigyAction(kind="deactivate")
    assert state.state is HealthState.DEACTIVATED
    assert actions(decisions) == [CognigyAction(kind="deactivate")]  # once, not on every later watch


def test_span_without_n_failures_does_not_deactivate_then_both_at_once() -> None:
    # Two failures 30 h apart: the span is there but not the count; the third gives both transitions.
    _, decisions = run([{PRIMARY: down(PRIMARY)}] * 3, step=timedelta(hours=30))
    assert [types([d]) for d in decisions] == [
        [],
        [],
        [DetailType.ENDPOINT_UNHEALTHY, DetailType.ENDPOINT_DEACTIVATED],
    ]
    assert decisions[2].action == CognigyAction(kind="deactivate")


def test_reactivated_after_m_consecutive_healthy_watches() -> None:
    state = WatchState(state=HealthState.DEACTIVATED, consecutive_failures=200, first_failure_at=T0)
    state, decisions = run(
        [{PRIMARY: ok(PRIMARY)}] * 2 + [{PRIMARY: down(PRIMARY)}] + [{PRIMARY: ok(PRIMARY)}] * 3,
        state=state,
        start=T0 + timedelta(days=3),
    )
    assert [types([d]) for d in decisions] == [[], [], [], [], [], [DetailType.ENDPOINT_RECOVERED]]
    assert decisions[-1].action == CognigyAction(kind="reactivate")
    assert state.state is HealthState.HEALTHY
    assert (state.consecutive_failures, state.first_failure_at) == (0, None)


def test_unhealthy_recovers_after_m_without_a_cognigy_call() -> None:
    state, decisions = run([{PRIMARY: down(PRIMARY)}] * 3 + [{PRIMARY: ok(PRIMARY)}] * 3)
    assert types(decisions) == [DetailType.ENDPOINT_UNHEALTHY, DetailType.ENDPOINT_RECOVERED]
    assert actions(decisions) == []
    assert state.state is HealthState.HEALTHY


def test_410_gone_deactivates_at_once_even_with_a_healthy_fallback() -> None:
    decision = decide(WatchState(), URLS, {PRIMARY: gone(PRIMARY), FB1: ok(FB1)}, RULES, T0)
    assert types([decision]) == [DetailType.ENDPOINT_DEACTIVATED]
    assert "410" in decision.transitions[0].reason
    assert decision.action == CognigyAction(kind="deactivate")
    assert decision.state.state is HealthState.DEACTIVATED
    # Gone again: nothing more, and a healthy fallback does not bring it back.
    state, later = run(
        [{PRIMARY: gone(PRIMARY), FB1: ok(FB1)}] * 5, urls=URLS, state=decision.state, start=T0 + STEP
    )
    assert types(later) == []
    assert state.state is HealthState.DEACTIVATED


def test_410_can_be_turned_off() -> None:
    rules = HealthRules(deactivate_on_gone=False)
    decision = decide(WatchState(), ONLY, {PRIMARY: gone(PRIMARY)}, rules, T0)
    assert decision.transitions == ()
    assert decision.state.consecutive_failures == 1  # still a failure


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (down(PRIMARY, ProbeReason.BLOCKED_ADDRESS, "10.0.0.7"), "blocked_address"),
        (down(PRIMARY, ProbeReason.CERTIFICATE_INVALID, "expired"), "certificate_invalid expired"),
        (down(PRIMARY, ProbeReason.CERTIFICATE_INVALID, "untrusted"), "certificate_invalid untrusted"),
        (ok(PRIMARY, days=-2), "certificate_invalid expired"),
        (
            ProbeReport(
                url=PRIMARY, passed=False, reachable=True, reason=ProbeReason.SERVER_ERROR, status_code=503
            ),
            "server_error 503",
        ),
    ],
)
def test_blocked_address_and_bad_certificates_are_unhealthy_with_their_reason(
    result: ProbeReport, reason: str
) -> None:
    _, decisions = run([{PRIMARY: result}] * 3)
    assert DetailType.ENDPOINT_UNHEALTHY in types(decisions)
    unhealthy = next(
        t for d in decisions for t in d.transitions if t.detail_type is DetailType.ENDPOINT_UNHEALTHY
    )
    assert f"primary: {reason}" in unhealthy.reason


# --- failover and back --------------------------------------------------------------------------


def test_failover_to_the_first_healthy_fallback_and_back_after_m_passes() -> None:
    failing = {PRIMARY: down(PRIMARY), FB1: down(FB1), FB2: ok(FB2)}
    recovered = {PRIMARY: ok(PRIMARY), FB1: down(FB1), FB2: ok(FB2)}
    state, decisions = run([failing] * 3 + [recovered] * 3, urls=URLS)
    assert [types([d]) for d in decisions] == [
        [DetailType.ENDPOINT_FAILED_OVER],
        [],
        [],
        [],
        [],
        [DetailType.ENDPOINT_FAILED_BACK],
    ]
    over = decisions[0].transitions[0]
    assert (over.from_url, over.to_url) == (PRIMARY, FB2)
    assert actions(decisions) == [
        CognigyAction(kind="switch_url", url=FB2),
        CognigyAction(kind="switch_url", url=PRIMARY),
    ]
    # Served by a healthy fallback, the endpoint never went unhealthy.
    assert all(d.state.state is HealthState.HEALTHY for d in decisions)
    assert state.current_url is None
    assert state.primary_successes == 3


def test_flapping_primary_does_not_fail_back() -> None:
    failing = {PRIMARY: down(PRIMARY), FB1: ok(FB1)}
    passing = {PRIMARY: ok(PRIMARY), FB1: ok(FB1)}
    state, decisions = run([failing, passing, passing, failing, passing, passing, failing], urls=URLS)
    assert types(decisions) == [DetailType.ENDPOINT_FAILED_OVER]
    assert state.current_url == FB1


def test_fail_back_at_once_when_the_fallback_fails_and_the_primary_passes() -> None:
    state = WatchState(current_url=FB1)
    decision = decide(state, URLS, {PRIMARY: ok(PRIMARY), FB1: down(FB1), FB2: ok(FB2)}, RULES, T0)
    assert decision.action == CognigyAction(kind="switch_url", url=PRIMARY)
    assert types([decision]) == [DetailType.ENDPOINT_FAILED_BACK]


def test_from_a_failing_fallback_to_the_next_healthy_one() -> None:
    state = WatchState(current_url=FB1)
    decision = decide(state, URLS, {PRIMARY: down(PRIMARY), FB1: down(FB1), FB2: ok(FB2)}, RULES, T0)
    assert decision.action == CognigyAction(kind="switch_url", url=FB2)
    assert types([decision]) == [DetailType.ENDPOINT_FAILED_OVER]


def test_no_switch_when_nothing_is_healthy_and_no_switch_to_an_unprobed_fallback() -> None:
    state, decisions = run([{PRIMARY: down(PRIMARY), FB1: down(FB1)}] * 3, urls=URLS)
    assert types(decisions) == [DetailType.ENDPOINT_UNHEALTHY]
    assert actions(decisions) == []
    assert state.current_url is None


def test_reactivation_at_a_fallback_carries_the_url() -> None:
    state = WatchState(state=HealthState.DEACTIVATED, consecutive_failures=99, first_failure_at=T0)
    state, decisions = run(
        [{PRIMARY: down(PRIMARY), FB1: ok(FB1)}] * 3, urls=URLS, state=state, start=T0 + timedelta(days=2)
    )
    assert types(decisions) == [DetailType.ENDPOINT_RECOVERED, DetailType.ENDPOINT_FAILED_OVER]
    assert actions(decisions) == [CognigyAction(kind="reactivate", url=FB1)]  # one Cognigy call
    assert state.current_url == FB1


# --- certificates -------------------------------------------------------------------------------


def test_ten_days_left_gives_one_event_at_14_across_repeated_watches() -> None:
    _, decisions = run([{PRIMARY: ok(PRIMARY, days=10, not_after=T0 + timedelta(days=10))}] * 6)
    events = [t for d in decisions for t in d.transitions]
    assert [(e.detail_type, e.threshold, e.days_left) for e in events] == [
        (DetailType.CERTIFICATE_EXPIRING, 14, 10)
    ]
    assert actions(decisions) == []


def test_each_threshold_once_as_the_certificate_ages() -> None:
    not_after = T0 + timedelta(days=40)
    days = [40, 31, 30, 29, 20, 14, 13, 8, 7, 6, 0, -1]
    _, decisions = run(
        [{PRIMARY: ok(PRIMARY, days=d, not_after=not_after)} for d in days], step=timedelta(days=1)
    )
    assert [(t.threshold, t.days_left) for d in decisions for t in d.transitions] == [
        (30, 30),
        (14, 14),
        (7, 7),
    ]


def test_a_renewed_certificate_starts_afresh() -> None:
    old = {PRIMARY: ok(PRIMARY, days=10, not_after=T0 + timedelta(days=10))}
    renewed = {PRIMARY: ok(PRIMARY, days=25, not_after=T0 + timedelta(days=35))}
    _, decisions = run([old, old, renewed, renewed])
    assert [(t.threshold, t.days_left) for d in decisions for t in d.transitions] == [(14, 10), (30, 25)]


def test_renewal_detected_by_identity_even_with_fewer_days() -> None:
    old = {PRIMARY: ok(PRIMARY, days=10, not_after=T0 + timedelta(days=10))}
    other = {PRIMARY: ok(PRIMARY, days=9, issuer="CN=Other CA", not_after=T0 + timedelta(days=9))}
    _, decisions = run([old, other])
    assert [t.threshold for d in decisions for t in d.transitions] == [14, 14]


def test_renewal_without_identity_is_seen_by_days_growing() -> None:
    def reach(days: int) -> dict[str, ProbeReport | ReachabilityResult]:
        return {
            PRIMARY: ReachabilityResult(
                url=PRIMARY,
                reachable=True,
                passed=True,
                status_code=200,
                reason=ProbeReason.OK,
                cert_days_left=days,
            )
        }

    _, decisions = run([reach(10), reach(10), reach(9), reach(80), reach(12)])
    assert [(t.threshold, t.days_left) for d in decisions for t in d.transitions] == [(14, 10), (14, 12)]


def test_certificates_are_watched_per_url() -> None:
    results = {PRIMARY: ok(PRIMARY, days=90), FB1: ok(FB1, days=5), FB2: down(FB2)}
    _, decisions = run([results] * 3, urls=URLS)
    events = [t for d in decisions for t in d.transitions]
    assert [(e.url, e.threshold) for e in events] == [(FB1, 7)]


def test_an_expired_certificate_is_announced_once_and_is_unhealthy() -> None:
    expired = {
        PRIMARY: down(PRIMARY, ProbeReason.CERTIFICATE_INVALID, "expired").model_copy(
            update={"cert_days_left": -3, "cert_not_after": T0 - timedelta(days=3)}
        )
    }
    _, decisions = run([expired] * 3)
    assert types(decisions) == [DetailType.CERTIFICATE_EXPIRING, DetailType.ENDPOINT_UNHEALTHY]
    assert "expired" in decisions[0].transitions[0].reason


# --- idempotence --------------------------------------------------------------------------------


def test_a_retried_watch_changes_nothing() -> None:
    state = WatchState(consecutive_failures=2, first_failure_at=T0, last_watch_at=T0 + STEP)
    results = {PRIMARY: down(PRIMARY)}
    first = decide(state, ONLY, results, RULES, T0 + 2 * STEP)
    assert types([first]) == [DetailType.ENDPOINT_UNHEALTHY]
    again = decide(first.state, ONLY, results, RULES, T0 + 2 * STEP)
    assert again.observed is False
    assert again.state == first.state
    assert (again.transitions, again.action) == ((), None)
    earlier = decide(first.state, ONLY, results, RULES, T0)
    assert earlier.state == first.state


@pytest.mark.parametrize(
    ("state", "results"),
    [
        (WatchState(consecutive_failures=2, first_failure_at=T0), {PRIMARY: down(PRIMARY)}),
        (WatchState(), {PRIMARY: gone(PRIMARY)}),
        (WatchState(), {PRIMARY: down(PRIMARY), FB1: ok(FB1)}),
        (WatchState(current_url=FB1, primary_successes=2), {PRIMARY: ok(PRIMARY), FB1: ok(FB1)}),
        (WatchState(), {PRIMARY: ok(PRIMARY, days=10)}),
        (
            WatchState(state=HealthState.DEACTIVATED, consecutive_successes=2),
            {PRIMARY: ok(PRIMARY)},
        ),
    ],
)
def test_the_same_results_again_give_no_new_transition(
    state: WatchState, results: dict[str, ProbeReport | ReachabilityResult]
) -> None:
    first = decide(state, URLS, results, RULES, T0 + STEP)
    assert first.transitions
    second = decide(first.state, URLS, results, RULES, T0 + 2 * STEP)
    assert (second.transitions, second.action) == ((), None)


# --- properties ---------------------------------------------------------------------------------

_results = st.sampled_from(
    [
        ok(PRIMARY),
        down(PRIMARY),
        gone(PRIMARY),
        ok(PRIMARY, days=12),
        down(PRIMARY, ProbeReason.BLOCKED_ADDRESS),
    ]
)
_fallback = st.sampled_from([None, "up", "down", "gone"])


def _fb(url: str, kind: str | None) -> dict[str, ProbeReport]:
    if kind is None:
        return {}
    return {url: {"up": ok(url), "down": down(url), "gone": gone(url)}[kind]}


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.tuples(_results, _fallback, _fallback, st.integers(min_value=0, max_value=30 * 60)),
        min_size=1,
        max_size=40,
    ),
    n=st.integers(min_value=1, max_value=4),
    m=st.integers(min_value=1, max_value=4),
    hours=st.sampled_from([0.5, 1.0, 24.0]),
)
def test_any_sequence_keeps_the_invariants(
    steps: list[tuple[ProbeReport, str | None, str | None, int]], n: int, m: int, hours: float
) -> None:
    rules = HealthRules(unhealthy_after=n, recover_after=m, deactivate_after_hours=hours)
    state, now = WatchState(), T0
    for primary, fb1, fb2, minutes in steps:
        now += timedelta(minutes=minutes)
        results = {PRIMARY: primary, **_fb(FB1, fb1), **_fb(FB2, fb2)}
        decision = decide(state, URLS, results, rules, now)
        assert decision.state.state in set(HealthState)
        assert decision.action is None or decision.transitions
        assert decision.state.current_url in {None, FB1, FB2}
        if decision.action is not None and decision.action.kind == "deactivate":
            assert decision.state.state is HealthState.DEACTIVATED
        # A retry of the same watch is a no-op.
        retry = decide(decision.state, URLS, results, rules, now)
        assert (retry.state, retry.transitions, retry.action) == (decision.state, (), None)
        state = decision.state
