"""Probe task (state machine): probe one endpoint (its url and every fallback) before it is registered.

Input ``{"endpoint": <spec, camelCase>}``; output the endpoint's probe report (camelCase), whose
top-level ``passed`` the state machine branches on. An invalid spec raises ``InvalidSpec`` (the ASL's
Catch contract); a failing probe is a result, not an error.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from cognigy_webhooks.errors import InvalidSpec
from cognigy_webhooks.models import parse_endpoint
from cognigy_webhooks.net.probe import ProbePolicy, probe_endpoint
from cognigy_webhooks.observability import logger, metrics
from cognigy_webhooks.settings import ProbeSettings

SETTINGS = ProbeSettings.from_env()
POLICY = ProbePolicy(
    allow_private_networks=SETTINGS.allow_private_networks,
    ca_bundle=SETTINGS.ca_bundle,
    cert_warning_days=SETTINGS.cert_warning_days,
)


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False, clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name="ProbeRequested", unit=MetricUnit.Count, value=1)
    if not isinstance(event, dict) or "endpoint" not in event:
        raise InvalidSpec([{"field": "endpoint", "message": "the event must hold the endpoint spec"}])
    spec = parse_endpoint(event["endpoint"])
    report = asyncio.run(probe_endpoint(spec, POLICY))
    metrics.add_metric(name="ProbePassed" if report.passed else "ProbeFailed", unit=MetricUnit.Count, value=1)
    logger.info(
        "probed",
        extra={
            "endpoint": spec.name,
            "passed": report.passed,
            "reason": report.reason.value,
            "tls_version": report.primary.tls_version,
            "total_ms": report.primary.timings_ms.total,
        },
    )
    return report.model_dump(mode="json", by_alias=True)
