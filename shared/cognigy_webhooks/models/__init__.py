"""Declarative models (pydantic v2), one module each: the endpoint spec and desired set
(:mod:`.spec`), what a probe found (:mod:`.probe`), what DynamoDB keeps (:mod:`.records`: the endpoint
record and the audit event), and the tutorial's audit record (:mod:`.audit`). No I/O anywhere.

Every name is importable from here too.
"""

from __future__ import annotations

from cognigy_webhooks.models.audit import WebhookAuditLog
from cognigy_webhooks.models.base import _Model
from cognigy_webhooks.models.probe import (
    CertificateProblem,
    EndpointProbeReport,
    PhaseTimings,
    ProbeReason,
    ProbeReport,
    ReachabilityResult,
)
from cognigy_webhooks.models.spec import (
    FORBIDDEN_HEADERS,
    MAX_URL_LENGTH,
    MIN_SECRET_BYTES,
    BasicAuth,
    CognigyTarget,
    DesiredSet,
    EndpointName,
    HttpMethod,
    HttpsUrl,
    Milliseconds,
    PayloadFormat,
    RetryPolicy,
    Secret,
    SignatureScheme,
    WebhookEndpoint,
    parse_desired_set,
    parse_endpoint,
    with_cognigy_defaults,
)
from cognigy_webhooks.secrets import redact_headers

__all__ = [
    "FORBIDDEN_HEADERS",
    "MAX_URL_LENGTH",
    "MIN_SECRET_BYTES",
    "BasicAuth",
    "CertificateProblem",
    "CognigyTarget",
    "DesiredSet",
    "EndpointName",
    "EndpointProbeReport",
    "HttpMethod",
    "HttpsUrl",
    "Milliseconds",
    "PayloadFormat",
    "PhaseTimings",
    "ProbeReason",
    "ProbeReport",
    "ReachabilityResult",
    "RetryPolicy",
    "Secret",
    "SignatureScheme",
    "WebhookAuditLog",
    "WebhookEndpoint",
    "_Model",
    "parse_desired_set",
    "parse_endpoint",
    "redact_headers",
    "with_cognigy_defaults",
]
