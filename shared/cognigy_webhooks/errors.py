"""Domain exceptions, in one module.

For state machine tasks the class name is the contract: the ASL's Retry and Catch name these
classes (``CognigyUnavailable`` is retried, ``CognigyThrottled`` is waited out, the rest are caught).
``EndpointClaimed`` (another execution is creating the same endpoint) is retried with more patience.
No message here ever carries a secret.
"""

from __future__ import annotations

from typing import Any


class CognigyWebhooksError(Exception):
    """Base class of every error this library raises on purpose."""


class InvalidSpec(CognigyWebhooksError, ValueError):
    """An endpoint spec (or another input) broke a rule. ``errors`` names each field at fault."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid input")

    @classmethod
    def from_validation_error(cls, exc: Any, prefix: str = "") -> InvalidSpec:
        """Build from a pydantic ValidationError without ever echoing the input values."""
        errors = []
        for err in exc.errors(include_input=False, include_url=False):
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
            errors.append(
                {
                    "field": f"{prefix}{loc}" if loc else (prefix.rstrip(".") or "spec"),
                    "message": str(err.get("msg", "invalid")).removeprefix("Value error, "),
                }
            )
        return cls(errors)


class InvalidSettings(CognigyWebhooksError, ValueError):
    """An environment variable broke a rule. ``errors`` names each variable at fault."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['variable']}: {e['message']}" for e in errors))


# --- Cognigy REST API ---------------------------------------------------------------------------


class CognigyError(CognigyWebhooksError):
    """Any failure talking to Cognigy's REST API."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        self.status_code = status_code
        super().__init__(message)


class CognigyThrottled(CognigyError):
    """429: wait ``retry_after`` seconds (None when the server gave no usable Retry-After)."""

    def __init__(self, message: str, *, retry_after: float | None = None, status_code: int = 429) -> None:
        self.retry_after = retry_after
        super().__init__(message, status_code=status_code)


class CognigyUnavailable(CognigyError):
    """Transient: 5xx (but 501/511), 408, a network error or a timeout. Safe to retry (reads) or to
    re-check before retrying (writes).

    ``maybe_applied`` is True when the request may have reached Cognigy and taken effect although no
    usable answer came back (a 5xx, a read timeout, a reset after sending): a create that failed so
    must be looked up by name before it is sent again. False when it surely was not sent (connect
    failure) or the server says it never read it (408).
    """

    def __init__(self, message: str, *, status_code: int | None = None, maybe_applied: bool = False) -> None:
        self.maybe_applied = maybe_applied
        super().__init__(message, status_code=status_code)


class CognigyAuthError(CognigyError):
    """401: the API key is missing or invalid."""


class CognigyForbidden(CognigyError):
    """403: the API key lacks the needed permission (webhooks:write for changes)."""


class CognigyRejected(CognigyError):
    """422 or another 4xx: the request broke Cognigy's rules. ``field_errors`` as the server sent them."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        field_errors: list[dict[str, Any]] | None = None,
    ) -> None:
        self.field_errors = field_errors or []
        super().__init__(message, status_code=status_code)


class CognigyNotFound(CognigyRejected):
    """404 on a webhook id."""


# --- reconcile ------------------------------------------------------------------------------------


class EndpointClaimed(CognigyWebhooksError):
    """Another execution holds this endpoint's create claim: it is looking the name up in Cognigy and
    creating, adopting or removing its webhooks right now. Retryable (the ASL retries it with backoff
    and jitter): the next attempt finds the record that execution wrote, with the webhook id, and
    updates or leaves it. The claim is a lease, so a holder that died frees it when the lease ends."""
