"""The base of every model: camelCase aliases (names populate too), unknown fields refused, inputs
kept out of validation errors (a secret in a bad value never reaches an error message)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

__all__ = ["_Model"]


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        hide_input_in_errors=True,
        str_strip_whitespace=False,
        use_enum_values=False,
    )
