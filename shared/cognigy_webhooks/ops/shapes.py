"""The management API's shapes: what its requests carry and its responses hold, camelCase (the house
``_Model``: aliases by field, unknown fields refused, inputs kept out of validation errors).

The command line prints the same shapes for every ``--json`` (one JSON style), and the API's OpenAPI
document is generated from them. None holds a secret: records and audit events never do
(:mod:`cognigy_webhooks.models.records`), a plan names the fields whose values go to Secrets Manager
but never a value, an execution's summary carries outcomes and reasons only. Declarative, no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from cognigy_webhooks.models import DesiredSet, _Model
from cognigy_webhooks.models.records import AuditEvent, EndpointRecord
from cognigy_webhooks.reconcile.summary import Summary

__all__ = [
    "AuditPage",
    "DesiredSetRequest",
    "EndpointPage",
    "ErrorBody",
    "ExecutionPage",
    "ExecutionStarted",
    "ExecutionStopped",
    "ExecutionView",
    "FieldError",
    "PlanAction",
    "PlanEntry",
    "PlanView",
]

ExecutionState = Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"]
PlanAction = Literal["create", "update", "unchanged", "delete", "refused"]
#: The plan's actions in the order a table shows them.
PLAN_ACTIONS: tuple[PlanAction, ...] = ("create", "update", "unchanged", "delete", "refused")


class FieldError(_Model):
    """One field at fault: where (``desiredSet.endpoints.0.url``, ``limit``, ``cursor``...) and why.
    ``endpoint`` names the endpoint when the field is inside one. Never the value."""

    field: str
    message: str
    endpoint: str | None = None


class ErrorBody(_Model):
    """Every 4xx and 5xx of the management API: a sentence and, for bad input, each field at fault."""

    message: str
    errors: list[FieldError] = Field(default_factory=list)


class EndpointPage(_Model):
    """A page of endpoint records in name order; ``nextCursor`` (opaque) asks for the next page,
    absent on the last."""

    items: list[EndpointRecord]
    next_cursor: str | None = None


class AuditPage(_Model):
    """A page of one endpoint's audit events, newest first; ``nextCursor`` as in :class:`EndpointPage`."""

    items: list[AuditEvent]
    next_cursor: str | None = None


class DesiredSetRequest(_Model):
    """``POST /plans`` and ``POST /executions``: a desired set (as a file holds it: plain secrets
    allowed, they are moved to Secrets Manager before anything is stored) and whether to delete the
    recorded endpoints it no longer declares."""

    desired_set: DesiredSet
    prune: bool = False


class PlanEntry(_Model):
    """What applying the desired set would do to one endpoint.

    ``action``: ``create`` (nothing recorded, or recorded without a webhook), ``update`` (``changes``
    names the fields that differ from the record; ``secrets`` alone when only a secret's value
    differs), ``unchanged``, ``delete`` (recorded, no longer declared, with prune) or ``refused``
    (``errors`` names each field the stack's Cognigy API cannot honour). ``secrets``: the fields given
    in clear, moved to Secrets Manager when applied (never their values). Drift inside Cognigy
    (changes made outside the product) is found by the apply, not by the plan."""

    name: str
    action: PlanAction
    changes: list[str] = Field(default_factory=list)
    secrets: list[str] = Field(default_factory=list)
    errors: list[FieldError] = Field(default_factory=list)


class PlanView(_Model):
    """A plan: one entry per declared endpoint (and per deletion with prune), the counts per action,
    and the dialect of Cognigy's API it was planned for. Nothing was stored to make it."""

    prune: bool
    dialect: str
    entries: list[PlanEntry] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)

    @property
    def deletions(self) -> list[str]:
        return [e.name for e in self.entries if e.action == "delete"]

    @property
    def refused(self) -> list[PlanEntry]:
        return [e for e in self.entries if e.action == "refused"]


class ExecutionStarted(_Model):
    """A reconcile execution as started (``202``): its id (its name: what ``GET /executions/{id}``
    takes), its ARN, and whether this request started it (False: the same desired-set version from
    the same source was already started, and this is that execution)."""

    execution_id: str
    execution_arn: str
    started: bool
    status: ExecutionState | str = "RUNNING"
    source: str
    desired_version: str | None = None
    deletes: list[str] | None = None


class ExecutionView(_Model):
    """Where an execution stands. ``summary`` once it succeeded (what its summarize step output);
    ``error`` and ``cause`` once it failed, timed out or was stopped. In a listing neither is read
    (``summary`` absent)."""

    execution_id: str
    execution_arn: str
    status: ExecutionState | str
    source: str | None = None
    prune: bool | None = None
    deletes: list[str] | None = None
    desired_version: str | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    summary: Summary | None = None
    error: str | None = None
    cause: str | None = None


class ExecutionPage(_Model):
    """A page of executions, newest first; ``nextCursor`` as in :class:`EndpointPage`."""

    items: list[ExecutionView]
    next_cursor: str | None = None


class ExecutionStopped(_Model):
    """``DELETE /executions/{id}``: whether this request stopped it (False: it had already ended) and
    its status now."""

    execution_id: str
    stopped: bool
    status: ExecutionState | str


Limit = Annotated[int, Field(ge=1, le=100)]
