"""Distributed Map on moto 5.2.5, as Step Functions runs it: what the local stack adds (patches.py
installs each piece; every one touches moto internals, hence the pinned version).

moto runs a Distributed Map's child workflows as frames of the parent execution, on one thread per
``MaxConcurrency`` slot, with the ``ItemReader`` (S3 ``getObject``, JSON or CSV) and the in-process
Lambda dispatch working as for any Task. Measured against AWS's documented behaviour, these were
missing or wrong; here they are made to hold:

- **Definitions AWS accepts.** moto's parser refuses ``"ExecutionType": "EXPRESS"`` and an integer
  ``ToleratedFailurePercentage`` (it wants ``5.0``, not ``5``). :func:`for_moto` rewrites those two
  before moto parses a definition (create and update). An Express child then runs as moto's only
  kind of child: its 5-minute limit is not enforced locally.
- **Failure thresholds.** moto ignored ``ToleratedFailureCount``/``ToleratedFailurePercentage``: a
  failing child was swallowed (null in the results, the map succeeded). Here the map run fails with
  ``States.ExceedToleratedFailureThreshold`` once its failed and timed-out children exceed the
  threshold (with none declared, one failing child fails the map, as on AWS; with both declared,
  either one exceeded fails it); no child starts after that. A declared 0 cannot be told from an
  undeclared one here: ``ToleratedFailureCount: 0`` beside a percentage counts as not declared.
- **ResultWriter.** moto wrote a ``manifest.json`` listing no files. Here the map run's children are
  written as AWS writes them: ``<Prefix>/<map run id>/SUCCEEDED_0.json`` and ``FAILED_0.json`` (a
  JSON array each, one object per child: ``ExecutionArn``, ``Name``, ``StateMachineArn``, ``Status``,
  ``StartDate``, ``StopDate``, ``Input`` and ``Output`` as JSON text, or ``Error``/``Cause`` for a
  child that failed, timed out or was aborted), only the non-empty ones, then ``manifest.json``
  naming them (``ResultFiles``: ``SUCCEEDED``, ``FAILED``, ``PENDING``, each a list of ``Key`` and
  ``Size``). The map's output is ``{"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}``. Its
  Parameters' paths (``"Bucket.$"``, ``"Prefix.$"``) read the Map state's input (moto read them from
  the children's outputs). A map run that fails writes no results (its Map state fails first).
- **Map run counts.** DescribeMapRun's ``executionCounts.running`` went back down only for children
  that succeeded; here for every child that ends.

These apply to an ``ItemProcessor`` (the legacy ``Iterator`` field in DISTRIBUTED mode is moto's own).
Not emulated (moto has no child executions): ListExecutions(mapRunArn=...), DescribeExecution and
GetExecutionHistory of a child. moto's parser also refuses ``ItemBatcher``, ``InputType: JSONL`` and
``ResultWriter.WriterConfig``; the local stack leaves those refusals as they are.
"""

from __future__ import annotations

import datetime
import json
import threading
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

THRESHOLD_ERROR: Final = "States.ExceedToleratedFailureThreshold"
THRESHOLD_CAUSE: Final = "The specified tolerated failure threshold was exceeded"


# -- definitions ---------------------------------------------------------------------------------


def for_moto(definition: Any) -> Any:
    """The definition as moto's parser accepts it (see the module docstring); anything that is not
    a JSON object is handed on unchanged, for moto to refuse in its own words."""
    if not isinstance(definition, str):
        return definition
    try:
        doc = json.loads(definition)
    except ValueError:
        return definition
    if not isinstance(doc, dict) or not _rewrite_scope(doc):
        return definition
    return json.dumps(doc)


def _rewrite_scope(scope: Mapping[str, Any]) -> bool:
    changed = False
    states = scope.get("States")
    if not isinstance(states, dict):
        return False
    for state in states.values():
        if not isinstance(state, dict):
            continue
        if state.get("Type") == "Map":
            percentage = state.get("ToleratedFailurePercentage")
            if isinstance(percentage, int) and not isinstance(percentage, bool):
                state["ToleratedFailurePercentage"] = float(percentage)
                changed = True
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if isinstance(processor, dict):
                config = processor.get("ProcessorConfig")
                if isinstance(config, dict) and config.get("ExecutionType") == "EXPRESS":
                    config["ExecutionType"] = "STANDARD"
                    changed = True
                changed = _rewrite_scope(processor) or changed
        if state.get("Type") == "Parallel":
            for branch in state.get("Branches") or []:
                if isinstance(branch, dict):
                    changed = _rewrite_scope(branch) or changed
    return changed


def accepting_definitions(original: Callable[..., Any], position: int) -> Callable[..., Any]:
    """Wrap a backend method whose ``definition`` is its ``position``-th argument (after self)."""

    def method(backend: Any, *args: Any, **kwargs: Any) -> Any:
        if "definition" in kwargs:
            kwargs["definition"] = for_moto(kwargs["definition"])
        elif len(args) > position:
            args = (*args[:position], for_moto(args[position]), *args[position + 1 :])
        return original(backend, *args, **kwargs)

    return method


# -- the children of a map run -------------------------------------------------------------------


@dataclass
class Child:
    """One child workflow execution of a map run, as the ResultWriter reports it."""

    index: int
    name: str
    start: datetime.datetime
    status: str = "RUNNING"
    input: Any = None
    output: Any = None
    error: str | None = None
    cause: str | None = None
    stop: datetime.datetime | None = None


@dataclass
class MapRunChildren:
    """The ended children of one map run (moto's MapRunRecord keeps only counts)."""

    ended: list[Child] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, child: Child) -> None:
        with self.lock:
            self.ended.append(child)

    def by_status(self) -> dict[str, list[Child]]:
        with self.lock:
            ended = sorted(self.ended, key=lambda c: c.index)
        grouped: dict[str, list[Child]] = {"SUCCEEDED": [], "FAILED": [], "PENDING": []}
        for child in ended:
            grouped["SUCCEEDED" if child.status == "SUCCEEDED" else "FAILED"].append(child)
        return grouped


_children: weakref.WeakKeyDictionary[Any, MapRunChildren] = weakref.WeakKeyDictionary()
_children_lock = threading.Lock()


def children_of(map_run_record: Any) -> MapRunChildren:
    with _children_lock:
        found = _children.get(map_run_record)
        if found is None:
            found = _children[map_run_record] = MapRunChildren()
        return found


def threshold_exceeded(map_run_record: Any, total_items: int) -> bool:
    """Whether the map run's failed and timed-out items exceed its failure threshold."""
    counts = map_run_record.item_counter
    failed = counts.failed.get() + counts.timed_out.get()
    if failed == 0:
        return False
    count = int(map_run_record.tolerated_failure_count or 0)
    percentage = float(map_run_record.tolerated_failure_percentage or 0.0)
    if count <= 0 and percentage <= 0:
        return True  # nothing tolerated
    over_count = count > 0 and failed > count
    over_percentage = percentage > 0 and failed * 100.0 > percentage * max(total_items, 1)
    return over_count or over_percentage


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def eval_child(worker: Any, env: Any, job: Any) -> None:
    """``DistributedItemProcessorWorker._eval_job``: run one child as moto does, keep what the
    ResultWriter reports of it, count it in the map run, and fail the map run once the failure
    threshold is exceeded (the job's output is then the failure, which ends moto's job pool)."""
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import EvalTimeoutError
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramError, ProgramStopped
    from moto.stepfunctions.parser.asl.eval.states import ItemData, MapData

    record = worker._map_run_record
    children = children_of(record)
    total_items = int(getattr(worker._job_pool, "_jobs_number", 0))  # the map run's items, started or not
    for counter in (record.item_counter, record.execution_counter):
        counter.total.count()
        counter.running.count()
    child = Child(index=job.job_index, name=str(uuid.uuid4()), start=_now(), input=job.job_input)
    try:
        env.states.context_object.context_object_data["Map"] = MapData(
            Item=ItemData(Index=job.job_index, Value=job.job_input)
        )
        env.states.reset(job.job_input)
        env.stack.append(env.states.get_input())
        worker._eval_input(env_frame=env)
        child.input = env.states.get_input()
        job.job_program.eval(env)
        ended = env.program_state()
        if isinstance(ended, ProgramError):
            details = ended.error or {}
            child.status, child.error, child.cause = "FAILED", details.get("error"), details.get("cause")
        elif isinstance(ended, ProgramStopped):
            child.status, child.error, child.cause = "ABORTED", ended.error, ended.cause
        else:
            child.status, child.output = "SUCCEEDED", env.states.get_input()
    except EvalTimeoutError:
        child.status, child.error = "TIMED_OUT", "States.Timeout"
    except FailureEventException as exc:
        pair = exc.extract_error_cause_pair() or (None, None)
        child.status, child.error, child.cause = "FAILED", pair[0], pair[1]
    except Exception as exc:  # moto's own worker counts any crash of a child as a failed item
        child.status, child.error, child.cause = "FAILED", "States.Runtime", str(exc)
    finally:
        child.stop = _now()
        _count_end(record, child.status)
        children.add(child)
    job.job_output = child.output if child.status == "SUCCEEDED" else None
    if child.status in ("FAILED", "TIMED_OUT") and threshold_exceeded(record, total_items):
        job.job_output = _threshold_failure(env)


def _count_end(record: Any, status: str) -> None:
    items, executions = record.item_counter, record.execution_counter
    items.running.offset(-1)
    executions.running.offset(-1)
    if status == "SUCCEEDED":
        for counter in (items, executions):
            counter.succeeded.count()
            counter.results_written.count()
    elif status == "TIMED_OUT":
        items.timed_out.count()
        executions.timed_out.count()
    elif status == "ABORTED":
        items.aborted.count()
        executions.aborted.count()
    else:
        items.failed.count()
        executions.failed.count()


def _threshold_failure(env: Any) -> Exception:
    from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    return FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold),
            event_type=HistoryEventType.MapRunFailed,
            event_details=EventDetails(
                mapRunFailedEventDetails=MapRunFailedEventDetails(
                    error=THRESHOLD_ERROR, cause=THRESHOLD_CAUSE
                )
            ),
        )
    )


# -- the ResultWriter ----------------------------------------------------------------------------


def _iso(moment: datetime.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def result_entries(record: Any, children: list[Child]) -> Iterator[dict[str, Any]]:
    """Each child as a ResultWriter file holds it."""
    machine = str(record.map_state_machine_arn)
    execution_prefix = machine.replace(":stateMachine:", ":execution:", 1)
    for child in children:
        entry: dict[str, Any] = {
            "ExecutionArn": f"{execution_prefix}:{child.name}",
            "Input": json.dumps(child.input),
            "InputDetails": {"Included": True},
            "Name": child.name,
            "RedriveCount": 0,
            "RedriveStatus": "NOT_REDRIVABLE",
            "StartDate": _iso(child.start),
            "StateMachineArn": machine,
            "Status": child.status,
            "StopDate": _iso(child.stop),
        }
        if child.status == "SUCCEEDED":
            entry["Output"] = json.dumps(child.output)
            entry["OutputDetails"] = {"Included": True}
        else:
            entry["RedriveStatus"] = "REDRIVABLE"
            if child.error is not None:
                entry["Error"] = child.error
            if child.cause is not None:
                entry["Cause"] = child.cause
        yield entry


def writer_body(writer: Any, env: Any) -> None:
    """``ResultWriter._eval_body``: its Parameters' paths read the Map state's input, as on AWS (moto
    evaluated them against the children's outputs, so ``"Bucket.$": "$.bucket"`` failed)."""
    outputs = env.stack.pop()
    env.stack.append(env.states.get_input())
    writer.parargs.eval(env=env)
    parameters = env.stack.pop()
    env.stack.pop()
    env.stack.append(outputs)
    env.stack.append(parameters)
    writer.resource_eval.eval_resource(env=env)


def write_results(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
    """The ResultWriter's ``s3:putObject`` (replaces moto's ``ResourceEvalS3._handle_put_object``)."""
    from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

    parameters = env.stack.pop()
    env.stack.pop()  # the children's outputs: written from the map run's own children instead
    record = env.map_run_record_pool_manager.get_all()[-1]  # this state's run: the latest of the execution
    s3 = boto_client_for(
        service="s3", region=resource_runtime_part.region, state_credentials=state_credentials
    )
    bucket = str(parameters["Bucket"])
    prefix = str(parameters.get("Prefix") or "")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    base = f"{prefix}{record.map_run_arn.split(':')[-1]}/"
    files: dict[str, list[dict[str, Any]]] = {}
    for status, children in children_of(record).by_status().items():
        files[status] = []
        if not children:
            continue
        key = f"{base}{status}_0.json"
        body = json.dumps(list(result_entries(record, children))).encode()
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        files[status].append({"Key": key, "Size": len(body)})
    manifest = {"DestinationBucket": bucket, "MapRunArn": record.map_run_arn, "ResultFiles": files}
    key = f"{base}manifest.json"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest, indent=2).encode())
    env.stack.append({"MapRunArn": record.map_run_arn, "ResultWriterDetails": {"Bucket": bucket, "Key": key}})
