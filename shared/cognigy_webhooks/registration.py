"""The tutorial's registration flows, kept under their names, with its bugs fixed.

- :func:`register_webhook_with_retry` succeeds on any 2xx; retries only transient failures, with
  exponential backoff and full jitter; honours ``Retry-After`` (with a little jitter); and never
  re-sends a create whose answer was lost (it looks the webhook up by name first and adopts it), so
  a timeout or a reset cannot make a duplicate.
- :func:`process_registration_jobs` registers a batch with bounded concurrency, paced by one shared
  token bucket so the whole batch stays inside the API key's request budget instead of firing
  everything at once and collecting 429s. One failure never stops the others.
- :func:`configure_timeout_pipeline` turns an endpoint's ``timeoutMs`` into httpx timeouts.

These are the library's convenience flows (scripts, the CLI, the demo). Inside the Lambda path there
is no retry loop: Step Functions retries on the typed errors instead.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic.alias_generators import to_camel

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
from cognigy_webhooks.secrets import scrub

__all__ = [
    "RegistrationResult",
    "configure_timeout_pipeline",
    "process_registration_jobs",
    "register_webhook_with_retry",
]

Sleep = Callable[[float], Awaitable[object]]

# Connecting never gets more than this, however long the endpoint's overall timeout.
MAX_CONNECT_TIMEOUT_S = 10.0


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


def _backoff(attempt: int, base_delay: float, max_delay: float, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(max_delay, base_delay * 2**(attempt-1))]."""
    return rng.uniform(0.0, min(max_delay, base_delay * (2 ** (attempt - 1))))


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

    ``sleep`` and ``rng`` are injectable (tests record the waits instead of sleeping).
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be >= 1")
    cognigy = client if isinstance(client, CognigyClient) else CognigyClient(client=client)
    rng = rng or random.Random()
    look_first = False  # the previous attempt may have created it: look before creating again
    maybe_created = False  # some create of ours may have been applied
    for attempt in range(1, max_attempts + 1):
        try:
            if look_first:
                existing = await cognigy.find_by_name(endpoint.name)
                if existing is not None:
                    logger.info(
                        "adopted the webhook a lost create made",
                        extra={"endpoint": endpoint.name, "webhook_id": existing.id, "attempt": attempt},
                    )
                    return existing.to_api_dict()
                look_first = False  # it is not there: creating is safe
            created = await cognigy.create_webhook(endpoint, signature_secret=signature_secret)
            return created.to_api_dict()
        except CognigyUnavailable as exc:
            if exc.maybe_applied:
                look_first = maybe_created = True
            error: CognigyError = exc
            delay = _backoff(attempt, base_delay, max_delay, rng)
        except CognigyThrottled as exc:
            error = exc
            if exc.retry_after is None:
                delay = _backoff(attempt, base_delay, max_delay, rng)
            elif exc.retry_after > max_retry_after:
                raise
            else:
                delay = exc.retry_after + _retry_after_jitter(exc.retry_after, rng)
        except CognigyRejected as exc:
            if exc.status_code == 409 and maybe_created:
                error, delay, look_first = exc, 0.0, True
            else:
                raise
        if attempt == max_attempts:
            raise error
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
            await sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


# --- a batch --------------------------------------------------------------------------------------


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

    Give ``api_key`` (with ``base_url`` and ``verify``), or an existing ``client``. Endpoints may be
    :class:`WebhookEndpoint` objects or plain mappings (validated here; an invalid one fails with
    ``InvalidSpec`` and its field errors). A failure never stops the other endpoints.
    """
    if max_concurrency < 1:
        raise ValueError("max_concurrency must be >= 1")
    if limiter is None:
        if not delay_tolerance >= 0:
            raise ValueError("delay_tolerance must be >= 0 seconds")
        held_back = min(burst - 1, math.ceil(delay_tolerance * requests_per_minute / 60.0))
        limiter = TokenBucket(requests_per_minute, burst - max(0, held_back))
    if client is None:
        if api_key is None:
            raise ValueError("give api_key or client")
        cognigy = CognigyClient(api_key, base_url, verify=verify, limiter=limiter)
        owned: CognigyClient | None = cognigy
    elif isinstance(client, CognigyClient):
        cognigy, owned = client.with_limiter(limiter), None
    else:
        cognigy, owned = CognigyClient(api_key, base_url, client=client, limiter=limiter), None
    secrets = [api_key.get_secret_value() if isinstance(api_key, SecretStr) else (api_key or "")]
    gate = asyncio.Semaphore(max_concurrency)

    async def register_one(index: int, spec: WebhookEndpoint | Mapping[str, Any]) -> RegistrationResult:
        name = _spec_name(spec, index)
        async with gate:
            try:
                endpoint = spec if isinstance(spec, WebhookEndpoint) else parse_endpoint(spec)
                webhook = await register_webhook_with_retry(
                    cognigy,
                    endpoint,
                    max_attempts,
                    base_delay=base_delay,
                    max_delay=max_delay,
                    sleep=sleep,
                    rng=rng,
                )
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
        logger.info("webhook registered", extra={"endpoint": name, "webhook_id": webhook.get("id")})
        return RegistrationResult(name=name, success=True, status="registered", webhook_id=webhook.get("id"))

    try:
        return list(await asyncio.gather(*(register_one(i, spec) for i, spec in enumerate(endpoints))))
    finally:
        if owned is not None:
            await owned.aclose()
