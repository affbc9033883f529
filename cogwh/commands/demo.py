"""cogwh demo: the main job on the embedded local stack."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run the main job end to end on the embedded local stack (no AWS, no Docker)",
        description="Start the local stack, the Cognigy simulator and local HTTPS targets; apply a desired "
        "set twice through the real state machine (examples/cognigy-endpoints.yaml for Cognigy.AI's "
        "webhook Endpoints, with the round trip say -> Cognigy -> receiver -> bus; examples/endpoints.yaml "
        "for the tutorial's API, with signed deliveries); print outcomes, the audit log and a verdict "
        "table. Exit 0 only when every outcome is the expected one.",
    )
    p.add_argument(
        "--time-factor",
        type=float,
        default=1.0,
        help="scale Step Functions waits and retry intervals (1 = real time, 0 = instant)",
    )
    p.add_argument("--verbose", action="store_true", help="also show the functions' JSON logs and metrics")
    from cogwh.demo import add_cognigy_arguments

    add_cognigy_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from cogwh.demo import CognigyChoice, run_demo
    from cogwh.ops import CliError

    if args.time_factor < 0:
        print("cogwh demo: --time-factor must be >= 0", file=sys.stderr)
        return 2
    try:
        choice = CognigyChoice.from_args(args)
    except CliError as exc:
        print(f"cogwh demo: {exc}", file=sys.stderr)
        return exc.exit_code
    return run_demo(time_factor=args.time_factor, verbose=args.verbose, choice=choice)
