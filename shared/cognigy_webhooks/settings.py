"""Each function's environment as a pydantic model, checked once at cold start.

Logic never reads ``os.environ``: a handler builds its settings with ``XSettings.from_env()`` at import
time and hands plain values to the library. A bad value stops the cold start with
:class:`InvalidSettings` naming the variable (never echoing its value). An empty variable counts as
unset (SAM templates often pass ``""`` for an optional parameter).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cognigy_webhooks.errors import InvalidSettings


class _EnvSettings(BaseModel):
    """Fields are read from the environment variables named by their ``alias``."""

    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True, populate_by_name=True)
    PREFIX: ClassVar[str] = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Build from ``environ`` (default ``os.environ``); only this model's variables are read."""
        source = os.environ if environ is None else environ
        names = [field.alias or name for name, field in cls.model_fields.items()]
        values: dict[str, Any] = {name: source[name] for name in names if source.get(name, "") != ""}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise InvalidSettings(
                [
                    {
                        "variable": ".".join(str(p) for p in err.get("loc", ())) or cls.__name__,
                        "message": str(err.get("msg", "invalid")).removeprefix("Value error, "),
                    }
                    for err in exc.errors(include_input=False, include_url=False)
                ]
            ) from None


class ProbeSettings(_EnvSettings):
    """The probe function's environment.

    ``PROBE_ALLOW_PRIVATE_NETWORKS`` (default false): let loopback and private-use addresses through
    the SSRF guard (the local stack only). ``PROBE_CA_BUNDLE`` (optional): a PEM file of the CAs to
    trust instead of the public roots (the local stack points it at its own CA).
    ``PROBE_CERT_WARNING_DAYS`` (default 21): warn when a certificate expires sooner."""

    allow_private_networks: Annotated[bool, Field(alias="PROBE_ALLOW_PRIVATE_NETWORKS")] = False
    ca_bundle: Annotated[str | None, Field(alias="PROBE_CA_BUNDLE")] = None
    cert_warning_days: Annotated[int, Field(alias="PROBE_CERT_WARNING_DAYS", ge=0, le=3650)] = 21

    @field_validator("ca_bundle")
    @classmethod
    def _readable_file(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_file():
            raise ValueError("must name a readable PEM file")
        return value


class StackTables(_EnvSettings):
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


class DeployTriggerSettings(_EnvSettings):
    config_bucket: Annotated[str, Field(alias="CONFIG_BUCKET", min_length=3)]
    state_machine_arn: Annotated[str, Field(alias="RECONCILE_STATE_MACHINE_ARN", min_length=3)]


class AuditSyncSettings(_EnvSettings):
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
            raise InvalidSettings([{"variable": field, "message": message} for field, message in problems])
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
