"""cogwh apply FILE [--prune] [--yes] [--dry-run] [--json] (--local | --stack NAME): show the plan,
ask before deleting anything, reconcile through the state machine, show each endpoint's steps as
they happen, then the table.

``--prune`` deletes what FILE no longer declares: with deletions in the plan, apply asks first, and
refuses without a terminal unless ``--yes``. ``--dry-run`` is ``cogwh plan``. ``--json`` streams
nothing and prints the execution's view (the API's ``GET /executions/{id}``: status, summary, error)
at the end, also when the execution failed. Ctrl-C stops following, not the execution: the command
says how to follow (``cogwh watch``) or stop (``cogwh stop``) it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cognigy_webhooks import ops as library_ops
from cogwh import ops
from cogwh.follow import EXIT_INTERRUPTED, follow, guarded, interrupted, plan_table, print_json, report


def register(sub: Any) -> None:
    p = sub.add_parser(
        "apply",
        help="probe and register a desired set of endpoints (through the reconcile state machine)",
        description="Validate FILE, show the plan, store its secrets in Secrets Manager, put it in the "
        "config bucket and run the reconcile state machine, showing each endpoint's steps; prints one "
        "row per endpoint. Exit 0 when nothing failed, 1 when an endpoint or the execution failed (or "
        "the deletions were declined), 2 on bad input (also --prune deletions without a terminal and "
        "without --yes), 3 when the stack cannot be reached, 130 on Ctrl-C (the execution goes on).",
        epilog="example: cogwh apply examples/cognigy-endpoints.yaml --local --prune --yes",
    )
    p.add_argument("file", type=Path, help="YAML or JSON: a list of endpoints or {endpoints: [...]}")
    p.add_argument(
        "--prune", action="store_true", help="delete recorded endpoints that FILE no longer declares"
    )
    p.add_argument(
        "--yes", "-y", action="store_true", help="delete without asking (needed without a terminal)"
    )
    p.add_argument("--dry-run", action="store_true", help="show the plan only (as `cogwh plan`)")
    p.add_argument("--json", action="store_true", help="print the execution (status, summary) as JSON")
    ops.add_target_arguments(p)
    p.set_defaults(run=run)


def _confirm(names: list[str]) -> bool:
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    print(
        f"Delete {len(names)} endpoint(s) ({shown}) in Cognigy and their records? [y/N] ",
        end="",
        file=sys.stderr,
    )
    sys.stderr.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        desired = ops.load_desired_file(args.file)
        stack = ops.target(args)
        access = ops.stack_access(stack)
        plan = library_ops.plan_desired(access, desired, prune=args.prune)
        if args.dry_run:
            if args.json:
                print_json(plan)
            else:
                print(plan_table(plan))
            return ops.EXIT_BAD_INPUT if plan.refused else ops.EXIT_OK
        if not args.json:
            print(plan_table(plan) + "\n")
        if plan.deletions and not args.yes:
            if not sys.stdin.isatty():
                raise ops.CliError(
                    f"the plan deletes {len(plan.deletions)} endpoint(s) and there is no terminal to ask: "
                    "add --yes to delete them (see the plan with `cogwh plan --prune`)"
                )
            try:
                agreed = _confirm(plan.deletions)
            except KeyboardInterrupt:
                agreed = False
            if not agreed:
                print("nothing applied", file=sys.stderr)
                return ops.EXIT_FAILED
        started = library_ops.start_execution(access, desired, prune=args.prune, source="cli")
        if not args.json:
            again = "" if started.started else " (this desired set was started before: following that run)"
            print(f"execution {started.execution_id}{again}")
        try:
            view = follow(access, started.execution_arn, on_step=None if args.json else _show)
        except KeyboardInterrupt:
            return interrupted("apply", started.execution_id, args)
        return report(view, as_json=args.json)

    try:
        return guarded("apply", body)
    except KeyboardInterrupt:
        print("\ncogwh apply: interrupted before an execution started; nothing applied", file=sys.stderr)
        return EXIT_INTERRUPTED


def _show(step: library_ops.Step) -> None:
    print(step.line(), flush=True)
