"""Time the local stack's setup: ``python -m cogwh.localstack [--root DIR] [--repeat N] [--param K=V]``.

Opens and closes the stack N times in one process and prints each setup's seconds (the first pays
for moto's and the handlers' imports), then one JSON line with the figures."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cogwh.localstack.errors import LocalStackError
from cogwh.localstack.stack import REPO_ROOT, LocalStack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cogwh.localstack", description=__doc__)
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="the directory holding the template")
    parser.add_argument("--template", default="template.yaml")
    parser.add_argument("--repeat", type=int, default=3, help="how many setups to time (default 3)")
    parser.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="a parameter override"
    )
    args = parser.parse_args(argv)
    parameters = dict(item.split("=", 1) for item in args.param)
    started = time.perf_counter()
    setups: list[float] = []
    closes: list[float] = []
    try:
        for index in range(max(1, args.repeat)):
            stack = LocalStack(
                args.root, template=args.template, parameters=parameters, stack_name=f"timing{index}"
            )
            stack.start()
            setups.append(round(stack.setup_seconds, 3))
            before_close = time.perf_counter()
            stack.close()
            closes.append(round(time.perf_counter() - before_close, 3))
            print(f"setup {index + 1}: {setups[-1]:.3f} s (close {closes[-1]:.3f} s)")
    except LocalStackError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    figures = {
        "first_setup_s": setups[0],
        "later_setup_s": round(sum(setups[1:]) / len(setups[1:]), 3) if len(setups) > 1 else None,
        "close_s": max(closes),
        "process_s": round(time.perf_counter() - started, 3),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
