"""Register task (state machine): create, update, leave alone or delete one endpoint in Cognigy, then
write its record and audit event in one transaction. The exception class names are the ASL's contract."""

from __future__ import annotations

import asyncio
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from cognigy_webhooks.cognigy import CognigyClient
from cognigy_webhooks.observability import logger
from cognigy_webhooks.reconcile import (
    RegisterDeps,
    RegisterRequest,
    RegisterResult,
    limiter_bucket,
    parse_register_request,
    register,
    with_rotated_key,
)
from cognigy_webhooks.settings import RegisterSettings
from cognigy_webhooks.store import DynamoRateLimiter, SecretResolver, Store

SETTINGS = RegisterSettings.from_env()
DDB = boto3.client("dynamodb")
STORE = Store(DDB, endpoints_table=SETTINGS.endpoints_table, audit_table=SETTINGS.audit_table)
SECRETS = SecretResolver(max_age=SETTINGS.secret_max_age)


def _fresh_secret(secret_id: str) -> str:
    return SECRETS.get(secret_id, force=True)


async def _register(request: RegisterRequest) -> dict[str, Any]:
    result = await with_rotated_key(
        lambda force: SECRETS.get(SETTINGS.cognigy_api_key_secret, force=force),
        lambda api_key: _register_with(request, api_key),
    )
    return result.model_dump(mode="json", by_alias=True, exclude_none=True)


async def _register_with(request: RegisterRequest, api_key: str) -> RegisterResult:
    limiter = DynamoRateLimiter(
        DDB,
        table=SETTINGS.rate_limit_table,
        bucket=limiter_bucket(api_key),
        rate_per_minute=SETTINGS.requests_per_minute,
        burst=SETTINGS.burst,
    )
    verify: bool | str = SETTINGS.cognigy_ca_bundle or True
    async with CognigyClient(api_key, SETTINGS.cognigy_base_url, verify=verify) as api:
        deps = RegisterDeps(
            store=STORE,
            cognigy=api,
            limiter=limiter,
            # an endpoint's secret is read fresh: a value rotated behind the same ARN must reach Cognigy
            # now, not when the cache expires (the API key above may be cached)
            resolve_secret=_fresh_secret,
            retention_days=SETTINGS.audit_retention_days,
        )
        return await register(request, deps)


@logger.inject_lambda_context(log_event=False, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_register_request(event)
    logger.append_keys(endpoint=request.endpoint.get("name"), action=request.action)
    return asyncio.run(_register(request))
