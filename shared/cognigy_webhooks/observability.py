"""Observability, set up once: one Logger, Tracer and Metrics for every function and the library.

Import these objects; never make another Logger. Logs are structured JSON with a correlation id
(Powertools sets it from the event); secrets never reach them because models redact themselves.
The Tracer is made on first use: it loads the X-Ray SDK (~200 ms), which the receiver's cold start
cannot afford and no hot path needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

SERVICE = "cognigy-webhooks"
METRICS_NAMESPACE = "CognigyWebhooks"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)
tracer: Tracer


def __getattr__(name: str) -> Any:
    if name == "tracer":
        from aws_lambda_powertools import Tracer

        value = Tracer(service=SERVICE)
        globals()["tracer"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
