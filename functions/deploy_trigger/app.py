"""Deploy trigger: this stack's CloudFormation create/update completed -> reconcile the latest desired set
in the config bucket, once per desired-set version (deterministic execution name)."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from cognigy_webhooks.dal.desired_sets import DesiredSetStore
from cognigy_webhooks.dal.executions import Executions
from cognigy_webhooks.observability import logger
from cognigy_webhooks.ops import start_reconcile
from cognigy_webhooks.settings import DeployTriggerSettings

SETTINGS = DeployTriggerSettings.from_env()
DESIRED = DesiredSetStore(boto3.client("s3"), SETTINGS.config_bucket)
EXECUTIONS = Executions(boto3.client("stepfunctions"), SETTINGS.state_machine_arn)


@logger.inject_lambda_context(log_event=False, clear_state=True)
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    status = (event.detail.get("status-details") or {}).get("status")
    started = start_reconcile(DESIRED, EXECUTIONS, source="deploy", prune=False)
    if started is None:
        logger.info("no desired set stored yet; nothing to reconcile", extra={"stack_status": status})
        return {"started": False, "reason": "no_desired_set"}
    arn, is_new = started.execution_arn, started.started
    logger.info("deploy reconcile", extra={"execution": arn, "new": is_new, "stack_status": status})
    return {"started": is_new, "executionArn": arn}
