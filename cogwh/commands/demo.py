"""cogwh demo: the main job on the embedded local stack."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run the main job end to end on the embedded local stack (no AWS, no Docker)",
        description="Start the local stack, the Cognigy simulator and local HTTPS targets; apply "
        "examples/endpoints.yaml twice through the real state machine; print outcomes, the audit log and a "
        "verdict table. Exit 0 only when every outcome is the expected one.",
    )
    p.add_argument(
        "--time-factor",
        type=float,
        default=1.0,
        help="scale Step Functions waits and retry intervals (1 = real time, 0 = instant)",
    )
    p.add_argument("--verbose", action="store_true", help="also show the functions' JSON logs and metrics")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from cogwh.demo import run_demo

    if args.time_factor < 0:
        print("cogwh demo: --time-factor must be >= 0")
        return 2
    return run_demo(time_factor=args.time_factor, verbose=args.verbose)
