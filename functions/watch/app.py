"""Watch tasks (the watch state machine, statemachine/watch.asl.json): ``step`` ``list`` (the records to
re-probe and the time the rules judge at), ``judge`` (one endpoint's probe report -> the health rules ->
at most one Cognigy update, its events on the operations bus, its record and audit) and ``summarize``
(the counts, and the watch's metrics). The probe between list and judge is the probe function's own.
Exception class names are the ASL's Retry/Catch contract."""

from __future__ import annotations

import asyncio
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from cognigy_webhooks.dal.bus import OperationsBus
from cognigy_webhooks.dal.clients import LazyClients
from cognigy_webhooks.dal.records import Store
from cognigy_webhooks.errors import InvalidInput
from cognigy_webhooks.metric_names import MetricName
from cognigy_webhooks.models.watch import HealthRules
from cognigy_webhooks.observability import logger, metrics, record_metric
from cognigy_webhooks.reconcile import CognigySession
from cognigy_webhooks.settings import WatchSettings
from cognigy_webhooks.watch.run import (
    JudgeRequest,
    ListRequest,
    WatchDeps,
    judge,
    list_targets,
    parse_model,
    summarize,
)

SETTINGS = WatchSettings.from_env()
DDB = boto3.client("dynamodb")
CLIENTS = LazyClients()
STORE = Store(DDB, endpoints_table=SETTINGS.endpoints_table, audit_table=SETTINGS.audit_table)
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
    results = event.get("results")
    if not isinstance(results, list):
        raise InvalidInput([{"field": "results", "message": "must be the list of judgements"}])
    summary = summarize(at, results)
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
    return summary.model_dump(mode="json", by_alias=True, exclude_none=True)


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
        fields = {**given, "startedAt": event.get("startedAt"), "executionId": event.get("executionId")}
        request = parse_model(ListRequest, fields, "input")
        return list_targets(request, STORE)
    if step == "judge":
        judged = parse_model(JudgeRequest, {k: v for k, v in event.items() if k != "step"}, "event")
        logger.append_keys(endpoint=judged.name)
        return asyncio.run(judge(judged, DEPS))
    if step == "summarize":
        return _summarize(event)
    raise InvalidInput([{"field": "step", "message": "must be list, judge or summarize"}])
