"""Reconcile cost per endpoint, through the local stack (template.yaml + the real ASL on moto) next to
the Cognigy simulator over TLS and one local TLS 1.3 target, in either dialect (``--dialect``).

**Cost run** (both dialects; Step Functions waits and retry intervals instant, the Cognigy budget,
CognigyRequestsPerMinute/CognigyBurst and the simulator's own limit, raised so that pacing does not
dominate). Applies ``--n`` endpoints (distinct names, all pointing at the one target) with `cogwh
apply`'s own code path, then applies the same set again, and prints for each apply:

* wall time (from the start of the execution to its end, as `cogwh apply` waits for it);
* state transitions per endpoint: ``StateEntered`` events in the execution history / n;
* DynamoDB write requests per endpoint / n, counted at moto's DynamoDB request handler (the one
  place every in-process boto3 call arrives): each PutItem, UpdateItem and DeleteItem request is one
  write, each TransactWriteItems and BatchWriteItem counts its write items (Put, Update, Delete;
  a ConditionCheck writes nothing); the writes applied (``writes_per_endpoint``) and, beside them,
  those DynamoDB refused for a failed condition (``refused_writes_per_endpoint``: on AWS they
  consume write capacity too);
* Cognigy calls per endpoint: requests the simulator received / n (and the writes among them), and
  for the endpoints dialect the listing pages (``GET`` of the collection), counted from the same log.

``--dialect tutorial`` (``/api/v2/webhooks``) is that alone; its targets: a re-apply makes no Cognigy
write and no Cognigy call per endpoint (the plan's one listing of all pages finds orphans and drift:
pages / n calls); a first apply takes at most 8 transitions and 3.05 applied DynamoDB writes per
endpoint (the create claim's, and the record + audit transaction's two; the shared limiter leases
its tokens a few writes per apply: cognigy_webhooks.budget).

``--dialect endpoints`` (the default, Cognigy.AI's ``/new/v2.0/endpoints``) applies the n endpoints
into the project :data:`cogwh.demo.DEMO_PROJECT_ID` already holding ``--existing`` other webhook
Endpoints (someone else's, seeded straight into the simulator). Targets: the first apply makes at
most 1.05 Cognigy calls per endpoint (one listing of the project, every page, then one POST per
free name) and at most 2.05 applied DynamoDB writes per endpoint (the record and its audit event: a
name the listing saw free is created without a claim of its own, and the limiter leases); the
re-apply only the listing pages, ceil((n + existing) / 100), and no Cognigy write.
Then the **paced run**: the same first apply into a fresh stack with REAL waits (``time_factor`` 1:
Wait states, such as the one a 429 leads to, and retry intervals in real time; the shared DynamoDB
limiter always sleeps in real time) and the budget set to ``--rate`` requests a minute, ``--burst`` at
once, on both sides (the stack's CognigyRequestsPerMinute/CognigyBurst and the simulator's bucket).
Its wall time is set against

* the rate-limit floor ``(calls - burst) * 60 / rate`` with ``calls`` the requests the simulator
  received during the apply (429s included): ``floor_ratio`` = wall / floor, target <= 1.15;
* a true floor measured in the same run, once the simulator's bucket is full again: the requests the
  budget let through (the listing pages one after the other, then the POSTs at the Map's
  concurrency) sent by a bare httpx client paced by the library's in-process bucket of the same rate
  and burst: ``measured_floor_ratio``;

and broken down, all from the same run: the time before the first and after the last Cognigy
request; in between, wall = floor of the requests let through + the time the simulator's bucket sat
full with no request arriving (the stack had nothing ready to send: probes, Lambda dispatch, the
interpreter's CPU) + the budget left unspent at the last request; the 429s (the simulator's bucket
disagreeing with ours: it counts arrivals, we count grants, so the delay from a grant to its arrival,
also shown, bunches requests up); the limiter's time and conditional updates per acquire; the Lambda
time per function.

The default rate, 300 a minute (floor 18.6 s for 103 calls), keeps the budget the bound on a 2-core
machine: the local stack (moto, the ASL interpreter, every Lambda and the simulator in one
interpreter) needs some 11-15 s for 100 endpoints with no pacing at all (the cost run's wall), so a
faster budget measures the machine instead (at 600 a minute: floor_ratio about 1.55, the bucket
sitting full for some 4.5 s); the table says so when the unpaced wall is not below the floor.

The last line is one JSON object.

    .venv/bin/python bench/reconcile.py [--dialect endpoints|tutorial] [--n 100] [--existing 250]
                                        [--concurrency 10] [--rate 300] [--burst 10]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import gc
import itertools
import json
import math
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import httpx
from support.aws_calls import DYNAMODB_READS, AwsCalls, lambda_figures

from cogwh import ops
from cogwh.demo import API_KEY_SECRET_NAME, DEMO_PROJECT_ID, ROOT, LocalWorld, local_world, quiet_functions
from cogwh.localstack import LocalStack

RATE_PER_MINUTE = 1_000_000
BURST = 10_000
WRITE_REQUESTS = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
COGNIGY_WRITES = ("POST", "PATCH", "PUT", "DELETE")
PAGE_SIZE = 100  # the endpoints dialect's listing: limit 100, Cognigy's maximum
OTHERS_USER = "0" * 24  # who created the endpoints the project already holds


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


def desired_set(n: int, port: int, dialect: str = "tutorial") -> dict[str, Any]:
    desired: dict[str, Any] = {
        "endpoints": [
            {
                "name": f"bench-{i:04d}",
                "url": f"https://localhost:{port}/hooks/bench-{i:04d}",
                "timeoutMs": 5000,
            }
            for i in range(n)
        ]
    }
    if dialect == "endpoints":
        desired["cognigy"] = {"projectId": DEMO_PROJECT_ID}
    return desired


def seed_others(sim: Any, existing: int) -> None:
    """The project's ``existing`` webhook Endpoints that are not ours (straight into the store)."""
    from cogwh.sim_endpoints import store_of

    store = store_of(sim)
    for i in range(existing):
        body = {
            "projectId": DEMO_PROJECT_ID,
            "name": f"someone-elses-{i:04d}",
            "channel": "webhook",
            "settings": {"webhookUrl": f"https://elsewhere.example.com/hooks/{i}"},
        }
        store.create(body, OTHERS_USER)


def listing_pages(calls: list[dict[str, Any]]) -> int:
    """The listing pages among ``calls``: GETs of a dialect's collection itself (not of one item)."""
    from cogwh.sim_endpoints import ENDPOINTS_PATH
    from cogwh.simulator import WEBHOOKS_PATH

    collections_ = (ENDPOINTS_PATH, WEBHOOKS_PATH)
    return sum(1 for r in calls if r["method"] == "GET" and r["path"].rstrip("/") in collections_)


#: every AWS request of the run (S3, DynamoDB reads), counted at botocore
AWS = AwsCalls()


def write_units(items: collections.Counter[str]) -> int:
    """DynamoDB write request units of the writes (items under 1 KB; a transaction's item: 2)."""
    return sum(count * (2 if key.startswith("TransactWriteItems.") else 1) for key, count in items.items())


def measure(
    stack: LocalStack, sim: Any, counter: WriteCounter, desired: dict[str, Any], n: int, expected: str
) -> dict[str, Any]:
    counter.reset()
    AWS.reset()
    requests_before = len(sim.requests)
    started = time.perf_counter()
    run = ops.apply(stack, desired, wait=lambda arn: stack.wait_execution(arn, timeout=1800))
    ended = time.perf_counter()
    wall = ended - started
    if run.status != "SUCCEEDED" or run.summary is None:
        raise SystemExit(f"the execution {run.status}: {run.error} {run.cause}")
    if run.summary["counts"].get(expected) != n:
        for event in stack.execution_history(run.execution_arn, children=True):
            failed = event.get("lambdaFunctionFailedEventDetails")
            if failed:  # the first task failure, with its stack trace: why
                print(f"first task failure: {failed.get('error')}: {failed.get('cause')}", file=sys.stderr)
                break
        raise SystemExit(
            f"expected {n} {expected}, got {run.summary['counts']} ({run.summary['failed'][:3]})"
        )
    reads = AWS.of("dynamodb", DYNAMODB_READS)
    s3_requests = AWS.s3()
    parent_events = len(stack.execution_history(run.execution_arn))
    history = stack.execution_history(run.execution_arn, children=True)  # the parent's and every child's
    entered = collections.Counter(
        e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e
    )
    invocations, lambda_ms = lambda_figures(history)
    calls = sim.requests[requests_before:]
    by_method = collections.Counter(r["method"] for r in calls)
    writes = sum(by_method[m] for m in COGNIGY_WRITES)
    refused = sum(counter.refused.values())
    return {
        "wall_s": round(wall, 2),
        "transitions_per_endpoint": round(sum(entered.values()) / n, 2),
        "writes_per_endpoint": round((counter.total - refused) / n, 2),  # applied
        "refused_writes_per_endpoint": round(refused / n, 2),
        "cognigy_calls_per_endpoint": round(len(calls) / n, 2),
        "cognigy_writes_per_endpoint": round(writes / n, 2),
        "write_units_per_endpoint": round(write_units(counter.items - counter.refused) / n, 2),
        "reads_per_endpoint": round(reads / n, 2),
        "lambda_invocations_per_endpoint": round(invocations / n, 2),
        "lambda_ms_per_invocation": lambda_ms,
        "s3_requests_per_run": s3_requests,
        "parent_history_events": parent_events,
        "_wall": wall,
        "_started": started,
        "_ended": ended,
        "_calls": len(calls),
        "_cognigy_writes": writes,
        "_pages": listing_pages(calls),
        "_throttled": sum(1 for r in calls if r["status"] == 429),
        "_dynamodb_writes": counter.total - refused,
        "_dynamodb_refused": refused,
        "_states": dict(entered),
        "_writes": dict(counter.items),
        "_refused": dict(counter.refused),
        "_cognigy": dict(by_method),
        "_answered": collections.Counter((r["method"], r["status"]) for r in calls),
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
        f"(writes {figures['cognigy_writes_per_endpoint']}) {figures['_cognigy']}"
        + (f", listing pages {figures['_pages']}" if figures["_pages"] else ""),
        file=out,
    )


def open_stack(
    world: LocalWorld, *, rate: float, burst: int, concurrency: int, time_factor: float
) -> LocalStack:
    parameters = {
        **world.stack_parameters(),
        "CognigyRequestsPerMinute": f"{rate:g}",
        "CognigyBurst": str(burst),
        "MapConcurrency": str(concurrency),
    }
    stack = LocalStack(ROOT, parameters=parameters, time_factor=time_factor).start()
    try:
        stack.client("secretsmanager").create_secret(Name=API_KEY_SECRET_NAME, SecretString=world.api_key)
    except BaseException:
        stack.close()
        raise
    return stack


# --- the tutorial dialect: the cost run alone ------------------------------------------------------


def run_tutorial(args: argparse.Namespace, out: Any) -> dict[str, Any]:
    with local_world(rate_per_minute=RATE_PER_MINUTE, burst=BURST) as world:
        stack = open_stack(
            world, rate=RATE_PER_MINUTE, burst=BURST, concurrency=args.concurrency, time_factor=0.0
        )
        with contextlib.closing(stack):
            desired = desired_set(args.n, world.ports["PORT_TLS13"])
            print(
                f"reconcile {args.n} endpoints, tutorial dialect (one TLS 1.3 target, Map concurrency "
                f"{args.concurrency}, local stack set up in {stack.setup_seconds:.1f} s)",
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
    applied = first["writes_per_endpoint"]
    figures["applied_writes_per_endpoint"] = applied
    targets = {
        "reapply_cognigy_writes_per_endpoint": again["cognigy_writes_per_endpoint"] == 0,
        "reapply_cognigy_calls_per_endpoint<=pages/n": again["cognigy_calls_per_endpoint"]
        <= round(pages / args.n, 2),
        "transitions_per_endpoint<=8": first["transitions_per_endpoint"] <= 8,
        "applied_writes_per_endpoint<=3.05": applied <= 3.05,
    }
    figures["_targets"] = targets
    return figures


# --- the endpoints dialect: cost run, then the paced run -------------------------------------------


def run_endpoints_costs(world: LocalWorld, args: argparse.Namespace, out: Any) -> dict[str, Any]:
    """First apply of n new endpoints into a project holding ``existing`` others, then a re-apply."""
    sim = world.simulator_state
    sim.reset()
    seed_others(sim, args.existing)
    stack = open_stack(
        world, rate=RATE_PER_MINUTE, burst=BURST, concurrency=args.concurrency, time_factor=0.0
    )
    with contextlib.closing(stack):
        desired = desired_set(args.n, world.ports["PORT_TLS13"], "endpoints")
        print(
            f"reconcile {args.n} endpoints, endpoints dialect, into a project holding {args.existing} others "
            f"(one TLS 1.3 target, Map concurrency {args.concurrency}, local stack set up in "
            f"{stack.setup_seconds:.1f} s)",
            file=out,
        )
        with WriteCounter().installed() as counter:
            first = measure(stack, sim, counter, desired, args.n, "created")
            show(
                "cost run: first apply (every endpoint created; waits instant, budget roomy)",
                first,
                args.n,
                out,
            )
            again = measure(stack, sim, counter, desired, args.n, "unchanged")
            show("cost run: re-apply (every endpoint unchanged)", again, args.n, out)
    return {"first": first, "again": again}


class Arrivals:
    """When each request left the stack's client (entering ``httpx.AsyncClient.request``, right after
    its limiter token was granted) and when it reached the simulator (its request log), both on
    ``time.perf_counter``. A request is known on both sides by its method, path and what tells it
    apart (a create's name, a page's ``skip``); the log's entries are its own, so their ``status`` is
    filled in once answered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: list[tuple[float, dict[str, Any]]] = []
        self._sent: dict[tuple[str, str, str], collections.deque[float]] = collections.defaultdict(
            collections.deque
        )
        self.delays: list[float] = []  # sent -> arrived, seconds, one per request matched

    @staticmethod
    def _key(method: str, path: str, query: Any, body: Any) -> tuple[str, str, str]:
        which = body.get("name") if isinstance(body, dict) else None
        if which is None and isinstance(query, dict):
            which = query.get("skip")
        return method.upper(), path, str(which)

    @contextlib.contextmanager
    def installed(self, sim: Any) -> Iterator[Arrivals]:
        record_original = sim.record
        request_original = httpx.AsyncClient.request

        def record(method: str, path: str, query: Any, key: Any, body: Any) -> dict[str, Any]:
            at = time.perf_counter()
            entry: dict[str, Any] = record_original(method, path, query, key, body)
            with self._lock:
                self.entries.append((at, entry))
                sent = self._sent.get(self._key(method, path, query, body))
                if sent:
                    self.delays.append(at - sent.popleft())
            return entry

        async def request(client: httpx.AsyncClient, method: str, url: Any, **kwargs: Any) -> httpx.Response:
            params = {k: str(v) for k, v in (kwargs.get("params") or {}).items()}
            key = self._key(method, httpx.URL(str(url)).path, params, kwargs.get("json"))
            with self._lock:
                self._sent[key].append(time.perf_counter())
            return await request_original(client, method, url, **kwargs)

        with (
            mock.patch.object(sim, "record", record),
            mock.patch.object(httpx.AsyncClient, "request", request),
        ):
            yield self


class Spent:
    """Where the paced apply's time went: each Lambda invocation's duration (by function) and the
    time every caller spent inside the shared limiter's ``acquire`` (sleeps and DynamoDB updates)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.lambdas: collections.defaultdict[str, float] = collections.defaultdict(float)
        self.invocations: collections.Counter[str] = collections.Counter()
        self.limiter_s = 0.0
        self.acquires = 0
        self.limiter_updates = 0
        self.throttles = 0  # waits too long for a Lambda: raised for the Wait state

    @contextlib.contextmanager
    def installed(self, stack: LocalStack) -> Iterator[Spent]:
        from cognigy_webhooks.errors import CognigyThrottled
        from cognigy_webhooks.ratelimit import DynamoRateLimiter

        dispatch = stack.dispatch
        names = sorted(stack.functions, key=len, reverse=True)

        def timed_dispatch(function: str, *args: Any, **kwargs: Any) -> Any:
            label = next((n for n in names if n in function), function.rsplit(":", 1)[-1])
            started = time.perf_counter()
            try:
                return dispatch(function, *args, **kwargs)
            finally:
                with self._lock:
                    self.lambdas[label] += time.perf_counter() - started
                    self.invocations[label] += 1

        acquire = DynamoRateLimiter.acquire

        async def timed_acquire(limiter: DynamoRateLimiter, n: int = 1) -> None:
            started, writes = time.perf_counter(), limiter.writes
            try:
                await acquire(limiter, n)
            except CognigyThrottled:
                with self._lock:
                    self.throttles += 1
                raise
            finally:
                with self._lock:
                    self.limiter_s += time.perf_counter() - started
                    self.acquires += 1
                    self.limiter_updates += limiter.writes - writes

        with (
            mock.patch.object(stack, "dispatch", timed_dispatch),
            mock.patch.object(DynamoRateLimiter, "acquire", timed_acquire),
        ):
            yield self


def replay_bucket(times: list[float], rate_per_s: float, burst: int) -> tuple[float, float]:
    """The simulator's bucket (full at the first request) replayed over the accepted requests'
    arrivals: (seconds it sat full with no request arriving, seconds of budget left unspent at the
    last request). Over [first, last]: span = (accepted - burst) / rate + full + left, exactly."""
    tokens, full_s = float(burst), 0.0
    for previous, now in itertools.pairwise(times):
        tokens -= 1.0  # the request at ``previous``
        refill = (now - previous) * rate_per_s
        if tokens + refill > burst:
            full_s += (tokens + refill - burst) / rate_per_s
        tokens = min(float(burst), tokens + refill)
    tokens -= 1.0
    return full_s, max(0.0, tokens) / rate_per_s


async def bare_requests(
    world: LocalWorld, *, pages: int, posts: int, concurrency: int, rate: float, burst: int
) -> tuple[float, collections.Counter[int]]:
    """The true floor: ``pages`` listing requests one after the other, then ``posts`` creates at
    ``concurrency``, from one bare httpx client paced by the library's in-process token bucket of the
    budget (:class:`~cognigy_webhooks.tutorial.Pacing`: 0.1 s of arrival jitter held back from the
    burst; a 429 nonetheless is sent again after another token). Returns the wall time and the
    statuses answered."""
    from cognigy_webhooks.tutorial import Pacing
    from cogwh.sim_endpoints import ENDPOINTS_PATH

    bucket = Pacing(rate, burst).batch_limiter()  # the library's in-process pacing, as a batch uses it
    context = ssl.create_default_context(cafile=str(world.ca.ca_file))
    headers = {"X-API-Key": world.api_key, "Accept": "application/json"}
    statuses: collections.Counter[int] = collections.Counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=world.simulator_url, verify=context, headers=headers, limits=limits, timeout=30
    ) as client:
        todo = collections.deque(range(posts))

        async def send(method: Callable[..., Any], path: str, **kwargs: Any) -> None:
            while True:  # a 429 spent none of the simulator's budget: take a token again, resend
                await bucket.acquire()
                status = (await method(path, **kwargs)).status_code
                statuses[status] += 1
                if status != 429:
                    return

        async def creator() -> None:
            while todo:
                i = todo.popleft()
                body = {
                    "projectId": DEMO_PROJECT_ID,
                    "name": f"floor-{i:04d}",
                    "channel": "webhook",
                    "active": True,
                    "settings": {
                        "webhookUrl": f"https://localhost:{world.ports['PORT_TLS13']}/hooks/floor-{i}"
                    },
                }
                await send(client.post, ENDPOINTS_PATH, json=body)

        started = time.perf_counter()
        for page in range(pages):
            params: dict[str, str | int] = {
                "projectId": DEMO_PROJECT_ID,
                "channel": "webhook",
                "limit": PAGE_SIZE,
                "skip": page * PAGE_SIZE,
                "sort": "createdAt:asc",
            }
            await send(client.get, ENDPOINTS_PATH, params=params)
        await asyncio.gather(*(creator() for _ in range(concurrency)))
        return time.perf_counter() - started, statuses


def run_endpoints_paced(world: LocalWorld, args: argparse.Namespace, out: Any) -> dict[str, Any]:
    """The first apply again, into a fresh stack, with real waits and the budget set on both sides;
    then the same requests from a bare client (the true floor)."""
    sim = world.simulator_state
    sim.reset(dataclasses.replace(sim.config, rate_per_minute=float(args.rate), burst=args.burst))
    seed_others(sim, args.existing)
    rate_per_s = args.rate / 60.0
    stack = open_stack(world, rate=args.rate, burst=args.burst, concurrency=args.concurrency, time_factor=1.0)
    with contextlib.closing(stack):
        desired = desired_set(args.n, world.ports["PORT_TLS13"], "endpoints")
        gc.collect()  # the cost run's stack is garbage now: its collection is no part of this apply
        with (
            WriteCounter().installed() as counter,
            Arrivals().installed(sim) as arrivals,
            Spent().installed(stack) as spent,
        ):
            paced = measure(stack, sim, counter, desired, args.n, "created")
    started, ended = paced["_started"], paced["_ended"]
    calls = paced["_calls"]
    entries = sorted(
        ((at, entry) for at, entry in arrivals.entries if started <= at <= ended), key=lambda e: e[0]
    )
    accepted = sorted(at for at, entry in entries if entry["status"] != 429)
    floor = max(0, calls - args.burst) * 60.0 / args.rate
    full_s, left_s = replay_bucket(accepted, rate_per_s, args.burst) if accepted else (0.0, 0.0)
    head = (entries[0][0] - started) if entries else paced["_wall"]
    tail = (ended - entries[-1][0]) if entries else 0.0

    # the true floor, once the simulator's bucket is full again
    time.sleep(args.burst / rate_per_s + 0.5)
    answered = paced["_answered"]  # the requests the budget let through, as the simulator answered them
    pages = paced["_pages"] - answered[("GET", 429)]
    posts = sum(count for (method, status), count in answered.items() if method == "POST" and status < 300)
    bare_wall, bare_statuses = asyncio.run(
        bare_requests(
            world, pages=pages, posts=posts, concurrency=args.concurrency, rate=args.rate, burst=args.burst
        )
    )
    return {
        "paced": paced,
        "floor_s": floor,
        "measured_floor_s": bare_wall,
        "measured_floor_statuses": dict(bare_statuses),
        "head_s": head,
        "tail_s": tail,
        "bucket_full_s": full_s,
        "budget_left_s": left_s,
        "accepted": len(accepted),
        "spent": spent,
        "delays": sorted(arrivals.delays),
    }


def endpoints_figures(
    args: argparse.Namespace, costs: dict[str, Any], timing: dict[str, Any] | None
) -> dict[str, Any]:
    n = args.n
    first, again = costs["first"], costs["again"]
    expected_pages = math.ceil((n + args.existing) / PAGE_SIZE)
    figures: dict[str, Any] = {
        "dialect": "endpoints",
        "n": n,
        "existing": args.existing,
        "concurrency": args.concurrency,
        "wall_s": first["wall_s"],
        "cognigy_calls": first["_calls"],
        "cognigy_calls_per_endpoint": first["cognigy_calls_per_endpoint"],
        "cognigy_writes_per_endpoint": first["cognigy_writes_per_endpoint"],
        "listing_pages": first["_pages"],
        "transitions_per_endpoint": first["transitions_per_endpoint"],
        "parent_history_events": first["parent_history_events"],
        "write_units_per_endpoint": first["write_units_per_endpoint"],
        "reads_per_endpoint": first["reads_per_endpoint"],
        "lambda_invocations_per_endpoint": first["lambda_invocations_per_endpoint"],
        "lambda_ms_per_invocation": first["lambda_ms_per_invocation"],
        "s3_requests_per_run": first["s3_requests_per_run"],
        "reapply_writes_per_endpoint": again["writes_per_endpoint"],
        "reapply_cognigy_calls_per_endpoint": again["cognigy_calls_per_endpoint"],
        "reapply_parent_history_events": again["parent_history_events"],
        "writes_per_endpoint": first["writes_per_endpoint"],  # applied; the figure
        "refused_writes_per_endpoint": first["refused_writes_per_endpoint"],
        "dynamodb_writes_per_endpoint": round(first["_dynamodb_writes"] / n, 2),
        "dynamodb_refused_writes_per_endpoint": round(first["_dynamodb_refused"] / n, 2),
        "reapply_wall_s": again["wall_s"],
        "reapply_cognigy_calls": again["_calls"],
        "reapply_listing_pages": again["_pages"],
        "reapply_expected_pages": expected_pages,
        "reapply_cognigy_writes": again["_cognigy_writes"],
        "reapply_transitions_per_endpoint": again["transitions_per_endpoint"],
        "reapply_dynamodb_writes": again["_dynamodb_writes"],
        "reapply_dynamodb_refused_writes": again["_dynamodb_refused"],
    }
    if timing is not None:
        spent: Spent = timing["spent"]
        paced = timing["paced"]
        figures.update(
            {
                "rate_per_minute": args.rate,
                "burst": args.burst,
                "paced_wall_s": round(paced["_wall"], 2),
                "paced_cognigy_calls": paced["_calls"],
                "paced_throttled": paced["_throttled"],
                "paced_dynamodb_writes_per_endpoint": round(paced["_dynamodb_writes"] / n, 2),
                "paced_dynamodb_refused_writes_per_endpoint": round(paced["_dynamodb_refused"] / n, 2),
                "floor_s": round(timing["floor_s"], 2),
                "floor_ratio": round(paced["_wall"] / timing["floor_s"], 3)
                if timing["floor_s"] > 0
                else None,
                "measured_floor_s": round(timing["measured_floor_s"], 2),
                "measured_floor_ratio": round(paced["_wall"] / timing["measured_floor_s"], 3),
                "measured_floor_throttled": timing["measured_floor_statuses"].get(429, 0),
                "before_first_call_s": round(timing["head_s"], 2),
                "after_last_call_s": round(timing["tail_s"], 2),
                "bucket_full_s": round(timing["bucket_full_s"], 2),
                "budget_left_s": round(timing["budget_left_s"], 2),
                "limiter_s_per_acquire": round(spent.limiter_s / max(1, spent.acquires), 3),
                "limiter_updates_per_acquire": round(spent.limiter_updates / max(1, spent.acquires), 2),
                "limiter_throttles": spent.throttles,
                "sent_to_arrived_ms": _quantiles_ms(timing["delays"]),
            }
        )
    targets = {
        "cognigy_calls_per_endpoint<=1.05": first["_calls"] / n <= 1.05,
        "writes_per_endpoint<=2.05": first["_dynamodb_writes"] / n <= 2.05,
        "reapply_cognigy_calls==listing_pages==ceil((n+existing)/100)": again["_calls"]
        == again["_pages"]
        == expected_pages,
        "reapply_cognigy_writes==0": again["_cognigy_writes"] == 0,
    }
    if timing is not None:
        targets["floor_ratio<=1.15"] = figures["floor_ratio"] is not None and figures["floor_ratio"] <= 1.15
    figures["_targets"] = targets
    return figures


def _quantiles_ms(delays: list[float]) -> dict[str, float] | None:
    """p50, p90 and the extremes of sorted delays, in milliseconds."""
    if not delays:
        return None
    at = {"min": 0.0, "p50": 0.5, "p90": 0.9, "max": 1.0}
    return {k: round(delays[min(len(delays) - 1, int(q * len(delays)))] * 1000, 1) for k, q in at.items()}


def show_paced(args: argparse.Namespace, timing: dict[str, Any], figures: dict[str, Any], out: Any) -> None:
    paced, spent = timing["paced"], timing["spent"]
    show(
        f"paced run: first apply (real waits, {args.rate:g} requests/min, burst {args.burst}, on both sides)",
        paced,
        args.n,
        out,
    )
    rows = [
        ("apply wall", f"{paced['_wall']:.2f} s"),
        ("Cognigy requests (429s)", f"{paced['_calls']} ({paced['_throttled']})"),
        (
            "rate-limit floor",
            f"{timing['floor_s']:.2f} s = ({paced['_calls']} - {args.burst}) * 60 / {args.rate:g}",
        ),
        ("floor_ratio", f"{figures['floor_ratio']}"),
        (
            "true floor (bare client)",
            f"{timing['measured_floor_s']:.2f} s, the {timing['accepted']} requests let through, paced "
            f"in process (statuses {timing['measured_floor_statuses']})",
        ),
        ("measured_floor_ratio", f"{figures['measured_floor_ratio']}"),
        (
            "stack unpaced (cost run)",
            f"{figures['wall_s']:.2f} s"
            + (
                " (below the floor: the budget can bound the paced apply)"
                if figures["wall_s"] < timing["floor_s"]
                else ": NOT below the floor, so the budget does not bound the apply on this machine "
                "(try a lower --rate)"
            ),
        ),
        ("  before the first request", f"{timing['head_s']:.2f} s (start, Plan)"),
        (
            "  rate-limit floor",
            f"{max(0, timing['accepted'] - args.burst) * 60 / args.rate:.2f} s (accepted requests)",
        ),
        ("  bucket full, none arriving", f"{timing['bucket_full_s']:.2f} s (nothing ready to send)"),
        ("  budget left at the last one", f"{timing['budget_left_s']:.2f} s"),
        ("  after the last request", f"{timing['tail_s']:.2f} s (record, Summarize, end)"),
        (
            "sent -> arrived (jitter)",
            f"{figures['sent_to_arrived_ms']} ms over {len(timing['delays'])} requests "
            f"(their spread x {args.rate / 60:g}/s: how many requests can bunch up past the bucket)",
        ),
        (
            "limiter",
            f"{spent.acquires} acquires, {spent.limiter_s / max(1, spent.acquires) * 1000:.0f} ms and "
            f"{spent.limiter_updates / max(1, spent.acquires):.2f} updates each, {spent.throttles} raised",
        ),
    ]
    for label, count in sorted(spent.invocations.items()):
        rows.append((f"Lambda {label}", f"{count} x {spent.lambdas[label] / count * 1000:.0f} ms"))
    print("\n== paced run against its floors", file=out)
    for label, value in rows:
        print(f"{label:<32}{value}", file=out)


def run_endpoints(args: argparse.Namespace, out: Any) -> dict[str, Any]:
    with local_world(rate_per_minute=RATE_PER_MINUTE, burst=BURST, cognigy_api="endpoints") as world:
        costs = run_endpoints_costs(world, args, out)
        timing = run_endpoints_paced(world, args, out) if args.paced else None
    figures = endpoints_figures(args, costs, timing)
    if timing is not None:
        show_paced(args, timing, figures, out)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialect", choices=["endpoints", "tutorial"], default="endpoints")
    parser.add_argument("--n", type=int, default=100, help="endpoints to apply (default 100)")
    parser.add_argument(
        "--existing", type=int, default=250, help="others the project already holds (endpoints; default 250)"
    )
    parser.add_argument("--concurrency", type=int, default=10, help="the Map's MaxConcurrency (default 10)")
    parser.add_argument(
        "--rate", type=float, default=300.0, help="paced run: requests a minute (default 300)"
    )
    parser.add_argument("--burst", type=int, default=10, help="paced run: the bucket's size (default 10)")
    parser.add_argument(
        "--no-paced", dest="paced", action="store_false", help="the cost run alone (no paced run; endpoints)"
    )
    args = parser.parse_args(argv)
    if args.n < 1 or not 1 <= args.concurrency <= 40 or args.existing < 0:
        parser.error("--n must be >= 1, --existing >= 0 and --concurrency 1..40")
    if args.rate <= 0 or args.burst < 1:
        parser.error("--rate must be > 0 and --burst >= 1")
    out = sys.stdout
    quiet_functions()  # the functions' JSON logs and EMF metrics would bury the figures
    with AWS.installed():
        figures = run_endpoints(args, out) if args.dialect == "endpoints" else run_tutorial(args, out)
    targets = figures.pop("_targets")
    print(
        "\ntargets: " + ", ".join(f"{k} {'met' if ok else 'MISSED'}" for k, ok in targets.items()), file=out
    )
    figures["targets_met"] = all(targets.values())
    print(json.dumps(figures), file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
