"""The watch's fan-out over a Distributed Map: its targets written to the config bucket, each
endpoint's judgement read back from the map's result files, the execution's output kept bounded.

The watch (``statemachine/watch.asl.json``) keeps its endpoints out of its own state, so the state and
the history stay small whatever their number. Under ``watch/<run>/`` in the config bucket (``<run>``:
the execution's name, :func:`~cognigy_webhooks.dal.run_files.run_name`):

- ``targets.json``: :func:`list_targets` writes one JSON array, an object per endpoint to watch
  (its name and the probe's part of its public spec, :func:`~cognigy_webhooks.watch.run.probe_view`),
  and returns ``itemsRef`` {bucket, key, resultsPrefix, count, toleratedFailurePercentage} in place
  of them: the map's ``ItemReader`` reads that object and runs one EXPRESS child execution per
  endpoint (Probe, then Judge or JudgeFailed), failing its run once more of them fail as a whole
  than :func:`tolerated_percentage` allows (the stack's WatchToleratedFailurePercentage, but never
  less than one child: one endpoint whose child dies never fails the watch, unless 0 is asked);
- ``results/<map run id>/``: the map's ``ResultWriter`` writes ``manifest.json`` and the result files
  it names (``SUCCEEDED_n.json``, ``FAILED_n.json``);
- ``summary.json``: :func:`summarize_run` reads the result files (refusing any other bucket or folder
  than this run's: :class:`~cognigy_webhooks.errors.InvalidInput` naming the field), turns each child
  into its endpoint's judgement (:func:`judgements`), counts them
  (:func:`~cognigy_webhooks.watch.run.summarize`) and writes the whole summary there.

A child's judgement: a SUCCEEDED child's output is its :class:`~cognigy_webhooks.watch.run.JudgeResult`
(JudgeFailed's too: ``outcome`` failed, the caught error as ``reason``). Any other child failed as a
whole, past every Catch of its own (an item it could not read: ``States.Runtime``; Express's 5
minutes: ``States.Timeout``): it is its endpoint's ``failed`` judgement, named from the child's input,
``reason`` ``child_failed: <error>: <the cause, cut>``. A child's output that is no judgement counts
failed too (``bad_result``): the summary never drops an endpoint. Judgements are in name order.

The execution's output is :func:`bounded`: the whole summary up to :data:`INLINE_RESULTS` endpoints;
past that the counts, the transitions by detail-type, and only the endpoints worth a look (a
transition, or not judged) up to :data:`INLINE_RESULTS`, with ``truncated`` True. ``summaryRef``
always names the whole one. Nothing written or returned here holds a secret: targets are the records'
public view, judgements name detail-types, states and error names.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from cognigy_webhooks.dal.executions import error_message_of
from cognigy_webhooks.dal.run_files import ChildResult, run_name
from cognigy_webhooks.errors import InvalidInput
from cognigy_webhooks.watch.run import (
    JudgeResult,
    ListRequest,
    WatchStore,
    WatchSummary,
    probe_view,
    summarize,
    watchable,
)

__all__ = [
    "FOLDER",
    "INLINE_RESULTS",
    "RunFilesStore",
    "bounded",
    "judgements",
    "list_targets",
    "results_prefix",
    "summarize_run",
    "summary_key",
    "targets_key",
    "tolerated_percentage",
]

#: The config bucket's folder of every watch run.
FOLDER = "watch"
#: The most endpoints whose judgements the execution's output carries (the rest: summaryRef).
INLINE_RESULTS = 200
#: How much of a failed child's cause its judgement keeps.
_CAUSE_CHARS = 200


class RunFilesStore(Protocol):
    """The config bucket's run files (:class:`cognigy_webhooks.dal.run_files.RunFiles`)."""

    @property
    def bucket(self) -> str: ...
    def put_json(self, key: str, doc: Any) -> dict[str, str]: ...
    def map_results(self, details: dict[str, Any]) -> Iterable[ChildResult]: ...


def _folder(run: str) -> str:
    return f"{FOLDER}/{run}"


def targets_key(run: str) -> str:
    """Where one watch run's targets go (the ItemReader's object)."""
    return f"{_folder(run)}/targets.json"


def results_prefix(run: str) -> str:
    """Where the ResultWriter writes one watch run's results."""
    return f"{_folder(run)}/results"


def summary_key(run: str) -> str:
    """Where one watch run's whole summary goes."""
    return f"{_folder(run)}/summary.json"


# --- list ---------------------------------------------------------------------------------------------


def tolerated_percentage(percentage: float, count: int) -> float:
    """The map run's ToleratedFailurePercentage for ``count`` children: ``percentage`` (0 to 100),
    raised to tolerate one child at least (its run fails when failed x 100 > this x count), rounded
    up to hundredths; 0 stays 0 (nothing tolerated)."""
    if percentage <= 0 or count <= 0:
        return max(0.0, min(percentage, 100.0))
    one = math.ceil(10_000 / count) / 100  # 100 / count, rounded up to hundredths
    return min(100.0, max(float(percentage), one))


def list_targets(request: ListRequest, store: WatchStore, files: RunFilesStore) -> dict[str, Any]:
    """Write the watch's targets (name and the probe's view of the public spec, in name order) to the
    config bucket; the time it judges at and ``itemsRef`` to them."""
    at = request.at or request.started_at
    if at is None:
        raise InvalidInput([{"field": "at", "message": "is required (or the execution's start time)"}])
    wanted = set(request.names) if request.names is not None else None
    targets = [
        {"name": record.name, "endpoint": probe_view(record.spec)}
        for record in store.iter_records()
        if watchable(record) and (wanted is None or record.name in wanted)
    ]
    run = run_name(request.execution_name or request.execution_id)
    written = files.put_json(targets_key(run), targets)
    percentage = request.tolerated_failure_percentage
    items_ref = {
        "bucket": written["bucket"],
        "key": written["key"],
        "resultsPrefix": results_prefix(run),
        "count": len(targets),
        "toleratedFailurePercentage": tolerated_percentage(
            0.0 if percentage is None else percentage, len(targets)
        ),
    }
    return {"at": at.isoformat(), "executionId": request.execution_id, "itemsRef": items_ref}


# --- summarize ----------------------------------------------------------------------------------------


def _child_failed(child: ChildResult) -> dict[str, Any]:
    item = child.input if isinstance(child.input, Mapping) else {}
    name = item.get("name")
    cause = " ".join(error_message_of(str(child.cause or "")).split())  # a Lambda error: its message alone
    reason = f"child_failed: {child.error or child.status}"
    if cause:
        reason += f": {cause[:_CAUSE_CHARS]}" + ("..." if len(cause) > _CAUSE_CHARS else "")
    result = JudgeResult(
        name=str(name) if isinstance(name, str) and name else "?", outcome="failed", reason=reason
    )
    return result.model_dump(mode="json", by_alias=True, exclude_none=True)


def judgements(children: Iterable[ChildResult]) -> list[dict[str, Any]]:
    """Each child's judgement (see the module docstring), in name order."""
    judged: list[dict[str, Any]] = []
    for child in children:
        if child.status != "SUCCEEDED":
            judged.append(_child_failed(child))
            continue
        try:
            result = JudgeResult.model_validate(child.output)
        except ValueError:
            item = child.input if isinstance(child.input, Mapping) else {}
            output = child.output if isinstance(child.output, Mapping) else {}
            name = output.get("name") or item.get("name")
            result = JudgeResult(
                name=str(name) if isinstance(name, str) and name else "?",
                outcome="failed",
                reason="bad_result: the child's output is no judgement",
            )
        judged.append(result.model_dump(mode="json", by_alias=True, exclude_none=True))
    return sorted(judged, key=lambda r: str(r.get("name")))


def _own_results(details: Any, files: RunFilesStore, run: str) -> dict[str, Any]:
    """The ResultWriter's details, if they name this run's results in the config bucket."""
    if not isinstance(details, Mapping):
        raise InvalidInput(
            [{"field": "resultWriterDetails", "message": "must be the map's ResultWriterDetails"}]
        )
    bucket, key = details.get("Bucket"), details.get("Key")
    if bucket != files.bucket:
        raise InvalidInput([{"field": "resultWriterDetails.Bucket", "message": "must be the config bucket"}])
    if not isinstance(key, str) or not key.startswith(results_prefix(run) + "/") or ".." in key.split("/"):
        raise InvalidInput(
            [{"field": "resultWriterDetails.Key", "message": "must be under this watch's results prefix"}]
        )
    return {"Bucket": bucket, "Key": key}


def summarize_run(
    at: datetime, details: Any, files: RunFilesStore, run: str, *, count: int | None = None
) -> tuple[WatchSummary, dict[str, str]]:
    """Read one watch run's results (``details``: the map's ResultWriterDetails; None when it had
    nothing to watch, ``count`` 0: no map ran), count them, write the whole summary; the summary and
    its reference (``{"bucket", "key"}``)."""
    nothing = details is None and count == 0
    results = [] if nothing else judgements(files.map_results(_own_results(details, files, run)))
    summary = summarize(at, results)
    ref = files.put_json(summary_key(run), summary.model_dump(mode="json", by_alias=True, exclude_none=True))
    return summary, ref


def _notable(result: JudgeResult) -> bool:
    return bool(result.transitions) or result.outcome in ("failed", "not_probed", "skipped")


def bounded(
    summary: WatchSummary, ref: Mapping[str, str] | None, *, inline: int | None = None
) -> WatchSummary:
    """What the execution's output carries of ``summary`` (the whole one is at ``ref``): all of it up
    to ``inline`` (default :data:`INLINE_RESULTS`) endpoints, else every count and the notable
    endpoints up to ``inline``."""
    inline = INLINE_RESULTS if inline is None else inline
    summary_ref = dict(ref) if ref is not None else None
    if len(summary.results) <= inline:
        return summary.model_copy(update={"summary_ref": summary_ref})
    notable: Sequence[JudgeResult] = [r for r in summary.results if _notable(r)]
    return summary.model_copy(
        update={"results": list(notable[:inline]), "truncated": True, "summary_ref": summary_ref}
    )
