"""The health rules: one watch of one endpoint -> a :class:`~.models.Decision`. Pure and
deterministic: no I/O, no clock (``now`` is given, aware), the same inputs give the same decision.

:func:`decide` takes the endpoint's :class:`~.models.WatchState`, its URLs, this watch's probe results
(an :class:`~cognigy_webhooks.models.EndpointProbeReport`, or a mapping URL ->
:class:`~cognigy_webhooks.models.ProbeReport` / :class:`~cognigy_webhooks.models.ReachabilityResult`),
the :class:`~.models.HealthRules` and ``now``. The rules, in order:

1. **Retries and blind watches change nothing.** ``now`` at or before the state's ``lastWatchAt`` is a
   retry of a watch already applied (or a clock gone back); no result for the primary (the watch ran
   out of budget) is no observation. Either returns the input state, no transition, no action.
2. **A URL is fit** when its probe passed with reason ``ok``, its status is not 410, and its
   certificate has not expired. An expired or invalid certificate (``certificate_invalid``), a
   ``blocked_address`` (the host now resolves to a private address: DNS can change), a 5xx, a
   redirect, a timeout: each is unfit, and the reason says which. A fallback without a result is
   unfit.
3. **Serving URL.** On the primary: fit -> stay; unfit -> the first fit fallback (``Endpoint Failed
   Over``, ``switch_url``) at once (it is verified fit now, and staying costs deliveries). On a
   fallback: the primary after ``recoverAfter`` consecutive passes, or at once when the current
   fallback is unfit (``Endpoint Failed Back``, ``switch_url``); else stay while the fallback is fit,
   else move to the first fit fallback. Nothing fit -> stay (a write would not help). A deactivated
   endpoint never moves; it is reactivated at the best fit URL (the primary first).
4. **Counting.** The watch is a success when the serving URL is fit (and the primary is not Gone):
   ``consecutiveSuccesses`` + 1, failures and ``firstFailureAt`` cleared (any success ends a streak,
   as Svix's disable timer does). Otherwise ``consecutiveFailures`` + 1, ``firstFailureAt`` kept or
   set to ``now``.
5. **States.** healthy -> unhealthy at ``unhealthyAfter`` consecutive failures (``Endpoint
   Unhealthy``); -> deactivated when, in addition, the streak spans ``deactivateAfterHours``
   (``Endpoint Deactivated``, ``deactivate``): many failures in a short time never deactivate. A
   primary answering 410 Gone deactivates at once from any active state, whatever the fallbacks say
   (the owner retired the receiver; fallbacks are for outages). unhealthy -> healthy after
   ``recoverAfter`` consecutive successes (``Endpoint Recovered``); deactivated -> healthy likewise
   (``Endpoint Recovered``, ``reactivate``).
6. **Certificates**, per URL with a result: the thresholds (30, 14, 7) its days left have crossed
   and were not yet announced for this certificate give ONE ``Certificate Expiring`` at the lowest of
   them (10 days left, first seen: one event, at 14); all crossed thresholds are then announced. A
   certificate is a new one (announcements start afresh) when its identity (issuer, subject,
   notAfter) changed or, without an identity, when its days left grew.

At most one Cognigy action per decision (a reactivation that also moves carries the URL), and only
alongside a transition: a watch where nothing changes makes no Cognigy call.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from datetime import datetime

from cognigy_webhooks.models import EndpointProbeReport, ProbeReason, ProbeReport, ReachabilityResult
from cognigy_webhooks.models.watch import (
    CertificateFacts,
    CognigyAction,
    Decision,
    DetailType,
    EndpointUrls,
    HealthRules,
    HealthState,
    Transition,
    WatchState,
)

__all__ = ["ProbeResults", "decide", "results_by_url"]

GONE = 410

ProbeResults = EndpointProbeReport | Mapping[str, ProbeReport | ReachabilityResult]


@dataclasses.dataclass(frozen=True)
class _Verdict:
    fit: bool
    gone: bool
    reason: str
    days_left: int | None
    identity: str | None
    not_after: datetime | None


def results_by_url(results: ProbeResults) -> dict[str, ProbeReport | ReachabilityResult]:
    """This watch's results keyed by URL (an endpoint report gives its primary and fallbacks)."""
    if isinstance(results, EndpointProbeReport):
        out: dict[str, ProbeReport | ReachabilityResult] = {}
        for report in (results.primary, *results.fallbacks):
            out.setdefault(report.url, report)
        return out
    return dict(results)


def _verdict(result: ProbeReport | ReachabilityResult) -> _Verdict:
    gone = result.status_code == GONE
    expired = result.cert_days_left is not None and result.cert_days_left < 0
    fit = result.passed and result.reason is ProbeReason.OK and not gone and not expired
    if gone:
        reason = "gone 410"
    elif fit:
        reason = "ok"
    elif result.passed and expired:
        reason = "certificate_invalid expired"
    else:
        reason = result.reason.value
        detail = result.detail if isinstance(result, ProbeReport) else None
        if detail:
            reason += f" {detail}"
        elif result.status_code is not None and result.reason is not ProbeReason.OK:
            reason += f" {result.status_code}"
    identity = not_after = None
    if isinstance(result, ProbeReport) and result.cert_not_after is not None:
        not_after = result.cert_not_after
        raw = f"{result.cert_issuer}|{result.cert_subject}|{not_after.isoformat()}"
        identity = hashlib.sha256(raw.encode()).hexdigest()[:32]
    return _Verdict(fit, gone, reason, result.cert_days_left, identity, not_after)


def _label(urls: EndpointUrls, url: str) -> str:
    return "primary" if url == urls.primary else f"fallback {urls.fallbacks.index(url) + 1}"


def _failure_reason(urls: EndpointUrls, verdicts: Mapping[str, _Verdict], only: str | None = None) -> str:
    parts = []
    for url in urls.all if only is None else (only,):
        verdict = verdicts.get(url)
        parts.append(f"{_label(urls, url)}: {verdict.reason if verdict else 'not probed'}")
    return "; ".join(parts)


def decide(
    state: WatchState,
    urls: EndpointUrls,
    results: ProbeResults,
    rules: HealthRules,
    now: datetime,
) -> Decision:
    """Apply one watch's results to ``state`` (see the module docstring for the rules)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    by_url = results_by_url(results)
    if (state.last_watch_at is not None and now <= state.last_watch_at) or urls.primary not in by_url:
        return Decision(state=state, observed=False)
    verdicts = {url: _verdict(by_url[url]) for url in urls.all if url in by_url}
    transitions: list[Transition] = []
    action: CognigyAction | None = None

    primary = verdicts[urls.primary]
    primary_successes = state.primary_successes + 1 if primary.fit else 0
    current = state.current_url if state.current_url in urls.all else urls.primary
    first_fit = next((u for u in urls.fallbacks if u in verdicts and verdicts[u].fit), None)
    best = urls.primary if primary.fit else first_fit

    def fit(url: str | None) -> bool:
        return url is not None and url in verdicts and verdicts[url].fit

    # Rule 3: the URL to serve.
    target = current
    if state.state is not HealthState.DEACTIVATED and not primary.gone:
        if current == urls.primary:
            if not primary.fit and first_fit is not None:
                target = first_fit
        elif primary.fit and (primary_successes >= rules.recover_after or not fit(current)):
            target = urls.primary
        elif not fit(current) and first_fit is not None:
            target = first_fit
    serving = best if state.state is HealthState.DEACTIVATED else target

    # Rule 4: counting.
    success = not primary.gone and fit(serving)
    if success:
        failures, successes, first_failure_at = 0, state.consecutive_successes + 1, None
    else:
        failures, successes = state.consecutive_failures + 1, 0
        first_failure_at = state.first_failure_at or now

    # Rule 5: states.
    old = new = state.state
    failure_reason = _failure_reason(urls, verdicts)
    if new is not HealthState.DEACTIVATED and primary.gone and rules.deactivate_on_gone:
        transitions.append(
            Transition(
                detail_type=DetailType.ENDPOINT_DEACTIVATED,
                reason=f"primary answered 410 Gone; {failure_reason}",
                from_state=new,
                to_state=HealthState.DEACTIVATED,
                url=current,
            )
        )
        new, action = HealthState.DEACTIVATED, CognigyAction(kind="deactivate")
    elif new is not HealthState.DEACTIVATED and not success:
        if new is HealthState.HEALTHY and failures >= rules.unhealthy_after:
            transitions.append(
                Transition(
                    detail_type=DetailType.ENDPOINT_UNHEALTHY,
                    reason=f"{failures} consecutive failed watches; {failure_reason}",
                    from_state=new,
                    to_state=HealthState.UNHEALTHY,
                    url=current,
                )
            )
            new = HealthState.UNHEALTHY
        span = now - (first_failure_at or now)
        if new is HealthState.UNHEALTHY and span >= rules.deactivate_after:
            hours = span.total_seconds() / 3600
            transitions.append(
                Transition(
                    detail_type=DetailType.ENDPOINT_DEACTIVATED,
                    reason=f"failing for {hours:.1f} h ({failures} consecutive watches); {failure_reason}",
                    from_state=new,
                    to_state=HealthState.DEACTIVATED,
                    url=current,
                )
            )
            new, action = HealthState.DEACTIVATED, CognigyAction(kind="deactivate")
    elif new is not HealthState.HEALTHY and success and successes >= rules.recover_after:
        reactivating = new is HealthState.DEACTIVATED
        if reactivating:  # at the primary if fit, else where it stands if fit, else the first fit
            if primary.fit:
                target = urls.primary
            elif not fit(current) and first_fit is not None:
                target = first_fit
        transitions.append(
            Transition(
                detail_type=DetailType.ENDPOINT_RECOVERED,
                reason=f"{successes} consecutive healthy watches" + ("; reactivated" if reactivating else ""),
                from_state=new,
                to_state=HealthState.HEALTHY,
                url=target,
            )
        )
        if reactivating:
            action = CognigyAction(kind="reactivate", url=target if target != current else None)
        new = HealthState.HEALTHY

    # Rule 3's events (a reactivation's move rides on the reactivate action).
    if target != current:
        back = target == urls.primary
        transitions.append(
            Transition(
                detail_type=DetailType.ENDPOINT_FAILED_BACK if back else DetailType.ENDPOINT_FAILED_OVER,
                reason=(
                    f"primary passed {primary_successes} consecutive watches"
                    if back
                    else f"{_failure_reason(urls, verdicts, only=current)}; {_label(urls, target)}: ok"
                ),
                from_state=old,
                to_state=new,
                from_url=current,
                to_url=target,
            )
        )
        if action is None:
            action = CognigyAction(kind="switch_url", url=target)

    # Rule 6: certificates.
    certificates: dict[str, CertificateFacts] = {}
    for url in urls.all:
        known = state.certificates.get(url)
        verdict = verdicts.get(url)
        if verdict is None or verdict.days_left is None:
            if known is not None:
                certificates[url] = known
            continue
        facts, event = _certificate(known, verdict, rules, url, new)
        certificates[url] = facts
        if event is not None:
            transitions.append(event)

    new_state = WatchState(
        state=new,
        consecutive_failures=failures,
        consecutive_successes=successes,
        primary_successes=primary_successes,
        first_failure_at=first_failure_at,
        current_url=None if target == urls.primary else target,
        last_watch_at=now,
        certificates=certificates,
    )
    return Decision(state=new_state, transitions=tuple(transitions), action=action)


def _certificate(
    known: CertificateFacts | None,
    verdict: _Verdict,
    rules: HealthRules,
    url: str,
    state: HealthState,
) -> tuple[CertificateFacts, Transition | None]:
    days_left = verdict.days_left
    assert days_left is not None
    announced: tuple[int, ...] = ()
    if known is not None:
        if verdict.identity is not None and known.identity is not None:
            renewed = verdict.identity != known.identity
        else:
            renewed = known.days_left is not None and days_left > known.days_left
        if not renewed:
            announced = known.announced
    crossed = {t for t in rules.certificate_thresholds if days_left <= t}
    fresh = crossed - set(announced)
    facts = CertificateFacts(
        identity=verdict.identity,
        not_after=verdict.not_after,
        days_left=days_left,
        announced=tuple(sorted(crossed | set(announced), reverse=True)),
    )
    if not fresh:
        return facts, None
    threshold = min(fresh)
    what = "has expired" if days_left < 0 else f"expires in {days_left} days"
    event = Transition(
        detail_type=DetailType.CERTIFICATE_EXPIRING,
        reason=f"the certificate {what} (threshold {threshold} days)",
        from_state=state,
        to_state=state,
        url=url,
        threshold=threshold,
        days_left=days_left,
    )
    return facts, event
