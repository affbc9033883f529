"""Register task (state machine): create, update, leave alone or delete one endpoint in Cognigy, then
write its record and audit event in one transaction. The exception class names are the ASL's contract.

Metrics: every request to Cognigy is counted (``CognigyCalls``, ``CognigyThrottles``,
``CognigyAuthFailures``: cognigy_webhooks.observability), flushed once per invocation."""

from __future__ import annotations

import asyncio
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from cognigy_webhooks.dal.clients import LazyClients
from cognigy_webhooks.dal.records import Store
from cognigy_webhooks.dal.secretsmanager import put_secret, secret_name
from cognigy_webhooks.observability import logger, metrics
from cognigy_webhooks.reconcile import (
    CognigySession,
    Connection,
    RegisterDeps,
    RegisterRequest,
    RegisterResult,
    parse_register_request,
    register,
)
from cognigy_webhooks.settings import RegisterSettings

SETTINGS = RegisterSettings.from_env()
DDB = boto3.client("dynamodb")
STORE = Store(DDB, endpoints_table=SETTINGS.endpoints_table, audit_table=SETTINGS.audit_table)
SESSION = CognigySession.from_settings(SETTINGS, dynamodb=DDB)
CLIENTS = LazyClients()


def _store_secret(endpoint: str, kind: str, value: str) -> str:
    """An endpoint's secret Cognigy gave us (its URLToken), under the stack's own prefix."""
    return put_secret(CLIENTS.get("secretsmanager"), secret_name(SETTINGS.stack_name, endpoint, kind), value)


async def _register(request: RegisterRequest) -> dict[str, Any]:
    async def run(cognigy: Connection) -> RegisterResult:
        # an endpoint's secrets are read fresh (the API key may be cached): a rotation must reach Cognigy now
        deps = RegisterDeps(
            store=STORE,
            cognigy=cognigy.api,
            limiter=cognigy.limiter,
            resolve_secret=SESSION.fresh_secret,
            retention_days=SETTINGS.audit_retention_days,
            store_secret=_store_secret,
        )
        return await register(request, deps)

    # a key Cognigy refused is not tried again by this execution's next endpoints (until rotated)
    result = await SESSION.with_rotated_key(run, scope=request.execution_id)
    return result.model_dump(mode="json", by_alias=True, exclude_none=True)


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_register_request(event)
    logger.append_keys(endpoint=request.endpoint.get("name"), action=request.action)
    return asyncio.run(_register(request))
