"""Summarize task (state machine): what the reconcile did, per outcome."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cognigy_webhooks.observability import logger, metrics
from cognigy_webhooks.reconcile import summarize


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    summary = summarize(
        event.get("results") or [],
        event.get("invalid") or [],
        execution_id=event.get("executionId"),
        source=event.get("source"),
    )
    for outcome, count in summary.counts.items():
        metrics.add_metric(name=f"Endpoints{outcome.capitalize()}", unit="Count", value=count)
    logger.info("reconciled", extra={"counts": summary.counts})
    return summary.model_dump(mode="json", by_alias=True, exclude_none=True)
