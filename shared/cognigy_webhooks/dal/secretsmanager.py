"""THE module that talks to Secrets Manager: secrets stored, read, and read across a rotation.

What in a spec is secret, and how it leaves the spec, is :mod:`cognigy_webhooks.secrets`'s to decide;
this module only moves values in and out of Secrets Manager:

- :func:`put_secret` creates or updates a secret by name (the CLI's ``put`` for
  :func:`cognigy_webhooks.secrets.move_spec_secrets`), named by :func:`secret_name` under
  ``cognigy-webhooks/<stack>/``, the prefix the functions' IAM policies allow;
- :class:`SecretResolver` reads one (the register, plan and audit sync tasks: the Cognigy API key,
  an endpoint's secrets, the monitoring token), cached for ``max_age`` seconds, ``force`` past the
  cache after a refusal that a fresh rotation may explain;
- :class:`SecretVersions` reads a secret's current *and* previous values (``AWSCURRENT`` and
  ``AWSPREVIOUS``: the receiver accepts both during a rotation), with a forced refresh at most once
  per ``refresh_seconds`` per secret so a flood of forgeries cannot become a flood of reads. A secret
  never rotated has no previous version (read as none, quietly); any other failure to read the
  previous version is logged as a warning naming the secret's ARN and the AWS error code (never a
  value) and the current version alone is used: a rotation then shows why the old secret stopped
  working.

Reads go through Powertools Parameters (imported on the first read, not at cold start). Errors name
the secret and the AWS error code, never the value: :class:`~cognigy_webhooks.errors.SecretStoreError`
(register side), :class:`~cognigy_webhooks.errors.SecretUnavailable` (the receiver).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cognigy_webhooks.dal.clients import LazyClients
from cognigy_webhooks.errors import SecretStoreError, SecretUnavailable, aws_error_code

__all__ = ["CURRENT", "PREVIOUS", "SecretResolver", "SecretVersions", "put_secret", "secret_name"]

CURRENT = "AWSCURRENT"
PREVIOUS = "AWSPREVIOUS"

_log = logging.getLogger("cognigy-webhooks")


def secret_name(stack_name: str, endpoint: str, kind: str) -> str:
    """Where a stack keeps an endpoint's secret of ``kind`` (``signature``, ``basic-auth``,
    ``header-<name>``): under the prefix the stack's IAM policies grant."""
    return f"cognigy-webhooks/{stack_name}/{endpoint}/{kind}"


def put_secret(client: Any, name: str, value: str, *, description: str = "") -> str:
    """Create or update a secret by name; returns its ARN. The value never appears in errors."""
    try:
        resp = client.create_secret(Name=name, SecretString=value, Description=description)
        return str(resp["ARN"])
    except ClientError as exc:
        if aws_error_code(exc) != "ResourceExistsException":
            raise SecretStoreError.from_aws(f"storing secret {name!r}", exc, secrets=[value]) from None
    except BotoCoreError as exc:
        raise SecretStoreError.from_aws(f"storing secret {name!r}", exc, secrets=[value]) from None
    try:
        current = client.get_secret_value(SecretId=name)
        if current.get("SecretString") != value:
            client.put_secret_value(SecretId=name, SecretString=value)
        return str(client.describe_secret(SecretId=name)["ARN"])
    except (ClientError, BotoCoreError) as exc:
        raise SecretStoreError.from_aws(f"storing secret {name!r}", exc, secrets=[value]) from None


class SecretResolver:
    """Secrets Manager through Powertools Parameters, cached for ``max_age`` seconds. ``force=True``
    re-fetches (to pick up a fresh rotation after a failure)."""

    def __init__(self, *, max_age: int = 300, client: Any = None) -> None:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        self.max_age = max_age
        self._provider = SecretsProvider(boto3_client=client) if client is not None else SecretsProvider()

    def get(self, secret_id: str, *, force: bool = False) -> str:
        try:
            value = self._provider.get(secret_id, max_age=self.max_age, force_fetch=force)
        except Exception as exc:  # Powertools wraps every boto3 failure in GetParameterError
            raise SecretStoreError.from_aws(f"reading secret {secret_id!r}", exc) from None
        if isinstance(value, bytes):
            return value.decode("utf-8")
        return str(value)

    def clear(self) -> None:
        self._provider.clear_cache()


def _staged_secrets_provider(client: Any) -> Any:
    """Powertools Parameters is imported on the first secret read, not at cold start (~6 ms)."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    class _StagedSecretsProvider(SecretsProvider):
        """Powertools' SecretsProvider keyed by ``"<stage>:<secret id>"``: its cache key is the name alone
        (it ignores the SDK options), so the version stage must be part of the name for AWSCURRENT and
        AWSPREVIOUS to be cached apart. A missing AWSPREVIOUS (never rotated) reads as ``""``."""

        fetches = 0  # Secrets Manager reads made (tests look)

        def _get(self, name: str, **sdk_options: Any) -> str | bytes:
            stage, _, secret_id = name.partition(":")
            self.fetches += 1
            try:
                resp = self.client.get_secret_value(SecretId=secret_id, VersionStage=stage)
            except ClientError as exc:
                if stage == PREVIOUS and aws_error_code(exc) == "ResourceNotFoundException":
                    return ""
                raise
            if "SecretString" in resp:
                return str(resp["SecretString"])
            return bytes(resp.get("SecretBinary") or b"")

    return _StagedSecretsProvider(boto3_client=client)


class SecretVersions:
    """A secret's current and previous values (Secrets Manager AWSCURRENT and AWSPREVIOUS) read
    through Powertools Parameters, the pair kept for ``max_age`` seconds (one lookup per delivery).
    Both are accepted during a rotation.

    :meth:`refresh` re-fetches past the cache (to pick up a rotation that just happened) at most once
    per ``refresh_seconds`` per secret, so a flood of forgeries cannot turn into a flood of Secrets
    Manager calls. A failure to read the previous version (other than its absence) is logged at most
    once per ``warn_seconds`` per secret (``log``: the service's logger by default), with how many
    were not logged since."""

    def __init__(
        self,
        clients: LazyClients,
        *,
        max_age: int = 300,
        refresh_seconds: float = 2.0,
        warn_seconds: float = 60.0,
        log: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clients = clients
        self.max_age = max_age
        self.refresh_seconds = refresh_seconds
        self.warn_seconds = warn_seconds
        self.log = log if log is not None else _log
        self._clock = clock
        self._provider: Any = None
        self._lock = threading.Lock()
        self._last_refresh: dict[str, float] = {}
        self._values: dict[str, tuple[float, tuple[str | bytes, ...]]] = {}  # secret -> (until, values)
        self._warned: dict[str, tuple[float, int]] = {}  # secret -> (last warning, failures not logged)

    def _get_provider(self) -> Any:
        if self._provider is None:
            with self._lock:
                if self._provider is None:
                    self._provider = _staged_secrets_provider(self._clients.get("secretsmanager"))
        return self._provider

    def get(self, secret_id: str, *, force: bool = False) -> tuple[str | bytes, ...]:
        """The usable values, current first. Raises :class:`SecretUnavailable` when the current
        version cannot be read; a previous version that cannot be read is left out, with a warning.
        Both versions are read together and kept together for ``max_age`` seconds (one lookup per
        delivery); ``force`` reads them again."""
        if not force:
            held = self._values.get(secret_id)
            if held is not None and self._clock() < held[0]:
                return held[1]
        until = self._clock() + self.max_age
        provider = self._get_provider()
        values: list[str | bytes] = []
        for stage in (CURRENT, PREVIOUS):
            key = f"{stage}:{secret_id}"
            try:
                value = provider.get(key, max_age=self.max_age, force_fetch=True)
            except Exception as exc:  # Powertools wraps every failure in GetParameterError (message not ours)
                if stage == CURRENT:
                    raise SecretUnavailable(
                        f"reading secret {secret_id!r} failed: {aws_error_code(exc)}",
                        code=aws_error_code(exc),
                    ) from None
                self._previous_failed(secret_id, exc)
                continue
            if isinstance(value, str | bytes) and value:
                values.append(value)
        found = tuple(values)
        self._values[secret_id] = (until, found)
        return found

    def _previous_failed(self, secret_id: str, exc: BaseException) -> None:
        now = self._clock()
        with self._lock:
            last, unlogged = self._warned.get(secret_id, (None, 0))
            if last is not None and now - last < self.warn_seconds:
                self._warned[secret_id] = (last, unlogged + 1)
                return
            self._warned[secret_id] = (now, 0)
        try:
            self.log.warning(
                "the previous version of a secret could not be read: only its current version is "
                "accepted (deliveries signed with the previous one are refused during a rotation)",
                extra={"secretArn": secret_id, "error": aws_error_code(exc), "notLoggedSince": unlogged},
            )
        except Exception:  # a log that fails must not cost the delivery its answer
            return

    @property
    def fetches(self) -> int:
        """Secrets Manager reads made so far (tests look)."""
        return 0 if self._provider is None else int(self._provider.fetches)

    def refresh(self, secret_id: str) -> tuple[str | bytes, ...] | None:
        """Re-fetch past the cache, or None when this secret was re-fetched too recently."""
        now = self._clock()
        with self._lock:
            last = self._last_refresh.get(secret_id)
            if last is not None and now - last < self.refresh_seconds:
                return None
            self._last_refresh[secret_id] = now
        return self.get(secret_id, force=True)

    def clear(self) -> None:
        with self._lock:
            self._last_refresh.clear()
            self._warned.clear()
            self._values.clear()
            if self._provider is not None:
                self._provider.clear_cache()
