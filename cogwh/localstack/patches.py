"""The places the local stack hooks into moto 5.2.5 (pinned in pyproject: these touch internals).

- Lambda invocations go to the in-process handlers: ``LambdaSimpleBackend.invoke`` (Step Functions
  tasks, SQS event source mappings, the Lambda API) and ``LambdaFunction.invoke`` (DynamoDB streams).
- ``StepFunctionsParserBackend.start_execution`` gets a uuid name when none is given (moto names the
  execution ``None`` and refuses a second unnamed start).
- DynamoDB streams as AWS emits them: ``StreamShard.add`` runs under a lock (concurrent writers
  duplicated deliveries); ``update_item`` creating an item emits one INSERT, not two (moto first puts
  the bare key); ``transact_write_items`` emits its records once it commits, none when cancelled,
  and backs up only the items it names (moto deep-copied whole tables: quadratic in a big run);
  ``LambdaBackend.send_dynamodb_items`` hands the records to the stack's stream workers and returns
  (moto invoked the consumer inside the writer's call): delivery happens after the write.
- Secrets Manager's backend calls run one at a time, and its store finds a secret by name (or a full
  ARN's name) before scanning them all: moto scanned every secret per lookup, and a lookup racing a
  create raised "dictionary changed size during iteration".
- The sleeps of the retrier (``retrier_decl.time.sleep``) and of Wait states
  (``WaitFunction._wait_interval``) are scaled by the stack's time factor.
- ``ExecutionWorker._execution_logic`` reports when an execution ends, so waiting needs no polling;
  ``AmazonStateLanguageParser.parse`` parses a definition once, not at its creation and again at
  every execution's start.
- ``ExecutionWorker.stop`` waits the moment a just-started worker needs to build its environment
  (moto raised AttributeError when StopExecution came right after StartExecution).
- ``Environment.set_error`` leaves a stopped execution stopped (moto let the error of a Map
  iteration aborted by the stop turn ABORTED into FAILED).
- ``events.models.Rule.send_to_targets`` delivers to state machine and Lambda targets (moto raises
  NotImplementedError for them), honours the rule's State, and never lets a rule without an event
  pattern (a schedule) match put_events.
- Distributed Map as Step Functions runs it (distributed.py): ``create_state_machine`` and
  ``update_state_machine`` accept what AWS accepts (Express children, an integer
  ToleratedFailurePercentage); ``DistributedItemProcessorWorker._eval_job`` keeps each child's result
  and fails the map run past its tolerated failures; the ResultWriter's ``_eval_body`` reads its
  Parameters' paths from the Map's input and its ``_handle_put_object`` writes the children's result
  files and a manifest naming them; each STANDARD child keeps its own history, and
  ``StepFunctionResponse``'s ``list_executions`` (``mapRunArn``), ``describe_execution`` and
  ``get_execution_history`` answer for it.

Every replacement is undone by ``restore``; each one calls back into the stack through ``Hooks``."""

from __future__ import annotations

import copy
import functools
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, Protocol

from cogwh.localstack import distributed

_MISSING = object()


class Hooks(Protocol):
    def dispatch(
        self, function: str, body: Any, headers: Mapping[str, Any] | None, response_headers: dict[str, Any]
    ) -> bytes | None:
        """The invocation's response body, or None when the function is not one of the stack's."""

    def retry_sleep(self, seconds: float) -> None: ...

    def wait_state(self, env: Any, seconds: float) -> None: ...

    def execution_started(self, arn: str) -> None: ...

    def execution_ended(self, arn: str, crash: BaseException | None) -> None: ...

    def deliver_event(self, rule: Any, target: Mapping[str, Any], event: Mapping[str, Any]) -> None: ...

    def stream_batch(self, function_arn: str, stream_arn: str, deliver: Callable[[], Any]) -> None:
        """Queue ``deliver`` (one batch of stream records to one function) behind the mapping's others."""


class _ScaledTime:
    """Stands in for the ``time`` module inside moto's retrier: only ``sleep`` changes."""

    def __init__(self, sleep: Callable[[float], None]) -> None:
        self._sleep = sleep

    def sleep(self, seconds: float) -> None:
        self._sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class MotoPatches:
    def __init__(self, hooks: Hooks) -> None:
        self._hooks = hooks
        self._saved: list[tuple[Any, str, Any]] = []

    def _swap(self, owner: type | ModuleType, name: str, make: Callable[[Any], Any]) -> None:
        """Replace ``owner.name`` with ``make(original)``, remembering the original."""
        original = vars(owner).get(name, _MISSING)
        if original is _MISSING:
            raise RuntimeError(f"moto changed: {owner!r} has no {name}")
        self._saved.append((owner, name, original))
        setattr(owner, name, make(original))

    def install(self) -> None:
        from moto.awslambda.models import LambdaBackend, LambdaFunction
        from moto.awslambda_simple.models import LambdaSimpleBackend
        from moto.dynamodb.models import DynamoDBBackend
        from moto.dynamodb.models.table import StreamShard
        from moto.events.models import Rule
        from moto.secretsmanager.models import SecretsManagerBackend, SecretsStore
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval import (
            resource_eval_s3 as item_reader_s3,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
            distributed_iteration_component,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
            distributed_item_processor_worker as dmap_worker,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer import (
            result_writer_decl,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import (
            resource_eval_s3 as result_writer_s3,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
            WaitFunction,
        )
        from moto.stepfunctions.parser.asl.eval.environment import Environment
        from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
        from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
        from moto.stepfunctions.parser.models import StepFunctionsParserBackend
        from moto.stepfunctions.responses import StepFunctionResponse

        hooks = self._hooks
        try:
            self._swap(LambdaSimpleBackend, "invoke", lambda original: _backend_invoke(hooks, original))
            self._swap(LambdaFunction, "invoke", lambda original: _function_invoke(hooks, original))
            self._swap(StepFunctionsParserBackend, "start_execution", _named_start_execution)
            self._swap(StreamShard, "add", _stream_add)
            self._swap(
                LambdaBackend, "send_dynamodb_items", lambda original: _queued_stream_batch(hooks, original)
            )
            self._swap(DynamoDBBackend, "update_item", _single_insert_update)
            for name in _SECRETS_CALLS:
                if name in vars(SecretsManagerBackend):
                    self._swap(SecretsManagerBackend, name, _serialised_secrets)
            for name in ("get", "__getitem__", "__contains__"):
                self._swap(SecretsStore, name, _named_first)
            self._swap(DynamoDBBackend, "transact_write_items", _item_rollback)
            self._swap(DynamoDBBackend, "transact_write_items", _committed_stream_records)
            for write in (
                "put_item",
                "update_item",
                "delete_item",
                "batch_write_item",
                "transact_write_items",
            ):
                self._swap(DynamoDBBackend, write, _serialised_write)  # outermost
            self._swap(retrier_decl, "time", lambda original: _ScaledTime(hooks.retry_sleep))
            self._swap(WaitFunction, "_wait_interval", lambda original: _scaled_wait(hooks))
            self._swap(
                ExecutionWorker, "_execution_logic", lambda original: _reporting_logic(hooks, original)
            )
            self._swap(Rule, "send_to_targets", lambda original: _routing_send(hooks, original))
            self._swap(Environment, "set_error", _stop_wins_over_error)
            self._swap(lambda_eval_utils, "boto_client_for", _cached_clients)
            for reads_or_writes in (item_reader_s3, result_writer_s3):  # a new S3 client per map run
                self._swap(reads_or_writes, "boto_client_for", _cached_clients)
            self._swap(ExecutionWorker, "stop", _stop_after_start)
            self._swap(AmazonStateLanguageParser, "parse", _parsed_once)
            for create_or_update in ("create_state_machine", "update_state_machine"):
                self._swap(
                    StepFunctionsParserBackend,
                    create_or_update,
                    lambda original: distributed.accepting_definitions(original, 1),
                )
            self._swap(
                dmap_worker.DistributedItemProcessorWorker,
                "_eval_job",
                lambda original: distributed.eval_child,
            )
            self._swap(
                distributed_iteration_component.DistributedIterationComponent,
                "_map_run",
                lambda original: distributed.map_run,
            )
            self._swap(
                result_writer_s3.ResourceEvalS3,
                "_handle_put_object",
                lambda original: staticmethod(distributed.write_results),
            )
            self._swap(
                result_writer_decl.ResultWriter, "_eval_body", lambda original: distributed.writer_body
            )
            self._swap(StepFunctionResponse, "list_executions", distributed.answer_list_executions)
            self._swap(StepFunctionResponse, "describe_execution", distributed.answer_describe_execution)
            self._swap(StepFunctionResponse, "get_execution_history", distributed.answer_execution_history)
        except BaseException:
            self.restore()
            raise

    def restore(self) -> None:
        while self._saved:
            owner, name, original = self._saved.pop()
            setattr(owner, name, original)


def _parsed_once(original: Any) -> Any:
    """moto parses a state machine's ASL with ANTLR (~0.3 s for the reconcile's) when it is created
    and again at every execution's start; here once per definition text (a refused one is parsed,
    and refused, every time). The parsed program is evaluated against each execution's own
    environment (moto's children of one map run already share one program), so it is shared."""
    parse = original.__func__ if isinstance(original, staticmethod) else original

    @functools.lru_cache(maxsize=64)
    def parsed(definition: str) -> Any:
        return parse(definition)

    return staticmethod(parsed)


def _cached_clients(original: Any) -> Any:
    """The interpreter builds a new boto3 Lambda client for every Task it runs (~15% of a watch's CPU
    here); a client is thread-safe, so one per region, service and endpoint serves every Task. A call
    with the state's own credentials gets a client of its own, as before."""
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port

    made: dict[tuple[Any, ...], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        if state_credentials is not None:
            return original(region, service, state_credentials)
        key = (region, service, botocore_stubber.enabled, moto_server_port())
        with lock:
            client = made.get(key)
            if client is None:
                client = made[key] = original(region, service)
        return client

    return boto_client_for


def _backend_invoke(hooks: Hooks, original: Any) -> Any:
    def invoke(
        backend: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any
    ) -> Any:
        result = hooks.dispatch(function_name, body, headers, response_headers)
        if result is None:
            return original(backend, function_name, qualifier, body, headers, response_headers)
        response_headers["Content-Length"] = str(len(result))
        return result

    return invoke


def _function_invoke(hooks: Hooks, original: Any) -> Any:
    def invoke(function: Any, body: Any, request_headers: Any, response_headers: Any) -> Any:
        result = hooks.dispatch(function.function_arn, body, request_headers, response_headers)
        if result is None:
            return original(function, body, request_headers, response_headers)
        return result

    return invoke


def _named_start_execution(original: Any) -> Any:
    def start_execution(
        backend: Any,
        state_machine_arn: str,
        name: Any = None,
        execution_input: Any = None,
        trace_header: Any = None,
    ) -> Any:
        return original(backend, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header)

    return start_execution


# Per thread: skip the bare-key INSERT of an update_item that creates its item; collect the stream
# records of a transaction until it commits.
_stream_state = threading.local()


def _stream_add(original: Any) -> Any:
    locks: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
    guard = threading.Lock()

    def add(shard: Any, old: Any, new: Any) -> None:
        if old is None and getattr(_stream_state, "skip_bare_insert", False):
            _stream_state.skip_bare_insert = False
            return
        pending = getattr(_stream_state, "transaction", None)
        if pending is not None:
            pending.append((shard, old, new))
            return
        with guard:
            lock = locks.setdefault(shard, threading.Lock())
        with lock:  # the record's sequence number and its place in the delivery queue, together
            original(shard, old, new)

    return add


def _queued_stream_batch(hooks: Hooks, original: Any) -> Any:
    def send_dynamodb_items(backend: Any, function_arn: str, items: Any, source: str) -> bool:
        batch = list(items)  # moto's shard forgets them once this returns true, as after a delivery
        hooks.stream_batch(function_arn, source, lambda: original(backend, function_arn, batch, source))
        return True

    return send_dynamodb_items


def _single_insert_update(original: Any) -> Any:
    def update_item(backend: Any, *args: Any, **kwargs: Any) -> Any:
        _stream_state.skip_bare_insert = True  # consumed by moto's inner put of the bare key, if any
        try:
            return original(backend, *args, **kwargs)
        finally:
            _stream_state.skip_bare_insert = False

    return update_item


# moto 5.2.5's transact_write_items deep-copies the tables it writes (for its rollback) while other
# threads (Map workers) write to them: "dictionary changed size during iteration", and a rollback would
# restore over their writes. One lock around every write keeps each one whole (re-entrant: moto's own
# write methods may call one another).
_WRITE_LOCK = threading.RLock()


def _serialised_write(original: Any) -> Any:
    def write(backend: Any, *args: Any, **kwargs: Any) -> Any:
        with _WRITE_LOCK:
            return original(backend, *args, **kwargs)

    return write


#: The Secrets Manager backend's calls, serialised: moto's secret store finds a secret by scanning
#: every secret (a name or an ARN), so a lookup racing a create fails with "dictionary changed size
#: during iteration" (60 of 3,000 registers, each storing its URLToken, did).
_SECRETS_CALLS: tuple[str, ...] = (
    "cancel_rotate_secret",
    "get_secret_value",
    "batch_get_secret_value",
    "update_secret",
    "create_secret",
    "create_managed_secret",
    "put_secret_value",
    "describe_secret",
    "rotate_secret",
    "list_secret_version_ids",
    "list_secrets",
    "delete_secret",
    "restore_secret",
    "update_secret_version_stage",
    "put_resource_policy",
    "get_resource_policy",
    "delete_resource_policy",
    "replicate_secret_to_regions",
    "remove_regions_from_replication",
    "tag_resource",
    "untag_resource",
)
_SECRETS_LOCK = threading.RLock()


def _serialised_secrets(original: Any) -> Any:
    def call(backend: Any, *args: Any, **kwargs: Any) -> Any:
        with _SECRETS_LOCK:
            return original(backend, *args, **kwargs)

    return call


def _named_first(original: Any) -> Any:
    """``SecretsStore``'s lookups try the secret's name (the store's own key) and, for a full ARN,
    the name it ends with before scanning every secret as moto does (a scan per lookup made a run
    of 3,000 endpoints quadratic)."""

    contains = original.__name__ == "__contains__"

    def lookup(store: Any, key: Any, *args: Any) -> Any:
        if isinstance(key, str):
            found = dict.get(store, key)
            if found is None and ":secret:" in key:
                candidate = dict.get(store, key.split(":secret:", 1)[1][:-7])  # <name>-XXXXXX
                found = candidate if candidate is not None and candidate.arn == key else None
            if found is not None:
                return True if contains else found
        return original(store, key, *args)

    return lookup


class _TablesKept:
    """Stands in for the ``copy`` module inside moto's DynamoDB backend during a transaction: a
    Table is not copied (its touched items are, by :func:`_item_rollback`), anything else is."""

    @staticmethod
    def deepcopy(obj: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        return obj if isinstance(obj, Table) else copy.deepcopy(obj, memo)


def _item_rollback(original: Any) -> Any:
    """moto backs a transaction up by deep-copying every table it touches, whole: each transaction
    then costs the size of the tables (a 3,000-endpoint reconcile spent minutes copying the audit
    table). Here only the items the transaction names are kept, and put back when it is cancelled,
    as DynamoDB's own all-or-nothing. Writes are serialised (``_serialised_write``), so swapping the
    backend module's ``copy`` for the call is seen by this transaction alone."""
    from moto.dynamodb.models import dynamo_type

    def transact_write_items(backend: Any, transact_items: Any, *args: Any, **kwargs: Any) -> Any:
        import moto.dynamodb.models as models

        kept: list[tuple[Any, Any, Any, Any]] = []
        for entry in transact_items if isinstance(transact_items, list) else []:
            _, op = next(iter(entry.items()))
            table = backend.tables.get(op.get("TableName")) if isinstance(op, dict) else None
            if table is None:
                continue
            key = op.get("Key") or op.get("Item") or {}
            if table.hash_key_attr not in key or (table.range_key_attr and table.range_key_attr not in key):
                continue  # a bad key: moto refuses it in its own words below
            hash_value = dynamo_type.DynamoType(key[table.hash_key_attr])
            range_value = dynamo_type.DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            current = table.get_item(hash_value, range_value)
            kept.append((table, hash_value, range_value, copy.deepcopy(current)))
        saved = models.copy
        models.copy = _TablesKept
        try:
            return original(backend, transact_items, *args, **kwargs)
        except BaseException:
            for table, hash_value, range_value, old in reversed(kept):
                _put_back(table, hash_value, range_value, old)
            raise
        finally:
            models.copy = saved

    return transact_write_items


def _put_back(table: Any, hash_value: Any, range_value: Any, old: Any) -> None:
    if range_value is not None:
        if old is None:
            table.items.get(hash_value, {}).pop(range_value, None)
        else:
            table.items[hash_value][range_value] = old
    elif old is None:
        table.items.pop(hash_value, None)
    else:
        table.items[hash_value] = old


def _committed_stream_records(original: Any) -> Any:
    def transact_write_items(backend: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_stream_state, "transaction", None) is not None:
            return original(backend, *args, **kwargs)
        pending: list[tuple[Any, Any, Any]] = []
        _stream_state.transaction = pending
        try:
            result = original(backend, *args, **kwargs)
        finally:
            _stream_state.transaction = None
        for shard, old, new in pending:  # committed: deliver in order (a cancelled one raised above)
            type(shard).add(shard, old, new)
        return result

    return transact_write_items


def _scaled_wait(hooks: Hooks) -> Any:
    def wait_interval(wait_function: Any, env: Any, wait_seconds: int) -> None:
        hooks.wait_state(env, wait_seconds)

    return wait_interval


def _reporting_logic(hooks: Hooks, original: Any) -> Any:
    def execution_logic(worker: Any) -> None:
        arn = worker._evaluation_details.execution_details.arn
        hooks.execution_started(arn)
        crash: BaseException | None = None
        try:
            original(worker)
        except BaseException as exc:
            crash = exc
            raise
        finally:
            hooks.execution_ended(arn, crash)

    return execution_logic


def _stop_after_start(original: Any) -> Any:
    def stop(worker: Any, stop_date: Any, error: Any, cause: Any) -> None:
        deadline = time.monotonic() + 5
        while worker.env is None and time.monotonic() < deadline:  # moto offers no hook for this
            time.sleep(0.005)
        original(worker, stop_date=stop_date, error=error, cause=cause)

    return stop


def _stop_wins_over_error(original: Any) -> Any:
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

    def set_error(env: Any, error: Any) -> None:
        if isinstance(env._program_state, ProgramStopped):
            return
        original(env, error)

    return set_error


def _routing_send(hooks: Hooks, original: Any) -> Any:
    def send_to_targets(rule: Any, original_event: Any, transform_input: bool = True) -> None:
        if rule.state != "ENABLED" or not rule.event_pattern.get_pattern():
            return  # a disabled rule delivers nothing; a schedule rule only fires on its schedule
        ours = [t for t in rule.targets if _arn_service(t.get("Arn", "")) in ("states", "lambda")]
        if ours and rule.event_pattern.matches_event(original_event):
            for target in ours:
                hooks.deliver_event(rule, target, original_event)
        others = [t for t in rule.targets if t not in ours]
        if others:
            view = object.__new__(type(rule))  # a copy that moto does not track as a model instance
            view.__dict__.update(rule.__dict__)
            view.targets = others
            original(view, original_event, transform_input)

    return send_to_targets


def _arn_service(arn: str) -> str:
    parts = str(arn).split(":")
    return parts[2] if len(parts) > 2 else ""
