"""The tutorial's API: its registration flows, kept under their names and signatures, with its bugs fixed.

These are thin adapters over the one registration engine,
:class:`cognigy_webhooks.reconcile.adopt.Placement` in its ``create`` mode, which alone decides when
to look a name up before creating, what to adopt and what a 409 means. What this module adds is the
tutorial's shape around it: a retry loop with backoff, a paced batch, its result type.

- :func:`register_webhook_with_retry` succeeds on any 2xx; retries only transient failures, with
  exponential backoff and full jitter (:mod:`cognigy_webhooks.backoff`); honours ``Retry-After``
  (with a little jitter); and never re-sends a create whose answer was lost (the engine looks the
  webhook up by name first and adopts it), so a timeout or a reset cannot make a duplicate.
- :func:`process_registration_jobs` registers a batch with bounded concurrency, paced by one shared
  token bucket so the whole batch stays inside the API key's request budget instead of firing
  everything at once and collecting 429s. One failure never stops the others. Its retry settings
  travel as one :class:`~cognigy_webhooks.backoff.Backoff` (``retry=``), its pacing as one
  :class:`Pacing` (``pacing=``); the tutorial's separate keyword parameters still work (not both).
- :func:`configure_timeout_pipeline` turns an endpoint's ``timeoutMs`` into httpx timeouts.
- :class:`RegistrationResult` is the batch's result per endpoint, mapped from the engine's
  :class:`~cognigy_webhooks.reconcile.adopt.Placed` (or from the error).

These are the library's convenience flows (scripts, the CLI, the demo). Inside the Lambda path there
is no retry loop: Step Functions retries on the typed errors instead.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic.alias_generators import to_camel

from cognigy_webhooks.backoff import Backoff, Sleep
from cognigy_webhooks.cognigy import DEFAULT_BASE_URL, CognigyClient, Verify
from cognigy_webhooks.errors import (
    CognigyError,
    CognigyRejected,
    CognigyThrottled,
    CognigyUnavailable,
    InvalidSpec,
)
from cognigy_webhooks.models import WebhookEndpoint, parse_endpoint
from cognigy_webhooks.observability import logger
from cognigy_webhooks.ratelimit import RateLimiter, TokenBucket
from cognigy_webhooks.reconcile.adopt import Known, Placed, Placement
from cognigy_webhooks.secrets import scrub

__all__ = [
    "Pacing",
    "RegistrationResult",
    "configure_timeout_pipeline",
    "process_registration_jobs",
    "register_webhook_with_retry",
]

# Connecting never gets more than this, however long the endpoint's overall timeout.
MAX_CONNECT_TIMEOUT_S = 10.0
# The tutorial's retry defaults (register_webhook_with_retry's and process_registration_jobs's).
TUTORIAL_RETRY = Backoff(max_attempts=5, base_delay=0.5, max_delay=30.0, sleep=asyncio.sleep)


def configure_timeout_pipeline(endpoint: WebhookEndpoint | int) -> httpx.Timeout:
    """httpx timeouts for calling an endpoint the way Cognigy will, from its ``timeoutMs``.

    ``endpoint`` is a :class:`WebhookEndpoint` or a ``timeoutMs`` value (1000-30000). With
    ``total = timeoutMs / 1000`` seconds:

    - ``connect = min(10 s, total)``: TCP + TLS handshake,
    - ``read = total``: the longest wait for any chunk of the answer,
    - ``write = total``: the longest wait to send a chunk of the body,
    - ``pool = min(10 s, total)``: the longest wait for a free pooled connection.

    httpx timeouts bound each phase, not the whole exchange; wrap a call in ``asyncio.timeout``
    when a hard overall deadline is needed.
    """
    timeout_ms = endpoint.timeout_ms if isinstance(endpoint, WebhookEndpoint) else endpoint
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or not 1000 <= timeout_ms <= 30000:
        raise InvalidSpec([{"field": "timeoutMs", "message": "must be an integer from 1000 to 30000"}])
    total = timeout_ms / 1000.0
    first = min(MAX_CONNECT_TIMEOUT_S, total)
    return httpx.Timeout(connect=first, read=total, write=total, pool=first)


# --- one endpoint ---------------------------------------------------------------------------------


P = TypeVar("P", Backoff, "Pacing")


def _one_form(policy: P | None, given: P, default: P, keywords: str) -> P:
    """``policy`` when given, else the one the separate keyword parameters make (``given``); both
    (a keyword away from its ``default``) is a ``ValueError``."""
    if policy is None:
        return given
    if given != default:
        raise ValueError(
            f"give {type(policy).__name__.lower()} settings as one value or as {keywords}, not both"
        )
    return policy


def _retry_policy(retry: Backoff | None, given: Backoff) -> Backoff:
    return _one_form(retry, given, TUTORIAL_RETRY, "max_attempts/base_delay/max_delay/sleep/rng")


def _retry_after_jitter(retry_after: float, rng: random.Random) -> float:
    """A small spread so throttled callers do not all come back in the same instant (<= 1 s)."""
    return rng.uniform(0.0, min(1.0, 0.1 + 0.1 * retry_after))


async def register_webhook_with_retry(
    client: httpx.AsyncClient | CognigyClient,
    endpoint: WebhookEndpoint,
    max_attempts: int = 5,
    *,
    base_delay: float = 0.5,
    max_delay: float = 30.0,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
    signature_secret: str | None = None,
    max_retry_after: float = 300.0,
    retry: Backoff | None = None,
) -> dict[str, Any]:
    """Create ``endpoint`` in Cognigy; return the webhook as Cognigy's JSON (camelCase, no secret).

    ``client`` is a :class:`CognigyClient` or an ``httpx.AsyncClient`` from
    :func:`~cognigy_webhooks.cognigy.create_cognigy_client`. Up to ``max_attempts`` attempts:

    - the happy path is exactly one API call (the ``POST``);
    - :class:`CognigyUnavailable` is retried after ``base_delay * 2**n`` seconds with full jitter,
      capped at ``max_delay``;
    - :class:`CognigyThrottled` waits the server's ``Retry-After`` plus at most 1 s of jitter (the
      backoff when none was given); a ``Retry-After`` above ``max_retry_after`` is raised instead;
    - a create whose answer was lost (``maybe_applied``: a timeout, a reset, a 5xx) is never sent
      blindly again: the next attempt first looks the name up and adopts what it finds. A 409
      (name taken) after such a loss is the same webhook and is adopted too;
    - :class:`CognigyAuthError`, :class:`CognigyForbidden` and :class:`CognigyRejected` are raised at
      once. After the last attempt the last error is raised.

    ``sleep`` and ``rng`` are injectable (tests record the waits instead of sleeping). ``retry``
    gives all five retry settings as one :class:`~cognigy_webhooks.backoff.Backoff` instead.
    """
    policy = _retry_policy(retry, Backoff(max_attempts, base_delay, max_delay, sleep, rng))
    cognigy = client if isinstance(client, CognigyClient) else CognigyClient(client=client)
    placed = await _place(
        cognigy, endpoint, policy, signature_secret=signature_secret, max_retry_after=max_retry_after
    )
    return _webhook_json(placed)


def _webhook_json(placed: Placed) -> dict[str, Any]:
    """The webhook the engine created or adopted, as Cognigy's JSON (create mode always has one)."""
    if placed.webhook is None:  # pragma: no cover - create mode always calls Cognigy
        raise AssertionError("the engine made no call")
    data: dict[str, Any] = placed.webhook.to_api_dict()
    return data


async def _place(
    cognigy: CognigyClient,
    endpoint: WebhookEndpoint,
    policy: Backoff,
    *,
    signature_secret: str | None,
    max_retry_after: float,
) -> Placed:
    """The engine's attempts (create mode), with the tutorial's waits in between."""
    if policy.max_attempts < 1:
        raise ValueError("max_attempts must be >= 1")
    rng = policy.rng or random.Random()
    policy = replace(policy, rng=rng)  # the backoff and the Retry-After jitter draw from one source
    placement = Placement(cognigy, endpoint, known=Known(mode="create"), secret=signature_secret)
    for attempt in range(1, policy.max_attempts + 1):
        try:
            return await placement.attempt()
        except (CognigyUnavailable, CognigyThrottled, CognigyRejected) as exc:
            placement.failed(exc)
            delay = _wait(exc, attempt, policy, rng, max_retry_after, placement)
            if delay is None or attempt == policy.max_attempts:
                raise
            error: CognigyError = exc
        logger.warning(
            "cognigy call failed; will retry",
            extra={
                "endpoint": endpoint.name,
                "attempt": attempt,
                "error": type(error).__name__,
                "status_code": error.status_code,
                "delay_s": round(delay, 3),
            },
        )
        if delay > 0:
            await policy.sleeper(asyncio.sleep)(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _wait(
    exc: CognigyError,
    attempt: int,
    policy: Backoff,
    rng: random.Random,
    max_retry_after: float,
    placement: Placement,
) -> float | None:
    """Seconds to wait before the next attempt after ``exc``; None when ``exc`` is final."""
    if isinstance(exc, CognigyUnavailable):
        return policy.delay(attempt)
    if isinstance(exc, CognigyThrottled):
        if exc.retry_after is None:
            return policy.delay(attempt)
        if exc.retry_after > max_retry_after:
            return None
        return exc.retry_after + _retry_after_jitter(exc.retry_after, rng)
    # a 409 the engine could not settle yet (the listing did not show the holder): look again now
    return 0.0 if placement.conflict_pending(exc) else None


# --- a batch --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pacing:
    """How a batch paces its requests: one token bucket of ``requests_per_minute`` with ``burst``,
    ``delay_tolerance`` seconds' worth of it held back (see :func:`process_registration_jobs`), or
    ``limiter`` to share a budget beyond the batch (used as is)."""

    requests_per_minute: float = 60
    burst: int = 10
    delay_tolerance: float = 0.1
    limiter: RateLimiter | None = None

    def batch_limiter(self) -> RateLimiter:
        """The limiter every request of the batch waits on."""
        if self.limiter is not None:
            return self.limiter
        if not self.delay_tolerance >= 0:
            raise ValueError("delay_tolerance must be >= 0 seconds")
        held_back = min(self.burst - 1, math.ceil(self.delay_tolerance * self.requests_per_minute / 60.0))
        return TokenBucket(self.requests_per_minute, self.burst - max(0, held_back))


class RegistrationResult(BaseModel):
    """The outcome for one endpoint of a batch (``model_dump(by_alias=True)`` for camelCase JSON).

    ``status`` is ``registered`` or ``failed``; on failure ``error_type`` is the typed error's class
    name (e.g. ``CognigyRejected``, ``InvalidSpec``), ``error_message`` says what happened (never a
    secret), ``field_errors`` lists the fields at fault when the server or the spec named them.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    name: str
    success: bool
    status: Literal["registered", "failed"]
    webhook_id: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    status_code: int | None = None
    field_errors: list[dict[str, Any]] = Field(default_factory=list)


def _registered(name: str, placed: Placed) -> RegistrationResult:
    """The engine's outcome as the tutorial reports it: created or adopted, the name is registered
    under that webhook."""
    return RegistrationResult(name=name, success=True, status="registered", webhook_id=placed.webhook_id)


def _failed(name: str, exc: Exception, secrets: Sequence[str]) -> RegistrationResult:
    """A failed result whose text is scrubbed of ``secrets`` in every form (the client scrubs what
    Cognigy said already; this covers whatever else raised)."""
    message = scrub(str(exc), secrets)
    field_errors: list[dict[str, Any]] = []
    if isinstance(exc, CognigyRejected):
        field_errors = list(exc.field_errors)
    elif isinstance(exc, InvalidSpec):
        field_errors = list(exc.errors)
    field_errors = [
        {k: scrub(v, secrets) if isinstance(v, str) else v for k, v in error.items()}
        for error in field_errors
    ]
    return RegistrationResult(
        name=name,
        success=False,
        status="failed",
        error_type=type(exc).__name__,
        error_message=message,
        status_code=getattr(exc, "status_code", None),
        field_errors=field_errors,
    )


def _spec_secrets(spec: WebhookEndpoint | Mapping[str, Any]) -> list[str]:
    """The secret values an endpoint carries (signature secret, non-public header values)."""
    if not isinstance(spec, WebhookEndpoint):
        try:
            spec = parse_endpoint(spec)
        except InvalidSpec:
            return []
    found = [spec.signature_secret.get_secret_value()] if spec.signature_secret is not None else []
    found.extend(v for k, v in spec.headers.items() if not spec.is_public_header(k))
    return found


def _spec_name(spec: WebhookEndpoint | Mapping[str, Any], index: int) -> str:
    if isinstance(spec, WebhookEndpoint):
        return spec.name
    name = spec.get("name") if isinstance(spec, Mapping) else None
    return name if isinstance(name, str) and name else f"#{index}"


def _pacing_policy(pacing: Pacing | None, given: Pacing) -> Pacing:
    return _one_form(pacing, given, Pacing(), "requests_per_minute/burst/delay_tolerance/limiter")


async def process_registration_jobs(
    endpoints: Sequence[WebhookEndpoint | Mapping[str, Any]],
    api_key: str | SecretStr | None = None,
    *,
    client: CognigyClient | httpx.AsyncClient | None = None,
    base_url: str = DEFAULT_BASE_URL,
    verify: Verify = True,
    max_concurrency: int = 10,
    requests_per_minute: float = 60,
    burst: int = 10,
    delay_tolerance: float = 0.1,
    limiter: RateLimiter | None = None,
    max_attempts: int = 5,
    base_delay: float = 0.5,
    max_delay: float = 30.0,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
    retry: Backoff | None = None,
    pacing: Pacing | None = None,
) -> list[RegistrationResult]:
    """Register every endpoint; one :class:`RegistrationResult` per endpoint, in input order.

    At most ``max_concurrency`` registrations run at once, and every request (retries and
    look-ups included) first takes a token from one shared token bucket refilled at
    ``requests_per_minute``, so the batch never exceeds Cognigy's budget of that rate with ``burst``.

    Cognigy counts requests when they arrive, we when they leave; if an early request is delayed
    more than a later one, a batch sent exactly at the budget arrives slightly over it (a 429 and a
    whole second of Retry-After). So ``delay_tolerance`` seconds' worth of tokens (at most
    ``burst - 1``) are held back from the burst: arrival jitter up to that much is absorbed, at the
    cost of starting the batch a little less eagerly. Pass ``limiter`` to share a budget beyond this
    batch instead (e.g. across Lambdas; then it is used as is). ``sleep`` is used for retry waits
    only; the pacing always runs on the real clock.

    ``retry`` (a :class:`~cognigy_webhooks.backoff.Backoff`) and ``pacing`` (a :class:`Pacing`)
    carry the same settings as one value each, instead of ``max_attempts``/``base_delay``/
    ``max_delay``/``sleep``/``rng`` and ``requests_per_minute``/``burst``/``delay_tolerance``/
    ``limiter`` (give one form or the other: ``ValueError`` for both).

    Give ``api_key`` (with ``base_url`` and ``verify``), or an existing ``client``. Endpoints may be
    :class:`WebhookEndpoint` objects or plain mappings (validated here; an invalid one fails with
    ``InvalidSpec`` and its field errors). A failure never stops the other endpoints.
    """
    policy = _retry_policy(retry, Backoff(max_attempts, base_delay, max_delay, sleep, rng))
    paced = _pacing_policy(pacing, Pacing(requests_per_minute, burst, delay_tolerance, limiter))
    if max_concurrency < 1:
        raise ValueError("max_concurrency must be >= 1")
    bucket = paced.batch_limiter()
    if client is None:
        if api_key is None:
            raise ValueError("give api_key or client")
        cognigy = CognigyClient(api_key, base_url, verify=verify, limiter=bucket)
        owned: CognigyClient | None = cognigy
    elif isinstance(client, CognigyClient):
        cognigy, owned = client.with_limiter(bucket), None
    else:
        cognigy, owned = CognigyClient(api_key, base_url, client=client, limiter=bucket), None
    secrets = [api_key.get_secret_value() if isinstance(api_key, SecretStr) else (api_key or "")]
    gate = asyncio.Semaphore(max_concurrency)

    async def register_one(index: int, spec: WebhookEndpoint | Mapping[str, Any]) -> RegistrationResult:
        name = _spec_name(spec, index)
        async with gate:
            try:
                endpoint = spec if isinstance(spec, WebhookEndpoint) else parse_endpoint(spec)
                placed = await _place(cognigy, endpoint, policy, signature_secret=None, max_retry_after=300.0)
            except (CognigyError, InvalidSpec) as exc:
                logger.warning(
                    "registration failed",
                    extra={
                        "endpoint": name,
                        "error": type(exc).__name__,
                        "status_code": getattr(exc, "status_code", None),
                    },
                )
                return _failed(name, exc, [*secrets, *_spec_secrets(spec)])
            except Exception as exc:  # one endpoint's bug must not sink the batch
                logger.error(
                    "registration failed unexpectedly", extra={"endpoint": name, "error": type(exc).__name__}
                )
                return _failed(name, exc, [*secrets, *_spec_secrets(spec)])
        logger.info("webhook registered", extra={"endpoint": name, "webhook_id": placed.webhook_id})
        return _registered(name, placed)

    try:
        return list(await asyncio.gather(*(register_one(i, spec) for i, spec in enumerate(endpoints))))
    finally:
        if owned is not None:
            await owned.aclose()
