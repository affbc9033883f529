"""What a reconcile execution's history says, read once for every follower (``cogwh apply``, ``cogwh
watch``): each endpoint's steps as they happen (:func:`step_of`), and what the execution did so far
(:func:`summary_so_far`) when it ended without a summary of its own (it failed, timed out, was
stopped).

The endpoints run as child executions of a Distributed Map: their events are in each child's own
history (a follower reads the parent's, then each child's: :mod:`cogwh.follow`); the same states
give the same steps. A run with more endpoints than a follower reads one by one is shown by its map
run's counts (:func:`progress_step`).

The history's events are Step Functions' own (``stateEnteredEventDetails``,
``stateExitedEventDetails``, ``executionFailedEventDetails``...); the state names are the ASL's
(statemachine/reconcile.asl.json): ``Probe`` (its exit carries the probe report under ``probe``),
``Register`` (apply or delete), ``RecordProbeFailure`` / ``RecordFailure`` (a failure being recorded),
``WaitRetryAfter`` (Cognigy throttled), ``Unrecorded``; each of the last four and ``Register`` exits
with the endpoint's result. The choice states (``Route``, ``ProbePassed``, ``TooManyThrottles``) and
the passes are never shown: a failed probe is shown as failed, never as ``ProbePassed``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cognigy_webhooks.reconcile.summary import Summary, summarize

__all__ = ["Step", "planned_counts", "progress_step", "step_of", "summary_so_far"]

#: The states whose exit output is an endpoint's result (a RegisterResult).
RESULT_STATES = frozenset({"Register", "RecordProbeFailure", "RecordFailure", "Unrecorded"})


@dataclass(frozen=True)
class Step:
    """One endpoint's step: ``what`` happened (``probing``, ``probe passed``, ``probe failed``,
    ``registering``, ``deleting``, ``throttled``, ``recording the failure``, or the result's outcome:
    ``created``, ``updated``, ``unchanged``, ``deleted``, ``failed``), with a short ``detail``;
    ``final`` for the endpoint's result. ``endpoint`` is ``*`` for the execution itself (its plan,
    its end)."""

    endpoint: str
    what: str
    detail: str | None = None
    final: bool = False

    def line(self) -> str:
        return f"  {self.endpoint:<24} {self.what}" + (f"  ({self.detail})" if self.detail else "")


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _name(doc: Any) -> str:
    if isinstance(doc, Mapping):
        endpoint = doc.get("endpoint")
        if isinstance(endpoint, Mapping) and isinstance(endpoint.get("name"), str):
            return str(endpoint["name"])
        if isinstance(doc.get("name"), str):
            return str(doc["name"])
    return "?"


def _probe_detail(probe: Mapping[str, Any]) -> str | None:
    primary = probe.get("primary")
    if not isinstance(primary, Mapping):
        return None
    parts = []
    if primary.get("tlsVersion"):
        parts.append(str(primary["tlsVersion"]))
    timings = primary.get("timingsMs")
    total = timings.get("total") if isinstance(timings, Mapping) else None
    if isinstance(total, int | float):
        parts.append(f"{total:.0f} ms")
    return ", ".join(parts) or None


def _result_step(doc: Any) -> Step:
    name = _name(doc)
    outcome = str(doc.get("outcome", "failed")) if isinstance(doc, Mapping) else "failed"
    reason = doc.get("reason") if isinstance(doc, Mapping) else "bad_result"
    return Step(name, outcome, str(reason) if reason else None, final=True)


def planned_counts(plan: Mapping[str, Any]) -> tuple[int, int]:
    """How many items the plan's output planned and refused (its ``itemsRef`` counts; the items
    themselves are in the config bucket)."""
    ref = plan.get("itemsRef")
    if isinstance(ref, Mapping):
        count, refused = ref.get("count"), ref.get("invalidCount")
        return (
            count if isinstance(count, int) else 0,
            refused if isinstance(refused, int) else 0,
        )
    items, invalid = plan.get("items"), plan.get("invalid")
    return (len(items) if isinstance(items, list) else 0, len(invalid) if isinstance(invalid, list) else 0)


def progress_step(counts: Mapping[str, Any], total: int) -> Step:
    """The map run's progress as DescribeMapRun counts it (``itemCounts``): what a follower shows
    when the run has more endpoints than it follows one by one."""
    done = sum(int(counts.get(k) or 0) for k in ("succeeded", "failed", "timedOut", "aborted"))
    failed = sum(int(counts.get(k) or 0) for k in ("failed", "timedOut", "aborted"))
    running = int(counts.get("running") or 0)
    return Step("*", "progress", f"{done} of {total} done, {failed} failed, {running} running")


def step_of(event: Mapping[str, Any]) -> Step | None:
    """The step one history event shows, or None for the events no one needs to see."""
    entered = event.get("stateEnteredEventDetails")
    if isinstance(entered, Mapping):
        state, doc = entered.get("name"), _json(entered.get("input"))
        if state == "Probe":
            return Step(_name(doc), "probing")
        if state == "Register":
            action = doc.get("action") if isinstance(doc, Mapping) else None
            return Step(_name(doc), "deleting" if action == "delete" else "registering")
        if state in ("RecordProbeFailure", "RecordFailure"):
            return Step(_name(doc), "recording the failure")
        if state == "WaitRetryAfter":
            wait = ((doc or {}).get("throttleCause") or {}).get("wait") if isinstance(doc, Mapping) else None
            seconds = wait.get("waitSeconds") if isinstance(wait, Mapping) else None
            return Step(_name(doc), "throttled", f"waiting {seconds} s" if seconds is not None else None)
        return None
    exited = event.get("stateExitedEventDetails")
    if isinstance(exited, Mapping):
        state, doc = exited.get("name"), _json(exited.get("output"))
        if state == "Plan" and isinstance(doc, Mapping):
            count, refused = planned_counts(doc)
            return Step("*", "planned", f"{count} to reconcile, {refused} refused")
        if state == "Probe" and isinstance(doc, Mapping) and isinstance(doc.get("probe"), Mapping):
            probe = doc["probe"]
            if probe.get("passed") is True:
                return Step(_name(doc), "probe passed", _probe_detail(probe))
            return Step(_name(doc), "probe failed", str(probe.get("reason") or "") or None)
        if state in RESULT_STATES:
            return _result_step(doc)
        return None
    for key, what in (
        ("executionFailedEventDetails", "execution failed"),
        ("executionAbortedEventDetails", "execution stopped"),
        ("executionTimedOutEventDetails", "execution timed out"),
    ):
        details = event.get(key)
        if isinstance(details, Mapping):
            return Step("*", what, str(details.get("error") or "") or None, final=True)
    return None


def summary_so_far(events: Iterable[Mapping[str, Any]], *, execution_id: str | None = None) -> Summary:
    """What an execution did until it ended, from its history: every endpoint result its states
    gave, and the plan's refusals (the summary the summarize step would have made of them)."""
    results: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []
    source: str | None = None
    for event in events:
        exited = event.get("stateExitedEventDetails")
        if not isinstance(exited, Mapping):
            continue
        doc = _json(exited.get("output"))
        if exited.get("name") == "Plan" and isinstance(doc, Mapping):
            invalid = [i for i in doc.get("invalid") or [] if isinstance(i, dict)]
            source = doc.get("source") if isinstance(doc.get("source"), str) else None
        elif exited.get("name") in RESULT_STATES and isinstance(doc, dict):
            results.append(doc)
    return summarize(results, invalid, execution_id=execution_id, source=source)
