"""The ``cogwh`` command line. Each subcommand lives in its own module under ``cogwh/commands/``
and exposes ``register(subparsers)``; this file only assembles them (imports stay lazy per command)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand name -> module under cogwh.commands providing register(subparsers) and run(args) -> int
COMMANDS: dict[str, str] = {
    "simulator": "simulator",
    "demo": "demo",
    "up": "up",
    "apply": "apply",
    "status": "status",
    "audit": "audit",
    "probe": "probe",
    "sign": "sign",
    "say": "say",
    "export": "export",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cogwh",
        description="Register, probe and receive NICE Cognigy webhook endpoints on AWS "
        "(or on the local stack).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS.values():
        importlib.import_module(f"cogwh.commands.{module}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
