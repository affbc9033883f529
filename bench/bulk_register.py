"""Benchmark: register N endpoints with ``process_registration_jobs`` against the Cognigy simulator,
which allows R requests per minute per key (burst B), over TLS.

Prints the wall time, the floor the budget allows, ``(N - B) * 60 / R`` seconds (the burst goes at
once, every further request waits for its token), their ratio, and how many 429s the simulator sent.
The last line is one JSON object: n, rate_per_minute, burst, wall_s, floor_s, ratio, throttled,
registered. Target at the defaults: ratio under 1.15 and zero 429s.

The simulator runs in a subprocess (``python -m cogwh simulator``), not in a thread of this process:
in-process, server and client would share one GIL and slow each other down, so the figure would
measure interpreter contention rather than pacing. In its own process the simulator behaves like a
remote Cognigy: its own CPU, and its own clock deciding when a key's bucket is empty.

    python bench/bulk_register.py [--n 300] [--rate-per-minute 6000] [--burst 10] [--concurrency 10]
                                  [--delay-tolerance 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import ssl
import subprocess
import sys
import time

import httpx

from cognigy_webhooks import WebhookEndpoint, process_registration_jobs
from cognigy_webhooks.observability import logger
from cogwh.certs import LocalCA


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="endpoints to register (default: %(default)s)")
    parser.add_argument("--rate-per-minute", type=float, default=6000, help="budget (default: %(default)g)")
    parser.add_argument("--burst", type=int, default=10, help="bucket size (default: %(default)s)")
    parser.add_argument(
        "--concurrency", type=int, default=10, help="registrations at once (default: %(default)s)"
    )
    parser.add_argument(
        "--delay-tolerance",
        type=float,
        default=0.1,
        help="seconds of arrival jitter the pacing absorbs (the library's default: %(default)g; 0 = none)",
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.burst < 1 or args.rate_per_minute <= 0 or args.concurrency < 1:
        parser.error("--n, --burst and --concurrency must be >= 1 and --rate-per-minute > 0")

    logger.setLevel("WARNING")  # one INFO line per endpoint would drown the figures
    ca = LocalCA()
    leaf = ca.issue("127.0.0.1")
    api_key = "bench-" + secrets.token_urlsafe(24)
    simulator = subprocess.Popen(
        [sys.executable, "-m", "cogwh", "simulator", "--port", "0",
         "--tls-cert", str(leaf.cert), "--tls-key", str(leaf.key),
         "--rate-per-minute", f"{args.rate_per_minute:g}", "--burst", str(args.burst)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "COGWH_SIMULATOR_API_KEYS": api_key},  # keeps the key out of `ps`
    )  # fmt: skip
    try:
        assert simulator.stdout is not None
        line = simulator.stdout.readline()  # printed once the simulator listens
        if "listening on " not in line:
            print(f"the simulator did not start: {line!r}", file=sys.stderr)
            return 1
        base_url = line.split("listening on ", 1)[1].split()[0]
        endpoints = [
            WebhookEndpoint(name=f"bench-{i:05d}", url=f"https://127.0.0.1:9/hooks/{i}")
            for i in range(args.n)
        ]

        started = time.perf_counter()
        results = asyncio.run(
            process_registration_jobs(
                endpoints,
                api_key,
                base_url=base_url,
                verify=ca.ca_file,
                requests_per_minute=args.rate_per_minute,
                burst=args.burst,
                max_concurrency=args.concurrency,
                delay_tolerance=args.delay_tolerance,
            )
        )
        wall = time.perf_counter() - started

        ctx = ssl.create_default_context(cafile=str(ca.ca_file))
        stats = httpx.get(f"{base_url}/_admin/requests", verify=ctx).json()
    finally:
        simulator.terminate()
        simulator.wait(timeout=10)
        ca.close()

    registered = sum(1 for r in results if r.success)
    throttled = int(stats["statusCounts"].get("429", 0))
    floor = max(0, args.n - args.burst) * 60.0 / args.rate_per_minute
    ratio = wall / floor if floor > 0 else None
    print(f"endpoints:        {args.n} ({registered} registered, {args.n - registered} failed)")
    print(f"budget:           {args.rate_per_minute:g} requests/min, burst {args.burst}")
    print(f"requests seen:    {len(stats['requests'])} (429s: {throttled})")
    print(f"wall time:        {wall:.3f} s")
    print(f"floor:            {floor:.3f} s  = (N - burst) * 60 / R")
    print(f"ratio:            {ratio:.3f}" if ratio is not None else "ratio:            n/a (N <= burst)")
    figures = {
        "n": args.n,
        "rate_per_minute": args.rate_per_minute,
        "burst": args.burst,
        "wall_s": round(wall, 3),
        "floor_s": round(floor, 3),
        "ratio": round(ratio, 3) if ratio is not None else None,
        "throttled": throttled,
        "registered": registered,
    }
    print(json.dumps(figures))
    return 0 if registered == args.n else 1


if __name__ == "__main__":
    raise SystemExit(main())
