"""cogwh watch-now (--local | --stack NAME) [--endpoint NAME ...] [--at ISO8601] [--json] [--no-wait]:
run one watch now (the watch state machine, as its schedule runs it) and wait for it.

The watch re-probes every active endpoint (or only those ``--endpoint`` names) and applies the health
rules (:mod:`cognigy_webhooks.watch.rules`); this command starts it
(:func:`cognigy_webhooks.ops.start_watch`, source ``cli``), shows its progress while it runs (its
Distributed Map's counts on stderr: the endpoints are judged in EXPRESS child executions, whose events
no history keeps), then each endpoint's judgement (from the watch's summary: the whole one, read from
``summaryRef`` when the execution's output is bounded) and the summary: watched / healthy / unhealthy
/ deactivated, each transition (endpoint, detail-type and reason: the watch's own audit events, read
by the watch's execution id), the Cognigy calls and the DynamoDB writes. ``--json`` streams nothing
and prints the :class:`~cognigy_webhooks.watch.run.WatchSummary` (camelCase; the execution's
:class:`~cognigy_webhooks.ops.watch.WatchView` when it did not succeed); ``--no-wait`` prints the
:class:`~cognigy_webhooks.ops.watch.WatchStarted` and returns.

``--at`` judges as if at that time (a drill, or time compressed: watches at later and later ``--at``
see hours pass); the rules take a watch at or before an endpoint's last one for a retry and change
nothing, which the command says before it starts. Both flags are checked by
:class:`cognigy_webhooks.ops.watch_request.WatchRequest`, as ``POST /watches`` checks its body.

Waiting polls the execution and its map run (DescribeMapRun; Step Functions, and moto behind ``cogwh
up``, push nothing to a client), as ``cogwh apply`` does; the sleep is injectable. Ctrl-C stops
waiting, not the watch: the command says how to see it. Exit status: 0 the watch ran (whatever it
found), 1 the execution failed (or timed out, or was stopped), 2 bad input (``--at``, an unknown
``--endpoint``), 3 the environment (no stack, a stack deployed before the watch, AWS unreachable),
130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cognigy_webhooks import ops as library_ops
from cognigy_webhooks.errors import InvalidInput, NotFound, StoreError
from cognigy_webhooks.models.watch import DetailType
from cognigy_webhooks.ops import StackAccess
from cognigy_webhooks.ops.watch import MAX_NAMES, WatchStarted, WatchView, health_of
from cognigy_webhooks.ops.watch_request import parse_watch_request
from cognigy_webhooks.watch.run import JudgeResult, WatchSummary
from cogwh import ops
from cogwh.follow import EXIT_INTERRUPTED, guarded, print_json, target_flags

_DETAIL_TYPES = {kind.action: kind.value for kind in DetailType}

EPILOG = """\
examples:
  cogwh watch-now --local
  cogwh watch-now --stack prod --endpoint orders-webhook --json
  cogwh watch-now --local --at 2026-12-02T09:00:00Z     # a drill: judge as if a day later

exit status: 0 the watch ran (whatever it found), 1 the watch's execution failed, 2 bad input
(--at, an unknown --endpoint), 3 environment (no stack, no watch in it, unreachable), 130 Ctrl-C
(the watch goes on).
"""


def _at(text: str) -> datetime:
    try:
        at = parse_watch_request({"at": text}).at
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(exc.errors[0]["message"]) from None
    assert at is not None
    return at


def _name(text: str) -> str:
    try:
        parse_watch_request({"names": [text]})
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(f"not an endpoint name: {exc.errors[0]['message']}") from None
    return text


def register(sub: Any) -> None:
    p = sub.add_parser(
        "watch-now",
        help="run one watch now: re-probe the active endpoints and apply the health rules",
        description="Start one watch (the watch state machine: re-probe every active endpoint, its url\n"
        "and fallbacks, and apply the health rules: unhealthy, deactivated, recovered, failed over,\n"
        "certificate expiring), show each endpoint as it is judged, then the summary and each\n"
        "transition with its reason. Cognigy is called only when a rule says so.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--endpoint",
        dest="names",
        action="append",
        type=_name,
        metavar="NAME",
        help="watch only this endpoint (repeat for more; default: every active endpoint)",
    )
    p.add_argument(
        "--at",
        type=_at,
        metavar="ISO8601",
        help="judge as if at this time, with a UTC offset (2026-12-02T09:00:00Z): for drills, time "
        "compressed; an endpoint already watched at or after it is left unchanged",
    )
    p.add_argument("--json", action="store_true", help="print the watch's summary as JSON (camelCase)")
    p.add_argument("--no-wait", action="store_true", help="start the watch and return (prints its id)")
    ops.add_target_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, *, sleep: Callable[[float], None] = time.sleep) -> int:
    def body() -> int:
        stack = ops.target(args)
        access = ops.stack_access(stack)
        if access.watches is None:
            raise ops.CliError(
                f"stack {stack.stack_name!r} has no watch state machine (deployed before the watch): "
                "deploy it again",
                exit_code=ops.EXIT_ENVIRONMENT,
            )
        names = list(dict.fromkeys(args.names)) if args.names else None
        _check(access, names, args.at)
        started = library_ops.start_watch(access, at=args.at, names=names, source="cli")
        if args.no_wait:
            if args.json:
                print_json(started)
            else:
                print(f"watch {started.watch_id} started{_judging(started.at)}")
                print(_how_to_see(started, args))
            return ops.EXIT_OK
        if not args.json:
            print(f"watch {started.watch_id}{_judging(started.at)}", flush=True)
        try:
            view = follow_watch(
                access,
                started,
                on_result=None if args.json else _show,
                on_progress=None if args.json else _show_progress,
                sleep=sleep,
            )
        except KeyboardInterrupt:
            print(f"\ncogwh watch-now: stopped waiting; watch {started.watch_id} goes on.", file=sys.stderr)
            print(_how_to_see(started, args), file=sys.stderr)
            return EXIT_INTERRUPTED
        return report(access, view, as_json=args.json)

    try:
        return guarded("watch-now", body)
    except KeyboardInterrupt:
        print("\ncogwh watch-now: interrupted before the watch was followed", file=sys.stderr)
        return EXIT_INTERRUPTED


def _judging(at: datetime | None) -> str:
    return f" (judging as if at {at.isoformat()})" if at is not None else ""


def _how_to_see(started: WatchStarted, args: Any) -> str:
    flags = target_flags(args)
    lines = [
        f"  its effect:  cogwh health {flags}",
        f"  its result:  GET /watches/{started.watch_id} (the management API)",
    ]
    if getattr(args, "stack", None):
        arn = started.execution_arn
        lines.append(f"  or:          aws stepfunctions describe-execution --execution-arn {arn}")
    return "\n".join(lines)


def _check(access: StackAccess, names: list[str] | None, at: datetime | None) -> None:
    """Refuse an ``--endpoint`` that names no record (exit 2, naming it); say on stderr which named
    endpoints the watch skips (not active) and which ``--at`` comes too early for."""
    records = []
    if names is not None:
        if len(names) > MAX_NAMES:
            raise ops.CliError(f"--endpoint: at most {MAX_NAMES} endpoints (given {len(names)})")
        missing = []
        for name in names:
            record = access.store.get_record(name)
            if record is None:
                missing.append(name)
            else:
                records.append(record)
        if missing:
            shown = ", ".join(repr(n) for n in missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise ops.CliError(
                f"--endpoint: no endpoint named {shown} is recorded (see `cogwh health` for the names)"
            )
    elif at is not None:
        records = list(access.store.iter_records())
    health = [health_of(record) for record in records]
    for item in health:
        if names is not None and not item.watched:
            print(
                f"note: {item.name} is not watched (its status is {item.status}): the watch skips it",
                file=sys.stderr,
            )
    if at is not None:
        late = [h for h in health if h.watched and h.last_watch_at is not None and h.last_watch_at >= at]
        if late:
            latest = max(h.last_watch_at for h in late if h.last_watch_at is not None)
            print(
                f"note: --at {at.isoformat()} is not after the last watch of {len(late)} endpoint(s) "
                f"(the latest at {latest.isoformat()}): the rules take it for a retry and leave them "
                "unchanged",
                file=sys.stderr,
            )


# --- following ----------------------------------------------------------------------------------------


def map_run_counts(access: StackAccess, arn: str, found: dict[str, Any]) -> dict[str, Any] | None:
    """The watch's map run's counts (DescribeMapRun's ``itemCounts``), None before it started or when
    they cannot be read (``found`` keeps the map run's ARN, or that it cannot be read, between calls)."""
    assert access.watches is not None
    if found.get("unreadable"):
        return None
    try:
        if "run" not in found:
            runs = access.watches.map_runs(arn)
            if not runs:
                return None
            found["run"] = runs[-1]
        return access.watches.map_run_counts(str(found["run"]))
    except (StoreError, NotFound):  # no states:ListMapRuns/DescribeMapRun: progress is a nicety
        found["unreadable"] = True
        return None


def follow_watch(
    access: StackAccess,
    started: WatchStarted,
    *,
    on_result: Callable[[JudgeResult], None] | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    poll: float = 0.2,
    sleep: Callable[[float], None] = time.sleep,
) -> WatchView:
    """Wait for the watch to end, handing its map run's counts to ``on_progress`` whenever they
    change, then each endpoint's judgement (from its summary, in name order) to ``on_result``; the
    watch's view at the end."""
    found: dict[str, Any] = {}
    shown: dict[str, Any] | None = None
    while True:
        view = library_ops.describe_watch(access, started.execution_arn)
        if view.status != "RUNNING":
            if on_result is not None and view.summary is not None:
                for result in view.summary.results:
                    on_result(result)
            return view
        if on_progress is not None:
            counts = map_run_counts(access, started.execution_arn, found)
            if counts is not None and counts != shown:
                shown = counts
                on_progress(counts)
        sleep(poll)


def _show_progress(counts: dict[str, Any]) -> None:
    print(progress_line(counts), file=sys.stderr, flush=True)


def progress_line(counts: dict[str, Any]) -> str:
    """``  judged 40 of 200 (1 failed, 10 running)`` from a map run's item counts."""
    ended = sum(int(counts.get(k) or 0) for k in ("succeeded", "failed", "timedOut", "aborted"))
    failed = sum(int(counts.get(k) or 0) for k in ("failed", "timedOut", "aborted"))
    total, running = int(counts.get("total") or 0), int(counts.get("running") or 0)
    return f"  judged {ended} of {total} ({failed} failed, {running} running)"


def _show(result: JudgeResult) -> None:
    print(result_line(result), flush=True)


def result_line(result: JudgeResult) -> str:
    """``  name  state  transitions`` (or the outcome and its reason when the endpoint was not judged)."""
    if result.outcome in ("failed", "skipped", "not_probed"):
        what = result.outcome.replace("_", " ")
        detail = result.reason or "-"
    else:
        what = result.state.value if result.state is not None else result.outcome
        detail = ", ".join(result.transitions)
    return f"  {result.name:<24} {what:<12} {detail}".rstrip()


# --- the end ------------------------------------------------------------------------------------------


def report(access: StackAccess, view: WatchView, *, as_json: bool) -> int:
    """The watch's end: its summary (JSON, or the counts and the transitions with their reasons) and
    exit 0; the execution's view and 1 when it did not succeed."""
    if view.status != "SUCCEEDED" or view.summary is None:
        if as_json:
            print_json(view)
        why = view.error or ("it ended without a summary" if view.status == "SUCCEEDED" else None)
        print(
            f"cogwh watch-now: watch {view.watch_id} {view.status}" + (f": {why}" if why else ""),
            file=sys.stderr,
        )
        return ops.EXIT_FAILED
    summary = view.summary
    if as_json:
        print_json(summary)
        return ops.EXIT_OK
    print(summary_text(summary, transition_rows(access, view)))
    return ops.EXIT_OK


def transition_rows(access: StackAccess, view: WatchView) -> list[list[str]]:
    """One row per transition of this watch (endpoint, detail-type, reason), from the endpoints' audit
    events that this watch's execution wrote, oldest first."""
    assert view.summary is not None
    ids = {view.execution_arn, view.watch_id}
    rows: list[list[str]] = []
    for result in view.summary.results:
        if not result.transitions:
            continue
        events = access.store.audit_for(result.name, limit=10 + 2 * len(result.transitions))
        mine = [e for e in reversed(events) if e.source == "watch" and e.execution_id in ids]
        if not mine:  # not readable (a retention of 0?): the detail-types alone
            rows.extend([result.name, kind, "-"] for kind in result.transitions)
            continue
        for event in mine:
            rows.append([result.name, _DETAIL_TYPES.get(event.action, event.action), event.detail or "-"])
    return rows


def summary_text(summary: WatchSummary, transitions: list[list[str]]) -> str:
    lines = [
        f"watched {summary.watched}: healthy {summary.healthy}, unhealthy {summary.unhealthy}, "
        f"deactivated {summary.deactivated}"
    ]
    others = [
        f"{label} {count}"
        for label, count in (
            ("not probed", summary.not_probed),
            ("skipped", summary.skipped),
            ("failed", summary.failed),
        )
        if count
    ]
    if others:
        lines[0] += " (" + ", ".join(others) + ")"
    if transitions:
        lines.append(ops.table(transitions, ["NAME", "DETAIL-TYPE", "REASON"]))
    else:
        lines.append("no transitions")
    unjudged = [r for r in summary.results if r.outcome in ("failed", "not_probed", "skipped")]
    if unjudged:
        lines.append("not judged:")
        lines.extend(result_line(r) for r in unjudged)
    if summary.min_cert_days_left is not None:
        lines.append(f"fewest certificate days left: {summary.min_cert_days_left}")
    lines.append(f"Cognigy calls {summary.cognigy_calls}, writes {summary.writes}")
    return "\n".join(lines)
