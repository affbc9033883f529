"""Step Functions, its only caller for reconcile executions: started, described, stopped.

An execution is named after what it reconciles (:meth:`Executions.name_for`: its source and a digest
of the desired-set version), so a repeated trigger (a redeploy, the same apply twice) runs it once:
starting a name that already exists is not an error, it answers that execution (``started`` False).

Executions are listed newest first, a page at a time (:meth:`Executions.page`: Step Functions'
``nextToken`` wrapped in an opaque cursor, see :mod:`cognigy_webhooks.dal.cursors`), and an
execution's history is read a page at a time (:meth:`Executions.history_page`). Its Distributed Map
runs are listed (:meth:`Executions.map_runs`), counted (:meth:`Executions.map_run_counts`) and their
STANDARD child executions listed a page at a time (:meth:`Executions.children_page`; a child's
history is read as any execution's). An execution is named by its name or its ARN
(:meth:`Executions.arn_of`): only this state machine's; another is
:class:`~cognigy_webhooks.errors.NotFound`, as is an execution Step Functions does not know.
Other failures are :class:`~cognigy_webhooks.errors.StoreError` with the AWS error code and AWS's
message.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cognigy_webhooks.dal import cursors
from cognigy_webhooks.errors import InvalidInput, NotFound, StoreError, aws_error_code

__all__ = ["MAX_LIST_PAGE", "ExecutionPage", "ExecutionStatus", "Executions", "error_message_of"]

#: The most executions one page may hold (Step Functions allows up to 1000).
MAX_LIST_PAGE = 100
#: An execution's name as Step Functions allows it (and as :meth:`Executions.name_for` makes them).
_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
_GONE = ("ExecutionDoesNotExist", "InvalidArn")


@dataclass(frozen=True)
class ExecutionStatus:
    """What Step Functions says of an execution: ``status`` (RUNNING, SUCCEEDED, FAILED, TIMED_OUT,
    ABORTED), its output (JSON text) once it succeeded, its error and cause once it failed."""

    execution_arn: str
    status: str
    output: str | None = None
    error: str | None = None
    cause: str | None = None
    name: str | None = None
    input: str | None = field(default=None, repr=False)
    start_date: datetime | None = None
    stop_date: datetime | None = None


@dataclass(frozen=True)
class ExecutionPage:
    """One page of executions, newest first (``output``/``input`` not read), and the next page's
    cursor (None: the last)."""

    items: list[ExecutionStatus]
    next_cursor: str | None = None


def _listed(entry: dict[str, Any]) -> ExecutionStatus:
    """One execution as ListExecutions gives it (no input, no output)."""
    return ExecutionStatus(
        execution_arn=str(entry["executionArn"]),
        status=str(entry["status"]),
        name=entry.get("name"),
        start_date=entry.get("startDate"),
        stop_date=entry.get("stopDate"),
    )


def error_message_of(cause: str) -> str:
    """A task failure's cause as a person reads it: a Lambda error's JSON (``errorMessage``,
    ``errorType``, ``stackTrace``) becomes its message alone; any other cause is kept as it is."""
    try:
        doc = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(doc, dict) and isinstance(doc.get("errorMessage"), str):
        return str(doc["errorMessage"])
    return cause


class Executions:
    """Starts reconcile executions with deterministic names, so a repeated trigger runs once."""

    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self._sfn = client
        self.state_machine_arn = state_machine_arn

    @staticmethod
    def name_for(source: str, desired_version: str) -> str:
        """The execution's name for one desired-set version from one source (at most 80 characters)."""
        digest = hashlib.sha256(desired_version.encode("utf-8")).hexdigest()[:32]
        return f"{source}-{digest}"[:80]

    def arn_for(self, name: str) -> str:
        """The ARN of this state machine's execution called ``name``."""
        return self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"

    def start(self, execution_input: dict[str, Any], *, name: str) -> tuple[str, bool]:
        """Returns (execution ARN, started). ``started`` is False when an execution of that name already
        exists and has ended (while it still runs, Step Functions answers a same-input start with it)."""
        try:
            resp = self._sfn.start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(execution_input)
            )
            return str(resp["executionArn"]), True
        except ClientError as exc:
            if aws_error_code(exc) == "ExecutionAlreadyExists":
                return self.arn_for(name), False
            raise StoreError.from_aws(f"starting execution {name!r}", exc) from exc
        except BotoCoreError as exc:
            raise StoreError.from_aws(f"starting execution {name!r}", exc) from exc

    def arn_of(self, execution: str) -> str:
        """The ARN of this state machine's execution named ``execution`` (its name, or its ARN).
        :class:`NotFound` for an ARN of another state machine; :class:`InvalidInput` naming
        ``executionId`` for what is neither."""
        prefix = self.arn_for("")
        if execution.startswith("arn:"):
            if not execution.startswith(prefix) or not _NAME.fullmatch(execution[len(prefix) :]):
                raise NotFound(f"no execution {execution} of this stack", field="executionId")
            return execution
        if not _NAME.fullmatch(execution):
            raise InvalidInput(
                [
                    {
                        "field": "executionId",
                        "message": "must be an execution's name (letters, digits, - and _, at most 80) "
                        "or its ARN",
                    }
                ]
            )
        return prefix + execution

    def _of_execution(self, what: str, execution_arn: str, call: str, **kwargs: Any) -> Any:
        """One Step Functions call about an execution: :class:`NotFound` when it does not exist, any
        other failure a :class:`StoreError` saying ``what`` was being done."""
        try:
            return getattr(self._sfn, call)(**kwargs)
        except ClientError as exc:
            if aws_error_code(exc) in _GONE:
                raise NotFound(f"no execution {execution_arn}", field="executionId") from None
            raise StoreError.from_aws(f"{what} {execution_arn}", exc) from exc
        except BotoCoreError as exc:
            raise StoreError.from_aws(f"{what} {execution_arn}", exc) from exc

    def describe(self, execution_arn: str) -> ExecutionStatus:
        """Where an execution stands. :class:`NotFound` when Step Functions does not know it."""
        resp = self._of_execution(
            "describing execution", execution_arn, "describe_execution", executionArn=execution_arn
        )
        return ExecutionStatus(
            execution_arn=execution_arn,
            status=str(resp["status"]),
            output=resp.get("output"),
            error=resp.get("error"),
            cause=resp.get("cause"),
            name=resp.get("name"),
            input=resp.get("input"),
            start_date=resp.get("startDate"),
            stop_date=resp.get("stopDate"),
        )

    def page(self, *, limit: int = 20, cursor: str | None = None) -> ExecutionPage:
        """One page of this state machine's executions, newest first: at most ``limit``
        (1..:data:`MAX_LIST_PAGE`), after the position ``cursor`` holds. :class:`InvalidInput`
        naming ``limit`` or ``cursor``."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_PAGE:
            raise InvalidInput(
                [{"field": "limit", "message": f"must be an integer from 1 to {MAX_LIST_PAGE}"}]
            )
        kwargs: dict[str, Any] = {"stateMachineArn": self.state_machine_arn, "maxResults": limit}
        if cursor is not None:
            kwargs["nextToken"] = cursors.decode("executions", cursor, ("t",))["t"]
        try:
            resp = self._sfn.list_executions(**kwargs)
        except ClientError as exc:
            if aws_error_code(exc) == "InvalidToken":
                raise InvalidInput([{"field": "cursor", "message": "has expired or is damaged"}]) from None
            raise StoreError.from_aws("listing executions", exc) from exc
        except BotoCoreError as exc:
            raise StoreError.from_aws("listing executions", exc) from exc
        items = [_listed(e) for e in resp.get("executions", [])]
        token = resp.get("nextToken")
        return ExecutionPage(items, cursors.encode("executions", {"t": token}) if token else None)

    def history_page(
        self, execution_arn: str, *, token: str | None = None, max_results: int = 1000
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of an execution's history, oldest first, and the token of the next (None: no
        more yet; a running execution's history grows). :class:`NotFound` when it does not exist."""
        kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": max_results}
        if token:
            kwargs["nextToken"] = token
        resp = self._of_execution("reading the history of", execution_arn, "get_execution_history", **kwargs)
        return [dict(e) for e in resp.get("events", [])], resp.get("nextToken") or None

    def map_runs(self, execution_arn: str) -> list[str]:
        """The ARNs of an execution's map runs (its Distributed Map states' runs)."""
        resp = self._of_execution(
            "listing the map runs of", execution_arn, "list_map_runs", executionArn=execution_arn
        )
        return [str(run["mapRunArn"]) for run in resp.get("mapRuns", [])]

    def map_run_counts(self, map_run_arn: str) -> dict[str, Any]:
        """A map run's item counts (DescribeMapRun's ``itemCounts``: running, succeeded, failed,
        timedOut, aborted, total...)."""
        try:
            resp = self._sfn.describe_map_run(mapRunArn=map_run_arn)
        except (ClientError, BotoCoreError) as exc:
            raise StoreError.from_aws(f"describing the map run {map_run_arn}", exc) from exc
        return dict(resp.get("itemCounts") or {})

    def children_page(
        self, map_run_arn: str, *, token: str | None = None, status: str | None = None, limit: int = 1000
    ) -> tuple[list[ExecutionStatus], str | None]:
        """One page of a map run's child executions (STANDARD children only: Step Functions lists
        no EXPRESS child), newest first, only those of ``status`` when given, and the next page's
        token."""
        kwargs: dict[str, Any] = {"mapRunArn": map_run_arn, "maxResults": limit}
        if token:
            kwargs["nextToken"] = token
        if status:
            kwargs["statusFilter"] = status
        try:
            resp = self._sfn.list_executions(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise StoreError.from_aws(f"listing the children of {map_run_arn}", exc) from exc
        children = [_listed(e) for e in resp.get("executions", [])]
        return children, resp.get("nextToken") or None

    def stop(self, execution_arn: str, *, cause: str) -> bool:
        """Stop a running execution (``cause`` is recorded with it: never a secret). False when it had
        already ended; :class:`NotFound` when it does not exist."""
        if self.describe(execution_arn).status != "RUNNING":
            return False
        self._of_execution(
            "stopping execution",
            execution_arn,
            "stop_execution",
            executionArn=execution_arn,
            error="Stopped",
            cause=cause,
        )
        return True
