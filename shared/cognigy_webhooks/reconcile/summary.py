"""The summarize step: what the reconcile did, per outcome.

:func:`summarize` reads the register results of every item and the plan's invalid ones, sorts them
by outcome (``created``, ``updated``, ``unchanged``, ``deleted``, ``failed`` with reason and detail)
and counts them. A result that does not parse counts as failed (``bad_result``): the summary never
drops an item.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError

from cognigy_webhooks.models import _Model
from cognigy_webhooks.reconcile.task import RegisterResult

__all__ = ["Summary", "summarize"]


class Summary(_Model):
    execution_id: str | None = None
    source: str | None = None
    created: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    deleted: list[str] = Field(default_factory=list)
    failed: list[dict[str, Any]] = Field(default_factory=list)
    results: list[RegisterResult] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)


def summarize(
    results: list[dict[str, Any]],
    invalid: list[dict[str, Any]],
    *,
    execution_id: str | None,
    source: str | None,
) -> Summary:
    summary = Summary(execution_id=execution_id, source=source)
    for raw in [*results, *invalid]:
        try:
            result = RegisterResult.model_validate(raw)
        except ValidationError:
            result = RegisterResult(
                name=str((raw or {}).get("name", "?")), outcome="failed", reason="bad_result"
            )
        summary.results.append(result)
        if result.outcome == "failed":
            summary.failed.append({"name": result.name, "reason": result.reason, "detail": result.detail})
        else:
            getattr(summary, result.outcome).append(result.name)
    summary.counts = {
        k: len(getattr(summary, k)) for k in ("created", "updated", "unchanged", "deleted", "failed")
    }
    return summary
