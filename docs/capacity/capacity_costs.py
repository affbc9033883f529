"""The capacity model's arithmetic: what each workload asks of each AWS service, priced.

A :class:`Line` is one row of a cost table: a quantity (requests, units, GB-seconds...), the price
it is multiplied by (a key of prices.json), how the quantity was worked out and from which input
field. :class:`Model` turns the inputs into the rows of every table:

- :meth:`Model.apply` -- one reconcile of the desired set (``first``: every endpoint created;
  otherwise the same set applied again, unchanged), from bench/results/reconcile.json;
- :meth:`Model.watch_month` -- a month of watches at the template's WatchIntervalMinutes, from
  bench/results/watch.json;
- :meth:`Model.deliveries_month` -- a month of deliveries, from bench/results/receive.json, with the
  receiver's cache misses worked out from the delivery rate (:meth:`Model.cache_miss_share`);
- :meth:`Model.fixed_month` -- what a month costs whatever the traffic (secrets, alarms, the
  dashboard, custom metrics).

The limits (each quota or budget next to what the workloads need of it) are
:mod:`capacity_limits`'s.

How a benchmark's figures scale to a workload: per-endpoint figures times the endpoints (and the
watches); per-run figures (S3 requests, a watch parent's transitions, the once-a-run functions of
``assumed.once_per_run_functions``) once per run, whatever the number of endpoints; per-delivery
figures times the deliveries. Lambda duration is each function's measured milliseconds (a probe's
plus ``assumed.probe_network_ms``), rounded up to the millisecond, times its MemorySize; an Express
child's, rounded up to 100 ms, at ``assumed.express_child_memory_mb``. The receiver's cache misses
follow from the delivery rate, the endpoints it spreads over and the busy instances
(:meth:`Model.cache_miss_share`).

Every figure is the inputs' (measured or assumed, as the inputs say); nothing here is a price or a
quota of its own. Pure: no clock, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from capacity_inputs import InputError, Source, Template

__all__ = ["FUNCTIONS", "Line", "Model", "fmt_count", "money", "total"]

SECONDS_PER_DAY = 86_400

#: The functions each benchmark's ``lambda_ms_per_invocation`` must name (more are priced too).
FUNCTIONS = {"reconcile": ("plan", "probe", "register", "summarize"), "watch": ("probe", "watch")}


def fmt_count(x: float) -> str:
    """A quantity as a reader wants it: thousands separated, no needless decimals."""
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:,.2f}".rstrip("0").rstrip(".")
    return f"{x:.3g}"


def money(usd: float) -> str:
    if usd == 0:
        return "$0.00"
    if usd < 0.01:
        return "<$0.01"
    return f"${usd:,.2f}"


@dataclass(frozen=True)
class Line:
    """One cost row: ``quantity`` x the price ``price`` (None: not an AWS charge, shown for what it
    costs in time or calls)."""

    service: str
    quantity: float
    unit: str
    price: str | None
    basis: str
    source: str

    def cost(self, prices: Source) -> float:
        return 0.0 if self.price is None else self.quantity * prices.number(f"prices.{self.price}.usd")


class Model:
    """The inputs, and every table's rows from them."""

    def __init__(
        self,
        *,
        reconcile: Source,
        watch: Source,
        receive: Source,
        prices: Source,
        assumptions: Source,
        template: Template,
    ) -> None:
        self.reconcile, self.watch, self.receive = reconcile, watch, receive
        self.prices, self.a, self.t = prices, assumptions, template
        self._parent_source = "transitions_per_endpoint x n"

    # --- shared pieces ------------------------------------------------------------------------------

    def workload(self, name: str) -> float:
        return self.a.number(f"workloads.{name}.value")

    def assumed(self, name: str) -> float:
        return self.a.number(f"assumed.{name}.value")

    @property
    def endpoints(self) -> float:
        return self.workload("endpoints")

    @property
    def month_seconds(self) -> float:
        return self.workload("month_days") * SECONDS_PER_DAY

    def invocations(self, bench: Source, kind: str) -> tuple[dict[str, float], dict[str, float]]:
        """Lambda invocations by the benchmark's function names (``plan``, ``probe``...): per endpoint
        for the functions that run for each endpoint, per run for those that run once a run
        (``assumed.once_per_run_functions``). From the benchmark's ``lambda_invocations_by_function``
        (per endpoint, at its ``n``) when it prints one; else its ``lambda_invocations_per_endpoint``
        less the once-a-run ones, shared evenly by the others."""
        durations = self.durations(bench, kind)
        n = bench.number("n")
        if n < 1:
            raise InputError(bench.name, "field 'n' is below 1")
        once = [
            f for f in self.a.mapping("assumed.once_per_run_functions.value").get(kind, []) if f in durations
        ]
        each = [f for f in durations if f not in once]
        if bench.has("lambda_invocations_by_function"):
            counted = bench.numbers("lambda_invocations_by_function")
            missing = sorted(set(durations) - set(counted))
            if missing:
                raise InputError(
                    bench.name, f"field 'lambda_invocations_by_function.{missing[0]}' is missing"
                )
            return {f: counted[f] for f in each}, {f: counted[f] * n for f in once}
        total = bench.number("lambda_invocations_per_endpoint")
        shared = max(0.0, total - len(once) / n) / max(1, len(each))
        return dict.fromkeys(each, shared), dict.fromkeys(once, 1.0)

    def durations(self, bench: Source, kind: str) -> dict[str, float]:
        """Each function's mean milliseconds per invocation, for the functions of :data:`FUNCTIONS`
        (other keys a benchmark prints beside them, such as one step's share, are not priced)."""
        return {f: bench.number(f"lambda_ms_per_invocation.{f}") for f in FUNCTIONS[kind]}

    def function_memory_mb(self, function: str) -> int:
        """The MemorySize of the template's function ``<Name>Function`` (``plan`` -> PlanFunction)."""
        wanted = f"{function}function".replace("_", "").lower()
        for name, props in self.t.resources.items():
            if name.lower() == wanted and props.get("Type") == "AWS::Serverless::Function":
                return self.t.memory_mb(name)
        return self.t.memory_mb(function[:1].upper() + function[1:] + "Function")  # names it as missing

    def lambda_lines(
        self, bench: Source, kind: str, endpoints: float, runs: float, label: str, *, scale: float = 1.0
    ) -> list[Line]:
        """Lambda requests and duration of ``runs`` runs over ``endpoints`` endpoints (the per-endpoint
        invocations times ``scale``), the probe's network wait added (``assumed.probe_network_ms``)."""
        per_endpoint, per_run = self.invocations(bench, kind)
        counts = {f: v * scale * endpoints * runs for f, v in per_endpoint.items()}
        counts.update({f: v * runs for f, v in per_run.items()})
        durations = self.durations(bench, kind)
        wait = self.assumed("probe_network_ms")
        gb_seconds, parts = 0.0, []
        for function in durations:
            ms = math.ceil(durations[function] + (wait if function == "probe" else 0))
            memory = self.function_memory_mb(function)
            gb_seconds += counts[function] * ms / 1000 * memory / 1024
            parts.append(f"{function} {fmt_count(counts[function])} x {ms} ms x {memory} MB")
        waited = f"; probe: +{fmt_count(wait)} ms of network (assumed)" if "probe" in durations else ""
        requests = sum(counts.values())
        each = ", ".join(f"{f} {fmt_count(v * scale)}" for f, v in per_endpoint.items())
        once = ", ".join(per_run)
        return [
            Line(
                "Lambda requests",
                requests,
                "requests",
                "lambda.request",
                f"per endpoint: {each}" + (f"; once a run: {once}" if once else ""),
                f"{bench.name} lambda_invocations_per_endpoint{label}; assumed once_per_run_functions",
            ),
            Line(
                f"Lambda duration ({self.t.architecture})",
                gb_seconds,
                "GB-seconds",
                "lambda.arm64_gb_second",
                "; ".join(parts) + waited,
                f"{bench.name} lambda_ms_per_invocation; MemorySize: template.yaml",
            ),
        ]

    def log_line(self, invocations: float, per_invocation: float, basis: str, source: str) -> Line:
        gb = invocations * per_invocation / 1e9
        return Line("CloudWatch Logs ingested", gb, "GB", "cloudwatch.logs_ingested_gb", basis, source)

    def traces(self, requests: float, seconds: float) -> float:
        """Traces X-Ray records for ``requests`` spread evenly over ``seconds`` (the default rule)."""
        reservoir = self.assumed("xray_reservoir_per_second") * seconds
        sampled = min(requests, reservoir)
        return sampled + self.assumed("xray_sample_rate") * (requests - sampled)

    # --- (a) one apply ----------------------------------------------------------------------------------

    def apply(self, *, first: bool) -> list[Line]:
        """One reconcile of ``endpoints`` endpoints: the first (every one created) or the same set
        again, unchanged. The re-apply's Lambda invocations are not measured apart: they are the first
        apply's, scaled by the re-apply's transitions; its writes cost what a first apply's do."""
        r, n = self.reconcile, self.endpoints
        pre, label = ("", "") if first else ("reapply_", " (re-apply, scaled)")
        per = f"x {fmt_count(n)} endpoints"
        transitions = r.number(f"{pre}transitions_per_endpoint")
        writes = r.number(f"{pre}writes_per_endpoint")
        first_writes = r.number("writes_per_endpoint")
        units_per_write = r.number("write_units_per_endpoint") / first_writes if first_writes else 1.0
        first_transitions = r.number("transitions_per_endpoint")
        scale = 1.0 if first else (transitions / first_transitions if first_transitions else 0.0)
        share = float(self.a.mapping("assumed.record_share_of_writes.value").get("reconcile", 0))
        record_units = self.assumed("record_write_units")
        read_units = self.assumed("read_units_per_read")
        reads = r.number("reads_per_endpoint")
        refused = r.number("refused_writes_per_endpoint") if first else 0.0
        secret_calls = self.assumed(
            "secret_calls_per_endpoint_first_apply" if first else "secret_calls_per_endpoint_reapply"
        )
        calls = r.number(f"{pre}cognigy_calls_per_endpoint")
        s3 = r.numbers("s3_requests_per_run")
        lambdas = self.lambda_lines(r, "reconcile", n, 1, label, scale=scale)
        invocations = lambdas[0].quantity
        log_bytes = self.assumed("log_bytes_per_invocation")
        return [
            Line(
                "Step Functions Standard",
                transitions * n,
                "state transitions",
                "stepfunctions.standard_transition",
                f"{fmt_count(transitions)} per endpoint (parent + child executions) {per}",
                f"{r.name} {pre}transitions_per_endpoint",
            ),
            Line(
                "Step Functions Standard (child starts)",
                self.assumed("dmap_child_start_transitions") * n,
                "state transitions",
                "stepfunctions.standard_transition",
                f"{fmt_count(self.assumed('dmap_child_start_transitions'))} per child started, one child "
                f"per endpoint {per}",
                "assumed dmap_child_start_transitions",
            ),
            *lambdas,
            Line(
                "DynamoDB writes",
                writes * units_per_write * n,
                "write request units",
                "dynamodb.write_request_unit",
                f"{fmt_count(writes)} writes x {fmt_count(units_per_write)} units (a transaction's item: "
                f"2 per KB) {per}",
                f"{r.name} {pre}writes_per_endpoint, write_units_per_endpoint",
            ),
            Line(
                "DynamoDB writes (ByType index)",
                writes * share * record_units * n,
                "write request units",
                "dynamodb.write_request_unit",
                f"{fmt_count(writes)} writes x {share:g} records x {fmt_count(record_units)} units {per}",
                f"{r.name} {pre}writes_per_endpoint; assumed record_share_of_writes, record_write_units",
            ),
            Line(
                "DynamoDB refused writes",
                refused * n,
                "write request units",
                "dynamodb.write_request_unit",
                f"{fmt_count(refused)} per endpoint x 1 unit (a refused condition still costs) {per}",
                f"{r.name} refused_writes_per_endpoint" if first else "not measured for a re-apply",
            ),
            Line(
                "DynamoDB reads",
                reads * read_units * n,
                "read request units",
                "dynamodb.read_request_unit",
                f"{fmt_count(reads)} per endpoint x {fmt_count(read_units)} unit {per}",
                f"{r.name} reads_per_endpoint (a first apply's); assumed read_units_per_read",
            ),
            Line(
                "S3 GET",
                s3.get("get", 0.0),
                "requests",
                "s3.get_request",
                "per run (the ItemReader, the map's result files)",
                f"{r.name} s3_requests_per_run.get",
            ),
            Line(
                "S3 PUT and LIST",
                s3.get("put", 0.0) + s3.get("list", 0.0),
                "requests",
                "s3.put_list_request",
                "per run (the items, the ResultWriter)",
                f"{r.name} s3_requests_per_run.put + list",
            ),
            Line(
                "Secrets Manager API calls",
                secret_calls * n,
                "calls",
                "secretsmanager.api_call",
                f"{fmt_count(secret_calls)} per endpoint {per}",
                "assumed secret_calls_per_endpoint_" + ("first_apply" if first else "reapply"),
            ),
            self.log_line(
                invocations,
                log_bytes,
                f"{fmt_count(invocations)} invocations x {fmt_count(log_bytes)} bytes",
                "assumed log_bytes_per_invocation",
            ),
            Line(
                "X-Ray traces",
                1 + n,
                "traces",
                "xray.trace_recorded",
                "one per execution (the parent and a child per endpoint), each sampled: they start at "
                "the Cognigy pace, within the reservoir",
                "assumed xray_reservoir_per_second",
            ),
            Line(
                "Cognigy API calls",
                calls * n,
                "calls",
                None,
                f"{fmt_count(calls)} per endpoint {per} (not an AWS charge: time, see the limits)",
                f"{r.name} {pre}cognigy_calls_per_endpoint",
            ),
        ]

    # --- (b) a month of watches ---------------------------------------------------------------------------

    @property
    def watches_per_month(self) -> float:
        return self.month_seconds / 60 / self.t.default("WatchIntervalMinutes")

    def watch_parent_transitions(self) -> float:
        """The Standard transitions of one watch: the parent's alone (its Express children are billed
        per request and duration). ``parent_transitions`` when the benchmark prints it; else its
        ``transitions_per_endpoint`` (less ``child_transitions_per_endpoint`` when it prints that:
        then the first counts the children's too) times its ``n``."""
        w = self.watch
        if w.has("parent_transitions"):
            self._parent_source = "parent_transitions"
            return w.number("parent_transitions")
        per_endpoint = w.number("transitions_per_endpoint")
        self._parent_source = "transitions_per_endpoint x n"
        if w.has("child_transitions_per_endpoint"):
            per_endpoint = max(0.0, per_endpoint - w.number("child_transitions_per_endpoint"))
            self._parent_source = "(transitions_per_endpoint - child_transitions_per_endpoint) x n"
        return per_endpoint * w.number("n")

    def express_child_seconds(self) -> tuple[float, float]:
        """(children per endpoint, billed seconds per child): the measured seconds plus the probe's
        network wait, rounded up to Express's 100 ms."""
        w = self.watch
        children = w.number("children_per_endpoint")
        if children == 0:
            return 0.0, 0.0
        probes = self.invocations(w, "watch")[0].get("probe", 0.0)
        seconds = (
            w.number("express_child_seconds_per_endpoint") + probes * self.assumed("probe_network_ms") / 1000
        )
        per_child = seconds / children
        return children, math.ceil(round(per_child * 10, 6)) / 10

    def watch_month(self) -> list[Line]:
        w, n, watches = self.watch, self.endpoints, self.watches_per_month
        scale = n * watches
        children, child_seconds = self.express_child_seconds()
        memory_gb = self.assumed("express_child_memory_mb") / 1024
        writes = w.number("writes_per_endpoint")
        record_units = self.assumed("record_write_units")
        share = float(self.a.mapping("assumed.record_share_of_writes.value").get("watch", 0))
        read_units = w.number("reads_per_endpoint") * self.assumed("read_units_per_read")
        s3 = w.numbers("s3_requests_per_watch")
        per = f"x {fmt_count(n)} endpoints x {fmt_count(watches)} watches"
        parent = self.watch_parent_transitions()
        lines = [
            Line(
                "Step Functions Standard",
                parent * watches,
                "state transitions",
                "stepfunctions.standard_transition",
                f"{fmt_count(parent)} per watch (the parent alone, whatever the number of endpoints; "
                "an Express child's transitions are not billed) "
                f"x {fmt_count(watches)} watches",
                f"{w.name} {self._parent_source}",
            ),
            Line(
                "Step Functions Standard (child starts)",
                self.assumed("dmap_child_start_transitions") * children * scale,
                "state transitions",
                "stepfunctions.standard_transition",
                f"{fmt_count(self.assumed('dmap_child_start_transitions'))} per Express child started "
                f"(billed to the Standard parent) x {fmt_count(children)} per endpoint {per}",
                f"{w.name} children_per_endpoint; assumed dmap_child_start_transitions",
            ),
            Line(
                "Step Functions Express requests",
                children * scale,
                "child executions",
                "stepfunctions.express_request",
                f"{fmt_count(children)} per endpoint {per}",
                f"{w.name} children_per_endpoint",
            ),
            Line(
                "Step Functions Express duration",
                children * scale * child_seconds * memory_gb,
                "GB-seconds",
                "stepfunctions.express_gb_second",
                f"{fmt_count(children * scale)} children x {child_seconds:.1f} s x "
                f"{fmt_count(self.assumed('express_child_memory_mb'))} MB (measured + probe network, "
                "100 ms steps)",
                f"{w.name} express_child_seconds_per_endpoint; assumed probe_network_ms, "
                "express_child_memory_mb",
            ),
            *self.lambda_lines(w, "watch", n, watches, ""),
            Line(
                "DynamoDB writes",
                writes * record_units * scale,
                "write request units",
                "dynamodb.write_request_unit",
                f"{fmt_count(writes)} per endpoint x {fmt_count(record_units)} units {per}",
                f"{w.name} writes_per_endpoint; assumed record_write_units",
            ),
            Line(
                "DynamoDB writes (ByType index)",
                writes * share * record_units * scale,
                "write request units",
                "dynamodb.write_request_unit",
                f"{fmt_count(writes)} x {share:g} records x {fmt_count(record_units)} units {per}",
                f"{w.name} writes_per_endpoint; assumed record_share_of_writes",
            ),
            Line(
                "DynamoDB reads",
                read_units * scale,
                "read request units",
                "dynamodb.read_request_unit",
                f"{fmt_count(w.number('reads_per_endpoint'))} per endpoint x "
                f"{fmt_count(self.assumed('read_units_per_read'))} unit {per}",
                f"{w.name} reads_per_endpoint; assumed read_units_per_read",
            ),
            Line(
                "S3 GET",
                s3.get("get", 0.0) * watches,
                "requests",
                "s3.get_request",
                f"{fmt_count(s3.get('get', 0.0))} per watch x {fmt_count(watches)}",
                f"{w.name} s3_requests_per_watch.get",
            ),
            Line(
                "S3 PUT and LIST",
                (s3.get("put", 0.0) + s3.get("list", 0.0)) * watches,
                "requests",
                "s3.put_list_request",
                f"{fmt_count(s3.get('put', 0.0) + s3.get('list', 0.0))} per watch x {fmt_count(watches)}",
                f"{w.name} s3_requests_per_watch.put + list",
            ),
            Line(
                "EventBridge Scheduler",
                watches,
                "invocations",
                "eventbridge.scheduler_invocation",
                f"one per watch (every {fmt_count(self.t.default('WatchIntervalMinutes'))} minutes)",
                "template.yaml WatchIntervalMinutes",
            ),
        ]
        invocations = next(x.quantity for x in lines if x.service == "Lambda requests")
        log_bytes = self.assumed("log_bytes_per_invocation")
        executions = watches + children * scale
        lines += [
            self.log_line(
                invocations,
                log_bytes,
                f"{fmt_count(invocations)} invocations x {fmt_count(log_bytes)} bytes",
                "assumed log_bytes_per_invocation",
            ),
            Line(
                "X-Ray traces",
                self.traces(executions, self.month_seconds),
                "traces",
                "xray.trace_recorded",
                f"{fmt_count(executions)} executions sampled (1 a second, then 5%)",
                "assumed xray_reservoir_per_second, xray_sample_rate",
            ),
            Line(
                "Cognigy API calls",
                w.number("cognigy_calls")
                / max(1.0, w.number("watches") if w.has("watches") else 1.0)
                * watches,
                "calls",
                None,
                "healthy endpoints: Cognigy is told nothing",
                f"{w.name} cognigy_calls",
            ),
        ]
        return lines

    # --- (c) a month of deliveries ----------------------------------------------------------------------

    @property
    def delivery_rate(self) -> float:
        return self.workload("deliveries_per_day") / SECONDS_PER_DAY

    def receiver_concurrency(self, rate: float) -> float:
        """Instances busy at ``rate`` deliveries a second (Little's law on the measured duration)."""
        return rate * self.receive.number("handler_ms") / 1000

    def cache_miss_share(self, ttl_seconds: float, endpoints: float | None = None) -> float:
        """The share of deliveries that find their endpoint's entry expired in a cache kept
        ``ttl_seconds`` per instance: deliveries arrive at random (Poisson) over ``endpoints``
        endpoints and the busy instances (at least one), so an entry's life of ``ttl`` seconds serves
        ``1 + rate x ttl`` deliveries, the first a miss."""
        endpoints = self.workload("receiving_endpoints") if endpoints is None else endpoints
        instances = max(1.0, self.receiver_concurrency(self.delivery_rate))
        per_entry = self.delivery_rate / max(1.0, endpoints) / instances
        return 1 / (1 + per_entry * ttl_seconds)

    def deliveries_month(self, endpoints: float | None = None) -> list[Line]:
        rv, days = self.receive, self.workload("month_days")
        d = self.workload("deliveries_per_day") * days
        per = f"x {fmt_count(d)} deliveries"
        record_miss = self.cache_miss_share(rv.number("record_cache_seconds"), endpoints)
        secret_miss = self.cache_miss_share(rv.number("secret_cache_seconds"), endpoints)
        warm_reads = rv.number("dynamodb_read_units_per_delivery")
        miss_reads = rv.number("cache_miss.dynamodb_read_units_per_delivery")
        reads = warm_reads + record_miss * (miss_reads - warm_reads)
        warm_calls = rv.number("secrets_calls_per_delivery")
        miss_calls = rv.number("cache_miss.secrets_calls_per_delivery")
        calls = warm_calls + secret_miss * (miss_calls - warm_calls)
        memory = rv.number("lambda_memory_mb")
        ms = math.ceil(rv.number("handler_ms"))
        retention = self.t.default("DeliveryRetentionDays")
        stored_gb = self.workload("deliveries_per_day") * retention * rv.number("claim_item_bytes") / 1e9
        log_bytes = rv.number("log_bytes_per_delivery") + self.assumed("lambda_platform_log_bytes")
        rate = self.delivery_rate
        return [
            Line(
                "API Gateway (REST)",
                d,
                "requests",
                "apigateway.rest_request",
                f"{fmt_count(self.workload('deliveries_per_day'))} a day x {fmt_count(days)} days",
                "assumed deliveries_per_day",
            ),
            Line("Lambda requests", d, "requests", "lambda.request", f"one per delivery {per}", "-"),
            Line(
                f"Lambda duration ({self.t.architecture})",
                d * ms / 1000 * memory / 1024,
                "GB-seconds",
                "lambda.arm64_gb_second",
                f"{ms} ms x {fmt_count(memory)} MB {per}",
                f"{rv.name} handler_ms, lambda_memory_mb",
            ),
            Line(
                "DynamoDB writes",
                rv.number("dynamodb_write_units_per_delivery") * d,
                "write request units",
                "dynamodb.write_request_unit",
                f"{fmt_count(rv.number('dynamodb_writes_per_delivery'))} writes = "
                f"{fmt_count(rv.number('dynamodb_write_units_per_delivery'))} units per delivery "
                f"(the claim item: {fmt_count(rv.number('claim_item_bytes'))} bytes) {per}",
                f"{rv.name} dynamodb_write_units_per_delivery",
            ),
            Line(
                "DynamoDB reads",
                reads * d,
                "read request units",
                "dynamodb.read_request_unit",
                f"{fmt_count(miss_reads)} units on a record-cache miss x {record_miss:.1%} of deliveries "
                f"{per}",
                f"{rv.name} cache_miss.dynamodb_read_units_per_delivery, record_cache_seconds",
            ),
            Line(
                "EventBridge custom events",
                rv.number("eventbridge_events_per_delivery") * d,
                "events",
                "eventbridge.custom_event",
                f"{fmt_count(rv.number('eventbridge_puts_per_delivery'))} PutEvents = "
                f"{fmt_count(rv.number('eventbridge_events_per_delivery'))} 64 KB event per delivery {per}",
                f"{rv.name} eventbridge_events_per_delivery",
            ),
            Line(
                "Secrets Manager API calls",
                calls * d,
                "calls",
                "secretsmanager.api_call",
                f"{fmt_count(miss_calls)} on a secret-cache miss x {secret_miss:.1%} of deliveries {per}",
                f"{rv.name} cache_miss.secrets_calls_per_delivery, secret_cache_seconds",
            ),
            self.log_line(
                d,
                log_bytes,
                f"{fmt_count(rv.number('log_bytes_per_delivery'))} bytes measured + "
                f"{fmt_count(self.assumed('lambda_platform_log_bytes'))} Lambda's own {per}",
                f"{rv.name} log_bytes_per_delivery; assumed lambda_platform_log_bytes",
            ),
            Line(
                "X-Ray traces",
                self.traces(d, self.month_seconds),
                "traces",
                "xray.trace_recorded",
                f"{fmt_count(rate)} deliveries a second sampled (1 a second, then 5%)",
                "assumed xray_reservoir_per_second, xray_sample_rate",
            ),
            Line(
                "DynamoDB storage",
                stored_gb,
                "GB-months",
                "dynamodb.storage_gb_month",
                f"{fmt_count(self.workload('deliveries_per_day'))} a day kept {fmt_count(retention)} days x "
                f"{fmt_count(rv.number('claim_item_bytes'))} bytes",
                f"{rv.name} claim_item_bytes; template.yaml DeliveryRetentionDays",
            ),
            Line(
                "DynamoDB backups (PITR)",
                stored_gb,
                "GB-months",
                "dynamodb.pitr_gb_month",
                "the same bytes (point-in-time recovery is on)",
                "template.yaml PointInTimeRecoverySpecification",
            ),
        ]

    # --- fixed --------------------------------------------------------------------------------------

    def fixed_month(self) -> list[Line]:
        n = self.endpoints
        per_endpoint = self.assumed("secrets_per_endpoint")
        alarms = {
            name: count
            for name, count in self.t.alarm_metrics.items()
            if self.t.resources.get(name, {}).get("Type") == "AWS::CloudWatch::Alarm"
            and "Condition" not in self.t.resources[name]
        }
        conditional = self.t.count("AWS::CloudWatch::Alarm", conditional=True)
        dashboards = self.t.count("AWS::CloudWatch::Dashboard", conditional=False)
        return [
            Line(
                "Secrets Manager secrets",
                n * per_endpoint + 1,
                "secret-months",
                "secretsmanager.secret_month",
                f"{fmt_count(per_endpoint)} per endpoint x {fmt_count(n)} + the Cognigy API key",
                "assumed secrets_per_endpoint",
            ),
            Line(
                "CloudWatch alarms",
                sum(alarms.values()),
                "alarm metric-months",
                "cloudwatch.alarm_metric_month",
                f"{len(alarms)} alarms reading {sum(alarms.values())} metrics"
                + (f" (+{conditional} with MonitoringUrl set)" if conditional else ""),
                "template.yaml",
            ),
            Line(
                "CloudWatch dashboard",
                dashboards,
                "dashboard-months",
                "cloudwatch.dashboard_month",
                "the stack's one (an account's first 3 are free)",
                "template.yaml",
            ),
            Line(
                "CloudWatch custom metrics",
                self.assumed("custom_metrics"),
                "metric-months",
                "cloudwatch.custom_metric_month",
                "names x their dimension values, once every path has run",
                "assumed custom_metrics",
            ),
        ]

    def secret_calls_per_delivery(self) -> float:
        """Secrets Manager calls per delivery: the warm figure, and a cache miss's for the share of
        deliveries that miss (:meth:`cache_miss_share`)."""
        rv = self.receive
        warm, miss = (
            rv.number("secrets_calls_per_delivery"),
            rv.number("cache_miss.secrets_calls_per_delivery"),
        )
        return warm + self.cache_miss_share(rv.number("secret_cache_seconds")) * (miss - warm)


def total(lines: Sequence[Line], prices: Source) -> float:
    return sum(line.cost(prices) for line in lines)
