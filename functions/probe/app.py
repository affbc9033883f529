"""Probe task (state machine): probe one endpoint (its url and every fallback) before it is registered.

Input ``{"endpoint": <spec, camelCase>}``; output the endpoint's probe report (camelCase), whose
top-level ``passed`` the state machine branches on. An invalid spec raises ``InvalidSpec`` (the ASL's
Catch contract); a failing probe is a result, not an error.

Metrics (one EMF flush per invocation): ``ProbeRequested``; ``ProbePassed`` or ``ProbeFailed``;
``ProbeResult`` by ``Reason`` (the report's: ``ok`` or why it failed); ``ProbeLatency``, the primary
URL's whole probe in milliseconds, when the probe got as far as timing it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cognigy_webhooks.errors import InvalidSpec
from cognigy_webhooks.models import parse_endpoint
from cognigy_webhooks.net.probe import ProbePolicy, probe_endpoint
from cognigy_webhooks.observability import MetricName, logger, metrics, record_metric
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
    record_metric(MetricName.PROBE_REQUESTED)
    if not isinstance(event, dict) or "endpoint" not in event:
        raise InvalidSpec([{"field": "endpoint", "message": "the event must hold the endpoint spec"}])
    spec = parse_endpoint(event["endpoint"])
    report = asyncio.run(probe_endpoint(spec, POLICY))
    record_metric(MetricName.PROBE_PASSED if report.passed else MetricName.PROBE_FAILED)
    record_metric(MetricName.PROBE_RESULT, dimensions={"Reason": report.reason.value})
    if report.primary.timings_ms.total is not None:
        record_metric(MetricName.PROBE_LATENCY, report.primary.timings_ms.total)
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
