"""cognigy-webhooks: register, probe, monitor and receive NICE Cognigy webhook endpoints.

Every public name is importable from here. Imports are lazy (PEP 562) so that a Lambda that needs
only ``signing`` does not pay for pydantic or httpx at cold start.

One room per concern, layered bottom up (nothing imports upward):

- ``errors`` (every exception, each with its reason code; the ASL's ErrorEquals names),
  ``models/`` (spec, probe, records, audit: declarative, no I/O), ``secrets`` (what is secret,
  references, scrubbing), ``signing/`` (the tutorial scheme, Standard Webhooks), ``urls``,
  ``headers``, ``backoff``, ``ratelimit`` (the token bucket and the shared DynamoDB limiter),
  ``settings_base`` / ``settings`` / ``settings_receive`` (each function's environment, each
  variable named once), ``observability``, ``loopguard`` (loop marks, the tutorial's headers);
- ``net/`` (SSRF guard, the one TLS client context, the probe), ``cognigy/`` (the REST client, its
  transport, the one mapping of responses to typed errors), ``dal/`` (one module per store, each
  the only one that talks to it; ``dal/schema`` holds every attribute name, standard library only;
  ``dal/secretsmanager`` is the only Secrets Manager client);
- ``reconcile/`` (plan, the one adopt-before-create engine in ``adopt``, the register task, names
  and orphans, throttling, summary), ``receiving/`` (the delivery pipeline: http, auth, payloads,
  report, pipeline), ``audit_sync`` + ``monitoring`` (audit events to the monitoring platform);
- ``ops`` (what the CLI, the deploy trigger and the API share: ``start_reconcile``,
  ``store_secrets``), ``tutorial`` (the tutorial's flows as thin adapters over the engine).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # models
    "HttpMethod": "models",
    "PayloadFormat": "models",
    "SignatureScheme": "models",
    "RetryPolicy": "models",
    "BasicAuth": "models",
    "WebhookEndpoint": "models",
    "DesiredSet": "models",
    "ProbeReport": "models",
    "EndpointProbeReport": "models",
    "ProbeReason": "models",
    "WebhookAuditLog": "models",
    "parse_endpoint": "models",
    "parse_desired_set": "models",
    # errors
    "CognigyWebhooksError": "errors",
    "InvalidSpec": "errors",
    "CognigyError": "errors",
    "CognigyThrottled": "errors",
    "CognigyUnavailable": "errors",
    "CognigyAuthError": "errors",
    "CognigyForbidden": "errors",
    "CognigyRejected": "errors",
    "CognigyNotFound": "errors",
    # signing (standard library only)
    "sign_webhook_payload": "signing",
    "verify_webhook_signature": "signing",
    "verify_cognigy_signature": "signing",
    "sign_standard_webhook": "signing",
    "verify_standard_webhook": "signing",
    "Verification": "signing",
    "Refusal": "signing",
    # Cognigy REST API
    "create_cognigy_client": "cognigy",
    "CognigyClient": "cognigy",
    "CognigyWebhook": "cognigy",
    # pacing
    "RateLimiter": "ratelimit",
    "TokenBucket": "ratelimit",
    # tutorial flows
    "register_webhook_with_retry": "tutorial",
    "process_registration_jobs": "tutorial",
    "configure_timeout_pipeline": "tutorial",
    "RegistrationResult": "tutorial",
    "Pacing": "tutorial",
    "Backoff": "backoff",
    "inject_loop_prevention_headers": "loopguard",  # the tutorial's: a headers dict in, a dict out
    # loop marks (the project's own: an endpoint in, a marked copy out; read back by the receiver)
    "with_loop_marks": "loopguard",
    "read_loop_headers": "loopguard",
    "LoopInfo": "loopguard",
    "sync_to_monitoring_platform": "monitoring",
    "SyncResult": "monitoring",
    "AuditSync": "audit_sync",
    # probe
    "ReachabilityResult": "net.probe",
    "verify_endpoint_reachability": "net.probe",
    "probe_url": "net.probe",
    "probe_endpoint": "net.probe",
    "ProbePolicy": "net.probe",
    "CertificateProblem": "models",
    "ProbeSettings": "settings",
    # the receiver (boto3 and the standard library only: no pydantic at its cold start)
    "Receiver": "receiving",
    "ReceiveSettings": "settings_receive",
    "parse_xml": "receiving",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cognigy_webhooks' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"cognigy_webhooks.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from cognigy_webhooks.errors import (  # noqa: F401
        CognigyAuthError,
        CognigyError,
        CognigyForbidden,
        CognigyNotFound,
        CognigyRejected,
        CognigyThrottled,
        CognigyUnavailable,
        CognigyWebhooksError,
        InvalidSpec,
    )
    from cognigy_webhooks.loopguard import (  # noqa: F401
        LoopInfo,
        inject_loop_prevention_headers,
        read_loop_headers,
        with_loop_marks,
    )
    from cognigy_webhooks.models import (  # noqa: F401
        BasicAuth,
        DesiredSet,
        EndpointProbeReport,
        HttpMethod,
        PayloadFormat,
        ProbeReason,
        ProbeReport,
        RetryPolicy,
        SignatureScheme,
        WebhookAuditLog,
        WebhookEndpoint,
        parse_desired_set,
        parse_endpoint,
    )
