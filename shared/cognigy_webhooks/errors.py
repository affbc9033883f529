"""Every exception this library raises on purpose, in one module, each with its reason code.

For state machine tasks the class name is the contract: the ASL's Retry and Catch name these classes
(``CognigyUnavailable``, ``StoreError`` and ``RecordConflict`` are retried, ``EndpointClaimed`` with
more patience, ``CognigyThrottled`` is waited out, the rest are caught), and
``tests/integration/reconcile/test_asl_contract.py`` holds every ``ErrorEquals`` name to a class here
that the task's code raises.

Each class carries its machine reason code as the class attribute ``reason`` (``exc.reason``: what a
record's ``lastReason`` and an audit event's ``reason`` say), so no caller derives one from a class
name. Bad input of any kind is an :class:`InvalidInput` with ``errors`` naming each field at fault;
:class:`InvalidSpec` (an endpoint spec, a desired set, an execution input) is the one most handlers
catch, and the more precise :class:`InvalidStreamRecord` and :class:`InvalidProbeRequest` are kinds of
it, so those handlers still catch them.

AWS failures are wrapped as :class:`StoreError` (the register side) or :class:`DeliveryStoreError`
(the receiver) with :meth:`StoreError.from_aws`: the message keeps the AWS error code and AWS's own
message (:func:`aws_error_code`, :func:`describe_aws_error`), cut before anything that echoes a
parameter's value. No message here ever carries a secret.

Standard library only: the receiver imports this module at cold start.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Self

__all__ = [
    "AuditEventNotDelivered",
    "CognigyAmbiguousName",
    "CognigyAuthError",
    "CognigyError",
    "CognigyForbidden",
    "CognigyNotFound",
    "CognigyRejected",
    "CognigyThrottled",
    "CognigyUnavailable",
    "CognigyWebhooksError",
    "DeliveryStoreError",
    "EndpointClaimed",
    "InvalidInput",
    "InvalidProbeRequest",
    "InvalidSettings",
    "InvalidSpec",
    "InvalidStreamRecord",
    "NotFound",
    "RecordConflict",
    "SecretStoreError",
    "SecretUnavailable",
    "StoreError",
    "aws_error_code",
    "describe_aws_error",
    "reason_for_error_name",
]


class CognigyWebhooksError(Exception):
    """Base class of every error this library raises on purpose."""

    #: The machine reason code (snake_case), as records and audit events carry it. Every class
    #: defines its own.
    reason: ClassVar[str] = "cognigy_webhooks_error"


# --- bad input --------------------------------------------------------------------------------------


class InvalidInput(CognigyWebhooksError, ValueError):
    """Input broke a rule: an API request, a spec, an event, an argument. ``errors`` names each field
    at fault (``[{"field": ..., "message": ...}]``), never echoing a value."""

    reason: ClassVar[str] = "invalid_input"

    def __init__(self, errors: list[dict[str, str]], *, summary: str | None = None) -> None:
        self.errors = errors
        super().__init__(
            summary or "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid input"
        )

    @classmethod
    def from_validation_error(
        cls,
        exc: Any,
        prefix: str = "",
        *,
        data: Any = None,
        known_fields: Callable[[tuple[str | int, ...]], Iterable[str] | None] | None = None,
    ) -> Self:
        """Build from a pydantic ValidationError without ever echoing the input values.

        ``data`` (the input that was validated) lets the message for people name a list item by its
        ``name``: ``endpoints[orders-webhook].timeoutMs: ...``, not ``endpoints.0.timeoutMs`` (an item
        without a usable name keeps its index). Each error's ``field`` keeps the plain path
        (``endpoints.0.timeoutMs``, what an API client indexes with) and gains ``endpoint``: the name
        of the item it is in. ``known_fields(loc)`` gives the field names the mapping at ``loc``
        accepts (the model's aliases): an unknown field is then said with the nearest one
        (``timeoutMS`` -> "is not a known field: did you mean timeoutMs?")."""
        errors: list[dict[str, str]] = []
        said: list[str] = []
        for err in exc.errors(include_input=False, include_url=False):
            path = tuple(p for p in err.get("loc", ()) if p != "__root__")
            loc = ".".join(str(p) for p in path)
            named, item = _location(path, data)
            message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            if err.get("type") == "extra_forbidden" and path:
                message = "is not a known field"
                known = known_fields(path[:-1]) if known_fields is not None else None
                near = _nearest(str(path[-1]), known or ())
                if near is not None:
                    message += f": did you mean {near}?"
            error = {
                "field": f"{prefix}{loc}" if loc else (prefix.rstrip(".") or "spec"),
                "message": message,
            }
            if item is not None:
                error["endpoint"] = item
            errors.append(error)
            said.append(f"{prefix}{named}: {message}" if named else f"{error['field']}: {message}")
        return cls(errors, summary="; ".join(said) or None)


#: A list item is named in a location by its ``name`` when that is a short printable string.
_ITEM_NAME_RE = re.compile(r"[^\x00-\x1f\x7f\[\]]{1,100}")


def _location(path: tuple[Any, ...], data: Any) -> tuple[str, str | None]:
    """``path`` as text for people: ``a.b.0.c``, with each list item that has a usable ``name`` in
    ``data`` written ``a[that-name]`` instead of ``a.0``; and the first such name (None if none)."""
    text = ""
    first: str | None = None
    node = data
    for part in path:
        name = None
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            node = node[part]
            candidate = node.get("name") if isinstance(node, dict) else None
            if isinstance(candidate, str) and _ITEM_NAME_RE.fullmatch(candidate):
                name = candidate
        else:
            node = node.get(part) if isinstance(node, dict) else None
        if name is not None and text:
            text += f"[{name}]"
            first = first or name
        else:
            text += f".{part}" if text else str(part)
    return text, first


def _nearest(name: str, known: Iterable[str]) -> str | None:
    """The known field ``name`` was most likely meant to be (case first, then spelling), or None."""
    choices = [k for k in known if k != name]
    for choice in choices:
        if choice.lower() == name.lower():
            return choice
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return close[0] if close else None


class InvalidSpec(InvalidInput):
    """An endpoint spec, a desired set or a reconcile execution's input broke a rule."""

    reason: ClassVar[str] = "invalid_spec"


class InvalidStreamRecord(InvalidSpec):
    """A DynamoDB stream record (or event) that is not an audit event the sync can read. A kind of
    :class:`InvalidSpec` so the handlers that catch that keep catching it."""

    reason: ClassVar[str] = "invalid_stream_record"


class InvalidProbeRequest(InvalidSpec):
    """A probe's own arguments (its policy: timeouts, bounds, CA bundle; a bare URL given to probe) are
    not usable. An endpoint spec's URLs stay :class:`InvalidSpec`. A kind of :class:`InvalidSpec` so
    the handlers that catch that keep catching it."""

    reason: ClassVar[str] = "invalid_probe_request"


class NotFound(CognigyWebhooksError, LookupError):
    """What a request names does not exist: an endpoint record, an execution (the API answers 404,
    the command line exits 2). ``field`` names the argument that named it (``name``,
    ``executionId``); the message names the thing, never a secret."""

    reason: ClassVar[str] = "not_found"

    def __init__(self, message: str, *, field: str) -> None:
        self.field = field
        super().__init__(message)


class InvalidSettings(CognigyWebhooksError, ValueError):
    """An environment variable broke a rule. ``errors`` names each variable at fault."""

    reason: ClassVar[str] = "invalid_settings"

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['variable']}: {e['message']}" for e in errors))


# --- Cognigy REST API ---------------------------------------------------------------------------


class CognigyError(CognigyWebhooksError):
    """Any failure talking to Cognigy's REST API. ``trace_id``: the ``traceId`` of Cognigy's RFC 7807
    error body when it gave one (what Cognigy's support asks for; kept in the audit event);
    ``cognigy_code``: that body's ``code``, Cognigy's own error number (1002 not found, 1004 conflict,
    1005 invalid argument, 1008 internal)."""

    reason: ClassVar[str] = "cognigy_error"
    trace_id: str | None = None
    cognigy_code: int | None = None

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        self.status_code = status_code
        super().__init__(message)


class CognigyThrottled(CognigyError):
    """429: wait ``retry_after`` seconds (None when the server gave no usable Retry-After)."""

    reason: ClassVar[str] = "cognigy_throttled"

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

    reason: ClassVar[str] = "cognigy_unavailable"

    def __init__(self, message: str, *, status_code: int | None = None, maybe_applied: bool = False) -> None:
        self.maybe_applied = maybe_applied
        super().__init__(message, status_code=status_code)


class CognigyAuthError(CognigyError):
    """401: the API key is missing or invalid."""

    reason: ClassVar[str] = "cognigy_auth"


class CognigyForbidden(CognigyError):
    """403: the API key lacks the needed permission (webhooks:write for changes)."""

    reason: ClassVar[str] = "cognigy_forbidden"


class CognigyRejected(CognigyError):
    """422 or another 4xx: the request broke Cognigy's rules. ``field_errors`` as the server sent them."""

    reason: ClassVar[str] = "cognigy_rejected"

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

    reason: ClassVar[str] = "cognigy_not_found"


class CognigyAmbiguousName(CognigyRejected):
    """Several Cognigy endpoints of the project hold the name and none is recorded as ours: which one
    to adopt cannot be told (the endpoints dialect has nothing that marks an endpoint as ours). The
    user deletes or renames the others in Cognigy; nothing is changed meanwhile."""

    reason: ClassVar[str] = "cognigy_name_ambiguous"


# --- reconcile ------------------------------------------------------------------------------------


class EndpointClaimed(CognigyWebhooksError):
    """Another execution holds this endpoint's create claim: it is looking the name up in Cognigy and
    creating, adopting or removing its webhooks right now. Retryable (the ASL retries it with backoff
    and jitter): the next attempt finds the record that execution wrote, with the webhook id, and
    updates or leaves it. The claim is a lease, so a holder that died frees it when the lease ends."""

    reason: ClassVar[str] = "endpoint_claimed"


# --- AWS: the register side's stores ------------------------------------------------------------------


class StoreError(CognigyWebhooksError):
    """DynamoDB, S3, Step Functions or Secrets Manager refused or failed (transient: the state machine
    retries the task). ``code`` is the AWS error code when AWS gave one (or the failure's type name)."""

    reason: ClassVar[str] = "store_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        self.code = code
        super().__init__(message)

    @classmethod
    def from_aws(cls, what: str, exc: BaseException, *, secrets: Iterable[str] = ()) -> Self:
        """``<what> failed: <code>: <AWS's message>`` (see :func:`describe_aws_error`); ``secrets``
        are values the request carried, scrubbed from the message in every form."""
        return cls(f"{what} failed: {describe_aws_error(exc, secrets=secrets)}", code=aws_error_code(exc))


class RecordConflict(StoreError):
    """The record changed under us (another execution wrote it first, or holds its create claim).
    Safe to retry the task."""

    reason: ClassVar[str] = "record_conflict"


class SecretStoreError(StoreError):
    """A secret could not be read or written (names the secret, never carries the value)."""

    reason: ClassVar[str] = "secret_store_error"


# --- AWS: the receiver's stores ---------------------------------------------------------------------


class DeliveryStoreError(CognigyWebhooksError):
    """DynamoDB, EventBridge or Secrets Manager failed: transient, the receiver answers 503."""

    reason: ClassVar[str] = "delivery_store_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        self.code = code
        super().__init__(message)

    @classmethod
    def from_aws(cls, what: str, exc: BaseException, *, secrets: Iterable[str] = ()) -> Self:
        """As :meth:`StoreError.from_aws`."""
        return cls(f"{what} failed: {describe_aws_error(exc, secrets=secrets)}", code=aws_error_code(exc))


class SecretUnavailable(DeliveryStoreError):
    """A secret could not be read (the message names the secret's ARN, never its value)."""

    reason: ClassVar[str] = "secret_unavailable"


# --- the audit sync ---------------------------------------------------------------------------------


class AuditEventNotDelivered(CognigyWebhooksError):
    """A stream record whose audit event did not reach the platform (or could not be read). Raised
    for that record inside the batch processor, so it is reported as a batch item failure."""

    reason: ClassVar[str] = "audit_event_not_delivered"


# --- reasons and AWS failures, described ------------------------------------------------------------


def reason_for_error_name(name: str) -> str:
    """The reason code for an error *name* as the state machine reports it (``$.error.Error``): the
    class's own :attr:`~CognigyWebhooksError.reason` when it is a class of this module, else the name
    in snake_case (``States.Timeout`` -> ``states_timeout``)."""
    cls = globals().get(name)
    if isinstance(cls, type) and issubclass(cls, CognigyWebhooksError) and cls.__name__ == name:
        return cls.reason
    return _snake(name)


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name.replace(".", "_")):
        if ch.isupper() and i and name[i - 1].islower():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def _aws_failure(exc: BaseException) -> BaseException:
    """The botocore failure behind ``exc``: ``exc`` itself, or the one a wrapper (Powertools'
    GetParameterError) was raised while handling."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        if isinstance(getattr(current, "response", None), Mapping) or _is_botocore(current):
            return current
        current = current.__cause__ or current.__context__
        seen += 1
    return exc


def _is_botocore(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("botocore.")


def aws_error_code(exc: BaseException) -> str:
    """The AWS error code of a failed AWS call (``ConditionalCheckFailedException``, ``404``, ...),
    read from the botocore ``ClientError`` behind ``exc``; else the failure's type name
    (``EndpointConnectionError``). Never the message."""
    failure = _aws_failure(exc)
    response = getattr(failure, "response", None)
    if isinstance(response, Mapping):
        error = response.get("Error")
        code = error.get("Code") if isinstance(error, Mapping) else None
        return str(code) if code else "ClientError"
    return type(failure).__name__


#: Anything from here on may echo a request's parameter (botocore's ParamValidationError says
#: ``Invalid type for parameter Item.x.S, value: <the value>, type: ...``): it is cut off.
_VALUE_ECHO = re.compile(r"\bvalues?\s*[:=]", re.IGNORECASE)
_MAX_MESSAGE = 300


def describe_aws_error(exc: BaseException, *, secrets: Iterable[str] = ()) -> str:
    """``<code>`` or ``<code>: <message>``: the AWS error code and AWS's own message (a ClientError's
    ``Error.Message``; another botocore failure's text), on one line, at most 300 characters, cut
    before the first ``value:`` (where botocore echoes a parameter's value), with every form of each
    of ``secrets`` scrubbed. Never a value this library sent."""
    failure = _aws_failure(exc)
    code = aws_error_code(failure)
    response = getattr(failure, "response", None)
    if isinstance(response, Mapping):
        error = response.get("Error")
        message = error.get("Message") if isinstance(error, Mapping) else None
        text = str(message) if message else ""
    elif _is_botocore(failure):
        text = str(failure)
    else:
        text = ""
    echo = _VALUE_ECHO.search(text)
    if echo is not None:
        text = text[: echo.start()] + "(value not shown)"
    text = " ".join(text.split())
    values = [s for s in secrets if s]
    if values and text:
        from cognigy_webhooks.secrets import scrub  # only when there is something to scrub

        text = scrub(text, values)
    if len(text) > _MAX_MESSAGE:
        text = text[: _MAX_MESSAGE - 3] + "..."
    return f"{code}: {text}" if text and text != code else code
