"""Observability, set up once: one Logger, Tracer and Metrics for every function and the library.

Import these objects; never create another Logger. Logs are structured JSON with a correlation id
(Powertools sets it from the event); secrets never reach them because models redact themselves.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "cognigy-webhooks"
METRICS_NAMESPACE = "CognigyWebhooks"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)
