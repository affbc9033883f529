"""Reconcile cost per endpoint, through the local stack (template.yaml + the real ASL on moto, waits and
retry intervals instant) next to the Cognigy simulator over TLS and one local TLS 1.3 target.

Applies ``--n`` endpoints (distinct names, all pointing at the one target) with `cogwh apply`'s own
code path, then applies the same set again, and prints for each apply:

* wall time (from the start of the execution to its end, as `cogwh apply` waits for it);
* state transitions per endpoint: ``StateEntered`` events in the execution history / n;
* DynamoDB write requests per endpoint / n, counted at moto's DynamoDB request handler (the one
  place every in-process boto3 call arrives): each PutItem, UpdateItem and DeleteItem request is one
  write, each TransactWriteItems and BatchWriteItem counts its write items (Put, Update, Delete;
  a ConditionCheck writes nothing); requests DynamoDB refuses (a failed condition) count too, as
  on AWS they consume write capacity;
* Cognigy calls per endpoint: requests the simulator received / n (and the writes among them).

The Cognigy budget (CognigyRequestsPerMinute/CognigyBurst, and the simulator's own limit) is raised
so that pacing does not dominate. Targets: a re-apply makes no Cognigy write and no Cognigy call per
endpoint (the plan's one listing of all pages finds orphans and drift: pages / n calls); a first apply
takes at most 8 transitions and 4 applied DynamoDB writes per endpoint (the limiter's, the create
claim's, and the record + audit transaction's two; the claim costs its one write on creates only).
The last line is one JSON object.

    .venv/bin/python bench/reconcile.py [--n 100] [--concurrency 10]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

from cogwh import ops
from cogwh.demo import API_KEY_SECRET_NAME, ROOT, local_world, quiet_functions
from cogwh.localstack import LocalStack

RATE_PER_MINUTE = 1_000_000
BURST = 10_000
WRITE_REQUESTS = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")


class WriteCounter:
    """DynamoDB writes as moto's request handler receives them (thread-safe: Map workers race)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: collections.Counter[str] = collections.Counter()  # (operation, table) -> items
        self.refused: collections.Counter[str] = collections.Counter()

    def reset(self) -> None:
        with self._lock:
            self.items.clear()
            self.refused.clear()

    @property
    def total(self) -> int:
        return sum(self.items.values())

    def _count(self, operation: str, body: dict[str, Any]) -> list[str]:
        if operation == "transact_write_items":
            keys = []
            for entry in body.get("TransactItems", []):
                for kind in ("Put", "Update", "Delete"):
                    if kind in entry:
                        keys.append(f"TransactWriteItems.{kind} {entry[kind]['TableName']}")
            return keys
        if operation == "batch_write_item":
            return [
                f"BatchWriteItem.{next(iter(request))} {table}"
                for table, requests in body.get("RequestItems", {}).items()
                for request in requests
            ]
        name = "".join(part.capitalize() for part in operation.split("_"))
        return [f"{name} {body.get('TableName')}"]

    @contextlib.contextmanager
    def installed(self) -> Iterator[WriteCounter]:
        from moto.dynamodb.responses import DynamoHandler

        def wrap(operation: str, original: Callable[[Any], Any]) -> Callable[[Any], Any]:
            def counted(handler: Any) -> Any:
                keys = self._count(operation, handler.body)
                with self._lock:
                    self.items.update(keys)
                try:
                    return original(handler)
                except Exception:
                    with self._lock:
                        self.refused.update(keys)
                    raise

            return counted

        with contextlib.ExitStack() as stack:
            for operation in WRITE_REQUESTS:
                stack.enter_context(
                    mock.patch.object(
                        DynamoHandler, operation, wrap(operation, getattr(DynamoHandler, operation))
                    )
                )
            yield self


def desired_set(n: int, port: int) -> dict[str, Any]:
    return {
        "endpoints": [
            {
                "name": f"bench-{i:04d}",
                "url": f"https://localhost:{port}/hooks/bench-{i:04d}",
                "timeoutMs": 5000,
            }
            for i in range(n)
        ]
    }


def measure(
    stack: LocalStack, sim: Any, counter: WriteCounter, desired: dict[str, Any], n: int, expected: str
) -> dict[str, Any]:
    counter.reset()
    requests_before = sim.requests
    started = time.perf_counter()
    run = ops.apply(stack, desired, wait=lambda arn: stack.wait_execution(arn, timeout=1800))
    wall = time.perf_counter() - started
    if run.status != "SUCCEEDED" or run.summary is None:
        raise SystemExit(f"the execution {run.status}: {run.error} {run.cause}")
    if run.summary["counts"].get(expected) != n:
        raise SystemExit(
            f"expected {n} {expected}, got {run.summary['counts']} ({run.summary['failed'][:3]})"
        )
    history = stack.execution_history(run.execution_arn)
    entered = collections.Counter(
        e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e
    )
    calls = sim.requests[len(requests_before) :]
    by_method = collections.Counter(r["method"] for r in calls)
    writes = sum(by_method[m] for m in ("POST", "PATCH", "PUT", "DELETE"))
    return {
        "wall_s": round(wall, 2),
        "transitions_per_endpoint": round(sum(entered.values()) / n, 2),
        "writes_per_endpoint": round(counter.total / n, 2),
        "refused_writes_per_endpoint": round(sum(counter.refused.values()) / n, 2),
        "cognigy_calls_per_endpoint": round(len(calls) / n, 2),
        "cognigy_writes_per_endpoint": round(writes / n, 2),
        "_states": dict(entered),
        "_writes": dict(counter.items),
        "_refused": dict(counter.refused),
        "_cognigy": dict(by_method),
    }


def show(label: str, figures: dict[str, Any], n: int, out: Any) -> None:
    print(f"\n== {label}", file=out)
    print(f"wall                        {figures['wall_s']:.2f} s", file=out)
    print(f"state transitions/endpoint  {figures['transitions_per_endpoint']}", file=out)
    for state, count in sorted(figures["_states"].items(), key=lambda kv: -kv[1]):
        print(f"    {state:<24}{count / n:.2f}", file=out)
    print(
        f"DynamoDB writes/endpoint    {figures['writes_per_endpoint']} "
        f"(refused by a condition: {figures['refused_writes_per_endpoint']})",
        file=out,
    )
    for key, count in sorted(figures["_writes"].items()):
        refused = figures["_refused"].get(key, 0)
        print(
            f"    {key:<60}{count / n:.2f}" + (f"  ({refused / n:.2f} refused)" if refused else ""), file=out
        )
    print(
        f"Cognigy calls/endpoint      {figures['cognigy_calls_per_endpoint']} "
        f"(writes {figures['cognigy_writes_per_endpoint']}) {figures['_cognigy']}",
        file=out,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="endpoints to apply (default 100)")
    parser.add_argument("--concurrency", type=int, default=10, help="the Map's MaxConcurrency (default 10)")
    args = parser.parse_args(argv)
    if args.n < 1 or not 1 <= args.concurrency <= 40:
        parser.error("--n must be >= 1 and --concurrency 1..40")
    out = sys.stdout
    quiet_functions()  # the functions' JSON logs and EMF metrics would bury the figures
    with local_world(rate_per_minute=RATE_PER_MINUTE, burst=BURST) as world:
        parameters = {
            **world.stack_parameters(),
            "CognigyRequestsPerMinute": str(RATE_PER_MINUTE),
            "CognigyBurst": str(BURST),
            "MapConcurrency": str(args.concurrency),
        }
        with LocalStack(ROOT, parameters=parameters, time_factor=0.0) as stack:
            stack.client("secretsmanager").create_secret(Name=API_KEY_SECRET_NAME, SecretString=world.api_key)
            desired = desired_set(args.n, world.ports["PORT_TLS13"])
            print(
                f"reconcile {args.n} endpoints (one TLS 1.3 target, Map concurrency {args.concurrency}, "
                f"local stack set up in {stack.setup_seconds:.1f} s)",
                file=out,
            )
            with WriteCounter().installed() as counter:
                first = measure(stack, world.simulator_state, counter, desired, args.n, "created")
                show("first apply (every endpoint created)", first, args.n, out)
                again = measure(stack, world.simulator_state, counter, desired, args.n, "unchanged")
                show("re-apply (every endpoint unchanged)", again, args.n, out)

    figures: dict[str, Any] = {"n": args.n, "concurrency": args.concurrency}
    figures.update({k: v for k, v in first.items() if not k.startswith("_")})
    figures.update({f"reapply_{k}": v for k, v in again.items() if not k.startswith("_")})
    pages = -(-args.n // 100)  # the plan lists Cognigy 100 webhooks a page
    applied = round(first["writes_per_endpoint"] - first["refused_writes_per_endpoint"], 2)
    figures["applied_writes_per_endpoint"] = applied
    targets = {
        "reapply_cognigy_writes_per_endpoint": again["cognigy_writes_per_endpoint"] == 0,
        "reapply_cognigy_calls_per_endpoint<=pages/n": again["cognigy_calls_per_endpoint"]
        <= round(pages / args.n, 2),
        "transitions_per_endpoint<=8": first["transitions_per_endpoint"] <= 8,
        "applied_writes_per_endpoint<=4": applied <= 4,
    }
    print(
        "\ntargets: " + ", ".join(f"{k} {'met' if ok else 'MISSED'}" for k, ok in targets.items()), file=out
    )
    figures["targets_met"] = all(targets.values())
    print(json.dumps(figures), file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
