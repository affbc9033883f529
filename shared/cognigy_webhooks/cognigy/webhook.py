"""What Cognigy returns for a webhook (the tutorial dialect), as a model that never keeps a secret."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from cognigy_webhooks.secrets import redact_headers

__all__ = ["CognigyRetryPolicy", "CognigyWebhook"]


class CognigyRetryPolicy(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    max_retries: int = 3
    retry_interval_ms: int = 5000


class CognigyWebhook(BaseModel):
    """A webhook as Cognigy returns it. Lenient on purpose (unknown fields are ignored, values kept
    as sent), and it never keeps a ``signatureSecret`` even when the server echoes one."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", hide_input_in_errors=True
    )

    id: Annotated[str, Field(min_length=1)]
    name: str
    url: str
    fallback_urls: list[str] = Field(default_factory=list)
    method: str = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    payload_format: str = "JSON"
    is_active: bool = True
    retry_policy: CognigyRetryPolicy = Field(default_factory=CognigyRetryPolicy)
    timeout: int | None = None  # milliseconds
    signature_header: str | None = None

    def __repr_args__(self) -> Any:
        for key, value in super().__repr_args__():
            yield key, (redact_headers(value) if key == "headers" else value)

    def to_api_dict(self) -> dict[str, Any]:
        """The webhook as Cognigy's JSON (camelCase), without any secret."""
        return self.model_dump(mode="json", by_alias=True)
