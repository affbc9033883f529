"""Plan task (state machine): load and validate the desired set, list deletions when pruning, and list
Cognigy once (all pages, through the shared rate limiter) so each item carries the webhook ids its
name holds there. The listing uses the register task's own Cognigy settings (the same variables)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from cognigy_webhooks.cognigy import CognigyClient
from cognigy_webhooks.observability import logger
from cognigy_webhooks.reconcile import limiter_bucket, plan
from cognigy_webhooks.settings import PlanSettings, RegisterSettings
from cognigy_webhooks.store import DesiredSetStore, DynamoRateLimiter, SecretResolver, Store
from cognigy_webhooks.webhook_names import cognigy_inventory

SETTINGS = PlanSettings.from_env()
COGNIGY = RegisterSettings.from_env()
DDB = boto3.client("dynamodb")
STORE = Store(DDB, endpoints_table=SETTINGS.endpoints_table, audit_table=SETTINGS.audit_table)
DESIRED = DesiredSetStore(boto3.client("s3"), SETTINGS.config_bucket)
SECRETS = SecretResolver(max_age=COGNIGY.secret_max_age)
LISTING_BUDGET_SECONDS = 60.0  # the function's Timeout (template.yaml) leaves room for the rest


def _load(ref: dict[str, Any]) -> dict[str, Any]:
    data, _version = DESIRED.get(str(ref["key"]), ref.get("versionId"))
    return data


async def _list(names: list[str]) -> dict[str, list[str]]:
    api_key = SECRETS.get(COGNIGY.cognigy_api_key_secret)
    limiter = DynamoRateLimiter(
        DDB,
        table=COGNIGY.rate_limit_table,
        bucket=limiter_bucket(api_key),
        rate_per_minute=COGNIGY.requests_per_minute,
        burst=COGNIGY.burst,
    )
    verify: bool | str = COGNIGY.cognigy_ca_bundle or True
    async with CognigyClient(api_key, COGNIGY.cognigy_base_url, verify=verify, limiter=limiter) as api:
        return await cognigy_inventory(api, names, budget_seconds=LISTING_BUDGET_SECONDS)


def _inventory(names: list[str]) -> Mapping[str, list[str]]:
    return asyncio.run(_list(names))


@logger.inject_lambda_context(log_event=False, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = plan(
        event.get("input", {}),
        recorded_names=lambda: [r.name for r in STORE.iter_records()],
        load_desired=_load,
        execution_id=event.get("executionId"),
        inventory=_inventory,
    )
    logger.info(
        "planned",
        extra={"items": len(result.items), "invalid": len(result.invalid), "listing": result.listing},
    )
    return result.model_dump(mode="json", by_alias=True, exclude_none=True)
