"""Following a reconcile execution from the command line (``cogwh apply``, ``cogwh watch``): its
history read as it grows, each endpoint's step printed as it happens, then the table; and the
tables, the exit codes and the error mapping the execution commands share.

Step Functions offers a CLI no push, so :func:`follow` polls: ``describe`` and the history pages
since the last one read (every event once, by id: Step Functions' pages, or moto's one whole page),
the parent's and, once its Distributed Map runs, its child executions' (one per endpoint, at most
:data:`CHILD_READS_PER_POLL` histories a poll); a run of more than :data:`FOLLOW_CHILDREN`
endpoints is shown by its map run's counts instead.
Ctrl-C while following raises :class:`KeyboardInterrupt` to the command, which says the execution
goes on and how to follow or stop it (:func:`interrupted`). What an event means is the library's
(:mod:`cognigy_webhooks.ops.progress`); an execution that ended without a summary (failed, stopped,
timed out) is given the summary of what it did so far.

Exit codes (every command): 0 ok, 1 an endpoint or the execution failed, 2 bad input, 3 the
environment (no stack, no credentials, AWS unreachable or refusing), 130 interrupted.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from cognigy_webhooks import ops as library_ops
from cognigy_webhooks.dal.executions import Executions
from cognigy_webhooks.errors import InvalidInput, NotFound, StoreError
from cognigy_webhooks.ops import StackAccess, Step
from cognigy_webhooks.ops.shapes import PLAN_ACTIONS, ExecutionView, PlanView
from cogwh import ops

__all__ = [
    "EXIT_INTERRUPTED",
    "exit_code_of",
    "follow",
    "guarded",
    "interrupted",
    "plan_table",
    "print_json",
    "target_flags",
]

EXIT_INTERRUPTED = 130


#: A run of more endpoints than this is shown by its map run's counts, not endpoint by endpoint.
FOLLOW_CHILDREN = 200
#: The most child histories one poll reads (Step Functions' GetExecutionHistory quota is a few a
#: second): the ended ones first, so every endpoint's result is shown once, however late.
CHILD_READS_PER_POLL = 10
#: The parent's events that come after its map run's children.
_AFTER_CHILDREN = frozenset(
    {
        "MapRunSucceeded",
        "MapRunFailed",
        "MapRunAborted",
        "ExecutionFailed",
        "ExecutionAborted",
        "ExecutionTimedOut",
    }
)


def _one_history(machine: Executions, arn: str, cursor: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One execution's events not yet seen (``cursor``: its last event id, its last page's token)."""
    token = cursor.get("token")
    while True:
        events, following = machine.history_page(arn, token=token)
        for event in events:
            event_id = event.get("id")
            if isinstance(event_id, int) and event_id <= cursor.get("last", 0):
                continue
            if isinstance(event_id, int):
                cursor["last"] = event_id
            yield event
        if not following:
            cursor["token"] = token  # the last page: read again from it next time
            return
        token = following


def _note(event: dict[str, Any], cursor: dict[str, Any]) -> None:
    """What the follower keeps of a parent event: its map runs, how many endpoints the plan planned."""
    started = event.get("mapRunStartedEventDetails")
    if isinstance(started, dict) and started.get("mapRunArn"):
        cursor.setdefault("runs", []).append(str(started["mapRunArn"]))
    exited = event.get("stateExitedEventDetails")
    if isinstance(exited, dict) and exited.get("name") == "Plan":
        try:
            doc = json.loads(exited.get("output") or "null")
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            cursor["count"] = library_ops.planned_counts(doc)[0]


def _children_since(machine: Executions, run: str, cursor: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The events of a map run's STANDARD children not yet seen, oldest child first, at most
    :data:`CHILD_READS_PER_POLL` histories per call (a child read to its end is not read again)."""
    known: dict[str, dict[str, Any]] = cursor.setdefault("children", {})
    listed = []
    token: str | None = None
    while True:
        page, token = machine.children_page(run, token=token)
        listed.extend(page)
        if not token:
            break
    pending = [c for c in listed if not known.get(c.execution_arn, {}).get("done")]
    pending.sort(key=lambda c: (c.status == "RUNNING", c.start_date or 0, c.execution_arn))
    for child in pending[:CHILD_READS_PER_POLL]:
        state = known.setdefault(child.execution_arn, {})
        yield from _one_history(machine, child.execution_arn, state)
        state["done"] = child.status != "RUNNING"


def history_since(
    access: StackAccess, arn: str, cursor: dict[str, Any], *, executions: Executions | None = None
) -> Iterator[dict[str, Any]]:
    """The execution's events not yet seen, and its Distributed Map children's (``cursor`` keeps
    where each history was left, between calls): the parent's events up to its map run, the
    children's (when the plan planned at most :data:`FOLLOW_CHILDREN`), then the parent's after the
    map run. ``executions``: another state machine's (the watch's) than the reconcile's."""
    machine = executions or access.executions
    after: list[dict[str, Any]] = []
    for event in _one_history(machine, arn, cursor):
        _note(event, cursor)
        if after or event.get("type") in _AFTER_CHILDREN:
            after.append(event)
        else:
            yield event
    if cursor.get("count", 0) <= FOLLOW_CHILDREN:
        for run in cursor.get("runs", []):
            yield from _children_since(machine, run, cursor)
    yield from after


def _progress(access: StackAccess, cursor: dict[str, Any]) -> Step | None:
    """The map run's counts, for a run too big to follow endpoint by endpoint (None: not one)."""
    runs, count = cursor.get("runs") or [], int(cursor.get("count", 0))
    if not runs or count <= FOLLOW_CHILDREN:
        return None
    return library_ops.progress_step(access.executions.map_run_counts(runs[-1]), count)


def follow(
    access: StackAccess,
    arn: str,
    *,
    on_step: Callable[[Step], None] | None = None,
    poll: float = 0.2,
    sleep: Callable[[float], None] = time.sleep,
) -> ExecutionView:
    """Follow an execution until it ends, calling ``on_step`` for each step as it happens (its
    endpoints' steps from its children's histories; for a big run, its map run's counts when they
    change); its view at the end, with the whole summary (read from ``summaryRef`` when the
    output's is bounded), or the summary of what it did so far when it ended without one."""
    cursor: dict[str, Any] = {}
    events: list[dict[str, Any]] = []
    shown: str | None = None
    while True:
        view = library_ops.describe_execution(access, arn, whole=True)
        if on_step is not None or view.status != "RUNNING":
            for event in history_since(access, arn, cursor):
                events.append(event)
                step = library_ops.step_of(event) if on_step is not None else None
                if step is not None and on_step is not None:
                    on_step(step)
            progress = _progress(access, cursor) if on_step is not None else None
            if progress is not None and on_step is not None and progress.detail != shown:
                shown = progress.detail
                on_step(progress)
        if view.status != "RUNNING":
            if view.summary is None:
                view.summary = library_ops.summary_so_far(events, execution_id=arn)
            return view
        sleep(poll)


def exit_code_of(view: ExecutionView) -> int:
    """0 when the execution succeeded and no endpoint failed, else 1."""
    failed = view.summary is not None and bool(view.summary.failed)
    return 0 if view.status == "SUCCEEDED" and not failed else 1


def print_json(model: Any, out: TextIO | None = None) -> None:
    """One of the API's shapes, as the API answers it (camelCase)."""
    print(model.model_dump_json(by_alias=True, indent=2), file=out or sys.stdout)


def report(view: ExecutionView, *, as_json: bool, out: TextIO | None = None) -> int:
    """The execution's end: its JSON view, or the table, the counts and (when it failed) why."""
    out = out or sys.stdout
    if as_json:
        print_json(view, out)
        return exit_code_of(view)
    summary = view.summary.model_dump(mode="json", by_alias=True) if view.summary is not None else {}
    if summary.get("results"):
        print("\n" + ops.summary_table(summary), file=out)
    counts = summary.get("counts") or {}
    print(", ".join(f"{k} {v}" for k, v in counts.items()) or "nothing reconciled", file=out)
    if view.status != "SUCCEEDED":
        why = f"{view.error or ''}: {view.cause or ''}".strip(": ")
        print(f"execution {view.execution_id} {view.status}" + (f": {why}" if why else ""), file=out)
    return exit_code_of(view)


def plan_table(plan: PlanView) -> str:
    """One row per endpoint: what applying would do, and why (the fields that change, the secrets
    that go to Secrets Manager, the fields refused); then the counts."""
    rows = []
    for entry in plan.entries:
        details = []
        if entry.changes:
            details.append("changes " + ", ".join(entry.changes))
        if entry.secrets:
            details.append("to Secrets Manager: " + ", ".join(entry.secrets))
        details.extend(f"{e.field}: {e.message}" for e in entry.errors)
        rows.append([entry.name, entry.action, "; ".join(details) or "-"])
    counts = ", ".join(f"{action} {plan.counts.get(action, 0)}" for action in PLAN_ACTIONS)
    if not rows:
        return f"nothing to do ({counts})"
    return ops.table(rows, ["NAME", "ACTION", "DETAIL"]) + "\n" + counts


def target_flags(args: Any) -> str:
    """The flags that name the stack a command talked to, to repeat in a hint."""
    if getattr(args, "stack", None):
        region = f" --region {args.region}" if getattr(args, "region", None) else ""
        return f"--stack {args.stack}{region}"
    return "--local"


def interrupted(command: str, execution_id: str, args: Any) -> int:
    """What Ctrl-C while following says: the execution goes on, and how to follow or stop it."""
    flags = target_flags(args)
    print(
        f"\ncogwh {command}: stopped following; execution {execution_id} goes on.\n"
        f"  follow it:  cogwh watch {execution_id} {flags}\n"
        f"  stop it:    cogwh stop {execution_id} {flags}",
        file=sys.stderr,
    )
    return EXIT_INTERRUPTED


def guarded(command: str, run: Callable[[], int]) -> int:
    """Run a command's body with the errors mapped once to a line on stderr and an exit code: bad
    input and what does not exist 2, the environment (AWS's failures, no stack) 3."""
    try:
        return run()
    except ops.CliError as exc:
        print(f"cogwh {command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except (InvalidInput, NotFound) as exc:
        print(f"cogwh {command}: {exc}", file=sys.stderr)
        return ops.EXIT_BAD_INPUT
    except StoreError as exc:
        mapped = ops.environment_error(exc.__cause__) if exc.__cause__ is not None else None
        print(f"cogwh {command}: {mapped or exc}", file=sys.stderr)
        return ops.EXIT_ENVIRONMENT
    except Exception as exc:
        mapped = ops.environment_error(exc)
        if mapped is None:
            raise
        print(f"cogwh {command}: {mapped}", file=sys.stderr)
        return mapped.exit_code
