"""The summarize step: what the reconcile did, per outcome.

:func:`summarize` reads the register results of every item and the plan's invalid ones, sorts them
by outcome (``created``, ``updated``, ``unchanged``, ``deleted``, ``failed`` with reason and detail)
and counts them. A result that does not parse counts as failed (``bad_result``): the summary never
drops an item.

The items run as child executions of a Distributed Map: :func:`results_of_children` turns the
ResultWriter's entries into results (a child that failed as a whole, past every Catch of its own,
is its endpoint's ``failed`` result with reason ``child_failed`` and the child's error). The whole
summary is written to the config bucket; the execution's output is :func:`bounded`: the counts and
every failure always, the names and the per-endpoint results only up to :data:`INLINE_RESULTS`
(``truncated`` then True, the whole one at ``summaryRef``), so the output stays far below Step
Functions' 256 KiB whatever the number of endpoints.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import Field, ValidationError

from cognigy_webhooks.dal.executions import error_message_of
from cognigy_webhooks.dal.run_files import ChildResult, RunFiles, run_name
from cognigy_webhooks.models import _Model
from cognigy_webhooks.reconcile.task import RegisterResult

__all__ = [
    "INLINE_RESULTS",
    "Summary",
    "bounded",
    "results_of_children",
    "summarize",
    "summarize_map_run",
    "why_stopped",
]

#: The most endpoints whose names and results an execution's output carries (the rest: summaryRef).
INLINE_RESULTS = 200
#: The most failures it carries with their reasons.
INLINE_FAILURES = 500


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
    truncated: bool = False
    summary_ref: dict[str, str] | None = None


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


def _child_failure(child: ChildResult) -> dict[str, Any]:
    item: dict[str, Any] = child.input if isinstance(child.input, dict) else {}
    found = item.get("endpoint")
    endpoint: dict[str, Any] = found if isinstance(found, dict) else {}
    cause = error_message_of(child.cause or "")
    detail = f"{child.error or child.status}: {cause}".strip(": ")
    return {
        "name": str(endpoint.get("name") or item.get("name") or "?"),
        "outcome": "failed",
        "reason": "child_failed",
        "detail": detail[:500],
    }


def results_of_children(children: Iterable[ChildResult]) -> list[dict[str, Any]]:
    """Each child's result: a SUCCEEDED child's output is its RegisterResult; any other child is
    its endpoint's failure (``child_failed``, the child's error and the cause's message)."""
    results: list[dict[str, Any]] = []
    for child in children:
        if child.status == "SUCCEEDED" and isinstance(child.output, dict):
            results.append(child.output)
        else:
            results.append(_child_failure(child))
    return results


def bounded(summary: Summary, ref: dict[str, str] | None) -> Summary:
    """What the execution's output carries of ``summary`` (the whole one is at ``ref``): all of it
    up to :data:`INLINE_RESULTS` endpoints, else the counts, the first failures and no names."""
    if len(summary.results) <= INLINE_RESULTS:
        return summary.model_copy(update={"summary_ref": ref})
    return Summary(
        execution_id=summary.execution_id,
        source=summary.source,
        failed=summary.failed[:INLINE_FAILURES],
        counts=summary.counts,
        truncated=True,
        summary_ref=ref,
    )


def why_stopped(executions: Any, execution_id: str, stopped: Any) -> dict[str, str]:
    """Why a map run stopped past its tolerated failures: the error and cause of its newest failed
    child (``executions``: :class:`~cognigy_webhooks.dal.executions.Executions`), else the
    threshold's own (``stopped``: the Map state's caught error)."""
    for run in executions.map_runs(execution_id):
        failed, _ = executions.children_page(run, status="FAILED", limit=1)
        for child in failed:
            described = executions.describe(child.execution_arn)
            if described.error:
                return {"error": str(described.error), "cause": str(described.cause or "")}
    caught = stopped if isinstance(stopped, dict) else {}
    return {
        "error": str(caught.get("Error") or "States.ExceedToleratedFailureThreshold"),
        "cause": str(caught.get("Cause") or "the map run's tolerated failures were exceeded"),
    }


def summarize_map_run(
    files: RunFiles,
    result_writer_details: Any,
    items_ref: Any,
    *,
    execution_id: str | None,
    source: str | None,
) -> tuple[Summary, dict[str, str]]:
    """The summarize step over a Distributed Map: every child's result (the ResultWriter's files)
    and the plan's refusals (``itemsRef.invalidKey``), summarized; the whole summary written beside
    them (``reconcile/<execution name>/summary.json``). The summary and its reference; the output is
    :func:`bounded` of them."""
    ref = items_ref if isinstance(items_ref, dict) else {}
    details = result_writer_details if isinstance(result_writer_details, dict) else {}
    results = results_of_children(files.map_results(details))
    invalid = files.get_json(str(ref["invalidKey"])) if ref.get("invalidKey") else []
    summary = summarize(results, invalid, execution_id=execution_id, source=source)
    whole = files.put_json(
        f"reconcile/{run_name(execution_id)}/summary.json",
        summary.model_dump(mode="json", by_alias=True, exclude_none=True),
    )
    return summary, whole
