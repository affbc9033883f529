"""Moved to :mod:`cognigy_webhooks.tutorial` (this re-export goes when every import has moved)."""

from cognigy_webhooks.tutorial import (
    MAX_CONNECT_TIMEOUT_S,
    Pacing,
    RegistrationResult,
    _failed,
    configure_timeout_pipeline,
    process_registration_jobs,
    register_webhook_with_retry,
)

__all__ = [
    "MAX_CONNECT_TIMEOUT_S",
    "Pacing",
    "RegistrationResult",
    "_failed",
    "configure_timeout_pipeline",
    "process_registration_jobs",
    "register_webhook_with_retry",
]
