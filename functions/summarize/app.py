"""Summarize task (state machine): what the reconcile did, per outcome; and why its map run stopped.

It reads the Distributed Map's results (the ResultWriter's manifest and files in the config bucket:
each child's output is its endpoint's RegisterResult) and the plan's refusals, writes the whole
summary beside them (``reconcile/<execution name>/summary.json``) and returns it bounded
(:func:`~cognigy_webhooks.reconcile.summary.bounded`: the counts and failures always, the names and
results up to 200 endpoints, ``summaryRef`` to the whole one).

``{"why": true, "executionId"}`` (the map run stopped past its tolerated failures): the first failed
child's error and cause (:func:`~cognigy_webhooks.reconcile.summary.why_stopped`), which the state
machine fails the execution with (a refused Cognigy API key: ``CognigyAuthError`` and Cognigy's
message, as it always failed)."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from cognigy_webhooks.dal.executions import Executions
from cognigy_webhooks.dal.run_files import RunFiles
from cognigy_webhooks.observability import logger, metrics
from cognigy_webhooks.reconcile.summary import bounded, summarize_map_run, why_stopped
from cognigy_webhooks.settings import SummarizeSettings

SETTINGS = SummarizeSettings.from_env()
RUN_FILES = RunFiles(boto3.client("s3"), SETTINGS.config_bucket)
_SFN: list[Executions] = []  # made on the first "why" (most invocations never need it)


def _executions() -> Executions:
    if not _SFN:
        _SFN.append(Executions(boto3.client("stepfunctions"), state_machine_arn=""))
    return _SFN[0]


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("why"):
        why = why_stopped(_executions(), str(event.get("executionId") or ""), event.get("stopped"))
        logger.warning("the map run stopped", extra={"error": why["error"]})
        return why
    summary, whole = summarize_map_run(
        RUN_FILES,
        event.get("resultWriterDetails"),
        event.get("itemsRef"),
        execution_id=event.get("executionId"),
        source=event.get("source"),
    )
    for outcome, count in summary.counts.items():
        metrics.add_metric(name=f"Endpoints{outcome.capitalize()}", unit="Count", value=count)
    logger.info("reconciled", extra={"counts": summary.counts})
    return bounded(summary, whole).model_dump(mode="json", by_alias=True, exclude_none=True)
