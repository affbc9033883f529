"""Plan task (state machine): load and validate the desired set, list deletions when pruning, and list
Cognigy once (all pages, through the shared rate limiter) so each item carries the webhook ids its
name holds there (for Cognigy.AI's Endpoints: once per project, with each one's lastChanged). The
listing uses the register task's own Cognigy settings (the same variables, ``COGNIGY_API`` included).

The items (and the refusals) go to the config bucket (``reconcile/<execution name>/``,
:class:`~cognigy_webhooks.dal.run_files.RunFiles`); the output carries ``itemsRef`` in their place,
with the Distributed Map's concurrency derived from the Cognigy budget
(:func:`~cognigy_webhooks.reconcile.plan.map_concurrency`), so the execution's state stays small
whatever the number of endpoints.

Metrics: every request of the listing is counted (``CognigyCalls``, ``CognigyThrottles``,
``CognigyAuthFailures``: cognigy_webhooks.observability), flushed once per invocation."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from cognigy_webhooks.dal.desired_sets import DesiredSetStore
from cognigy_webhooks.dal.records import Store
from cognigy_webhooks.dal.run_files import RunFiles
from cognigy_webhooks.observability import logger, metrics
from cognigy_webhooks.reconcile import (
    CognigyHeld,
    CognigySession,
    cognigy_endpoint_inventory,
    cognigy_inventory,
    plan,
)
from cognigy_webhooks.reconcile.plan import map_concurrency, plan_output
from cognigy_webhooks.settings import PlanSettings, RegisterSettings

SETTINGS = PlanSettings.from_env()
COGNIGY = RegisterSettings.from_env()
DDB = boto3.client("dynamodb")
STORE = Store(DDB, endpoints_table=SETTINGS.endpoints_table, audit_table=SETTINGS.audit_table)
S3 = boto3.client("s3")
DESIRED = DesiredSetStore(S3, SETTINGS.config_bucket)
RUN_FILES = RunFiles(S3, SETTINGS.config_bucket)
CONCURRENCY = map_concurrency(
    requests_per_minute=COGNIGY.requests_per_minute,
    seconds_per_endpoint=SETTINGS.seconds_per_endpoint,
    most=SETTINGS.map_concurrency,
)
SESSION = CognigySession.from_settings(COGNIGY, dynamodb=DDB)
LISTING_BUDGET_SECONDS = 60.0  # the function's Timeout (template.yaml) leaves room for the rest


def _load(ref: dict[str, Any]) -> dict[str, Any]:
    data, _version = DESIRED.get(str(ref["key"]), ref.get("versionId"))
    return data


async def _list(names: list[str]) -> dict[str, list[str]]:
    async with SESSION.open(paced=True) as cognigy:
        return await cognigy_inventory(cognigy.api, names, budget_seconds=LISTING_BUDGET_SECONDS)


def _inventory(names: list[str]) -> Mapping[str, list[str]]:
    return asyncio.run(_list(names))


async def _list_projects(wanted: Mapping[str, str]) -> dict[str, CognigyHeld]:
    async with SESSION.open(paced=True) as cognigy:
        return await cognigy_endpoint_inventory(cognigy.api, wanted, budget_seconds=LISTING_BUDGET_SECONDS)


def _endpoint_inventory(wanted: Mapping[str, str]) -> Mapping[str, CognigyHeld]:
    return asyncio.run(_list_projects(wanted))


def _recorded_projects() -> dict[str, str]:
    return {r.name: r.project_id for r in STORE.iter_records() if r.project_id}


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = plan(
        event.get("input", {}),
        recorded_names=lambda: [r.name for r in STORE.iter_records()],
        load_desired=_load,
        execution_id=event.get("executionId"),
        inventory=_inventory,
        dialect="endpoints" if COGNIGY.cognigy_api == "endpoints" else "tutorial",
        endpoint_inventory=_endpoint_inventory,
        recorded_projects=_recorded_projects,
    )
    logger.info(
        "planned",
        extra={
            "items": len(result.items),
            "invalid": len(result.invalid),
            "listing": result.listing,
            "concurrency": CONCURRENCY,
        },
    )
    return plan_output(result, RUN_FILES, concurrency=CONCURRENCY)
