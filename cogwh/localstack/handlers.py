"""Run a function's handler in this process, as the AWS Python runtime would: the handler named by
CodeUri + Handler, a realistic context object, the event and the result as JSON, and an exception
turned into the runtime's error JSON whose ``errorType`` is the exception's class name (so a state
machine's Retry and Catch match it exactly as on AWS).

Each function has its own environment (environ.py): its handler module's cold import and every one
of its invocations run with ``os.environ`` showing the function's Environment over the process's."""

from __future__ import annotations

import datetime
import decimal
import importlib.util
import json
import logging
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cogwh.localstack.environ import FunctionEnviron
from cogwh.localstack.errors import LocalStackError

log = logging.getLogger("cogwh.localstack")

Handler = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class FunctionSpec:
    """One function of the template, as the local stack runs it."""

    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    runtime: str
    timeout: int
    memory_mb: int
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold NoEcho values

    @property
    def module_name(self) -> str:
        """The unique name the handler module is imported under."""
        return f"cogwh_fn_{self.logical_id}"

    def handler_file(self) -> Path:
        module_path, _, function = self.handler.rpartition(".")
        if not module_path or not function:
            raise LocalStackError(
                f"Resources.{self.logical_id}.Properties.Handler: {self.handler!r} is not module.function"
            )
        relative = Path(*module_path.split("."))
        for candidate in (
            self.code_dir / relative.with_suffix(".py"),
            self.code_dir / relative / "__init__.py",
        ):
            if candidate.is_file():
                return candidate
        raise LocalStackError(
            f"Resources.{self.logical_id}.Properties.Handler: {self.handler!r} names no file "
            f"{relative.with_suffix('.py')} under CodeUri {self.code_dir}"
        )


@dataclass
class LambdaContext:
    """The context object a handler receives (the attributes the AWS Python runtime sets)."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_monotonic: float
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline_monotonic - time.monotonic()) * 1000))


def make_context(spec: FunctionSpec, request_id: str | None = None) -> LambdaContext:
    today = datetime.datetime.now(datetime.UTC).strftime("%Y/%m/%d")
    return LambdaContext(
        function_name=spec.name,
        function_version="$LATEST",
        invoked_function_arn=spec.arn,
        memory_limit_in_mb=spec.memory_mb,
        aws_request_id=request_id or str(uuid.uuid4()),
        log_group_name=f"/aws/lambda/{spec.name}",
        log_stream_name=f"{today}/[$LATEST]{uuid.uuid4().hex}",
        deadline_monotonic=time.monotonic() + spec.timeout,
    )


def error_payload(exc: BaseException, request_id: str) -> dict[str, Any]:
    """The AWS Python runtime's error JSON for an unhandled exception."""
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_list(_handler_frames(exc)),
    }


def _handler_frames(exc: BaseException) -> list[traceback.FrameSummary]:
    """The traceback from the handler down, without the local stack's own calling frames."""
    frames = traceback.extract_tb(exc.__traceback__)
    while frames and Path(frames[0].filename).resolve() == Path(__file__).resolve():
        frames.pop(0)
    return list(frames)


def _runtime_json_default(value: Any) -> Any:
    # The AWS Python runtime serialises Decimal (as boto3's DynamoDB layer returns numbers).
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def to_json(value: Any) -> str:
    return json.dumps(value, default=_runtime_json_default)


class Handlers:
    """The template's functions: handler modules imported once each (under a lock, under a unique
    module name, in the function's environment), invoked directly or with JSON payloads (in the
    function's environment), unloaded when the stack closes."""

    def __init__(self) -> None:
        self._specs: dict[str, FunctionSpec] = {}
        self._environs: dict[str, FunctionEnviron] = {}
        self._by_name: dict[str, FunctionSpec] = {}
        self._loaded: dict[str, Handler] = {}
        self._modules: list[str] = []
        self._import_lock = threading.RLock()
        self._threads: list[threading.Thread] = []
        self._threads_lock = threading.Lock()

    @property
    def specs(self) -> Mapping[str, FunctionSpec]:
        return self._specs

    def add(self, spec: FunctionSpec, extra_env: Mapping[str, str] | None = None) -> None:
        """Register a function; its environment is its template Environment, then ``extra_env``."""
        self._specs[spec.logical_id] = spec
        self._by_name[spec.name] = spec
        self._environs[spec.logical_id] = FunctionEnviron(
            spec.logical_id, {**spec.environment, **(extra_env or {})}
        )

    def environ(self, spec: FunctionSpec) -> FunctionEnviron:
        """The function's own environment (what its code sees over the process environment)."""
        return self._environs[spec.logical_id]

    def find(self, name_or_arn: str) -> FunctionSpec | None:
        """The function a Lambda API call names: a name, an ARN or a partial ARN, maybe qualified."""
        text = str(name_or_arn)
        if ":function:" in text:
            text = text.split(":function:", 1)[1].split(":", 1)[0]
        else:
            text = text.split(":", 1)[0]
        return self._by_name.get(text)

    def spec(self, logical_id: str) -> FunctionSpec:
        if logical_id not in self._specs:
            known = ", ".join(sorted(self._specs)) or "none"
            raise LocalStackError(f"no function {logical_id!r} in the local stack (functions: {known})")
        return self._specs[logical_id]

    # -- loading -------------------------------------------------------------------------------

    def load_all(self) -> None:
        for spec in self._specs.values():
            self.handler(spec)

    def handler(self, spec: FunctionSpec) -> Handler:
        loaded = self._loaded.get(spec.logical_id)
        if loaded is not None:
            return loaded
        with self._import_lock:  # a racing cold import once duplicated a module and its state
            loaded = self._loaded.get(spec.logical_id)
            if loaded is None:
                with self.environ(spec).active():  # its settings are read at import, from its own env
                    loaded = self._import(spec)
                self._loaded[spec.logical_id] = loaded
            return loaded

    def _import(self, spec: FunctionSpec) -> Handler:
        path = spec.handler_file()
        function_name = spec.handler.rpartition(".")[2]
        import_spec = importlib.util.spec_from_file_location(spec.module_name, path)
        if import_spec is None or import_spec.loader is None:
            raise LocalStackError(f"Resources.{spec.logical_id}: cannot import {path}")
        module = importlib.util.module_from_spec(import_spec)
        before = set(sys.modules)
        code_dir = str(spec.code_dir)
        sys.modules[spec.module_name] = module
        self._modules.append(spec.module_name)
        sys.path.insert(0, code_dir)  # as on Lambda, the handler's siblings import by plain name
        try:
            import_spec.loader.exec_module(module)
        except Exception as exc:
            raise LocalStackError(
                f"Resources.{spec.logical_id}: importing the handler {path} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        finally:
            sys.path.remove(code_dir)
            for name in set(sys.modules) - before:  # siblings from CodeUri leave with the handler
                origin = getattr(sys.modules.get(name), "__file__", None)
                if origin and name != spec.module_name and Path(origin).is_relative_to(spec.code_dir):
                    self._modules.append(name)
        handler = getattr(module, function_name, None)
        if not callable(handler):
            raise LocalStackError(
                f"Resources.{spec.logical_id}.Properties.Handler: {path} has no function {function_name!r}"
            )
        return handler

    def unload(self) -> None:
        for name in self._modules:
            sys.modules.pop(name, None)
        self._modules.clear()
        self._loaded.clear()

    # -- invoking ------------------------------------------------------------------------------

    def call(self, spec: FunctionSpec, event: Any, request_id: str | None = None) -> Any:
        """Call the handler with ``event`` and a fresh context; its exception propagates."""
        handler = self.handler(spec)
        context = make_context(spec, request_id)
        started = time.perf_counter()
        outcome = "ok"
        try:
            with self.environ(spec).active():
                return handler(event, context)
        except Exception as exc:
            outcome = type(exc).__name__
            raise
        finally:
            log.debug(
                "invoked %s request %s in %.1f ms: %s",
                spec.logical_id,
                context.aws_request_id,
                (time.perf_counter() - started) * 1000,
                outcome,
            )

    def invoke(self, spec: FunctionSpec, event: Any) -> Any:
        """Direct invocation: the event and the result pass through JSON, as on Lambda."""
        result = self.call(spec, json.loads(to_json(event)))
        return json.loads(to_json(result))

    def invoke_payload(self, spec: FunctionSpec, payload: bytes | str | None) -> tuple[bytes, bool]:
        """A Lambda API invocation: JSON payload in, (JSON body, errored) out."""
        request_id = str(uuid.uuid4())
        try:
            event = json.loads(payload) if payload else {}
        except ValueError:
            error = {"errorMessage": "the payload is not JSON", "errorType": "Runtime.UnmarshalError"}
            return json.dumps(error).encode(), True
        try:
            result = self.call(spec, event, request_id)
        except Exception as exc:
            return json.dumps(error_payload(exc, request_id)).encode(), True
        try:
            return to_json(result).encode(), False
        except (TypeError, ValueError) as exc:
            error = {"errorMessage": str(exc), "errorType": "Runtime.MarshalError", "requestId": request_id}
            return json.dumps(error).encode(), True

    def invoke_async(self, spec: FunctionSpec, payload: bytes | str | None) -> None:
        """InvocationType Event: run on a thread; a failure is logged, as Lambda would."""

        def run() -> None:
            _, errored = self.invoke_payload(spec, payload)
            if errored:
                log.warning("asynchronous invocation of %s failed", spec.logical_id)

        thread = threading.Thread(target=run, name=f"cogwh-async:{spec.logical_id}", daemon=True)
        with self._threads_lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def join_async(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._threads_lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("%s still running at close", thread.name)
