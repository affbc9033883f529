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

- **Child executions.** moto ran children with no history of their own (one throwaway event
  manager for all of them). Here each STANDARD child is an execution of its own, as on AWS: named
  ``<state machine>/<label>:<uuid>`` under the map run's state machine ARN, its history recorded
  (``ExecutionStarted`` with its input, its states' events, ``ExecutionSucceeded`` with its output
  or ``ExecutionFailed``/``ExecutionAborted``/``ExecutionTimedOut``), and answered by
  ListExecutions(mapRunArn=...) (newest first, paged), DescribeExecution and GetExecutionHistory
  (:func:`answer_list_executions`, :func:`answer_describe_execution`,
  :func:`answer_execution_history`, patched in front of moto's responses). EXPRESS children keep no
  history and are listed nowhere, as on AWS (their results reach the ResultWriter only).

These apply to an ``ItemProcessor`` (the legacy ``Iterator`` field in DISTRIBUTED mode is moto's own).
moto's parser also refuses ``ItemBatcher``, ``InputType: JSONL`` and ``ResultWriter.WriterConfig``;
the local stack leaves those refusals as they are.
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


def for_moto(definition: Any, machine: str | None = None) -> Any:
    """The definition as moto's parser accepts it (see the module docstring); anything that is not
    a JSON object is handed on unchanged, for moto to refuse in its own words. ``machine``: the
    state machine's name, under which the Map states that declared EXPRESS children are kept (their
    children then keep no history, as on AWS)."""
    if not isinstance(definition, str):
        return definition
    try:
        doc = json.loads(definition)
    except ValueError:
        return definition
    express: set[str] = set()
    changed = isinstance(doc, dict) and _rewrite_scope(doc, express)
    if machine is not None:
        with _children_lock:
            _express_maps[machine] = frozenset(express)
    return json.dumps(doc) if changed else definition


def _rewrite_scope(scope: Mapping[str, Any], express: set[str]) -> bool:
    changed = False
    states = scope.get("States")
    if not isinstance(states, dict):
        return False
    for state_name, state in states.items():
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
                    express.add(str(state_name))
                    changed = True
                changed = _rewrite_scope(processor, express) or changed
        if state.get("Type") == "Parallel":
            for branch in state.get("Branches") or []:
                if isinstance(branch, dict):
                    changed = _rewrite_scope(branch, express) or changed
    return changed


def accepting_definitions(original: Callable[..., Any], position: int) -> Callable[..., Any]:
    """Wrap a backend method whose ``definition`` is its ``position``-th argument (after self) and
    whose first is the state machine's name or ARN (create, update)."""

    def method(backend: Any, *args: Any, **kwargs: Any) -> Any:
        named = kwargs.get("name", kwargs.get("state_machine_arn", args[0] if args else None))
        machine = str(named).rsplit(":", 1)[-1] if named is not None else None
        if "definition" in kwargs:
            kwargs["definition"] = for_moto(kwargs["definition"], machine)
        elif len(args) > position:
            args = (*args[:position], for_moto(args[position], machine), *args[position + 1 :])
        return original(backend, *args, **kwargs)

    return method


# -- the children of a map run -------------------------------------------------------------------


@dataclass
class Child:
    """One child workflow execution of a map run, as the ResultWriter reports it; a STANDARD one
    keeps its history (``events``: its own moto EventManager) and answers the Step Functions API."""

    index: int
    name: str
    start: datetime.datetime
    status: str = "RUNNING"
    input: Any = None
    output: Any = None
    error: str | None = None
    cause: str | None = None
    stop: datetime.datetime | None = None
    arn: str = ""
    machine_arn: str = ""
    map_run_arn: str = ""
    events: Any = None


@dataclass
class MapRunChildren:
    """The children of one map run (moto's MapRunRecord keeps only counts): every STANDARD one
    from its start (``started``, by ARN), and every one that ended (``ended``)."""

    ended: list[Child] = field(default_factory=list)
    started: dict[str, Child] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def begin(self, child: Child) -> None:
        with self.lock:
            self.started[child.arn] = child

    def add(self, child: Child) -> None:
        with self.lock:
            self.ended.append(child)

    def listed(self) -> list[Child]:
        """The STANDARD children, newest first (ListExecutions' order)."""
        with self.lock:
            return sorted(self.started.values(), key=lambda c: (c.start, c.index), reverse=True)

    def by_status(self) -> dict[str, list[Child]]:
        with self.lock:
            ended = sorted(self.ended, key=lambda c: c.index)
        grouped: dict[str, list[Child]] = {"SUCCEEDED": [], "FAILED": [], "PENDING": []}
        for child in ended:
            grouped["SUCCEEDED" if child.status == "SUCCEEDED" else "FAILED"].append(child)
        return grouped


_children: weakref.WeakKeyDictionary[Any, MapRunChildren] = weakref.WeakKeyDictionary()
_children_lock = threading.Lock()
#: state machine name -> the names of its Map states whose children are EXPRESS
_express_maps: dict[str, frozenset[str]] = {}


def children_of(map_run_record: Any) -> MapRunChildren:
    with _children_lock:
        found = _children.get(map_run_record)
        if found is None:
            found = _children[map_run_record] = MapRunChildren()
        return found


def _all_children() -> list[tuple[Any, MapRunChildren]]:
    with _children_lock:
        return list(_children.items())


def child_named(arn: str) -> Child | None:
    """The STANDARD child execution of that ARN, of any map run still known."""
    for _record, children in _all_children():
        with children.lock:
            found = children.started.get(arn)
        if found is not None:
            return found
    return None


def children_of_run(map_run_arn: str) -> MapRunChildren | None:
    for record, children in _all_children():
        if getattr(record, "map_run_arn", None) == map_run_arn:
            return children
    return None


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


def _is_express(env: Any) -> bool:
    context = env.states.context_object.context_object_data
    machine = str((context.get("StateMachine") or {}).get("Name") or "").split("/")[0]
    state = str((context.get("State") or {}).get("Name") or "")
    with _children_lock:
        return state in _express_maps.get(machine, frozenset())


def _own_history(env: Any, child: Child, record: Any) -> None:
    """Give a STANDARD child its own history, opened as an execution's is."""
    from moto.stepfunctions.parser.api import (
        ExecutionStartedEventDetails,
        HistoryEventExecutionDataDetails,
        HistoryEventType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext, EventManager

    child.events = env.event_manager = EventManager()
    env.event_history_context = EventHistoryContext.of_program_start()
    env.event_manager.add_event(
        context=env.event_history_context,
        event_type=HistoryEventType.ExecutionStarted,
        event_details=EventDetails(
            executionStartedEventDetails=ExecutionStartedEventDetails(
                input=json.dumps(child.input),
                inputDetails=HistoryEventExecutionDataDetails(truncated=False),
                roleArn=str(getattr(env.aws_execution_details, "role_arn", "") or ""),
            )
        ),
        update_source_event_id=False,
    )


def _close_history(env: Any, child: Child) -> None:
    from moto.stepfunctions.parser.api import (
        ExecutionAbortedEventDetails,
        ExecutionFailedEventDetails,
        ExecutionSucceededEventDetails,
        ExecutionTimedOutEventDetails,
        HistoryEventExecutionDataDetails,
        HistoryEventType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    why = {k: v for k, v in (("error", child.error), ("cause", child.cause)) if v is not None}
    if child.status == "SUCCEEDED":
        kind, details = (
            HistoryEventType.ExecutionSucceeded,
            EventDetails(
                executionSucceededEventDetails=ExecutionSucceededEventDetails(
                    output=json.dumps(child.output),
                    outputDetails=HistoryEventExecutionDataDetails(truncated=False),
                )
            ),
        )
    elif child.status == "TIMED_OUT":
        kind = HistoryEventType.ExecutionTimedOut
        details = EventDetails(executionTimedOutEventDetails=ExecutionTimedOutEventDetails(**why))
    elif child.status == "ABORTED":
        kind = HistoryEventType.ExecutionAborted
        details = EventDetails(executionAbortedEventDetails=ExecutionAbortedEventDetails(**why))
    else:
        kind = HistoryEventType.ExecutionFailed
        details = EventDetails(executionFailedEventDetails=ExecutionFailedEventDetails(**why))
    env.event_manager.add_event(context=env.event_history_context, event_type=kind, event_details=details)


def eval_child(worker: Any, env: Any, job: Any) -> None:
    """``DistributedItemProcessorWorker._eval_job``: run one child as moto does, keep what the
    ResultWriter reports of it (and, STANDARD, its own history), count it in the map run, and fail
    the map run once the failure threshold is exceeded (the job's output is then the failure, which
    ends moto's job pool)."""
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
    machine = str(record.map_state_machine_arn)
    name = str(uuid.uuid4())
    child = Child(
        index=job.job_index,
        name=name,
        start=_now(),
        input=job.job_input,
        arn=f"{machine.replace(':stateMachine:', ':execution:', 1)}:{name}",
        machine_arn=machine,
        map_run_arn=str(record.map_run_arn),
    )
    standard = not _is_express(env)
    try:
        env.states.context_object.context_object_data["Map"] = MapData(
            Item=ItemData(Index=job.job_index, Value=job.job_input)
        )
        env.states.reset(job.job_input)
        env.stack.append(env.states.get_input())
        worker._eval_input(env_frame=env)
        child.input = env.states.get_input()
        if standard:
            _own_history(env, child, record)
            children.begin(child)
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
        if child.events is not None:
            _close_history(env, child)
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
    for child in children:
        entry: dict[str, Any] = {
            "ExecutionArn": child.arn,
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
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import (
        resource_eval_s3,
    )

    boto_client_for = resource_eval_s3.boto_client_for  # the local stack's cached clients
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


# -- child executions through the Step Functions API ----------------------------------------------


def _map_run_record(backend: Any, map_run_arn: str) -> Any:
    for execution in backend._get_executions():
        worker = getattr(execution, "exec_worker", None)
        env = getattr(worker, "env", None)
        if env is None:
            continue
        found = env.map_run_record_pool_manager.get(map_run_arn)
        if found is not None:
            return found
    return None


def _listed_entry(child: Child) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "executionArn": child.arn,
        "name": child.name,
        "startDate": child.start,
        "stateMachineArn": child.machine_arn,
        "status": child.status,
        "mapRunArn": child.map_run_arn,
    }
    if child.stop is not None and child.status != "RUNNING":
        entry["stopDate"] = child.stop
    return entry


def answer_list_executions(original: Callable[..., Any]) -> Callable[..., Any]:
    """``StepFunctionResponse.list_executions`` answering ``mapRunArn`` (a map run's STANDARD
    children, newest first, ``maxResults`` at a time with an opaque ``nextToken``); the rest is moto's."""
    from moto.core.responses import ActionResult
    from moto.stepfunctions.exceptions import ResourceNotFound

    def method(response: Any) -> Any:
        map_run_arn = response._get_param("mapRunArn")
        if not map_run_arn:
            return original(response)
        record = _map_run_record(response.stepfunction_backend, str(map_run_arn))
        if record is None:
            raise ResourceNotFound(str(map_run_arn))
        listed = children_of(record).listed()
        status = response._get_param("statusFilter")
        if status:
            listed = [c for c in listed if c.status == status]
        size = int(response._get_int_param("maxResults") or 100)
        start = int(response._get_param("nextToken") or 0)
        page = listed[start : start + size]
        token = str(start + size) if start + size < len(listed) else None
        return ActionResult({"executions": [_listed_entry(c) for c in page], "nextToken": token})

    return method


def answer_describe_execution(original: Callable[..., Any]) -> Callable[..., Any]:
    """``StepFunctionResponse.describe_execution`` answering a STANDARD child's ARN."""
    from moto.core.responses import ActionResult

    def method(response: Any) -> Any:
        child = child_named(str(response._get_param("executionArn") or ""))
        if child is None:
            return original(response)
        described = _listed_entry(child)
        described["input"] = json.dumps(child.input)
        if child.status == "SUCCEEDED":
            described["output"] = json.dumps(child.output)
        for key, value in (("error", child.error), ("cause", child.cause)):
            if value is not None and child.status != "RUNNING":
                described[key] = value
        return ActionResult(described)

    return method


def answer_execution_history(original: Callable[..., Any]) -> Callable[..., Any]:
    """``StepFunctionResponse.get_execution_history`` answering a STANDARD child's ARN (its whole
    history in one page, as moto answers a parent's)."""
    from moto.core.responses import ActionResult

    def method(response: Any) -> Any:
        child = child_named(str(response._get_param("executionArn") or ""))
        if child is None:
            return original(response)
        return ActionResult({"events": child.events.get_event_history()})

    return method


# -- the map run's workers -------------------------------------------------------------------------


def map_run(component: Any, env: Any, eval_input: Any) -> None:
    """``DistributedIterationComponent._map_run``: as moto runs it, but with no more worker threads
    than items (moto started MaxConcurrency workers, each with a frame of its own, for any number of
    items: 40 for a reconcile of two endpoints); at least one, which ends an empty run."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.job import JobPool
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.max_concurrency import (
        DEFAULT_MAX_CONCURRENCY_VALUE,
    )

    input_items: list[Any] = env.stack.pop()
    job_pool = JobPool(job_program=component._get_iteration_program(), job_inputs=input_items)
    most = eval_input.map_run_record.max_concurrency
    wanted = len(input_items) if most == DEFAULT_MAX_CONCURRENCY_VALUE else min(most, len(input_items))
    for _ in range(max(1, wanted)):
        component._launch_worker(env=env, eval_input=eval_input, job_pool=job_pool)
    job_pool.await_jobs()
    worker_exception = job_pool.get_worker_exception()
    if worker_exception is not None:
        raise worker_exception
    env.stack.append([closed.job_output for closed in job_pool.get_closed_jobs()])
