"""The embedded local stack: template.yaml on moto's in-process AWS, no Docker.

Tables, buckets, queues, buses, rules, secrets, functions and state machines are created from the
template's own properties; state machines run on moto's ASL interpreter from the same ASL files;
every Lambda invocation (Step Functions task, DynamoDB stream, SQS, EventBridge) runs the handler
that CodeUri + Handler name, in this process. One local stack may be open at a time per process.

As on Lambda, each function has its own environment: while the stack runs, ``os.environ`` shows a
function's code its template Environment (and ``extra_env``) over the process environment, and
other code the process environment (environ.py). DynamoDB stream records reach their consumers
after the write, on a worker per event source mapping (streams.py): :meth:`LocalStack.drain_streams`
waits until they have."""

from __future__ import annotations

import datetime
import http.client
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, overload
from unittest import mock

import boto3

from cogwh.localstack import environ, eventbridge
from cogwh.localstack.errors import LocalStackError
from cogwh.localstack.handlers import FunctionSpec, Handlers
from cogwh.localstack.patches import MotoPatches
from cogwh.localstack.provision import ApiRoute, Provisioner, Schedule
from cogwh.localstack.streams import StreamWorkers
from cogwh.localstack.template import Template, as_text

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_stepfunctions import SFNClient

log = logging.getLogger("cogwh.localstack")

REPO_ROOT = Path(__file__).resolve().parents[2]
MOTO_CONFIG: dict[str, Any] = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
# Variables that would send in-process boto3 clients elsewhere than the mock while the stack runs.
_CLEARED_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_SECURITY_TOKEN")
_CLOSE_TIMEOUT = 10.0

_active_lock = threading.Lock()
_active: LocalStack | None = None


class LocalStack:
    """``with LocalStack(root) as stack:`` runs ``root/template.yaml`` until the block ends.

    ``time_factor`` scales the Step Functions retry intervals and Wait states (0.0 instant, 1.0
    real time). ``parameters`` override the template's parameter defaults. ``extra_env`` is added
    to every function's environment (it wins over the template's values). ``server=True``
    also serves the mock over HTTP on 127.0.0.1 for other processes (``endpoint_url``).

    ``base_env`` holds what the stack sets in the process environment while it runs (fake
    credentials, region, ``MOTO_PORT`` in server mode): what a process of its own needs to reach
    the stack. A function's own variables are :meth:`environment`."""

    def __init__(
        self,
        root: Path | str = REPO_ROOT,
        *,
        template: str = "template.yaml",
        stack_name: str = "cogwh-local",
        parameters: Mapping[str, str] | None = None,
        time_factor: float = 0.0,
        region: str = "us-east-1",
        extra_env: Mapping[str, str] | None = None,
        server: bool = False,
    ) -> None:
        if time_factor < 0:
            raise LocalStackError(f"time_factor must be 0 or more, not {time_factor}")
        self.root = Path(root)
        self.template_path = self.root / template
        self.stack_name = stack_name
        self.region = region
        self.time_factor = float(time_factor)
        self.server = server
        self._parameters = dict(parameters or {})
        self._extra_env = dict(extra_env or {})
        self.outputs: dict[str, Any] = {}
        self.base_env: dict[str, str] = {}
        self.api_routes: list[ApiRoute] = []
        self.schedules: list[Schedule] = []
        self._endpoint_url: str | None = None
        self.setup_seconds = 0.0
        self._template: Template | None = None
        self._handlers = Handlers()
        self._streams = StreamWorkers()
        self._state_machines: dict[str, str] = {}
        self._exit = ExitStack()
        self._session: boto3.session.Session | None = None
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._env_saved: dict[str, str | None] = {}
        self._closing = threading.Event()
        self._executions = threading.Condition()
        self._running: set[str] = set()
        self._ended_generation = 0
        self._crashes: dict[str, BaseException] = {}
        self._server: Any = None
        self._started = False

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> LocalStack:
        global _active
        with _active_lock:
            if _active is not None:
                raise LocalStackError(
                    f"another local stack ({_active.stack_name}) is open in this process; close it first"
                )
            _active = self
        # a stack may be started again after close: fresh per-run state
        self._handlers = Handlers()
        self._streams = StreamWorkers()
        self._closing = threading.Event()
        self._running.clear()
        self._crashes.clear()
        started = time.perf_counter()
        try:
            self._start()
        except BaseException:
            self._shutdown()
            raise
        self.setup_seconds = time.perf_counter() - started
        log.info("local stack %s ready in %.2f s", self.stack_name, self.setup_seconds)
        return self

    def _start(self) -> None:
        from moto import mock_aws
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.core.config import default_user_config

        if not self.template_path.is_file():
            raise LocalStackError(f"no template at {self.template_path}")
        template = Template(
            self.template_path,
            stack_name=self.stack_name,
            region=self.region,
            account_id=DEFAULT_ACCOUNT_ID,
            parameters=self._parameters,
        )
        self._template = template
        self._set_env({**FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": self.region, "AWS_REGION": self.region})
        self._unset_env(_CLEARED_ENV)
        self._exit.callback(environ.uninstall, environ.install())  # each function its own environment
        self._exit.enter_context(mock.patch.dict(default_user_config, MOTO_CONFIG))
        self._exit.enter_context(mock_aws(config=MOTO_CONFIG))
        self._started = True
        patches = MotoPatches(self)
        patches.install()
        self._exit.callback(patches.restore)
        # One session per region for the whole process: its loader caches the service models, so
        # a later stack builds its clients in milliseconds. It is also the default session while
        # the stack runs (mock_aws restores the previous one when it exits): moto's interpreter and
        # the handlers' module-level clients then share its cache and fake credentials.
        self._session = _session_for(self.region)
        self._exit.enter_context(mock.patch("boto3.DEFAULT_SESSION", self._session))
        if self.server:
            self._start_server()

        provisioner = Provisioner(template, self._provisioning_client)
        for logical_id in provisioner.plan():
            provisioner.create(logical_id)
        for spec in provisioner.functions.values():
            self._handlers.add(spec, self._extra_env)
        self._state_machines = provisioner.state_machines
        self.api_routes = provisioner.api_routes
        self.schedules = provisioner.schedules

        self.base_env = {k: os.environ[k] for k in self._env_saved if k in os.environ}
        self._handlers.load_all()
        self.outputs = template.outputs()

    def _start_server(self) -> None:
        try:
            import flask  # noqa: F401  (moto's server needs it and only warns when it is missing)
        except ImportError:
            raise LocalStackError(
                "server mode needs moto's server extra (flask, flask-cors): install moto[server]"
            ) from None
        from moto.server import ThreadedMotoServer

        werkzeug_log = logging.getLogger("werkzeug")  # one line per request on stderr otherwise
        self._exit.callback(werkzeug_log.setLevel, werkzeug_log.level)
        werkzeug_log.setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        self._server = server
        host, port = server.get_host_and_port()
        self._endpoint_url = f"http://{host}:{port}"
        # moto's interpreter calls localhost:$MOTO_PORT when it is not intercepting in-process
        self._set_env({"MOTO_PORT": str(port)})
        connection = http.client.HTTPConnection(host, port, timeout=10)
        try:  # the config, as a server in its own process would get it; also proves the server answers
            connection.request(
                "POST", "/moto-api/config", json.dumps(MOTO_CONFIG), {"Content-Type": "application/json"}
            )
            status = connection.getresponse().status
        finally:
            connection.close()
        if status not in (200, 201):
            raise LocalStackError(f"moto server refused its config: HTTP {status}")

    def close(self) -> None:
        """Stop running executions, unload the handlers, leave the mock, restore patches and env."""
        self._shutdown()

    def _shutdown(self) -> None:
        """Every step runs even when one fails (a failure is logged; the first is raised at the end)."""
        global _active
        first_error: Exception | None = None
        for step in (
            self._stop_running,
            self._stop_server,
            self._exit.close,
            self._forget,
            self._restore_env,
        ):
            try:
                step()
            except Exception as exc:
                log.exception("closing the local stack: %s failed", step.__name__)
                first_error = first_error or exc
        self._started = False
        with _active_lock:
            if _active is self:
                _active = None
        if first_error is not None:
            raise first_error

    def _stop_running(self) -> None:
        if self._started:
            self._closing.set()
            self._stop_executions()
            self._handlers.join_async(_CLOSE_TIMEOUT)
            self._streams.close(_CLOSE_TIMEOUT)

    def _stop_server(self) -> None:
        if self._server is not None:
            server, self._server, self._endpoint_url = self._server, None, None
            server.stop()

    def _forget(self) -> None:
        self._handlers.unload()
        self._clients.clear()
        self._session = None  # a client made after close would reach for real AWS

    def _stop_executions(self) -> None:
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        account = self._require_template().account_id
        backend = stepfunctions_parser_backends[account][self.region]
        deadline = time.monotonic() + _CLOSE_TIMEOUT
        # a stopped Map logs its aborted iterations as errors: expected here, so kept quiet
        interpreter_log = logging.getLogger("moto.stepfunctions.parser")
        level = interpreter_log.level
        interpreter_log.setLevel(logging.CRITICAL)
        try:
            self._stop_each(backend, deadline)
        finally:
            interpreter_log.setLevel(level)

    def _stop_each(self, backend: Any, deadline: float) -> None:
        stopped: list[str] = []
        for state_machine in list(backend.state_machines):
            for execution in list(state_machine.executions):
                if execution.status != "RUNNING":
                    continue
                execution.stop(
                    stop_date=datetime.datetime.now(datetime.UTC),
                    error="LocalStackClosed",
                    cause="the local stack closed while the execution was running",
                )
                stopped.append(execution.exec_arn)
        with self._executions:
            self._executions.wait_for(
                lambda: not self._running, timeout=max(0.0, deadline - time.monotonic())
            )
            if self._running:
                log.warning("executions still running at close: %s", ", ".join(sorted(self._running)))
        if stopped:
            log.info("stopped %d running execution(s) at close", len(stopped))

    @property
    def endpoint_url(self) -> str:
        """The mock's HTTP endpoint for clients in other processes (server mode only)."""
        if self._endpoint_url is None:
            raise LocalStackError("endpoint_url exists in server mode only (LocalStack(..., server=True))")
        return self._endpoint_url

    # -- environment ---------------------------------------------------------------------------

    def _set_env(self, values: Mapping[str, str]) -> None:
        for key, value in values.items():
            self._env_saved.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def _unset_env(self, keys: Iterable[str]) -> None:
        for key in keys:
            if key in os.environ:
                self._env_saved.setdefault(key, os.environ.get(key))
                del os.environ[key]

    def _restore_env(self) -> None:
        for key, value in self._env_saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._env_saved.clear()

    # -- clients -------------------------------------------------------------------------------

    @overload
    def client(self, service: Literal["dynamodb"]) -> DynamoDBClient: ...
    @overload
    def client(self, service: Literal["stepfunctions"]) -> SFNClient: ...
    @overload
    def client(self, service: Literal["events"]) -> EventBridgeClient: ...
    @overload
    def client(self, service: Literal["s3"]) -> S3Client: ...
    @overload
    def client(self, service: Literal["secretsmanager"]) -> SecretsManagerClient: ...
    @overload
    def client(self, service: str) -> Any: ...

    def client(self, service: str) -> Any:
        """A boto3 client bound to the mock (through the HTTP endpoint in server mode)."""
        return self._make_client(service, self._endpoint_url)

    def _provisioning_client(self, service: str) -> Any:
        """An in-process client (no HTTP round trip, also in server mode)."""
        return self._make_client(service, None)

    def _make_client(self, service: str, endpoint_url: str | None) -> Any:
        if self._session is None:
            raise LocalStackError("the local stack is not running")
        key = f"{service}@{endpoint_url}"
        with self._clients_lock:
            if key not in self._clients:
                self._clients[key] = self._session.client(service, endpoint_url=endpoint_url)  # type: ignore[call-overload]
            return self._clients[key]

    # -- resources -----------------------------------------------------------------------------

    def _require_template(self) -> Template:
        if self._template is None or not self._started:
            raise LocalStackError("the local stack is not running")
        return self._template

    def physical_id(self, logical_id: str) -> str:
        """The Ref value of a resource: a table's name, a function's name, a state machine's ARN..."""
        return as_text(self._require_template().ref_value(logical_id), logical_id)

    def attribute(self, logical_id: str, name: str) -> str:
        """A resource's Fn::GetAtt attribute (``Arn``, ``StreamArn``, ``QueueUrl``, ...)."""
        return as_text(self._require_template().attribute(logical_id, name), f"{logical_id}.{name}")

    @property
    def functions(self) -> Mapping[str, FunctionSpec]:
        return self._handlers.specs

    def environment(self, logical_id: str) -> dict[str, str]:
        """The variables a function sets over the process environment: its template Environment
        (Globals merged) with ``extra_env``, and what its own code wrote since (a copy)."""
        self._require_template()
        return self._handlers.environ(self._handlers.spec(logical_id)).variables()

    @contextmanager
    def as_function(self, logical_id: str) -> Iterator[None]:
        """Run the block with ``os.environ`` as the function's code sees it."""
        self._require_template()
        with self._handlers.environ(self._handlers.spec(logical_id)).active():
            yield

    # -- DynamoDB streams ----------------------------------------------------------------------

    def stream_batch(self, function_arn: str, stream_arn: str, deliver: Callable[[], Any]) -> None:
        """The moto hook for a stream's records: queued for the mapping's worker, delivered later."""
        self._streams.submit(function_arn, stream_arn, deliver)

    def drain_streams(self, timeout: float = 60.0) -> None:
        """Wait until every DynamoDB stream record written so far has been delivered to its
        consumer, and the records those deliveries wrote in turn. Raises LocalStackError after
        ``timeout`` seconds (naming how many batches are left)."""
        self._require_template()
        self._streams.drain(timeout)

    # -- Lambda --------------------------------------------------------------------------------

    def invoke(self, logical_id: str, event: Any) -> Any:
        """Call a function's handler in this process (event and result through JSON, as on Lambda);
        the handler's exception propagates."""
        self._require_template()
        return self._handlers.invoke(self._handlers.spec(logical_id), event)

    def dispatch(
        self, function: str, body: Any, headers: Mapping[str, Any] | None, response_headers: dict[str, Any]
    ) -> bytes | None:
        """The moto hook for every Lambda invocation: run the handler in-process."""
        spec = self._handlers.find(function)
        if spec is None:
            return None
        invocation_type = _header(headers, "X-Amz-Invocation-Type") or "RequestResponse"
        if invocation_type == "DryRun":
            return b""
        if invocation_type == "Event":
            self._handlers.invoke_async(spec, body)
            return b""
        payload, errored = self._handlers.invoke_payload(spec, body)
        if errored:
            response_headers["x-amz-function-error"] = "Unhandled"
        return payload

    # -- Step Functions ------------------------------------------------------------------------

    def _state_machine_arn(self, logical_id_or_arn: str) -> str:
        if logical_id_or_arn.startswith("arn:"):
            return logical_id_or_arn
        if logical_id_or_arn not in self._state_machines:
            known = ", ".join(sorted(self._state_machines)) or "none"
            raise LocalStackError(f"no state machine {logical_id_or_arn!r} (state machines: {known})")
        return self._state_machines[logical_id_or_arn]

    def start_execution(self, state_machine: str, input: Any = None, name: str | None = None) -> str:
        """Start an execution of a state machine (logical id or ARN); returns the execution ARN."""
        response = self.client("stepfunctions").start_execution(
            stateMachineArn=self._state_machine_arn(state_machine),
            name=name or str(uuid.uuid4()),
            input=json.dumps({} if input is None else input),
        )
        return str(response["executionArn"])

    def wait_execution(self, arn: str, timeout: float = 60.0) -> dict[str, Any]:
        """describe_execution once the execution has finished (woken by its end, no polling)."""
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            with self._executions:
                generation = self._ended_generation
            described: dict[str, Any] = dict(sfn.describe_execution(executionArn=arn))
            if described["status"] != "RUNNING":
                described.pop("ResponseMetadata", None)
                return described
            if arn in self._crashes:
                crash = self._crashes[arn]
                raise LocalStackError(
                    f"execution {arn} crashed in the interpreter: {type(crash).__name__}: {crash}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LocalStackError(f"execution {arn} still RUNNING after {timeout} s")
            with self._executions:
                self._executions.wait_for(partial(self._ended_since, generation), timeout=remaining)

    def _ended_since(self, generation: int) -> bool:
        return self._ended_generation != generation

    def execution_history(self, arn: str, *, children: bool = False) -> list[dict[str, Any]]:
        """An execution's whole history; ``children``: followed by each of its Distributed Map
        runs' STANDARD child executions' histories (oldest child first)."""
        sfn = self.client("stepfunctions")
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
        while True:
            page = sfn.get_execution_history(**kwargs)
            events.extend(dict(e) for e in page["events"])
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        if not children:
            return events
        for run in sfn.list_map_runs(executionArn=arn)["mapRuns"]:
            listed: list[dict[str, Any]] = []
            paging: dict[str, Any] = {"mapRunArn": run["mapRunArn"], "maxResults": 1000}
            while True:
                found = sfn.list_executions(**paging)
                listed.extend(dict(e) for e in found["executions"])
                if not found.get("nextToken"):
                    break
                paging["nextToken"] = found["nextToken"]
            for child in sorted(listed, key=lambda c: c["startDate"]):
                events.extend(self.execution_history(child["executionArn"]))
        return events

    def execution_started(self, arn: str) -> None:
        with self._executions:
            self._running.add(arn)

    def execution_ended(self, arn: str, crash: BaseException | None) -> None:
        with self._executions:
            self._running.discard(arn)
            if crash is not None:
                self._crashes[arn] = crash
            self._ended_generation += 1
            self._executions.notify_all()

    def retry_sleep(self, seconds: float) -> None:
        if self.time_factor > 0:
            self._closing.wait(seconds * self.time_factor)

    def wait_state(self, env: Any, seconds: float) -> None:
        """A Wait state's wait, scaled; a stopped execution stops waiting."""
        if self.time_factor <= 0:
            return
        deadline = time.monotonic() + seconds * self.time_factor
        while env.is_running() and not self._closing.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            # moto pulses this event when the execution stops; the cap covers a pulse just missed
            env.program_state_event.wait(min(remaining, 0.5))

    # -- EventBridge and schedules -------------------------------------------------------------

    def put_events(self, entries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        """PutEvents; ``Detail`` may be a dict and ``EventBusName`` a logical id. Matching rules
        that target a state machine or a function deliver before this returns."""
        prepared: list[dict[str, Any]] = []
        for entry in entries:
            item = dict(entry)
            if isinstance(item.get("Detail"), dict | list):
                item["Detail"] = json.dumps(item["Detail"])
            bus = item.get("EventBusName")
            if isinstance(bus, str) and bus in self._require_template().resources:
                item["EventBusName"] = self.physical_id(bus)
            prepared.append(item)
        response = dict(self.client("events").put_events(Entries=prepared))  # type: ignore[arg-type]
        response.pop("ResponseMetadata", None)
        if response.get("FailedEntryCount"):
            raise LocalStackError(f"put_events refused entries: {response['Entries']}")
        return response

    def put_stack_status_event(self, status: str = "CREATE_COMPLETE") -> dict[str, Any]:
        """Put the event CloudFormation sends when this stack reaches ``status`` (for rules on deploys)."""
        template = self._require_template()
        return self.put_events(
            [
                {
                    "Source": "aws.cloudformation",
                    "DetailType": "CloudFormation Stack Status Change",
                    "Resources": [template.stack_id],
                    "Detail": {
                        "stack-id": template.stack_id,
                        "status-details": {"status": status, "status-reason": ""},
                    },
                }
            ]
        )

    def deliver_event(self, rule: Any, target: Mapping[str, Any], event: Mapping[str, Any]) -> None:
        """The moto hook for a matching rule's state machine or function target."""
        if self._closing.is_set():
            return
        try:
            payload = eventbridge.target_input(target, eventbridge.aws_event(event), rule.name)
        except LocalStackError as exc:
            log.warning("EventBridge delivery dropped: %s", exc)
            return
        self._deliver(str(target["Arn"]), payload, f"rule {rule.name}")

    def _deliver(self, arn: str, payload: Any, source: str) -> Any:
        service = arn.split(":")[2]
        if service == "states":  # in-process even in server mode: this runs inside a moto request
            return self._provisioning_client("stepfunctions").start_execution(
                stateMachineArn=arn, name=str(uuid.uuid4()), input=json.dumps(payload)
            )["executionArn"]
        spec = self._handlers.find(arn)
        if spec is None:
            log.warning("%s: target %s is not a function of the local stack", source, arn)
            return None
        body, errored = self._handlers.invoke_payload(spec, json.dumps(payload))
        if errored:
            log.warning("%s: %s failed with %s", source, spec.logical_id, json.loads(body).get("errorType"))
            return None
        return json.loads(body)

    def fire_schedule(self, logical_id: str, event_name: str | None = None) -> Any:
        """Fire a schedule now (nothing fires by itself): a function's or state machine's Schedule
        event, or an AWS::Events::Rule with a ScheduleExpression. Returns the function's result
        (its exception propagates), the execution ARN, or for a rule a list of both kinds."""
        template = self._require_template()
        matches = [s for s in self.schedules if s.owner == logical_id and event_name in (None, s.event_name)]
        if len(matches) != 1:
            names = ", ".join(f"{s.owner}.{s.event_name}".rstrip(".") for s in self.schedules) or "none"
            raise LocalStackError(f"{logical_id}: {len(matches)} schedules match (schedules: {names})")
        schedule = matches[0]
        event = schedule.input
        if event is None:
            event = eventbridge.scheduled_event(schedule.rule_arn, self.region, template.account_id)
        if logical_id in self._handlers.specs:
            return self.invoke(logical_id, event)
        if logical_id in self._state_machines:
            return self.start_execution(logical_id, event)
        rule = self.client("events").list_targets_by_rule(Rule=self.physical_id(logical_id))
        return [
            self._deliver(
                str(target["Arn"]),
                eventbridge.target_input(target, event, self.physical_id(logical_id)),
                f"schedule {logical_id}",
            )
            for target in rule["Targets"]
        ]


_sessions: dict[str, boto3.session.Session] = {}
_sessions_lock = threading.Lock()


def _session_for(region: str) -> boto3.session.Session:
    with _sessions_lock:
        if region not in _sessions:
            session = boto3.session.Session(
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                aws_session_token="testing",
                region_name=region,
            )
            # moto's interpreter creates clients on Map threads: build the session's components
            # here, once, before threads race to do it.
            session.client("lambda")
            session.client("dynamodb")
            _sessions[region] = session
        return _sessions[region]


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return None if value is None else str(value)
