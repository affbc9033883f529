"""Each function's environment as a model, checked at cold start (logic never reads os.environ)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cognigy_webhooks.errors import InvalidSpec


class _Env(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Read the environment; a missing or bad variable raises InvalidSpec naming it."""
        try:
            return cls.model_validate(dict(os.environ if environ is None else environ))
        except ValidationError as exc:
            raise InvalidSpec.from_validation_error(exc) from None


class StackTables(_Env):
    endpoints_table: Annotated[str, Field(alias="ENDPOINTS_TABLE", min_length=3)]
    audit_table: Annotated[str, Field(alias="AUDIT_TABLE", min_length=3)]


class PlanSettings(StackTables):
    config_bucket: Annotated[str, Field(alias="CONFIG_BUCKET", min_length=3)]


class RegisterSettings(StackTables):
    rate_limit_table: Annotated[str, Field(alias="RATE_LIMIT_TABLE", min_length=3)]
    cognigy_base_url: Annotated[str, Field(alias="COGNIGY_BASE_URL", pattern=r"^https?://")]
    cognigy_api_key_secret: Annotated[str, Field(alias="COGNIGY_API_KEY_SECRET", min_length=1)]
    cognigy_ca_bundle: Annotated[str, Field(alias="COGNIGY_CA_BUNDLE")] = ""
    requests_per_minute: Annotated[float, Field(alias="COGNIGY_REQUESTS_PER_MINUTE", gt=0)] = 60
    burst: Annotated[int, Field(alias="COGNIGY_BURST", ge=1)] = 10
    audit_retention_days: Annotated[int, Field(alias="AUDIT_RETENTION_DAYS", ge=1)] = 400
    secret_max_age: Annotated[int, Field(alias="SECRET_MAX_AGE_SECONDS", ge=0)] = 300


class DeployTriggerSettings(_Env):
    config_bucket: Annotated[str, Field(alias="CONFIG_BUCKET", min_length=3)]
    state_machine_arn: Annotated[str, Field(alias="RECONCILE_STATE_MACHINE_ARN", min_length=3)]


class AuditSyncSettings(_Env):
    """The audit_sync function: the audit table's stream -> the user's monitoring platform.

    ``MONITORING_URL`` is where audit events are POSTed: no user-info in it (the token comes from
    ``MONITORING_TOKEN_SECRET``, a Secrets Manager ARN or name, "" for none), and https whenever a token
    is sent (http only to a loopback host). ``MONITORING_CA_BUNDLE`` (optional: the local stack's CA)
    replaces the public roots. The rest bound one invocation's effort: the stream's own retries,
    bisection and OnFailure queue do the rest, so a few attempts with short waits are enough here.
    """

    monitoring_url: Annotated[str, Field(alias="MONITORING_URL", pattern=r"^https?://\S+$", max_length=2048)]
    monitoring_token_secret: Annotated[str, Field(alias="MONITORING_TOKEN_SECRET", max_length=2048)] = ""
    monitoring_ca_bundle: Annotated[str, Field(alias="MONITORING_CA_BUNDLE")] = ""
    batch_size: Annotated[int, Field(alias="MONITORING_BATCH_SIZE", ge=1, le=10_000)] = 100
    max_attempts: Annotated[int, Field(alias="MONITORING_MAX_ATTEMPTS", ge=1, le=10)] = 3
    base_delay: Annotated[float, Field(alias="MONITORING_BASE_DELAY_SECONDS", ge=0, le=30)] = 0.5
    max_delay: Annotated[float, Field(alias="MONITORING_MAX_DELAY_SECONDS", ge=0, le=60)] = 10.0
    timeout: Annotated[float, Field(alias="MONITORING_TIMEOUT_SECONDS", gt=0, le=120)] = 10.0
    secret_max_age: Annotated[int, Field(alias="SECRET_MAX_AGE_SECONDS", ge=0)] = 300

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        settings = super().from_env(environ)
        problems = settings._problems()
        if problems:
            raise InvalidSpec([{"field": field, "message": message} for field, message in problems])
        return settings

    def _problems(self) -> list[tuple[str, str]]:
        import ipaddress
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(self.monitoring_url)
            _ = parts.port
        except ValueError:
            return [("MONITORING_URL", "is not a valid URL")]
        host = parts.hostname or ""
        problems: list[tuple[str, str]] = []
        if not host:
            problems.append(("MONITORING_URL", "needs a host"))
        if parts.username is not None or parts.password is not None:
            problems.append(
                ("MONITORING_URL", "must not carry credentials: put the token in MONITORING_TOKEN_SECRET")
            )
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if self.monitoring_token_secret and parts.scheme == "http" and not loopback:
            problems.append(("MONITORING_URL", "must be https when MONITORING_TOKEN_SECRET is set"))
        if self.base_delay > self.max_delay:
            problems.append(("MONITORING_BASE_DELAY_SECONDS", "must not exceed MONITORING_MAX_DELAY_SECONDS"))
        return problems
