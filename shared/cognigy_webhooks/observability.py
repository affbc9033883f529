"""Observability, set up once: one Logger and one Metrics for every function and the library.

Import these objects; never make another Logger or Metrics. Logs are structured JSON with a
correlation id (Powertools' ``logger.inject_lambda_context`` sets it from the event; the receiver uses
:func:`inject_lambda_context`, the same keys for less CPU); secrets never reach them because models
redact themselves. The lines are Powertools' own, byte for byte: the Logger is
:class:`~cognigy_webhooks.log_format.ServiceLogger` with
:class:`~cognigy_webhooks.log_format.ServiceFormatter` (Powertools' formatter without its per-line
work that gives the same answer every time, and a direct path for a plain INFO line when nothing but
the service's own handler would see it). No Tracer: nothing is traced yet, and the X-Ray SDK it loads
(~200 ms) is more than the receiver's cold start can afford; add it here, made on first use, when a
function needs traces.

Metrics are CloudWatch EMF documents printed to stdout (Powertools), namespace ``CognigyWebhooks``,
dimensions ``service`` (``cognigy-webhooks``) and ``stack`` (the stack's name, from the functions'
``STACK_NAME``, read at each flush as Powertools reads its own variables: the local stack runs several
functions, each in its own environment, in one process; without it, no ``stack``), so that two stacks
in one account and region never mix their metrics or set off each other's alarms. Every name is a
:class:`~cognigy_webhooks.metric_names.MetricName`; the registry
(:data:`~cognigy_webhooks.metric_names.METRICS`) gives each one's unit, own dimensions and emitter.
The contract:

- A handler decorated with ``@metrics.log_metrics`` prints its metrics once, when it returns or
  raises. While it runs (in its context: asyncio tasks inherit it; a thread pool's workers only when
  submitted through ``contextvars.copy_context().run``), :func:`record_metric` counts into it.
- Anywhere else (the CLI, a plain library call, the local stack's own code) :func:`record_metric` and
  the Cognigy client's hook (:func:`count_cognigy_call`) do nothing: nothing accumulates, so nothing
  is printed, not even the set Powertools prints by itself once a metric holds 100 values.
- A metric with its own dimensions (``ProbeResult`` by ``Reason``...) is kept aside and printed at the
  same flush as the handler's set, one document per name and dimension values with all their
  values (Powertools' ``single_metric`` shape: only its own dimensions, ``service`` and ``stack``);
  clearing the metrics drops it too, so whoever silences the flush silences every document.
- The receive function is not wrapped: it counts each reply with one
  :class:`~cognigy_webhooks.emf.CountsDocument` made in advance (``metrics.add_document``) and
  flushes at once (:mod:`cognigy_webhooks.receiving.report`): one reply, one flush, one line. A
  document is held like a dimensional metric: printed at the flush (its ``stack`` read then), dropped
  by a silenced flush, by clearing and when metrics are disabled.
- ``POWERTOOLS_METRICS_DISABLED`` (or ``POWERTOOLS_DEV``) turns all of it off: nothing is printed,
  and what was counted is dropped at the flush, or as soon as Powertools would print it by itself
  (alone, Powertools keeps adding and prints once a metric holds 100 values).
- The Cognigy hook never raises into the call it counts (a failure is logged at debug level); a
  name, value or dimension outside the registry is a programming error: ``ValueError`` at once, in
  or out of a handler.
- Dimension values come from closed sets (a reason, a status, an event's detail-type): never an id,
  a URL, a header or anything secret.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any, TypeVar

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.constants import MAX_METRICS
from aws_lambda_powertools.shared.constants import METRICS_DISABLED_ENV, POWERTOOLS_DEV_ENV

from cognigy_webhooks.emf import CountsDocument
from cognigy_webhooks.log_format import ServiceFormatter, ServiceLogger
from cognigy_webhooks.metric_names import (
    METRICS_NAMESPACE,
    SERVICE,
    MetricName,
    dimension_values,
    metric_spec,
    metric_value,
)

__all__ = [
    "METRICS_NAMESPACE",
    "SERVICE",
    "STACK_DIMENSION",
    "MetricName",
    "ServiceMetrics",
    "api_gateway_request_id",
    "count_cognigy_call",
    "inject_lambda_context",
    "is_recording",
    "logger",
    "metrics",
    "record_metric",
]

_RECORDING: ContextVar[bool] = ContextVar("cognigy_webhooks_metrics_recording", default=False)
#: The variable the template sets on every function (Globals): the stack's name, the ``stack`` dimension.
STACK_ENV = "STACK_NAME"
STACK_DIMENSION = "stack"

_SingleKey = tuple[str, str, tuple[tuple[str, str], ...]]


def _metrics_disabled() -> bool:
    """Powertools' ``is_metrics_disabled``, answered at once when neither of its variables is set."""
    environ = os.environ
    if METRICS_DISABLED_ENV not in environ and POWERTOOLS_DEV_ENV not in environ:
        return False
    return bool(is_metrics_disabled())


class _EMFProvider(AmazonCloudWatchEMFProvider):
    """Powertools' EMF provider, plus: the recording flag its ``log_metrics`` sets, dimensional
    metrics kept for the flush, and ``POWERTOOLS_METRICS_DISABLED`` honoured on every path."""

    def __init__(self, *, namespace: str, service: str) -> None:
        self._singles: dict[_SingleKey, list[float]] = {}
        self._documents: list[CountsDocument] = []
        self._singles_lock = threading.Lock()
        super().__init__(namespace=namespace, service=service)
        # serializes the dimensional documents (given their metrics and dimensions each time)
        self._single_serializer = AmazonCloudWatchEMFProvider(namespace=namespace, service=service)

    def add_metric(self, name: str, unit: Any, value: float, resolution: Any = 60) -> None:
        held = self.metric_set.get(name)
        full = len(held["Value"]) >= MAX_METRICS - 1 if held else len(self.metric_set) >= MAX_METRICS - 1
        if full:  # Powertools prints this set by itself on this add
            if is_metrics_disabled():
                self.clear_metrics()
                return
            self._add_stack_dimension()
        super().add_metric(name=name, unit=unit, value=value, resolution=resolution)

    def _add_stack_dimension(self) -> str:
        stack = os.environ.get(STACK_ENV, "").strip()
        if stack and STACK_DIMENSION not in self.dimension_set:
            self.add_dimension(name=STACK_DIMENSION, value=stack)
        return stack

    def add_single(self, name: str, unit: str, value: float, dimensions: Mapping[str, str]) -> None:
        key = (name, unit, tuple(dimensions.items()))
        with self._singles_lock:
            self._singles.setdefault(key, []).append(value)

    def add_document(self, document: CountsDocument) -> None:
        with self._singles_lock:
            self._documents.append(document)

    def _take_singles(self) -> tuple[dict[_SingleKey, list[float]], list[CountsDocument]]:
        with self._singles_lock:
            singles, self._singles = self._singles, {}
            documents, self._documents = self._documents, []
        return singles, documents

    def flush_metrics(self, raise_on_empty_metrics: bool = False) -> None:
        with self._singles_lock:  # _take_singles
            singles, self._singles = self._singles, {}
            documents, self._documents = self._documents, []
        stack = ""
        if self.metric_set or (raise_on_empty_metrics and not singles and not documents):
            stack = self._add_stack_dimension()
            super().flush_metrics(raise_on_empty_metrics=raise_on_empty_metrics)
            if self.metric_set:  # disabled: Powertools printed nothing, and keeps it all
                self.clear_metrics()
                return
        elif not (singles or documents) or _metrics_disabled():
            self.clear_metrics()
            return
        else:
            stack = os.environ.get(STACK_ENV, "").strip()
        if documents:
            stamp = int(time.time() * 1000)
            service = str(self.service or "")
            out = sys.stdout  # where print writes (as Powertools prints its own)
            for counts in documents:
                out.write(counts.render(service=service, stack=stack, timestamp_ms=stamp) + "\n")
        if not singles:
            return
        common = {"service": str(self.service)} if self.service else {}
        if stack:
            common[STACK_DIMENSION] = stack
        for (name, unit, dims), values in singles.items():
            dimension_set = {**common, **dict(dims)}
            for start in range(0, len(values), MAX_METRICS):
                chunk = {
                    name: {
                        "Unit": unit,
                        "StorageResolution": 60,
                        "Value": values[start : start + MAX_METRICS],
                    }
                }
                document = self._single_serializer.serialize_metric_set(
                    metrics=chunk, dimensions=dimension_set, metadata={}
                )
                print(json.dumps(document, separators=(",", ":")))  # as Powertools prints its own

    def clear_metrics(self) -> None:
        super().clear_metrics()
        self._take_singles()

    def log_metrics(
        self,
        lambda_handler: Callable[..., Any] | None = None,
        capture_cold_start_metric: bool = False,
        raise_on_empty_metrics: bool = False,
        **kwargs: Any,
    ) -> Any:
        if lambda_handler is None:
            return functools.partial(
                self.log_metrics,
                capture_cold_start_metric=capture_cold_start_metric,
                raise_on_empty_metrics=raise_on_empty_metrics,
                **kwargs,
            )
        handler = lambda_handler

        @functools.wraps(handler)
        def recording(event: Any, context: Any, *args: Any, **kw: Any) -> Any:
            token = _RECORDING.set(True)
            try:
                return handler(event, context, *args, **kw)
            finally:
                _RECORDING.reset(token)

        return super().log_metrics(
            recording,
            capture_cold_start_metric=capture_cold_start_metric,
            raise_on_empty_metrics=raise_on_empty_metrics,
            **kwargs,
        )


class ServiceMetrics(Metrics):
    """The one Metrics: Powertools' own, with :meth:`add_single_metric` for a registry metric with its
    own dimensions (printed at the next flush)."""

    provider: _EMFProvider

    def __init__(self) -> None:
        provider = _EMFProvider(namespace=METRICS_NAMESPACE, service=SERVICE)
        super().__init__(namespace=METRICS_NAMESPACE, service=SERVICE, provider=provider)
        self.provider = provider

    def add_document(self, document: CountsDocument) -> None:
        """Keep one :class:`~cognigy_webhooks.emf.CountsDocument` (made, and checked against the
        registry, in advance) for the next flush: printed as one line, stamped with the flush's time
        and the ``stack`` of that moment, unless the flush is silenced or metrics are disabled."""
        self.provider.add_document(document)

    def add_single_metric(
        self, name: MetricName | str, value: float = 1, *, dimensions: Mapping[str, object]
    ) -> None:
        """Keep one value of a dimensional registry metric for the next flush (``ValueError`` when
        the name or its dimensions are not the registry's)."""
        member, spec = metric_spec(name)
        dims = dimension_values(member, spec, dimensions)
        self.provider.add_single(str(member), spec.unit, metric_value(member, value), dims)


logger = ServiceLogger(service=SERVICE, logger_formatter=ServiceFormatter(service=SERVICE))
metrics = ServiceMetrics()

_Handler = TypeVar("_Handler", bound=Callable[..., Any])
#: Lambda's variable for how the execution environment was started (Powertools reads it too).
_INITIALIZATION_TYPE_ENV = "AWS_LAMBDA_INITIALIZATION_TYPE"


def api_gateway_request_id(event: object) -> str | None:
    """API Gateway's request id of a REST (v1 proxy) event, ``requestContext.requestId`` (where
    Powertools' ``correlation_paths.API_GATEWAY_REST`` points): the receiver's correlation id. None
    when the event has none (or not as text)."""
    context = event.get("requestContext") if isinstance(event, dict) else None
    value = context.get("requestId") if isinstance(context, dict) else None
    return value if isinstance(value, str) else None


def inject_lambda_context(
    *, correlation_id: Callable[[Any], str | None] | None = None
) -> Callable[[_Handler], _Handler]:
    """The handler's decorator for its logs: what Powertools' ``logger.inject_lambda_context`` adds
    to every line of the invocation, for less CPU (one ``append_keys``, no JMESPath): ``cold_start``
    (the first invocation in this process, unless it runs with provisioned concurrency),
    ``function_name``, ``function_memory_size``, ``function_arn``, ``function_request_id`` and, with
    ``correlation_id`` (a function of the event, e.g. :func:`api_gateway_request_id`),
    ``correlation_id``. The event itself is never logged. A sampling rate
    (``POWERTOOLS_LOGGER_SAMPLE_RATE``) is drawn again on each warm invocation, as Powertools does."""

    def decorate(handler: _Handler) -> _Handler:
        cold = [True]

        @functools.wraps(handler)
        def with_context(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            cold_start = cold[0] and os.environ.get(_INITIALIZATION_TYPE_ENV) != "provisioned-concurrency"
            cold[0] = False
            keys: dict[str, object] = {
                "cold_start": cold_start,
                "function_name": context.function_name,
                "function_memory_size": context.memory_limit_in_mb,
                "function_arn": context.invoked_function_arn,
                "function_request_id": context.aws_request_id,
            }
            if correlation_id is not None:
                keys["correlation_id"] = correlation_id(event)
            formatter = logger.logger_handler.formatter  # what logger.append_keys reaches, directly
            if type(formatter) is ServiceFormatter:
                formatter.append_keys(**keys)
            else:
                logger.append_keys(**keys)
            if logger.sampling_rate and not cold_start:
                logger.refresh_sample_rate_calculation()
            return handler(event, context, *args, **kwargs)

        return with_context  # type: ignore[return-value]

    return decorate


def is_recording() -> bool:
    """Whether a handler wrapped by ``metrics.log_metrics`` is running in this context."""
    return _RECORDING.get()


def record_metric(
    name: MetricName | str, value: float = 1, *, dimensions: Mapping[str, object] | None = None
) -> None:
    """Count ``value`` of a registry metric (its unit from the registry) into the running handler's
    metrics; nothing outside one (see the module's contract). ``dimensions`` must be exactly the
    metric's own (``ValueError`` otherwise, in or out of a handler)."""
    member, spec = metric_spec(name)
    dims = dimension_values(member, spec, dimensions)
    number = metric_value(member, value)
    if not _RECORDING.get():
        return
    if dims:
        metrics.provider.add_single(str(member), spec.unit, number, dims)
    else:
        metrics.add_metric(name=str(member), unit=spec.unit, value=number)


def count_cognigy_call(status: int | None) -> None:
    """The Cognigy client's hook, once per request to the management API: ``status`` is the HTTP
    status answered, ``None`` when no answer came (a transport failure). Counts ``CognigyCalls``,
    and ``CognigyThrottles`` (429) or ``CognigyAuthFailures`` (401, 403). Never raises."""
    if not _RECORDING.get():
        return
    try:
        record_metric(MetricName.COGNIGY_CALLS)
        if status == 429:
            record_metric(MetricName.COGNIGY_THROTTLES)
        elif status in (401, 403):
            record_metric(MetricName.COGNIGY_AUTH_FAILURES)
    except Exception as exc:  # a metric must never cost a Cognigy call its outcome
        logger.debug("metric not recorded", extra={"error": type(exc).__name__})
