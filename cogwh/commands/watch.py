"""cogwh watch ID (--local | --stack NAME) [--json]: follow one execution to its end (each endpoint's
step as it happens, then the table); an execution that has ended is shown at once."""

from __future__ import annotations

import argparse
from typing import Any

from cognigy_webhooks import ops as library_ops
from cogwh import ops
from cogwh.follow import follow, guarded, interrupted, report


def register(sub: Any) -> None:
    p = sub.add_parser(
        "watch",
        help="follow a reconcile execution until it ends",
        description="Follow execution ID (its id from `cogwh executions`, or its ARN): each endpoint's "
        "steps, then the table. Exit 0 when it succeeded and nothing failed, 1 when an endpoint or the "
        "execution failed, 2 on a bad or unknown ID, 3 when the stack cannot be reached, 130 on Ctrl-C.",
        epilog="example: cogwh watch cli-0123456789abcdef0123456789abcdef --local",
    )
    p.add_argument("id", metavar="ID", help="the execution's id (or ARN)")
    p.add_argument("--json", action="store_true", help="print only the execution's view as JSON at the end")
    ops.add_target_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        access = ops.stack_access(ops.target(args))
        view = library_ops.describe_execution(access, args.id)  # a bad or unknown id: said at once
        on_step = None if args.json else (lambda step: print(step.line(), flush=True))
        try:
            view = follow(access, view.execution_arn, on_step=on_step)
        except KeyboardInterrupt:
            return interrupted("watch", view.execution_id, args)
        return report(view, as_json=args.json)

    return guarded("watch", body)
