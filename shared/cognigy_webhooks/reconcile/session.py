"""The reconcile tasks' way to Cognigy, built once from the settings: API key, shared limiter, client.

The plan task (its one listing) and the register task talk to Cognigy the same way, so one
:meth:`CognigySession.from_settings` builds it from the register function's settings
(:class:`CognigyAccess`: the variables both functions share):

- the API key is read from Secrets Manager (cached for ``SECRET_MAX_AGE_SECONDS``; ``force`` reads
  past the cache), as are the endpoints' secrets (always fresh: :meth:`CognigySession.fresh_secret`);
- every request is paced by the DynamoDB rate limiter shared by every concurrent Lambda, one bucket
  per API key, named by :func:`limiter_bucket` (a fingerprint, never the key);
- the client trusts ``COGNIGY_CA_BUNDLE`` when it is set (the local stack's CA), else the public roots;
- the client speaks ``COGNIGY_API``'s dialect: :class:`~cognigy_webhooks.cognigy.CognigyEndpointsClient`
  (Cognigy.AI's Endpoints under ``COGNIGY_API_PREFIX``) or the tutorial's
  :class:`~cognigy_webhooks.cognigy.CognigyClient`.

:meth:`CognigySession.open` yields a :class:`Connection` (the client and the limiter) for one
invocation; :meth:`CognigySession.with_rotated_key` runs work with the (possibly cached) key and,
on a 401, once more with a fresh read when the key changed (:func:`with_rotated_key`); a key refused
is remembered (its fingerprint, for :data:`REFUSED_KEY_SECONDS`) so the process's next tasks fail
without asking Cognigy again. The session holds no secret itself: keys are read per invocation and
never logged.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from cognigy_webhooks.cognigy import CognigyClient, CognigyEndpointsClient
from cognigy_webhooks.dal.secretsmanager import SecretResolver
from cognigy_webhooks.errors import CognigyAuthError
from cognigy_webhooks.ratelimit import DynamoRateLimiter

__all__ = [
    "CognigyAccess",
    "CognigySession",
    "Connection",
    "SecretSource",
    "limiter_bucket",
    "with_rotated_key",
]

T = TypeVar("T")


class CognigyAccess(Protocol):
    """The settings a session is built from (:class:`cognigy_webhooks.settings.RegisterSettings`)."""

    @property
    def cognigy_api(self) -> str: ...
    @property
    def cognigy_api_prefix(self) -> str: ...
    @property
    def cognigy_base_url(self) -> str: ...
    @property
    def cognigy_api_key_secret(self) -> str: ...
    @property
    def cognigy_ca_bundle(self) -> str: ...
    @property
    def rate_limit_table(self) -> str: ...
    @property
    def requests_per_minute(self) -> float: ...
    @property
    def burst(self) -> int: ...
    @property
    def secret_max_age(self) -> int: ...


class SecretSource(Protocol):
    """Reads a secret by id (:class:`cognigy_webhooks.dal.secretsmanager.SecretResolver`)."""

    def get(self, secret_id: str, *, force: bool = False) -> str: ...


def limiter_bucket(api_key: str) -> str:
    """The shared rate-limit bucket of one Cognigy API key (a fingerprint, never the key)."""
    return "cognigy:" + hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:16]


#: How long a process remembers that Cognigy refused a key (401) for one scope (a reconcile
#: execution): its next tasks of that scope fail at once, without asking Cognigy again, unless the
#: key was rotated meanwhile. Another execution asks again.
REFUSED_KEY_SECONDS = 300.0
_MAX_REFUSALS = 256
_refused: dict[tuple[str, str], float] = {}  # (scope, key fingerprint) -> when (monotonic); never the key


def _fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _refused_since(scope: str | None, key: str, now: float) -> float | None:
    if scope is None:
        return None
    when = _refused.get((scope, _fingerprint(key)))
    return when if when is not None and now - when < REFUSED_KEY_SECONDS else None


def _remember_refused(scope: str | None, key: str, now: float) -> None:
    if scope is None:
        return
    if len(_refused) >= _MAX_REFUSALS:
        _refused.pop(next(iter(_refused)))
    _refused[(scope, _fingerprint(key))] = now


async def with_rotated_key(
    read_key: Callable[[bool], str],
    run: Callable[[str], Awaitable[T]],
    *,
    scope: str | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run with the (possibly cached) Cognigy API key; on a 401, re-read it once past the cache and run
    again only when it changed (a rotation the cache had not seen). The same key refused is final;
    with a ``scope`` (the reconcile execution's id) it is remembered for :data:`REFUSED_KEY_SECONDS`:
    while it is, a task of that scope with that key fails at once with :class:`CognigyAuthError`
    and makes no request (a refused key stops a run of thousands of endpoints after about one 401
    per concurrent task, not one per endpoint), unless a fresh read finds the key rotated."""
    key = read_key(False)
    if _refused_since(scope, key, clock()) is not None:
        fresh = read_key(True)
        if fresh == key or _refused_since(scope, fresh, clock()) is not None:
            raise CognigyAuthError(
                "the Cognigy API key was refused (HTTP 401) by an earlier request of this process and "
                "has not been rotated since: not asked again; put a valid key in the secret",
                status_code=401,
            )
        key = fresh
    try:
        return await run(key)
    except CognigyAuthError:
        fresh = read_key(True)
        if fresh == key:
            _remember_refused(scope, key, clock())
            raise
        try:
            return await run(fresh)
        except CognigyAuthError:
            _remember_refused(scope, fresh, clock())
            raise


@dataclass(frozen=True)
class Connection:
    """One invocation's way to Cognigy: the client and the shared limiter of its key."""

    api: CognigyClient | CognigyEndpointsClient
    limiter: DynamoRateLimiter


class CognigySession:
    """Builds the Cognigy client, the shared DynamoDB rate limiter and the API key from the settings;
    ``dynamodb`` is a boto3 DynamoDB client, ``secrets`` reads Secrets Manager."""

    def __init__(self, settings: CognigyAccess, *, dynamodb: Any, secrets: SecretSource) -> None:
        self._settings = settings
        self._dynamodb = dynamodb
        self._secrets = secrets

    @classmethod
    def from_settings(cls, settings: CognigyAccess, *, dynamodb: Any) -> CognigySession:
        """The session a task's settings describe, reading secrets through Secrets Manager (cached
        for ``SECRET_MAX_AGE_SECONDS``)."""
        return cls(settings, dynamodb=dynamodb, secrets=SecretResolver(max_age=settings.secret_max_age))

    def __repr__(self) -> str:
        return f"CognigySession(base_url={self._settings.cognigy_base_url!r})"

    @property
    def dialect(self) -> str:
        """``endpoints`` (Cognigy.AI) or ``tutorial``: the API this session's clients speak."""
        return self._settings.cognigy_api

    def api_key(self, *, force: bool = False) -> str:
        """The Cognigy API key (cached by the resolver; ``force`` reads past the cache)."""
        return self._secrets.get(self._settings.cognigy_api_key_secret, force=force)

    def fresh_secret(self, secret_id: str) -> str:
        """A secret read past the cache: an endpoint's secret rotated behind the same ARN must reach
        Cognigy now, not when the cache expires."""
        return self._secrets.get(secret_id, force=True)

    def limiter(self, api_key: str) -> DynamoRateLimiter:
        """The request budget shared by every Lambda that uses ``api_key``."""
        settings = self._settings
        return DynamoRateLimiter(
            self._dynamodb,
            table=settings.rate_limit_table,
            bucket=limiter_bucket(api_key),
            rate_per_minute=settings.requests_per_minute,
            burst=settings.burst,
        )

    @asynccontextmanager
    async def open(self, api_key: str | None = None, *, paced: bool = False) -> AsyncIterator[Connection]:
        """A client for one invocation (closed on exit), with the key given or read now. ``paced``:
        the client takes a token from the limiter before each request itself (the plan's listing);
        else the caller takes them (the register task asks for each call's tokens up front)."""
        key = self.api_key() if api_key is None else api_key
        limiter = self.limiter(key)
        settings = self._settings
        verify: bool | str = settings.cognigy_ca_bundle or True
        pace = limiter if paced else None
        api: CognigyClient | CognigyEndpointsClient
        if settings.cognigy_api == "endpoints":
            api = CognigyEndpointsClient(
                key,
                settings.cognigy_base_url,
                prefix=settings.cognigy_api_prefix,
                verify=verify,
                limiter=pace,
            )
        else:
            api = CognigyClient(key, settings.cognigy_base_url, verify=verify, limiter=pace)
        async with api:
            yield Connection(api=api, limiter=limiter)

    async def with_rotated_key(
        self, work: Callable[[Connection], Awaitable[T]], *, scope: str | None = None
    ) -> T:
        """``work`` on a connection opened with the API key; on a 401, once more with a fresh read
        of the key when it changed; a refusal remembered within ``scope`` (see :func:`with_rotated_key`)."""

        async def run(api_key: str) -> T:
            async with self.open(api_key) as connection:
                return await work(connection)

        return await with_rotated_key(lambda force: self.api_key(force=force), run, scope=scope)
