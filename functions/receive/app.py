"""Receive (API Gateway, POST /deliveries/{name}): Cognigy's signed deliveries, verified, deduplicated,
loop-guarded and handed on exactly once. Wiring only: the pipeline is cognigy_webhooks.receiving.

Its import graph is boto3, the standard library and Powertools' Logger, Metrics and Parameters (no
pydantic, no httpx): bench/receive.py measures the cold import against ``import boto3`` alone. boto3
clients are made on the first delivery. Every log line of an invocation carries the Lambda context
and, as its correlation id, API Gateway's request id (``requestContext.requestId``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cognigy_webhooks.observability import api_gateway_request_id, inject_lambda_context, logger, metrics
from cognigy_webhooks.receiving import Receiver
from cognigy_webhooks.settings_receive import ReceiveSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

SETTINGS = ReceiveSettings.from_env()
RECEIVER = Receiver.from_settings(SETTINGS, log=logger, metrics=metrics)


@inject_lambda_context(correlation_id=api_gateway_request_id)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return RECEIVER.handle_event(event)
