"""Each function's environment as a pydantic model, checked once at cold start.

Logic never reads ``os.environ``: a handler builds its settings with ``XSettings.from_env()`` at import
time and hands plain values to the library. Each field names its variable once, with settings_base's
``Env`` (the base the receiver's pydantic-free settings share); pydantic checks the values, and a
model's ``_problems`` the rules between fields. A bad value stops the cold start with
:class:`InvalidSettings` naming the variable (never echoing its value). An empty variable counts as
unset (SAM templates often pass ``""`` for an optional parameter).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cognigy_webhooks.backoff import Backoff
from cognigy_webhooks.errors import InvalidSettings
from cognigy_webhooks.settings_base import Env, declared, present, refuse

__all__ = [
    "ApiSettings",
    "AuditSyncSettings",
    "DeployTriggerSettings",
    "InvalidSettings",
    "PlanSettings",
    "ProbeSettings",
    "RegisterSettings",
    "StackTables",
    "WatchSettings",
]


class _EnvSettings(BaseModel):
    """Each field is read from the variable its ``Env`` names; only those variables are read."""

    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    @classmethod
    def variables(cls) -> dict[str, Env]:
        """Field -> the variable it is read from."""
        return declared(cls.__name__, {name: field.metadata for name, field in cls.model_fields.items()})

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable a field is read from."""
        return cls.variables()[field].name

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Build from ``environ`` (default ``os.environ``): the values, then the rules between them."""
        variables = cls.variables()
        try:
            settings = cls.model_validate(present(variables, environ))
        except ValidationError as exc:
            raise refuse(
                (
                    variables[str(loc[0])].name if (loc := err.get("loc", ())) else cls.__name__,
                    str(err.get("msg", "invalid")).removeprefix("Value error, "),
                )
                for err in exc.errors(include_input=False, include_url=False)
            ) from None
        problems = settings._problems()
        if problems:
            raise refuse(problems)
        return settings

    def _problems(self) -> list[tuple[str, str]]:
        """(variable, message) for each rule between fields this model breaks: none by default."""
        return []


class ProbeSettings(_EnvSettings):
    """The probe function's environment.

    ``PROBE_ALLOW_PRIVATE_NETWORKS`` (default false): let loopback and private-use addresses through
    the SSRF guard (the local stack only). ``PROBE_CA_BUNDLE`` (optional): a PEM file of the CAs to
    trust instead of the public roots (the local stack points it at its own CA).
    ``PROBE_CERT_WARNING_DAYS`` (default 21): warn when a certificate expires sooner."""

    allow_private_networks: Annotated[bool, Env("PROBE_ALLOW_PRIVATE_NETWORKS")] = False
    ca_bundle: Annotated[str | None, Env("PROBE_CA_BUNDLE")] = None
    cert_warning_days: Annotated[int, Env("PROBE_CERT_WARNING_DAYS"), Field(ge=0, le=3650)] = 21

    @field_validator("ca_bundle")
    @classmethod
    def _readable_file(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_file():
            raise ValueError("must name a readable PEM file")
        return value


class StackTables(_EnvSettings):
    endpoints_table: Annotated[str, Env("ENDPOINTS_TABLE"), Field(min_length=3)]
    audit_table: Annotated[str, Env("AUDIT_TABLE"), Field(min_length=3)]


class PlanSettings(StackTables):
    """The plan function's environment: where the items go, and what the map's concurrency is derived
    from (``MAP_CONCURRENCY``: the most; ``SECONDS_PER_ENDPOINT``: what one endpoint is assumed to
    take, see :func:`~cognigy_webhooks.reconcile.plan.map_concurrency`)."""

    config_bucket: Annotated[str, Env("CONFIG_BUCKET"), Field(min_length=3)]
    map_concurrency: Annotated[int, Env("MAP_CONCURRENCY"), Field(ge=1, le=10000)] = 40
    seconds_per_endpoint: Annotated[float, Env("SECONDS_PER_ENDPOINT"), Field(gt=0, le=900)] = 3.0


class SummarizeSettings(_EnvSettings):
    config_bucket: Annotated[str, Env("CONFIG_BUCKET"), Field(min_length=3)]


class RegisterSettings(StackTables):
    """The register function's environment (the plan function reads it too: its one listing talks
    to Cognigy the same way). ``COGNIGY_API``: ``endpoints`` (Cognigy.AI's webhook Endpoints, the
    default) or ``tutorial`` (the tutorial's /api/v2/webhooks); ``COGNIGY_API_PREFIX``: the path
    before ``/v2.0`` for the endpoints dialect (``/new``; ``/`` for none)."""

    rate_limit_table: Annotated[str, Env("RATE_LIMIT_TABLE"), Field(min_length=3)]
    cognigy_api: Annotated[Literal["endpoints", "tutorial"], Env("COGNIGY_API")] = "endpoints"
    cognigy_api_prefix: Annotated[
        str, Env("COGNIGY_API_PREFIX"), Field(pattern=r"^(/|(/[A-Za-z0-9._-]+)+)$")
    ] = "/new"
    stack_name: Annotated[str, Env("STACK_NAME"), Field(min_length=1, max_length=128)] = "cognigy-webhooks"
    cognigy_base_url: Annotated[str, Env("COGNIGY_BASE_URL"), Field(pattern=r"^https?://")]
    cognigy_api_key_secret: Annotated[str, Env("COGNIGY_API_KEY_SECRET"), Field(min_length=1)]
    cognigy_ca_bundle: Annotated[str, Env("COGNIGY_CA_BUNDLE")] = ""
    requests_per_minute: Annotated[float, Env("COGNIGY_REQUESTS_PER_MINUTE"), Field(gt=0)] = 60
    burst: Annotated[int, Env("COGNIGY_BURST"), Field(ge=1)] = 10
    audit_retention_days: Annotated[int, Env("AUDIT_RETENTION_DAYS"), Field(ge=1)] = 400
    secret_max_age: Annotated[int, Env("SECRET_MAX_AGE_SECONDS"), Field(ge=0)] = 300


class DeployTriggerSettings(_EnvSettings):
    config_bucket: Annotated[str, Env("CONFIG_BUCKET"), Field(min_length=3)]
    state_machine_arn: Annotated[str, Env("RECONCILE_STATE_MACHINE_ARN"), Field(min_length=3)]


class ApiSettings(StackTables):
    """The management API's function: the tables, the config bucket and the reconcile state machine
    it reads and starts, the stack's name (its secrets' prefix), the dialect (what a plan refuses),
    and the probe function's own probe settings (``POST /endpoints/{name}/probe`` probes as the
    reconcile's probe step does)."""

    config_bucket: Annotated[str, Env("CONFIG_BUCKET"), Field(min_length=3)]
    state_machine_arn: Annotated[str, Env("RECONCILE_STATE_MACHINE_ARN"), Field(min_length=3)]
    watch_state_machine_arn: Annotated[str | None, Env("WATCH_STATE_MACHINE_ARN")] = None
    stack_name: Annotated[str, Env("STACK_NAME"), Field(min_length=1, max_length=128)] = "cognigy-webhooks"
    cognigy_api: Annotated[Literal["endpoints", "tutorial"], Env("COGNIGY_API")] = "endpoints"
    probe_allow_private_networks: Annotated[bool, Env("PROBE_ALLOW_PRIVATE_NETWORKS")] = False
    probe_ca_bundle: Annotated[str | None, Env("PROBE_CA_BUNDLE")] = None
    probe_cert_warning_days: Annotated[int, Env("PROBE_CERT_WARNING_DAYS"), Field(ge=0, le=3650)] = 21

    @field_validator("probe_ca_bundle")
    @classmethod
    def _readable_file(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_file():
            raise ValueError("must name a readable PEM file")
        return value


class WatchSettings(RegisterSettings):
    """The watch function's environment: the register function's (it tells Cognigy what the rules
    decide, through the same client and shared budget), the operations bus, and each health rule
    (template parameters; see :class:`cognigy_webhooks.models.watch.HealthRules`).
    ``WATCH_CERT_THRESHOLDS`` is a comma-separated list of days (``30,14,7``). ``CONFIG_BUCKET``: where
    a watch's targets, its map's result files and its summary go (``watch/<execution name>/``)."""

    config_bucket: Annotated[str, Env("CONFIG_BUCKET"), Field(min_length=3)]
    operations_bus_name: Annotated[str, Env("OPERATIONS_BUS_NAME"), Field(min_length=1, max_length=256)]
    unhealthy_after: Annotated[int, Env("WATCH_UNHEALTHY_AFTER"), Field(ge=1, le=1000)] = 3
    deactivate_after_hours: Annotated[
        float, Env("WATCH_DEACTIVATE_AFTER_HOURS"), Field(gt=0, le=24 * 365)
    ] = 24.0
    recover_after: Annotated[int, Env("WATCH_RECOVER_AFTER"), Field(ge=1, le=1000)] = 3
    deactivate_on_gone: Annotated[bool, Env("WATCH_DEACTIVATE_ON_GONE")] = True
    cert_thresholds: Annotated[
        str, Env("WATCH_CERT_THRESHOLDS"), Field(pattern=r"^\s*\d{1,4}(\s*,\s*\d{1,4})*\s*$")
    ] = "30,14,7"

    @property
    def thresholds(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.cert_thresholds.split(","))


class AuditSyncSettings(_EnvSettings):
    """The audit_sync function: the audit table's stream -> the user's monitoring platform.

    ``MONITORING_URL`` is where audit events are POSTed: no user-info in it (the token comes from
    ``MONITORING_TOKEN_SECRET``, a Secrets Manager ARN or name, "" for none), and https whenever a token
    is sent (http only to a loopback host). ``MONITORING_CA_BUNDLE`` (optional: the local stack's CA)
    replaces the public roots. The rest bound one invocation's effort: the stream's own retries,
    bisection and OnFailure queue do the rest, so a few attempts with short waits are enough here.
    """

    monitoring_url: Annotated[str, Env("MONITORING_URL"), Field(pattern=r"^https?://\S+$", max_length=2048)]
    monitoring_token_secret: Annotated[str, Env("MONITORING_TOKEN_SECRET"), Field(max_length=2048)] = ""
    monitoring_ca_bundle: Annotated[str, Env("MONITORING_CA_BUNDLE")] = ""
    batch_size: Annotated[int, Env("MONITORING_BATCH_SIZE"), Field(ge=1, le=10_000)] = 100
    max_attempts: Annotated[int, Env("MONITORING_MAX_ATTEMPTS"), Field(ge=1, le=10)] = 3
    base_delay: Annotated[float, Env("MONITORING_BASE_DELAY_SECONDS"), Field(ge=0, le=30)] = 0.5
    max_delay: Annotated[float, Env("MONITORING_MAX_DELAY_SECONDS"), Field(ge=0, le=60)] = 10.0
    timeout: Annotated[float, Env("MONITORING_TIMEOUT_SECONDS"), Field(gt=0, le=120)] = 10.0
    secret_max_age: Annotated[int, Env("SECRET_MAX_AGE_SECONDS"), Field(ge=0)] = 300

    @property
    def retry(self) -> Backoff:
        """The sync's retry settings as the one policy object the monitoring sync takes."""
        return Backoff(max_attempts=self.max_attempts, base_delay=self.base_delay, max_delay=self.max_delay)

    def _problems(self) -> list[tuple[str, str]]:
        import ipaddress
        from urllib.parse import urlsplit

        url, token = self.variable("monitoring_url"), self.variable("monitoring_token_secret")
        try:
            parts = urlsplit(self.monitoring_url)
            _ = parts.port
        except ValueError:
            return [(url, "is not a valid URL")]
        host = parts.hostname or ""
        problems: list[tuple[str, str]] = []
        if not host:
            problems.append((url, "needs a host"))
        if parts.username is not None or parts.password is not None:
            problems.append((url, f"must not carry credentials: put the token in {token}"))
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if self.monitoring_token_secret and parts.scheme == "http" and not loopback:
            problems.append((url, f"must be https when {token} is set"))
        if self.base_delay > self.max_delay:
            base, most = self.variable("base_delay"), self.variable("max_delay")
            problems.append((base, f"must not exceed {most}"))
        return problems
