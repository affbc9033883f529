"""Reconcile executions: secrets stored, a desired set's reconcile started, executions described,
stopped and listed; each implemented once for the management API, the command line and the deploy
trigger.

- :func:`store_secrets`: every plain secret of a desired set moved into Secrets Manager (what is
  secret is :mod:`cognigy_webhooks.secrets`'s decision; where it goes,
  :func:`~cognigy_webhooks.dal.secretsmanager.secret_name`), so that only ARNs and references go on.
- :func:`start_reconcile`: the start of a reconcile: put the desired set as a new version of the
  config bucket's object (or point at a version already there: the given one, else the latest), name
  the execution after that version and its source, start it. A name already started is not an
  error: the answer is that execution, ``started`` False (a redeploy, the same apply twice: one run).
- :func:`start_execution`: a desired set as a request gives it (``POST /executions``, ``cogwh
  apply``): checked whole first (:func:`~cognigy_webhooks.ops.plans.check_desired`: a refused set
  stores nothing, not even its secrets), then its secrets stored, then :func:`start_reconcile`.
- :func:`describe_execution`, :func:`stop_execution`, :func:`list_executions`: an execution named
  by its id (its name) or ARN, this stack's only. The summary is what the summarize step output; a
  failure's cause is its error message alone (never a stack trace).

Nothing here waits for an execution to end: the command line follows it (:mod:`.progress` reads its
history), the API and the deploy trigger do not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from cognigy_webhooks.dal.desired_sets import DesiredSetStore
from cognigy_webhooks.dal.executions import Executions, ExecutionStatus, error_message_of
from cognigy_webhooks.dal.run_files import RunFiles
from cognigy_webhooks.dal.secretsmanager import put_secret, secret_name
from cognigy_webhooks.errors import StoreError
from cognigy_webhooks.ops.access import StackAccess
from cognigy_webhooks.ops.shapes import ExecutionPage, ExecutionStarted, ExecutionStopped, ExecutionView
from cognigy_webhooks.reconcile.summary import Summary
from cognigy_webhooks.secrets import move_spec_secrets

__all__ = [
    "ReconcileStart",
    "describe_execution",
    "execution_id_of",
    "list_executions",
    "start_execution",
    "start_reconcile",
    "stop_execution",
    "store_secrets",
]

#: What a cause may quote of an error message (the rest is cut).
MAX_CAUSE = 1000
_NAMED = re.compile(r"^(?P<source>[A-Za-z0-9_-]+?)-[0-9a-f]{32}$")


@dataclass(frozen=True)
class ReconcileStart:
    """A reconcile execution as started: its ARN, whether this call started it (False: an execution
    of that desired-set version and source already existed), and the version it reconciles."""

    execution_arn: str
    started: bool
    version_id: str


def store_secrets(
    secretsmanager: Callable[[], Any], *, stack_name: str, desired: Mapping[str, Any]
) -> dict[str, Any]:
    """A copy of ``desired`` (``{"endpoints": [...]}``) with every plain secret stored in Secrets
    Manager under the stack's prefix and replaced by its ARN or reference. ``secretsmanager()`` gives
    the client; it is called only when there is a secret to store."""
    client: Any = None

    def put_for(endpoint: str) -> Callable[[str, str], str]:
        def put(kind: str, value: str) -> str:
            nonlocal client
            client = client or secretsmanager()
            return put_secret(client, secret_name(stack_name, endpoint, kind), value)

        return put

    moved: dict[str, Any] = {
        "endpoints": [move_spec_secrets(raw, put_for(str(raw["name"]))) for raw in desired["endpoints"]]
    }
    if desired.get("cognigy") is not None:  # no secret in it: kept as it is
        moved["cognigy"] = desired["cognigy"]
    return moved


def start_reconcile(
    desired_sets: DesiredSetStore,
    executions: Executions,
    *,
    source: str,
    prune: bool,
    desired: Mapping[str, Any] | None = None,
    version_id: str | None = None,
) -> ReconcileStart | None:
    """Start the reconcile of one desired-set version: ``desired`` given, it is stored first (a new
    version; it must hold no plain secret, see :func:`store_secrets`); else ``version_id``; else the
    latest version. None when no desired set is stored at all. The execution's name is
    :meth:`Executions.name_for` ``(source, version)``."""
    if desired is not None:
        version: str | None = desired_sets.put(dict(desired))
    else:
        version = version_id or desired_sets.latest_version()
    if version is None:
        return None
    execution_input = {
        "desiredRef": {"bucket": desired_sets.bucket, "key": desired_sets.KEY, "versionId": version},
        "prune": prune,
        "source": source,
    }
    arn, started = executions.start(execution_input, name=Executions.name_for(source, version))
    return ReconcileStart(execution_arn=arn, started=started, version_id=version)


def execution_id_of(execution_arn: str) -> str:
    """An execution's id in the API's shapes: its name (the ARN's last part)."""
    return execution_arn.rsplit(":", 1)[-1]


def start_execution(
    access: StackAccess,
    desired: Mapping[str, Any],
    *,
    prune: bool,
    source: str = "api",
    check: bool = True,
) -> ExecutionStarted:
    """Check ``desired`` whole (:class:`~cognigy_webhooks.errors.InvalidSpec` naming each field, with
    nothing stored), move its plain secrets into Secrets Manager, store it as a new version and start
    its reconcile (see :func:`start_reconcile`). ``check`` False: the caller checked it already (the
    command line reads files through the same models), or wants the reconcile to report each bad
    endpoint on its own (the reconcile's tests)."""
    if check:
        from cognigy_webhooks.ops.plans import check_desired  # the deploy trigger never loads the plans

        check_desired(desired)
    safe = store_secrets(access.secretsmanager, stack_name=access.stack_name, desired=desired)
    begun = start_reconcile(access.desired_sets, access.executions, source=source, prune=prune, desired=safe)
    assert begun is not None  # a desired set was just stored
    return ExecutionStarted(
        execution_id=execution_id_of(begun.execution_arn),
        execution_arn=begun.execution_arn,
        started=begun.started,
        source=source,
        desired_version=begun.version_id,
    )


def _cause(cause: str | None) -> str | None:
    """A failure's cause as a person may read it: a task's error JSON becomes its message alone (its
    stack trace is left out), cut to :data:`MAX_CAUSE` characters."""
    if not cause:
        return None
    cause = error_message_of(cause)
    return cause if len(cause) <= MAX_CAUSE else cause[: MAX_CAUSE - 1] + "…"


def _view(status: ExecutionStatus) -> ExecutionView:
    execution_id = status.name or execution_id_of(status.execution_arn)
    named = _NAMED.match(execution_id)
    view = ExecutionView(
        execution_id=execution_id,
        execution_arn=status.execution_arn,
        status=status.status,
        source=named.group("source") if named else None,
        started_at=status.start_date,
        stopped_at=status.stop_date,
        error=status.error or None,
        cause=_cause(status.cause),
    )
    try:
        given = json.loads(status.input) if status.input else {}
    except ValueError:
        given = {}
    if isinstance(given, dict):
        if isinstance(given.get("source"), str):
            view.source = given["source"]
        if isinstance(given.get("prune"), bool):
            view.prune = given["prune"]
        if isinstance(given.get("delete"), list):
            view.deletes = [str(n) for n in given["delete"]]
        ref = given.get("desiredRef")
        if isinstance(ref, dict) and isinstance(ref.get("versionId"), str):
            view.desired_version = ref["versionId"]
    if status.status == "SUCCEEDED" and status.output:
        try:
            view.summary = Summary.model_validate_json(status.output)
        except ValidationError:
            view.summary = None
    return view


def describe_execution(access: StackAccess, execution: str, *, whole: bool = False) -> ExecutionView:
    """Where an execution of this stack stands (by id or ARN). :class:`~cognigy_webhooks.errors.NotFound`
    when there is none; :class:`~cognigy_webhooks.errors.InvalidInput` naming ``executionId`` for
    what is no id. Its summary is the one its output carries (bounded: ``truncated`` past 200
    endpoints, the whole one at ``summaryRef``); ``whole``: the whole one, read from the config
    bucket when the output's is truncated (the command line's table)."""
    view = _view(access.executions.describe(access.executions.arn_of(execution)))
    ref = view.summary.summary_ref if view.summary is not None else None
    if whole and view.summary is not None and view.summary.truncated and ref:
        files = RunFiles(access.desired_sets.client, access.desired_sets.bucket)
        try:
            view.summary = Summary.model_validate(files.get_json(ref["key"], ref.get("bucket")))
        except (StoreError, ValidationError):  # expired (the lifecycle) or unreadable: the bounded one
            return view
        view.summary.summary_ref = ref
    return view


def stop_execution(
    access: StackAccess, execution: str, *, cause: str = "stopped on request"
) -> ExecutionStopped:
    """Stop a running execution (an ended one is left as it is: ``stopped`` False, with the status
    it ended with). A stopped one is ``ABORTED``: what StopExecution makes it, even while a task of
    it is still finishing."""
    arn = access.executions.arn_of(execution)
    if access.executions.stop(arn, cause=cause):
        return ExecutionStopped(execution_id=execution_id_of(arn), stopped=True, status="ABORTED")
    ended = access.executions.describe(arn)
    return ExecutionStopped(execution_id=execution_id_of(arn), stopped=False, status=ended.status)


def list_executions(access: StackAccess, *, limit: int = 20, cursor: str | None = None) -> ExecutionPage:
    """This stack's reconcile executions, newest first, a page at a time (no summary read)."""
    page = access.executions.page(limit=limit, cursor=cursor)
    return ExecutionPage(items=[_view(item) for item in page.items], next_cursor=page.next_cursor)
