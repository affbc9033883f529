"""Observability, set up once: one Logger and one Metrics for every function and the library.

Import these objects; never make another Logger. Logs are structured JSON with a correlation id
(Powertools sets it from the event); secrets never reach them because models redact themselves. No
Tracer: nothing is traced yet, and the X-Ray SDK it loads (~200 ms) is more than the receiver's cold
start can afford; add it here, made on first use, when a function needs traces.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

SERVICE = "cognigy-webhooks"
METRICS_NAMESPACE = "CognigyWebhooks"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)
