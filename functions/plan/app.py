"""Plan task (state machine): load and validate the desired set, list deletions when pruning."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from cognigy_webhooks.observability import logger
from cognigy_webhooks.reconcile import plan
from cognigy_webhooks.settings import PlanSettings
from cognigy_webhooks.store import DesiredSetStore, Store

SETTINGS = PlanSettings.from_env()
STORE = Store(
    boto3.client("dynamodb"), endpoints_table=SETTINGS.endpoints_table, audit_table=SETTINGS.audit_table
)
DESIRED = DesiredSetStore(boto3.client("s3"), SETTINGS.config_bucket)


def _load(ref: dict[str, Any]) -> dict[str, Any]:
    data, _version = DESIRED.get(str(ref["key"]), ref.get("versionId"))
    return data


@logger.inject_lambda_context(log_event=False, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = plan(
        event.get("input", {}),
        recorded_names=lambda: [r.name for r in STORE.iter_records()],
        load_desired=_load,
        execution_id=event.get("executionId"),
    )
    logger.info("planned", extra={"items": len(result.items), "invalid": len(result.invalid)})
    return result.model_dump(mode="json", by_alias=True, exclude_none=True)
