"""Audit sync (DynamoDB stream of AuditTable): new audit events -> the user's monitoring platform.

Wiring only: the logic is cognigy_webhooks.audit_sync. The answer is a partial batch response
(``ReportBatchItemFailures``): exactly the records whose events did not reach the platform; the stream's
retries, bisection and OnFailure queue take it from there, so no audit event is lost.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from cognigy_webhooks.audit_sync import AuditSync, client_ssl_context
from cognigy_webhooks.dal.secretsmanager import SecretResolver
from cognigy_webhooks.observability import logger, metrics
from cognigy_webhooks.settings import AuditSyncSettings

SETTINGS = AuditSyncSettings.from_env()
SECRETS = SecretResolver(max_age=SETTINGS.secret_max_age)


def _token(*, force: bool) -> str | None:
    if not SETTINGS.monitoring_token_secret:
        return None
    return SECRETS.get(SETTINGS.monitoring_token_secret, force=force)


SYNC = AuditSync(
    SETTINGS.monitoring_url,
    token=_token,
    batch_size=SETTINGS.batch_size,
    retry=SETTINGS.retry,
    timeout=SETTINGS.timeout,
    verify=client_ssl_context(SETTINGS.monitoring_ca_bundle or None),
    metrics=metrics,
)


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return SYNC.handle(event, context)
