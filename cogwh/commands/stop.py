"""cogwh stop ID (--local | --stack NAME) [--json]: stop a running reconcile execution."""

from __future__ import annotations

import argparse
from typing import Any

from cognigy_webhooks import ops as library_ops
from cogwh import ops
from cogwh.follow import guarded, print_json


def register(sub: Any) -> None:
    p = sub.add_parser(
        "stop",
        help="stop a running reconcile execution",
        description="Stop execution ID (endpoints already reconciled stay as they are; the audit log "
        "says what was done). Exit 0 when it was stopped, 1 when it had already ended, 2 on a bad or "
        "unknown ID, 3 when the stack cannot be reached.",
        epilog="example: cogwh stop cli-0123456789abcdef0123456789abcdef --local",
    )
    p.add_argument("id", metavar="ID", help="the execution's id (or ARN)")
    p.add_argument("--json", action="store_true", help="print the answer as JSON (the API's shape)")
    ops.add_target_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        stopped = library_ops.stop_execution(
            ops.stack_access(ops.target(args)), args.id, cause="stopped with `cogwh stop`"
        )
        if args.json:
            print_json(stopped)
        elif stopped.stopped:
            print(f"execution {stopped.execution_id} stopped ({stopped.status})")
        else:
            print(f"execution {stopped.execution_id} had already ended ({stopped.status}): nothing to stop")
        return ops.EXIT_OK if stopped.stopped else ops.EXIT_FAILED

    return guarded("stop", body)
