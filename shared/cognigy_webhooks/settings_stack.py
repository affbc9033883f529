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
