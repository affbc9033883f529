"""Watch tasks (the watch state machine, statemachine/watch.asl.json): ``step`` ``list`` (the records to
re-probe, written to the config bucket for the Distributed Map to read, and the time the rules judge
at), ``judge`` (in each child execution: one endpoint's probe report -> the health rules -> at most
one Cognigy update, its events on the operations bus, its record and audit) and ``summarize`` (the
map's result files read back and counted, the whole summary written beside them, the watch's metrics;
the output bounded). The probe between list and judge is the probe function's own. Exception class
names are the ASL's Retry/Catch contract."""

from __future__ import annotations

import asyncio
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from cognigy_webhooks.dal.bus import OperationsBus
from cognigy_webhooks.dal.clients import LazyClients
from cognigy_webhooks.dal.records import Store
from cognigy_webhooks.dal.run_files import RunFiles, run_name
from cognigy_webhooks.errors import InvalidInput
from cognigy_webhooks.metric_names import MetricName
from cognigy_webhooks.models.watch import HealthRules
from cognigy_webhooks.observability import logger, metrics, record_metric
from cognigy_webhooks.reconcile import CognigySession
from cognigy_webhooks.settings import WatchSettings
from cognigy_webhooks.watch.fanout import bounded, list_targets, summarize_run
from cognigy_webhooks.watch.run import JudgeRequest, ListRequest, WatchDeps, judge, parse_model

SETTINGS = WatchSettings.from_env()
DDB = boto3.client("dynamodb")
CLIENTS = LazyClients()
STORE = Store(DDB, endpoints_table=SETTINGS.endpoints_table, audit_table=SETTINGS.audit_table)
FILES = RunFiles(boto3.client("s3"), SETTINGS.config_bucket)
SESSION = CognigySession.from_settings(SETTINGS, dynamodb=DDB)
BUS = OperationsBus(CLIENTS, SETTINGS.operations_bus_name)
RULES = HealthRules(
    unhealthy_after=SETTINGS.unhealthy_after,
    deactivate_after_hours=SETTINGS.deactivate_after_hours,
    recover_after=SETTINGS.recover_after,
    deactivate_on_gone=SETTINGS.deactivate_on_gone,
    certificate_thresholds=SETTINGS.thresholds,
)
DEPS = WatchDeps(
    store=STORE,
    rules=RULES,
    publish=BUS.publish,
    with_cognigy=SESSION.with_rotated_key,
    resolve_secret=SESSION.fresh_secret,
    dialect=SETTINGS.cognigy_api,
    stack=SETTINGS.stack_name,
    retention_days=SETTINGS.audit_retention_days,
)


def _summarize(event: dict[str, Any]) -> dict[str, Any]:
    at = parse_model(ListRequest, {"at": event.get("at")}, "at").at
    if at is None:
        raise InvalidInput([{"field": "at", "message": "is required"}])
    name = event.get("executionName")
    if not isinstance(name, str) or not name:
        raise InvalidInput([{"field": "executionName", "message": "is required"}])
    items_ref = event.get("itemsRef")
    count = items_ref.get("count") if isinstance(items_ref, dict) else None
    summary, ref = summarize_run(
        at,
        event.get("resultWriterDetails"),
        FILES,
        run_name(name),
        count=count if isinstance(count, int) and not isinstance(count, bool) else None,
    )
    record_metric(MetricName.ENDPOINTS_WATCHED, summary.watched)
    record_metric(MetricName.ENDPOINTS_UNHEALTHY, summary.unhealthy + summary.deactivated)
    record_metric(MetricName.ENDPOINTS_DEACTIVATED, summary.transitions.get("Endpoint Deactivated", 0))
    if summary.min_cert_days_left is not None:
        record_metric(MetricName.CERTIFICATE_MIN_DAYS_LEFT, summary.min_cert_days_left)
    for detail_type, count in summary.transitions.items():
        record_metric(MetricName.WATCH_TRANSITIONS, count, dimensions={"DetailType": detail_type})
    logger.info(
        "watched",
        extra={k: v for k, v in summary.model_dump(mode="json", by_alias=True).items() if k != "results"},
    )
    return bounded(summary, ref).model_dump(mode="json", by_alias=True, exclude_none=True)


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise InvalidInput([{"field": "event", "message": "must be an object"}])
    step = event.get("step")
    if step == "list":
        given = event.get("input") or {}
        if not isinstance(given, dict):
            raise InvalidInput([{"field": "input", "message": "must be an object"}])
        fields = {
            **given,
            "startedAt": event.get("startedAt"),
            "executionId": event.get("executionId"),
            "executionName": event.get("executionName"),
            "toleratedFailurePercentage": event.get("toleratedFailurePercentage"),
        }
        request = parse_model(ListRequest, fields, "input")
        return list_targets(request, STORE, FILES)
    if step == "judge":
        judged = parse_model(JudgeRequest, {k: v for k, v in event.items() if k != "step"}, "event")
        logger.append_keys(endpoint=judged.name)
        return asyncio.run(judge(judged, DEPS))
    if step == "summarize":
        return _summarize(event)
    raise InvalidInput([{"field": "step", "message": "must be list, judge or summarize"}])
