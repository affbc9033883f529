"""Every AWS request the local stack's clients make, counted by service and operation (one hook on
botocore's ``BaseClient._make_api_call``: the functions' clients, the interpreter's ItemReader and
ResultWriter, the stack's own), and Lambda invocations and durations read from executions' histories."""

from __future__ import annotations

import collections
import contextlib
import datetime
import statistics
import threading
from collections.abc import Iterable, Iterator
from typing import Any
from unittest import mock

__all__ = ["AwsCalls", "lambda_figures"]

DYNAMODB_READS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})


class AwsCalls:
    """Requests by (service, operation), between :meth:`reset` calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: collections.Counter[tuple[str, str]] = collections.Counter()

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()

    def of(self, service: str, operations: Iterable[str] | None = None) -> int:
        wanted = set(operations) if operations is not None else None
        with self._lock:
            return sum(
                n for (s, op), n in self.calls.items() if s == service and (wanted is None or op in wanted)
            )

    def s3(self) -> dict[str, int]:
        return {
            "get": self.of("s3", {"GetObject", "HeadObject"}),
            "put": self.of(
                "s3", {"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"}
            ),
            "list": self.of("s3", {"ListObjects", "ListObjectsV2", "ListObjectVersions"}),
        }

    @contextlib.contextmanager
    def installed(self) -> Iterator[AwsCalls]:
        from botocore.client import BaseClient

        original = BaseClient._make_api_call
        counter = self

        def counted(client: Any, operation: str, params: Any) -> Any:
            service = client.meta.service_model.service_name
            with counter._lock:
                counter.calls[(service, operation)] += 1
            return original(client, operation, params)

        with mock.patch.object(BaseClient, "_make_api_call", counted):
            yield self


def _when(value: Any) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        return value
    return datetime.datetime.fromisoformat(str(value))


def lambda_figures(history: list[dict[str, Any]]) -> tuple[int, dict[str, float]]:
    """Lambda invocations in ``history`` (parent and children: ids repeat across executions, so each
    Scheduled is paired with the next Started and Succeeded/Failed in order) and the mean duration
    in ms per function (the resource's name after its last ``-``: plan, probe, register, ...)."""
    invocations = 0
    durations: dict[str, list[float]] = collections.defaultdict(list)
    function: str | None = None
    started: datetime.datetime | None = None
    for event in history:
        kind = event.get("type")
        if kind == "LambdaFunctionScheduled":
            invocations += 1
            resource = str(event["lambdaFunctionScheduledEventDetails"]["resource"])
            function = resource.rsplit(":", 1)[-1].rsplit("-", 1)[-1].removesuffix("Function").lower()
        elif kind == "LambdaFunctionStarted":
            started = _when(event["timestamp"])
        elif kind in ("LambdaFunctionSucceeded", "LambdaFunctionFailed") and started and function:
            durations[function].append((_when(event["timestamp"]) - started).total_seconds() * 1000)
            started = None
    return invocations, {k: round(statistics.fmean(v), 1) for k, v in sorted(durations.items())}
