"""cogwh audit NAME (--local | --stack NAME): one endpoint's audit log, newest first."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cogwh import ops


def register(sub: Any) -> None:
    p = sub.add_parser(
        "audit",
        help="show an endpoint's audit log",
        description="Audit events, newest first (--json: as the management API shows them).",
        epilog="examples:\n  cogwh audit bot-outputs --local\n"
        "  cogwh audit orders-webhook --stack prod --json\n\n"
        "exit status: 0 listed, 2 bad input, 3 environment (no stack, no credentials, unreachable).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", help="endpoint name")
    p.add_argument("--limit", type=int, default=50, help="at most this many events (default 50)")
    p.add_argument("--json", action="store_true", help="print events as JSON")
    ops.add_target_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.limit < 1:
        print("cogwh audit: --limit must be at least 1", file=sys.stderr)
        return 2
    try:
        events = ops.audit(ops.target(args), args.name, limit=args.limit)
    except ops.CliError as exc:
        print(f"cogwh audit: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        print(json.dumps([e.model_dump(mode="json", by_alias=True) for e in events], indent=2))
    else:
        print(ops.audit_table(events) if events else f"no audit events for {args.name!r}")
    return 0
