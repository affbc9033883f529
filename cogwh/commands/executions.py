"""cogwh executions (--local | --stack NAME) [--limit N] [--json]: the recent reconcile runs, newest first."""

from __future__ import annotations

import argparse
from typing import Any

from cognigy_webhooks import ops as library_ops
from cognigy_webhooks.dal.executions import MAX_LIST_PAGE
from cogwh import ops
from cogwh.follow import guarded, print_json


def register(sub: Any) -> None:
    p = sub.add_parser(
        "executions",
        help="list recent reconcile executions",
        description="The stack's reconcile executions, newest first (id, status, source, start, end). "
        "Exit 0, 2 on bad input, 3 when the stack cannot be reached.",
        epilog="example: cogwh executions --local --limit 5",
    )
    p.add_argument(
        "--limit", type=int, default=20, help=f"at most this many (1..{MAX_LIST_PAGE}, default 20)"
    )
    p.add_argument("--json", action="store_true", help="print the page as JSON (the API's shape)")
    ops.add_target_arguments(p)
    p.set_defaults(run=run)


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        page = library_ops.list_executions(ops.stack_access(ops.target(args)), limit=args.limit)
        if args.json:
            print_json(page)
            return ops.EXIT_OK
        rows = [
            [v.execution_id, v.status, v.source or "-", _when(v.started_at), _when(v.stopped_at)]
            for v in page.items
        ]
        print(ops.table(rows, ["ID", "STATUS", "SOURCE", "STARTED", "STOPPED"]) if rows else "no executions")
        return ops.EXIT_OK

    return guarded("executions", body)
