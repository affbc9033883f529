"""The capacity model's limits table: each quota, budget or template default a workload meets,
next to what the workloads need of it and a verdict (``fits``, or **over** by how much and which
parameter to raise).

What is allowed comes from the inputs only: the template's defaults (the Cognigy budget, the receive
API's throttle, WatchConcurrency, WatchIntervalMinutes...) and ``assumptions.json``'s ``quotas`` and
``cognigy`` (documented defaults as known on the day they were taken, never measured). What is needed
comes from the same figures the cost tables use (:class:`capacity_costs.Model`). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from capacity_costs import Model, fmt_count

__all__ = ["Limit", "limits"]


@dataclass(frozen=True)
class Limit:
    """One row of the limits table."""

    limit: str
    allows: str
    needs: str
    verdict: str


def limits(m: Model) -> list[Limit]:
    """Every row of the limits table, worked out from ``m``'s inputs."""
    q = m.a
    n = m.endpoints

    def quota(name: str) -> float:
        return q.number(f"quotas.{name}.value")

    def what(name: str) -> str:
        return f"{fmt_count(quota(name))} {q.text(f'quotas.{name}.what')}"

    rpm, burst = m.t.default("CognigyRequestsPerMinute"), m.t.default("CognigyBurst")
    documented = q.number("cognigy.documented_requests") / q.number("cognigy.documented_seconds") * 60
    first_calls = m.reconcile.number("cognigy_calls_per_endpoint") * n
    again_calls = m.reconcile.number("reapply_cognigy_calls_per_endpoint") * n

    def minutes(calls: float, per_minute: float) -> str:
        value = max(0.0, calls - burst) / per_minute
        return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"

    rate, peak = m.delivery_rate, m.delivery_rate * m.workload("peak_factor")
    busy, busy_peak = m.receiver_concurrency(rate), m.receiver_concurrency(peak)
    stage_rate = m.t.default("ReceiveThrottleRate")
    stage_burst = m.t.default("ReceiveThrottleBurst")
    units = m.receive.number("dynamodb_write_units_per_delivery")
    limiter_writes = rpm / 60
    history = max(m.reconcile.number("parent_history_events"), m.watch.number("parent_history_events"))
    children, child_seconds = m.express_child_seconds()
    watch_concurrency = m.t.default("WatchConcurrency")
    watch_seconds = n * children * child_seconds / watch_concurrency
    interval = m.t.default("WatchIntervalMinutes") * 60
    pace = rpm / 60 / max(1e-9, m.reconcile.number("cognigy_calls_per_endpoint"))
    transitions_rate = pace * m.reconcile.number("transitions_per_endpoint")
    puts_peak = peak * m.receive.number("eventbridge_puts_per_delivery")
    max_body = m.t.default("ReceiveMaxBodyBytes") / 1024
    timeout = m.t.timeout_s("ReceiveFunction")

    def ok(need: float, allowed: float) -> str:
        return "fits" if need <= allowed else f"**over** ({need / allowed:.2g}x)"

    return [
        Limit(
            "Cognigy request budget",
            f"{fmt_count(rpm)}/min, burst {fmt_count(burst)} (template defaults); Cognigy documents "
            f"{fmt_count(q.number('cognigy.documented_requests'))} per "
            f"{fmt_count(q.number('cognigy.documented_seconds') / 60)} min per IP",
            f"first apply: {fmt_count(first_calls)} calls = {minutes(first_calls, rpm)} min at "
            f"the budget ({minutes(first_calls, documented)} min at Cognigy's documented rate); "
            f"re-apply: {fmt_count(again_calls)} calls = {minutes(again_calls, rpm)} min",
            "the bound on a first apply",
        ),
        Limit(
            "Lambda concurrency",
            what("lambda_concurrency"),
            f"receiver: {fmt_count(busy)} busy on average, {fmt_count(busy_peak)} at a "
            f"{fmt_count(m.workload('peak_factor'))}x peak (Little's law on the measured handler "
            "time)",
            ok(busy_peak, quota("lambda_concurrency")),
        ),
        Limit(
            "API Gateway account throttle",
            f"{what('apigateway_rps')}, {what('apigateway_burst')}",
            f"{fmt_count(rate)} deliveries/s on average, {fmt_count(peak)}/s at the peak",
            ok(peak, quota("apigateway_rps")),
        ),
        Limit(
            "Receive API stage throttle",
            f"{fmt_count(stage_rate)}/s, burst {fmt_count(stage_burst)} (ReceiveThrottleRate/Burst defaults)",
            f"{fmt_count(peak)}/s at the peak",
            ok(peak, stage_rate) + ("" if peak <= stage_rate else ": raise ReceiveThrottleRate"),
        ),
        Limit(
            "API Gateway payload and timeout",
            f"{what('apigateway_payload_mb')}, {what('apigateway_timeout_s')}",
            f"bodies up to {fmt_count(max_body)} KiB (ReceiveMaxBodyBytes); the receiver's Timeout "
            f"{fmt_count(timeout)} s",
            ok(timeout, quota("apigateway_timeout_s")),
        ),
        Limit(
            "DynamoDB per partition",
            f"{what('dynamodb_partition_wcu')}, {what('dynamodb_partition_rcu')} (a key's ceiling)",
            f"the shared rate-limiter item (one key): at most one write per Cognigy call = "
            f"{fmt_count(limiter_writes)}/s at the budget; deliveries: {fmt_count(peak * units)} write "
            "units/s at the peak, keyed by delivery id (spread over partitions)",
            ok(limiter_writes, quota("dynamodb_partition_wcu")),
        ),
        Limit(
            "DynamoDB on-demand table",
            what("dynamodb_table_on_demand_wru"),
            f"deliveries table: {fmt_count(peak * units)} write units/s at the peak",
            ok(peak * units, quota("dynamodb_table_on_demand_wru")),
        ),
        Limit(
            "Step Functions history",
            what("sfn_history_events"),
            f"{fmt_count(history)} events in the larger parent execution (reconcile or watch), whatever "
            "the number of endpoints; each endpoint's own events are in its child's history",
            ok(history, quota("sfn_history_events")),
        ),
        Limit(
            "Distributed Map children at once",
            what("sfn_map_children"),
            f"MapConcurrency {fmt_count(m.t.default('MapConcurrency'))} (the plan runs fewer: what "
            f"the Cognigy budget keeps busy), WatchConcurrency {fmt_count(watch_concurrency)}",
            ok(max(m.t.default("MapConcurrency"), watch_concurrency), quota("sfn_map_children")),
        ),
        Limit(
            "State payload and the items object",
            f"{what('sfn_payload_kib')}; {what('sfn_item_reader_gb')}",
            "each child's input is one endpoint (a few hundred bytes); the items are one S3 object "
            "(a few MB for 10,000 endpoints), read by the ItemReader",
            "fits",
        ),
        Limit(
            "State transitions",
            what("sfn_transitions_per_second"),
            f"a first apply: {fmt_count(transitions_rate)}/s at the Cognigy pace; a watch's parent: a "
            "few per run",
            ok(transitions_rate, quota("sfn_transitions_per_second")),
        ),
        Limit(
            "Express child duration",
            what("sfn_express_seconds"),
            f"{child_seconds:.1f} s per watch child (measured + the probe's network)",
            ok(child_seconds, quota("sfn_express_seconds")),
        ),
        Limit(
            "A watch within its interval",
            f"{fmt_count(interval / 60)} min (WatchIntervalMinutes)",
            f"{fmt_count(n)} endpoints x {child_seconds:.1f} s / WatchConcurrency "
            f"{fmt_count(watch_concurrency)} = {fmt_count(watch_seconds / 60)} min",
            ok(watch_seconds, interval) + ("" if watch_seconds <= interval else ": raise WatchConcurrency"),
        ),
        Limit(
            "EventBridge PutEvents",
            what("eventbridge_put_events_rps"),
            f"{fmt_count(puts_peak)}/s at the delivery peak",
            ok(puts_peak, quota("eventbridge_put_events_rps")),
        ),
        Limit(
            "EventBridge Scheduler",
            what("scheduler_invocations_rps"),
            f"one schedule, one invocation every {fmt_count(interval / 60)} min",
            "fits",
        ),
        Limit(
            "Secrets Manager reads",
            what("secretsmanager_get_rps"),
            f"{fmt_count(peak * m.secret_calls_per_delivery())}/s at the delivery peak (cache misses)",
            ok(peak * m.secret_calls_per_delivery(), quota("secretsmanager_get_rps")),
        ),
    ]
