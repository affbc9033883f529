"""Following a reconcile execution from the command line (``cogwh apply``, ``cogwh watch``): its
history read as it grows, each endpoint's step printed as it happens, then the table; and the
tables, the exit codes and the error mapping the execution commands share.

Step Functions offers a CLI no push, so :func:`follow` polls: ``describe`` and the history pages
since the last one read (every event once, by id: Step Functions' pages, or moto's one whole page).
Ctrl-C while following raises :class:`KeyboardInterrupt` to the command, which says the execution
goes on and how to follow or stop it (:func:`interrupted`). What an event means is the library's
(:mod:`cognigy_webhooks.ops.progress`); an execution that ended without a summary (failed, stopped,
timed out) is given the summary of what it did so far.

Exit codes (every command): 0 ok, 1 an endpoint or the execution failed, 2 bad input, 3 the
environment (no stack, no credentials, AWS unreachable or refusing), 130 interrupted.
"""

from __future__ import annotations

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


def history_since(
    access: StackAccess, arn: str, cursor: dict[str, Any], *, executions: Executions | None = None
) -> Iterator[dict[str, Any]]:
    """The execution's events not yet seen (``cursor`` keeps the last event id and the token of the
    last page read, between calls); ``executions``: another state machine's (the watch's) than the
    reconcile's."""
    token = cursor.get("token")
    machine = executions or access.executions
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


def follow(
    access: StackAccess,
    arn: str,
    *,
    on_step: Callable[[Step], None] | None = None,
    poll: float = 0.2,
    sleep: Callable[[float], None] = time.sleep,
) -> ExecutionView:
    """Follow an execution until it ends, calling ``on_step`` for each step as it happens; its view
    at the end, with the summary of what it did so far when it ended without one."""
    cursor: dict[str, Any] = {}
    events: list[dict[str, Any]] = []
    while True:
        view = library_ops.describe_execution(access, arn)
        if on_step is not None or view.status != "RUNNING":
            for event in history_since(access, arn, cursor):
                events.append(event)
                step = library_ops.step_of(event) if on_step is not None else None
                if step is not None and on_step is not None:
                    on_step(step)
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
