"""cogwh status (--local | --stack NAME): the endpoint records."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cogwh import ops


def register(sub: Any) -> None:
    p = sub.add_parser(
        "status",
        help="show every recorded endpoint",
        description="List the endpoint records (--json: the records as the management API shows them).",
        epilog="examples:\n  cogwh status --local\n  cogwh status --stack prod --json\n\n"
        "exit status: 0 listed, 2 bad input, 3 environment (no stack, no credentials, unreachable).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="print records as JSON")
    ops.add_target_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        records = ops.records(ops.target(args))
    except ops.CliError as exc:
        print(f"cogwh status: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        print(json.dumps([r.model_dump(mode="json", by_alias=True) for r in records], indent=2))
    else:
        print(ops.records_table(records) if records else "no endpoints recorded")
    return 0
