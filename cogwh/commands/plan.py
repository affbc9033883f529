"""cogwh plan FILE [--prune] (--local | --stack NAME) [--json]: what applying FILE would do, with no
side effect (nothing stored: its secrets count as "to Secrets Manager" and are never shown)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cognigy_webhooks import ops as library_ops
from cogwh import ops
from cogwh.follow import guarded, plan_table, print_json


def register(sub: Any) -> None:
    p = sub.add_parser(
        "plan",
        help="show what applying a desired set would create, update, delete or refuse (no side effect)",
        description="Validate FILE and compare it with the stack's records: one row per endpoint "
        "(create, update with the fields that change, unchanged, delete with --prune, refused with the "
        "field at fault). Nothing is stored. Exit 0 when nothing is refused, 2 on bad input (the file, "
        "or an endpoint the stack's Cognigy API cannot take), 3 when the stack cannot be reached.",
        epilog="example: cogwh plan examples/cognigy-endpoints.yaml --local --prune",
    )
    p.add_argument("file", type=Path, help="YAML or JSON: a list of endpoints or {endpoints: [...]}")
    p.add_argument("--prune", action="store_true", help="also plan deleting what FILE no longer declares")
    p.add_argument("--json", action="store_true", help="print the plan as JSON (the API's shape)")
    ops.add_target_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        desired = ops.load_desired_file(args.file)
        access = ops.stack_access(ops.target(args))
        plan = library_ops.plan_desired(access, desired, prune=args.prune)
        if args.json:
            print_json(plan)
        else:
            print(plan_table(plan))
        return ops.EXIT_BAD_INPUT if plan.refused else ops.EXIT_OK

    return guarded("plan", body)
