"""cogwh apply FILE [--prune] (--local | --stack NAME): reconcile a desired set through the state machine."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cogwh import ops


def register(sub: Any) -> None:
    p = sub.add_parser(
        "apply",
        help="probe and register a desired set of endpoints (through the reconcile state machine)",
        description="Validate FILE, store its secrets in Secrets Manager, put it in the config bucket and "
        "run the reconcile state machine; prints one row per endpoint. Exit 0 when nothing failed, 1 when "
        "an endpoint or the execution failed, 2 on bad input.",
    )
    p.add_argument("file", type=Path, help="YAML or JSON: a list of endpoints or {endpoints: [...]}")
    p.add_argument(
        "--prune", action="store_true", help="delete recorded endpoints that FILE no longer declares"
    )
    p.add_argument("--json", action="store_true", help="print the execution's summary as JSON")
    ops.add_target_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        desired = ops.load_desired_file(args.file)
        stack = ops.target(args)
        result = ops.apply(stack, desired, prune=args.prune)
    except ops.CliError as exc:
        print(f"cogwh apply: {exc}", file=sys.stderr)
        return exc.exit_code
    return report(result, as_json=args.json)


def report(result: ops.ApplyRun, *, as_json: bool = False) -> int:
    if result.status != "SUCCEEDED":
        print(
            f"execution {result.status}: {result.error or ''} {result.cause or ''}".strip(), file=sys.stderr
        )
        return 1
    summary = result.summary or {}
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        print(ops.summary_table(summary))
        counts = summary.get("counts", {})
        print(", ".join(f"{k} {v}" for k, v in counts.items()))
    return 1 if summary.get("failed") else 0
