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
on a 401, once more with a fresh read when the key changed (:func:`with_rotated_key`). The session
holds no secret itself: keys are read per invocation and never logged.
"""

from __future__ import annotations

import hashlib
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


async def with_rotated_key(read_key: Callable[[bool], str], run: Callable[[str], Awaitable[T]]) -> T:
    """Run with the (possibly cached) Cognigy API key; on a 401, re-read it once past the cache and run
    again only when it changed (a rotation the cache had not seen). The same key refused is final."""
    key = read_key(False)
    try:
        return await run(key)
    except CognigyAuthError:
        fresh = read_key(True)
        if fresh == key:
            raise
        return await run(fresh)


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

    async def with_rotated_key(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """``work`` on a connection opened with the API key; on a 401, once more with a fresh read
        of the key when it changed (see :func:`with_rotated_key`)."""

        async def run(api_key: str) -> T:
            async with self.open(api_key) as connection:
                return await work(connection)

        return await with_rotated_key(lambda force: self.api_key(force=force), run)
