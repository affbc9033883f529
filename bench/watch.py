"""The watch's cost per endpoint, through the local stack (template.yaml + statemachine/watch.asl.json on
moto: its Distributed Map of EXPRESS children, the endpoints dialect against the Cognigy simulator
over TLS), next to its probe floor measured in the same run (issues 12 and 13's figures).

Starts ``--servers`` TLS 1.3 target servers on 127.0.0.1 in a child process (so that they do not share
this interpreter's lock with the stack; each answers ``200`` on any path), applies ``--n`` endpoints
spread over them (`cogwh apply`'s own code path), then takes ``--down`` K of them down (their own
servers, closed: connection refused) and runs ``--watches`` watches (``cognigy_webhooks.ops.
start_watch``, each at its own ``at``, 15 minutes after the previous one, so each is a new watch; the
default is one watch, or WatchUnhealthyAfter watches with ``--down`` so that the last one makes the K
``Endpoint Unhealthy``). For each watch:

* ``watch_seconds``: wall time from the start of the execution to its end (as `cogwh watch-now` waits);
* ``cognigy_calls``: requests the simulator received during the watch (0 unless a rule acts);
* ``writes_per_endpoint``: DynamoDB write items / n, counted at moto's DynamoDB request handler (the one
  place every in-process boto3 call arrives): each PutItem, UpdateItem and DeleteItem is one item, a
  TransactWriteItems or BatchWriteItem counts its Put, Update and Delete items (a ConditionCheck writes
  nothing); refused writes (a failed condition) count too and are shown apart;
  ``reads_per_endpoint``: read requests / n (GetItem, Query and Scan pages; BatchGetItem and
  TransactGetItems count their keys);
* ``transitions_per_endpoint``: the states entered / n, the parent's (``StateEntered`` events in its
  history: ``parent_history_events`` is that history's length, the same whatever n) and its EXPRESS
  children's, which no history keeps: counted from the child ASL (bench/support/watch_meters.py:
  each Task state once per invocation of its function, JudgeFailed once per judgement it made);
  ``children_per_endpoint``: the map run's children (its ResultWriter's entries) / n;
* ``lambda_invocations_per_endpoint``: invocations the stack dispatched / n (``lambda_invocations_by_
  function``: ``probe`` and ``watch`` apart); ``lambda_ms_per_invocation``: each function's mean
  thread CPU per invocation, measured around its in-process handler and inclusive of the in-process
  moto answering its AWS requests (standing in for their round trips; the network waits are not in
  it): ``probe``, ``watch``, and the watch function by step (``watch_list``, ``watch_judge``,
  ``watch_summarize``); ``lambda_wall_ms_per_invocation`` the same in wall time, which the one
  interpreter every handler and moto share inflates;
* ``s3_requests_per_watch``: the S3 requests of the watch, ``{"get", "put", "list"}`` as S3 prices them
  (the targets written, the ItemReader's read, the ResultWriter's files and manifest, summarize's
  reads and its summary), counted at moto's request stubber, where every in-process client's
  requests arrive;
* ``express_child_seconds_per_endpoint``: the mean wall seconds of one child, StartDate to StopDate in
  the ResultWriter's files (locally the children share this interpreter: a ceiling, not AWS's figure).

The floor: the same n endpoints probed by the library's :func:`~cognigy_webhooks.net.probe.
probe_endpoint` with the probe function's own policy (its module's ``POLICY``), at the watch's
concurrency (the template's WatchConcurrency default), in one asyncio loop of this process, against
the same targets in the same state, as bench/probe_throughput.py measures its floor: a warm-up, then
``--rounds`` rounds alternating with the watches, the best kept. ``floor_ratio`` = watch_seconds /
floor_seconds.

Figures in the last line are the LAST watch's (with ``--down``, the one carrying the transitions:
the cost of a bad watch; ``audit_writes_per_endpoint`` its audit items); every watch's figures are in
``per_watch``, the fastest watch's wall in ``best_watch_seconds``. Also shown: the largest input or
output in the execution's history (Step Functions refuses more than 256 KiB; the watch's state holds
references and a bounded summary, so no n reaches it: ``payload_limit_n`` is null), and where the
time goes: this process's CPU
during the watch (the stack, moto, the ASL interpreter and every Lambda share ONE interpreter: CPU
close to the wall means the watch is bound by that interpreter, not by the network) split into
layers by thread CPU time (:class:`CpuBudget`: each Lambda handler, moto answering each AWS service,
and the rest: the interpreter and its botocore clients), next to the floor's CPU per probe; with
``--profile``, one more watch (not measured) under cProfile on a CPU clock in every thread it starts,
summed by package and by function (``--profile-out`` keeps the stats for pstats).

The last line is one JSON object: n, down, watch_seconds, floor_seconds, floor_ratio, cognigy_calls,
writes_per_endpoint, reads_per_endpoint, transitions_per_endpoint, lambda_invocations_per_endpoint,
parent_history_events, s3_requests_per_watch, express_child_seconds_per_endpoint,
lambda_ms_per_invocation, children_per_endpoint, watch_concurrency (and a few more: the CPU per
endpoint by layer, the largest payload, per_watch).

    .venv/bin/python bench/watch.py [--n 200] [--down 0] [--watches 1] [--servers 4] [--rounds 5]
                                    [--host 127.0.0.1] [--profile [--profile-out FILE]]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import cProfile
import io
import json
import multiprocessing
import pstats
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from support.watch_meters import AwsRequests, child_seconds, child_transitions, children_of_run, step_label

ROOT = Path(__file__).resolve().parents[1]
RATE_PER_MINUTE = 1_000_000  # a budget so roomy that pacing never shows (the watch should not call anyway)
BURST = 10_000
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
WATCH_STEP = timedelta(minutes=15)  # the template's WatchIntervalMinutes default
PAYLOAD_LIMIT = 256 * 1024  # Step Functions' limit on a state's input or output (bytes)
WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
READS = ("get_item", "query", "scan", "batch_get_item", "transact_get_items")


# --- targets (child process) --------------------------------------------------------------------------


def _serve(cert: str, key: str, up: int, down: int, ports: Any, take_down: Any, stop: Any) -> None:
    """Child process: ``up + down`` TLS 1.3 servers on one event loop, answering ``200`` to any request
    (its head read, then ``Connection: close``). Once ``take_down`` is set, the ``down`` last servers
    close (nothing listens: connection refused) and ``"down"`` is put on ``ports``."""

    async def main() -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.load_cert_chain(cert, key)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n"
                    b"Connection: close\r\n\r\n" + b'{"ok":true}'
                )
                await writer.drain()
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ssl.SSLError):
                pass
            finally:
                writer.close()

        servers = [
            await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context, backlog=1024)
            for _ in range(up + down)
        ]
        for server in servers:
            ports.put(server.sockets[0].getsockname()[1])
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, take_down.wait)
        for server in servers[up:]:
            server.close()
            await server.wait_closed()
        ports.put("down")
        await loop.run_in_executor(None, stop.wait)
        for server in servers[:up]:
            server.close()

    asyncio.run(main())


@dataclass
class Targets:
    """The child process's servers: ``up`` stay up, ``down`` go down on :meth:`take_down`."""

    up: list[int]
    down: list[int]
    _take_down: Any
    _queue: Any

    def take_down(self) -> None:
        self._take_down.set()
        answer = self._queue.get(timeout=30)
        if answer != "down":
            raise SystemExit(f"the target process did not take its servers down: {answer!r}")


@contextlib.contextmanager
def targets(cert: str, key: str, up: int, down: int) -> Iterator[Targets]:
    spawn = multiprocessing.get_context("spawn")
    queue, take_down, stop = spawn.Queue(), spawn.Event(), spawn.Event()
    child = spawn.Process(target=_serve, args=(cert, key, up, down, queue, take_down, stop), daemon=True)
    child.start()
    try:
        ports = [queue.get(timeout=60) for _ in range(up + down)]
        yield Targets(ports[:up], ports[up:], take_down, queue)
    finally:
        take_down.set()
        stop.set()
        child.join(timeout=10)
        if child.is_alive():
            child.terminate()
            child.join(timeout=5)


# --- counting -----------------------------------------------------------------------------------------


class DynamoCounter:
    """DynamoDB items as moto's request handler receives them (thread-safe: Map iterations race)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.writes: collections.Counter[str] = collections.Counter()  # "Operation table" -> items
        self.refused: collections.Counter[str] = collections.Counter()
        self.reads: collections.Counter[str] = collections.Counter()

    def reset(self) -> None:
        with self._lock:
            self.writes.clear()
            self.refused.clear()
            self.reads.clear()

    @staticmethod
    def _items(operation: str, body: dict[str, Any]) -> list[str]:
        if operation == "transact_write_items":
            return [
                f"TransactWriteItems.{kind} {entry[kind]['TableName']}"
                for entry in body.get("TransactItems", [])
                for kind in ("Put", "Update", "Delete")
                if kind in entry
            ]
        if operation == "transact_get_items":
            return [f"TransactGetItems {e['Get']['TableName']}" for e in body.get("TransactItems", [])]
        if operation == "batch_write_item":
            return [
                f"BatchWriteItem.{next(iter(request))} {table}"
                for table, requests in body.get("RequestItems", {}).items()
                for request in requests
            ]
        if operation == "batch_get_item":
            return [
                f"BatchGetItem {table}"
                for table, wanted in body.get("RequestItems", {}).items()
                for _ in wanted.get("Keys", [])
            ]
        name = "".join(part.capitalize() for part in operation.split("_"))
        index = body.get("IndexName")
        return [f"{name} {body.get('TableName')}" + (f" ({index})" if index else "")]

    @contextlib.contextmanager
    def installed(self) -> Iterator[DynamoCounter]:
        from moto.dynamodb.responses import DynamoHandler

        def wrap(operation: str, original: Callable[[Any], Any], into: str) -> Callable[[Any], Any]:
            def counted(handler: Any) -> Any:
                keys = self._items(operation, handler.body)
                with self._lock:
                    getattr(self, into).update(keys)
                try:
                    return original(handler)
                except Exception:
                    if into == "writes":
                        with self._lock:
                            self.refused.update(keys)
                    raise

            return counted

        with contextlib.ExitStack() as patches:
            for operations, into in ((WRITES, "writes"), (READS, "reads")):
                for operation in operations:
                    original = getattr(DynamoHandler, operation)
                    patches.enter_context(
                        mock.patch.object(DynamoHandler, operation, wrap(operation, original, into))
                    )
            yield self


class Lambdas:
    """Each Lambda invocation the stack dispatches (its hook): count, wall time and CPU by function.
    ``cpu``: the invocation's thread CPU time, inclusive (the handler and the in-process moto answering
    its AWS requests, which stands in for their round trips; the network it waits on is not in it)."""

    def __init__(self, budget: CpuBudget) -> None:
        self._lock = threading.Lock()
        self._budget = budget
        self.count: collections.Counter[str] = collections.Counter()
        self.seconds: collections.defaultdict[str, float] = collections.defaultdict(float)
        self.cpu: collections.defaultdict[str, float] = collections.defaultdict(float)

    def reset(self) -> None:
        with self._lock:
            self.count.clear()
            self.seconds.clear()
            self.cpu.clear()

    @contextlib.contextmanager
    def installed(self, stack: Any) -> Iterator[Lambdas]:
        dispatch = stack.dispatch
        names = sorted(stack.functions, key=len, reverse=True)

        def timed(function: str, *args: Any, **kwargs: Any) -> Any:
            label = next((n for n in names if n in function), function.rsplit(":", 1)[-1])
            label = step_label(label, args[0] if args else kwargs.get("body"))
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                with self._budget.layer(f"handler {label}"):
                    return dispatch(function, *args, **kwargs)
            finally:
                with self._lock:
                    self.seconds[label] += time.perf_counter() - started
                    self.cpu[label] += time.thread_time() - cpu
                    self.count[label] += 1

        with mock.patch.object(stack, "dispatch", timed):
            yield self


class CpuBudget:
    """This process's CPU by layer, each layer's own (exclusive) thread CPU time: ``handler <Function>``
    (a Lambda's handler, run in the calling thread) and ``moto <service>`` (moto answering one in-process
    AWS request: its backend and its response serializer). What no layer holds (the process's CPU minus
    the layers') is the ASL interpreter and the botocore clients' side of every request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self.seconds: collections.defaultdict[str, float] = collections.defaultdict(float)

    def reset(self) -> None:
        with self._lock:
            self.seconds.clear()

    @contextlib.contextmanager
    def layer(self, name: str) -> Iterator[None]:
        children: list[float] = self._local.__dict__.setdefault("children", [])
        started = time.thread_time()
        children.append(0.0)
        try:
            yield
        finally:
            elapsed = time.thread_time() - started
            inner = children.pop()
            if children:
                children[-1] += elapsed
            with self._lock:
                self.seconds[name] += elapsed - inner

    @contextlib.contextmanager
    def installed(self) -> Iterator[CpuBudget]:
        from moto.core.botocore_stubber import BotocoreStubber

        call = BotocoreStubber.__call__

        def answered(stubber: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
            service = event_name.split(".")[1] if event_name.count(".") >= 1 else "other"
            with self.layer(f"moto {service}"):
                return call(stubber, event_name, request, **kwargs)

        with mock.patch.object(BotocoreStubber, "__call__", answered):
            yield self


# --- the stack ----------------------------------------------------------------------------------------


def template_default(name: str) -> str:
    """A parameter's Default in template.yaml (the template's own loader: it knows CloudFormation tags)."""
    from cogwh.localstack.template import load_template_file

    return str(load_template_file(ROOT / "template.yaml")["Parameters"][name]["Default"])


def open_stack(world: Any) -> Any:
    from cogwh.demo import API_KEY_SECRET_NAME
    from cogwh.localstack import LocalStack

    parameters = {
        **world.stack_parameters(),
        "CognigyRequestsPerMinute": str(RATE_PER_MINUTE),
        "CognigyBurst": str(BURST),
    }
    stack = LocalStack(ROOT, parameters=parameters, time_factor=0.0).start()
    try:
        stack.client("secretsmanager").create_secret(Name=API_KEY_SECRET_NAME, SecretString=world.api_key)
    except BaseException:
        stack.close()
        raise
    return stack


def desired_set(
    n: int, down: set[int], up_ports: list[int], down_ports: list[int], host: str
) -> dict[str, Any]:
    """n endpoints, round robin over the up servers; those in ``down`` on the servers that go down."""
    from cogwh.demo import DEMO_PROJECT_ID

    endpoints = []
    for i in range(n):
        ports = down_ports if i in down else up_ports
        port = ports[i % len(ports)]
        name = f"bench-{i:04d}"
        endpoints.append({"name": name, "url": f"https://{host}:{port}/hooks/{name}", "timeoutMs": 5000})
    return {"endpoints": endpoints, "cognigy": {"projectId": DEMO_PROJECT_ID}}


def spread(n: int, k: int) -> set[int]:
    """k of range(n), evenly spread (the watch lists in name order: the down ones interleave)."""
    return {(j * n) // k for j in range(k)} if k else set()


# --- measuring ----------------------------------------------------------------------------------------


async def floor_probes(specs: list[Any], policy: Any, concurrency: int) -> tuple[float, int]:
    """The n probes, ``probe_endpoint`` with ``policy``, at most ``concurrency`` at once: (wall, passed)."""
    from cognigy_webhooks.net.probe import probe_endpoint

    gate = asyncio.Semaphore(concurrency)
    passed = 0

    async def one(spec: Any) -> None:
        nonlocal passed
        async with gate:
            report = await probe_endpoint(spec, policy)
        passed += report.passed

    started = time.perf_counter()
    await asyncio.gather(*(one(spec) for spec in specs))
    return time.perf_counter() - started, passed


@dataclass
class WatchRun:
    at: datetime
    seconds: float
    cpu_seconds: float
    summary: dict[str, Any]
    cognigy_calls: int
    cognigy_methods: dict[str, int]
    writes: dict[str, int]
    refused: dict[str, int]
    reads: dict[str, int]
    states: dict[str, int]
    lambdas: dict[str, int]
    lambda_seconds: dict[str, float]
    cpu_layers: dict[str, float]
    lambda_cpu: dict[str, float] = field(default_factory=dict)
    state_seconds: dict[str, float] = field(default_factory=dict)
    largest_payload: tuple[int, str] = (0, "")
    parent_events: int = 0
    s3_requests: dict[str, int] = field(default_factory=dict)
    children: int = 0
    child_seconds: float = 0.0
    child_states: dict[str, int] = field(default_factory=dict)

    def lambda_ms(self, *, wall: bool = False) -> dict[str, float]:
        """Mean ms per invocation, thread CPU inclusive (``wall``: wall time, which the interpreter
        the whole stack shares inflates): ``probe``, ``watch`` (every step), the watch by step."""
        spent_by = self.lambda_seconds if wall else self.lambda_cpu

        def mean(labels: list[str]) -> float:
            count = sum(self.lambdas.get(label, 0) for label in labels)
            spent = sum(spent_by.get(label, 0.0) for label in labels)
            return round(spent / count * 1000, 2) if count else 0.0

        watch = [label for label in self.lambdas if label.startswith("WatchFunction")]
        shown = {"probe": mean(["ProbeFunction"]), "watch": mean(watch)}
        for label in sorted(watch):
            shown["watch_" + label.partition(".")[2]] = mean([label])
        return shown

    def invocations_by_function(self, n: int) -> dict[str, float]:
        """Invocations per endpoint: ``probe``, ``watch`` (every step)."""
        watch = sum(c for label, c in self.lambdas.items() if label.startswith("WatchFunction"))
        return {"probe": round(self.lambdas.get("ProbeFunction", 0) / n, 3), "watch": round(watch / n, 3)}

    def s3_by_kind(self) -> dict[str, int]:
        """The watch's S3 requests as S3 prices them: ``get`` (GET, HEAD), ``put`` (PUT, POST,
        COPY, the multipart parts), ``list``; anything else under ``other``."""
        kinds = {"get": 0, "put": 0, "list": 0}
        for key, count in self.s3_requests.items():
            operation = key.split(" ", 1)[-1]
            if operation.startswith(("Get", "Head")):
                kinds["get"] += count
            elif operation.startswith(("Put", "Post", "Copy", "CreateMultipart", "UploadPart", "Complete")):
                kinds["put"] += count
            elif operation.startswith("List"):
                kinds["list"] += count
            else:
                kinds["other"] = kinds.get("other", 0) + count
        return kinds

    def figures(self, n: int) -> dict[str, Any]:
        parent, children = sum(self.states.values()), sum(self.child_states.values())
        return {
            "at": self.at.isoformat(),
            "watch_seconds": round(self.seconds, 3),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "cognigy_calls": self.cognigy_calls,
            "writes_per_endpoint": round(sum(self.writes.values()) / n, 3),
            "refused_writes_per_endpoint": round(sum(self.refused.values()) / n, 3),
            "reads_per_endpoint": round(sum(self.reads.values()) / n, 3),
            "transitions_per_endpoint": round((parent + children) / n, 2),
            "child_transitions_per_endpoint": round(children / n, 2),
            "parent_transitions": parent,
            "parent_history_events": self.parent_events,
            "lambda_invocations_per_endpoint": round(sum(self.lambdas.values()) / n, 2),
            "lambda_invocations_by_function": self.invocations_by_function(n),
            "lambda_ms_per_invocation": self.lambda_ms(),
            "lambda_wall_ms_per_invocation": self.lambda_ms(wall=True),
            "s3_requests_per_watch": self.s3_by_kind(),
            "children_per_endpoint": round(self.children / n, 3),
            "express_child_seconds_per_endpoint": round(self.child_seconds, 4),
            "healthy": self.summary.get("healthy"),
            "unhealthy": self.summary.get("unhealthy"),
            "deactivated": self.summary.get("deactivated"),
            "transitions": self.summary.get("transitions", {}),
            "largest_state_payload_bytes": self.largest_payload[0],
        }


def state_seconds(history: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds spent in each state, summed over its entries: a ``StateEntered`` event to the
    ``StateExited`` event whose ``previousEventId`` chain leads back to it (Map iterations interleave)."""
    by_id = {e["id"]: e for e in history}
    spent: collections.defaultdict[str, float] = collections.defaultdict(float)
    for event in history:
        if "stateExitedEventDetails" not in event:
            continue
        name = event["stateExitedEventDetails"]["name"]
        back = by_id.get(event.get("previousEventId"))
        while back is not None and back.get("stateEnteredEventDetails", {}).get("name") != name:
            back = by_id.get(back.get("previousEventId"))
        if back is not None:
            spent[name] += (event["timestamp"] - back["timestamp"]).total_seconds()
    return dict(spent)


@dataclass
class Meters:
    """What every watch is measured with (installed once, reset before each watch)."""

    dynamo: DynamoCounter
    lambdas: Lambdas
    budget: CpuBudget
    aws: AwsRequests

    def reset(self) -> None:
        self.dynamo.reset()
        self.lambdas.reset()
        self.budget.reset()
        self.aws.reset()


@contextlib.contextmanager
def meters(stack: Any) -> Iterator[Meters]:
    budget = CpuBudget()
    lambdas = Lambdas(budget)
    with (
        DynamoCounter().installed() as dynamo,
        lambdas.installed(stack),
        budget.installed(),
        AwsRequests().installed() as aws,
    ):
        yield Meters(dynamo, lambdas, budget, aws)


def largest_payload(history: list[dict[str, Any]]) -> tuple[int, str]:
    """The largest input or output in the history (a state's, a Lambda's; UTF-8 bytes: Step Functions
    refuses more than :data:`PAYLOAD_LIMIT`) and where it was."""
    largest = (0, "")
    for event in history:
        for key, details in event.items():
            if not key.endswith("EventDetails") or not isinstance(details, dict):
                continue
            for part in ("input", "output"):
                if isinstance(details.get(part), str):
                    size = len(details[part].encode("utf-8"))
                    if size > largest[0]:
                        where = f"{event['type']} {details['name']}" if "name" in details else event["type"]
                        largest = (size, f"{where} {part}")
    return largest


def run_watch(stack: Any, sim: Any, at: datetime, meter: Meters, n: int) -> WatchRun:
    from cognigy_webhooks import ops as library_ops
    from cogwh import ops

    access = ops.stack_access(stack)
    meter.reset()
    counter, lambdas = meter.dynamo, meter.lambdas
    requests_before = len(sim.requests)
    cpu = time.process_time()
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the watch's single_metric EMF lines print there
        begun = library_ops.start_watch(access, at=at, source="bench")
        ended = stack.wait_execution(begun.execution_arn, timeout=1800)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    layers = dict(meter.budget.seconds)  # before the history is read (moto sfn answering that is no part)
    s3_requests = meter.aws.of("s3")  # the watch's own: before this process reads its files
    invocations = dict(lambdas.count)
    if ended["status"] != "SUCCEEDED":
        raise SystemExit(f"the watch {ended['status']}: {ended.get('error')} {ended.get('cause')}")
    view = library_ops.describe_watch(access, begun.execution_arn)  # the whole summary (summaryRef)
    if view.summary is None:
        raise SystemExit("the watch ended without a summary")
    summary: dict[str, Any] = view.summary.model_dump(mode="json", by_alias=True)
    if summary.get("watched") != n or summary.get("failed"):
        counts = {k: summary.get(k) for k in ("watched", "skipped", "failed", "notProbed")}
        raise SystemExit(f"expected {n} endpoints watched, got {counts}")
    history = stack.execution_history(begun.execution_arn)
    [fanned] = [e for e in history if e["type"] == "MapStateExited"]
    children = children_of_run(
        stack.client("s3"), json.loads(fanned["stateExitedEventDetails"]["output"])["watched"]
    )
    calls = sim.requests[requests_before:]
    return WatchRun(
        at=at,
        seconds=wall,
        cpu_seconds=cpu,
        summary=summary,
        cognigy_calls=len(calls),
        cognigy_methods=dict(collections.Counter(r["method"] for r in calls)),
        writes=dict(counter.writes),
        refused=dict(counter.refused),
        reads=dict(counter.reads),
        states=dict(
            collections.Counter(
                e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e
            )
        ),
        lambdas=invocations,
        lambda_seconds=dict(lambdas.seconds),
        lambda_cpu=dict(lambdas.cpu),
        cpu_layers=layers,
        state_seconds=state_seconds(history),
        largest_payload=largest_payload(history),
        parent_events=len(history),
        s3_requests=s3_requests,
        children=len(children),
        child_seconds=child_seconds(children),
        child_states=child_transitions(children, invocations),
    )


# --- profiling ----------------------------------------------------------------------------------------


class ThreadProfiles:
    """cProfile in every thread started while installed (the execution's worker, its Map iterations
    and their task threads, where the Lambdas run); :meth:`stats` merges them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.profiles: list[cProfile.Profile] = []

    @contextlib.contextmanager
    def installed(self) -> Iterator[ThreadProfiles]:
        run = threading.Thread.run

        def profiled(thread: threading.Thread) -> None:
            profile = cProfile.Profile(time.thread_time)  # CPU: no GIL waits, no blocking
            with self._lock:
                self.profiles.append(profile)
            profile.enable()
            try:
                run(thread)
            finally:
                profile.disable()

        with mock.patch.object(threading.Thread, "run", profiled):
            yield self

    def stats(self) -> pstats.Stats | None:
        with self._lock:
            profiles = [p for p in self.profiles if p.getstats()]
        if not profiles:
            return None
        stats = pstats.Stats(profiles[0], stream=io.StringIO())
        for profile in profiles[1:]:
            stats.add(profile)
        return stats


PACKAGES = (
    ("moto/stepfunctions", "moto Step Functions (the ASL interpreter)"),
    ("moto/dynamodb", "moto DynamoDB"),
    ("moto/core/serialize", "moto's response serializer"),
    ("moto/", "moto, other"),
    ("botocore/", "botocore"),
    ("boto3/", "boto3"),
    ("aws_lambda_powertools/", "Powertools"),
    ("pydantic", "pydantic"),
    ("cognigy_webhooks/net/", "the probe (cognigy_webhooks.net)"),
    ("cognigy_webhooks/", "cognigy_webhooks, other"),
    ("cogwh/", "cogwh (the local stack)"),
    ("functions/", "the handlers"),
    ("jsonpath", "JSONPath (jsonpath_ng)"),
    ("antlr4", "antlr4 (ASL parsing)"),
    ("asyncio/", "asyncio"),
    ("ssl.py", "ssl"),
    ("copy.py", "copy (deepcopy)"),
    ("json/", "json"),
    ("threading.py", "threading"),
)


def by_package(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Own time (tottime) summed by the package of each function's file."""
    totals: collections.defaultdict[str, float] = collections.defaultdict(float)
    for (filename, _line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        tottime = row[2]
        where = filename.replace("\\", "/")
        label = next((label for key, label in PACKAGES if key in where), None)
        if label is None:
            label = f"built-in {name}" if filename == "~" else "other"
        totals[label] += tottime
    return sorted(totals.items(), key=lambda kv: -kv[1])


def _where(function: tuple[str, int, str]) -> str:
    filename, line, name = function
    if filename == "~":
        return name
    for marker in ("site-packages/", "python3.11/", str(ROOT) + "/"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{filename}:{line}({name})"


def show_profile(stats: pstats.Stats, wall: float, out: Any, top: int = 20) -> None:
    rows = stats.stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in rows.values())
    print(
        f"\n== profile of one more watch ({wall:.2f} s wall under cProfile; its threads' CPU {total:.2f} s, "
        "the profiler's overhead included)",
        file=out,
    )
    print("own CPU by package (summed over the threads):", file=out)
    for label, seconds in by_package(stats)[:16]:
        print(f"    {label:<52}{seconds:8.2f} s ({seconds / total:.0%})", file=out)
    for title, column in (("cumulative", 3), ("own", 2)):
        print(f"top {top} functions by {title} CPU (calls, own s, cumulative s):", file=out)
        ranked = sorted(rows.items(), key=lambda kv: -kv[1][column])[:top]
        for function, (_cc, calls, own, cumulative, _callers) in ranked:
            print(f"    {calls:>9} {own:8.2f} {cumulative:8.2f}  {_where(function)[:120]}", file=out)


# --- main ---------------------------------------------------------------------------------------------


def show_watch(label: str, run: WatchRun, n: int, floor: Floor, out: Any) -> None:
    f = run.figures(n)
    print(f"\n== {label} (at {f['at']})", file=out)
    rows = [
        (
            "wall",
            f"{run.seconds:.2f} s ({run.seconds / floor.seconds:.2f} x the floor's {floor.seconds:.2f} s)",
        ),
        (
            "summary",
            f"healthy {f['healthy']}, unhealthy {f['unhealthy']}, deactivated {f['deactivated']}, "
            f"transitions {f['transitions'] or 'none'}",
        ),
        ("Cognigy calls", f"{run.cognigy_calls} {run.cognigy_methods or ''}".rstrip()),
        (
            "DynamoDB writes/endpoint",
            f"{f['writes_per_endpoint']} (refused by a condition: {f['refused_writes_per_endpoint']})",
        ),
    ]
    rows += [(f"    {key}", f"{count / n:.3f} ({count})") for key, count in sorted(run.writes.items())]
    rows.append(("DynamoDB reads/endpoint", f"{f['reads_per_endpoint']}"))
    rows += [(f"    {key}", f"{count / n:.3f} ({count})") for key, count in sorted(run.reads.items())]
    rows.append(
        (
            "state transitions/endpoint",
            f"{f['transitions_per_endpoint']} (the parent's {f['parent_transitions']} in "
            f"{f['parent_history_events']} history events, its children's "
            f"{f['child_transitions_per_endpoint']}/endpoint)",
        )
    )
    for state, count in sorted(run.states.items(), key=lambda kv: -kv[1]):
        spent = run.state_seconds.get(state)
        each = f", {spent * 1000:.0f} ms in the state" if spent is not None else ""
        rows.append((f"    parent {state}", f"{count}{each}"))
    for state, count in run.child_states.items():
        rows.append((f"    child {state}", f"{count / n:.2f}"))
    rows.append(
        (
            "children/endpoint",
            f"{f['children_per_endpoint']} EXPRESS, {f['express_child_seconds_per_endpoint']:.3f} s each",
        )
    )
    rows.append(
        ("S3 requests/watch", f"{f['s3_requests_per_watch']} {dict(sorted(run.s3_requests.items()))}")
    )
    size, where = run.largest_payload
    rows.append(
        (
            "largest state payload",
            f"{size} bytes ({where}; Step Functions' limit {PAYLOAD_LIMIT} bytes: the state holds "
            "references and a summary bounded at INLINE_RESULTS endpoints, whatever n)",
        )
    )
    rows.append(("Lambda invocations/endpoint", f"{f['lambda_invocations_per_endpoint']}"))
    for function, count in sorted(run.lambdas.items()):
        seconds = run.lambda_seconds.get(function, 0.0)
        cpu = run.lambda_cpu.get(function, 0.0)
        rows.append(
            (
                f"    {function}",
                f"{count} x {cpu / count * 1000:.1f} ms CPU, {seconds / count * 1000:.1f} ms wall "
                f"(sum {seconds:.2f} s)",
            )
        )
    rows.append(
        (
            "CPU of this process",
            f"{run.cpu_seconds:.2f} s = {run.cpu_seconds / run.seconds:.0%} of the wall, "
            f"{run.cpu_seconds / n * 1000:.1f} ms/endpoint (the floor: {floor.cpu_ms:.2f} ms/probe)",
        )
    )
    layers = sorted(run.cpu_layers.items(), key=lambda kv: -kv[1])
    rest = run.cpu_seconds - sum(run.cpu_layers.values())
    for layer, seconds in [*layers, ("the rest: ASL interpreter, its botocore clients", rest)]:
        rows.append(
            (f"    {layer}", f"{seconds / n * 1000:6.1f} ms/endpoint ({seconds / run.cpu_seconds:.0%})")
        )
    for label_, value in rows:
        print(f"{label_:<56}{value}", file=out)


@dataclass
class Floor:
    """The best floor round: wall seconds and this process's CPU per probe (ms)."""

    seconds: float
    cpu_ms: float
    rounds: list[float]


def measure(args: argparse.Namespace, watches: int, concurrency: int, out: Any) -> dict[str, Any]:
    """Set up the world, the targets and the stack, apply, take the down ones down, then alternate floor
    rounds and watches; returns the runs, the floor and (``--profile``) the merged stats."""
    from cognigy_webhooks.models import parse_endpoint
    from cogwh import ops
    from cogwh.demo import local_world

    down = spread(args.n, args.down)
    down_servers = min(args.down, args.servers)
    runs: list[WatchRun] = []
    floors: list[tuple[float, float]] = []
    stats: pstats.Stats | None = None
    profile_wall = 0.0
    with local_world(rate_per_minute=RATE_PER_MINUTE, burst=BURST, cognigy_api="endpoints") as world:
        leaf = world.ca.issue("localhost", "127.0.0.1")
        with (
            targets(str(leaf.cert), str(leaf.key), args.servers, down_servers) as served,
            contextlib.closing(open_stack(world)) as stack,
        ):
            desired = desired_set(args.n, down, served.up, served.down, args.host)
            print(
                f"watch {args.n} endpoints ({args.down} down) on {args.servers} TLS 1.3 target servers "
                f"(+{down_servers} taken down) in a child process, endpoints dialect, WatchConcurrency "
                f"{concurrency}; local stack set up in {stack.setup_seconds:.1f} s",
                file=out,
            )
            started = time.perf_counter()
            applied = ops.apply(stack, desired, wait=lambda arn: stack.wait_execution(arn, timeout=1800))
            created = (applied.summary or {}).get("counts", {}).get("created")
            if applied.status != "SUCCEEDED" or created != args.n:
                counts = (applied.summary or {}).get("counts")
                raise SystemExit(f"the apply {applied.status}: {counts} {applied.error} {applied.cause}")
            print(f"applied {args.n} endpoints in {time.perf_counter() - started:.1f} s", file=out)
            if down_servers:
                served.take_down()

            # the probe function's own policy (allow_private_networks, the CA bundle, cert warning days)
            policy = sys.modules[stack.functions["ProbeFunction"].module_name].POLICY
            specs = [parse_endpoint(e) for e in desired["endpoints"]]
            asyncio.run(floor_probes(specs[:concurrency], policy, concurrency))  # warm up

            def floor_round() -> None:
                cpu = time.process_time()
                wall, passed = asyncio.run(floor_probes(specs, policy, concurrency))
                cpu = time.process_time() - cpu
                if passed != args.n - args.down:
                    raise SystemExit(f"the floor's probes: {passed} passed, expected {args.n - args.down}")
                floors.append((wall, cpu))

            sim = world.simulator_state
            with meters(stack) as meter:
                for i in range(max(watches, args.rounds)):  # alternate which goes first
                    if i < args.rounds and i % 2:
                        floor_round()
                    if i < watches:
                        runs.append(run_watch(stack, sim, T0 + i * WATCH_STEP, meter, args.n))
                    if i < args.rounds and not i % 2:
                        floor_round()
                if args.profile:
                    profiles = ThreadProfiles()
                    with profiles.installed():
                        profiled = run_watch(stack, sim, T0 + len(runs) * WATCH_STEP, meter, args.n)
                    profile_wall = profiled.seconds
                    stats = profiles.stats()
    best = min(floors)
    floor = Floor(best[0], min(cpu for _, cpu in floors) / args.n * 1000, [wall for wall, _ in floors])
    return {"runs": runs, "floor": floor, "stats": stats, "profile_wall": profile_wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="endpoints applied and watched (default 200)")
    parser.add_argument(
        "--down", type=int, default=0, help="of which K are down during the watches (default 0)"
    )
    parser.add_argument(
        "--watches",
        type=int,
        default=None,
        help="watches, 15 minutes apart (default 1; with --down, WatchUnhealthyAfter)",
    )
    parser.add_argument("--servers", type=int, default=4, help="target servers that stay up (default 4)")
    parser.add_argument("--rounds", type=int, default=5, help="floor rounds, the best kept (default 5)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="host in the endpoints' URLs (localhost adds a lookup per probe)"
    )
    parser.add_argument("--profile", action="store_true", help="one more watch under cProfile (CPU), summed")
    parser.add_argument("--profile-out", type=Path, help="with --profile: also dump the merged stats here")
    args = parser.parse_args(argv)
    if args.n < 1 or not 0 <= args.down < args.n or args.servers < 1 or args.rounds < 1:
        parser.error(
            "--n must be >= 1, --down 0..n-1 (one endpoint at least up), --servers and --rounds >= 1"
        )
    unhealthy_after = int(template_default("WatchUnhealthyAfter"))
    watches = args.watches if args.watches is not None else (unhealthy_after if args.down else 1)
    if watches < 1:
        parser.error("--watches must be >= 1")
    concurrency = int(template_default("WatchConcurrency"))
    out = sys.stdout

    from cogwh.demo import quiet_functions

    quiet_functions()  # the functions' JSON logs and EMF metrics would bury the figures
    measured = measure(args, watches, concurrency, out)
    runs: list[WatchRun] = measured["runs"]
    floor: Floor = measured["floor"]
    best = min(run.seconds for run in runs)
    print(
        f"\n== floor: {args.n} x probe_endpoint at concurrency {concurrency} (the probe function's policy), "
        f"best of {len(floor.rounds)}: {floor.seconds:.3f} s (rounds: {_fmt(floor.rounds)}), "
        f"CPU {floor.cpu_ms:.2f} ms/probe",
        file=out,
    )
    for i, run in enumerate(runs):
        show_watch(f"watch {i + 1} of {len(runs)}", run, args.n, floor, out)
    if measured["stats"] is not None:
        show_profile(measured["stats"], measured["profile_wall"], out)
        if args.profile_out is not None:
            measured["stats"].dump_stats(str(args.profile_out))

    last = runs[-1].figures(args.n)
    figures: dict[str, Any] = {
        "n": args.n,
        "down": args.down,
        "watches": len(runs),
        "watch_concurrency": concurrency,
        "watch_seconds": round(runs[-1].seconds, 3),
        "best_watch_seconds": round(best, 3),
        "floor_seconds": round(floor.seconds, 3),
        "floor_ratio": round(runs[-1].seconds / floor.seconds, 2),
        "cognigy_calls": sum(run.cognigy_calls for run in runs),
        "audit_writes_per_endpoint": round(
            sum(c for key, c in runs[-1].writes.items() if key.endswith("AuditTable")) / args.n, 3
        ),
        "writes_per_endpoint": last["writes_per_endpoint"],
        "refused_writes_per_endpoint": last["refused_writes_per_endpoint"],
        "reads_per_endpoint": last["reads_per_endpoint"],
        "transitions_per_endpoint": last["transitions_per_endpoint"],
        "child_transitions_per_endpoint": last["child_transitions_per_endpoint"],
        "parent_transitions": last["parent_transitions"],
        "parent_history_events": last["parent_history_events"],
        "lambda_invocations_per_endpoint": last["lambda_invocations_per_endpoint"],
        "lambda_invocations_by_function": last["lambda_invocations_by_function"],
        "lambda_ms_per_invocation": last["lambda_ms_per_invocation"],
        "lambda_wall_ms_per_invocation": last["lambda_wall_ms_per_invocation"],
        "s3_requests_per_watch": last["s3_requests_per_watch"],
        "children_per_endpoint": last["children_per_endpoint"],
        "express_child_seconds_per_endpoint": last["express_child_seconds_per_endpoint"],
        "largest_state_payload_bytes": last["largest_state_payload_bytes"],
        "payload_limit_n": None,  # the state holds references and a bounded summary: no n reaches it
        "cpu_ms_per_endpoint": round(runs[-1].cpu_seconds / args.n * 1000, 2),
        "cpu_share_of_wall": round(runs[-1].cpu_seconds / runs[-1].seconds, 2),
        "floor_cpu_ms_per_probe": round(floor.cpu_ms, 3),
        "cpu_ms_per_endpoint_by_layer": cpu_by_layer(runs[-1], args.n),
        "per_watch": [run.figures(args.n) for run in runs],
    }
    targets_met = {"cognigy_calls==0": figures["cognigy_calls"] == 0}
    if not args.down:  # a bad watch writes its audit items too
        targets_met["writes_per_endpoint<=1"] = figures["writes_per_endpoint"] <= 1
    targets_met["floor_ratio<=1.5"] = figures["floor_ratio"] <= 1.5
    print(
        f"\nthe last watch's CPU in this process: {figures['cpu_share_of_wall']:.0%} of its wall, "
        f"{figures['cpu_ms_per_endpoint']:.1f} ms CPU per endpoint against the floor's "
        f"{floor.cpu_ms:.2f} ms per probe: "
        + (
            "the local stack's CPU (moto, the ASL interpreter, the handlers in one interpreter) bounds "
            "the watch here, not the network"
            if figures["cpu_share_of_wall"] >= 0.75
            else "not CPU-bound (or the machine is busy elsewhere)"
        ),
        file=out,
    )
    print(
        "\ntargets: " + ", ".join(f"{k} {'met' if ok else 'MISSED'}" for k, ok in targets_met.items()),
        file=out,
    )
    figures["targets_met"] = all(targets_met.values())
    print(json.dumps(figures), file=out)
    return 0


def cpu_by_layer(run: WatchRun, n: int) -> dict[str, float]:
    """The CPU budget of a watch, ms per endpoint, by layer (``rest``: the interpreter and its clients)."""
    layers = {layer: round(seconds / n * 1000, 2) for layer, seconds in run.cpu_layers.items()}
    layers["rest"] = round((run.cpu_seconds - sum(run.cpu_layers.values())) / n * 1000, 2)
    return layers


def _fmt(times: list[float]) -> str:
    return ", ".join(f"{t:.3f}" for t in times)


if __name__ == "__main__":
    sys.exit(main())
