"""The endpoint records' operations: list them (a page at a time), get one, read its audit log (a page
at a time), probe it now, start its deletion. Each once, for the management API and the command line.

- A name is checked first (:func:`check_name`: an endpoint name's own rules, else
  :class:`~cognigy_webhooks.errors.InvalidInput` naming ``name``); a record that does not exist is
  :class:`~cognigy_webhooks.errors.NotFound`. The audit log of a name without a record is still read
  (a deleted endpoint's history stays).
- :func:`probe_now` probes the record's spec (its stored public view: no secret is needed, the probe
  sends none) with the reconcile's own probe code and the probe step's settings; it records nothing.
- :func:`delete_endpoint` starts a reconcile that deletes that one recorded name and nothing else
  (the plan's deletion-only input, ``{"delete": [name]}``), named after the record's version: asked
  twice for the same record, it is one execution.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import TypeAdapter, ValidationError

from cognigy_webhooks.dal.executions import Executions
from cognigy_webhooks.errors import InvalidInput, NotFound
from cognigy_webhooks.models import EndpointName, EndpointProbeReport, parse_endpoint
from cognigy_webhooks.models.records import EndpointRecord
from cognigy_webhooks.net.probe import ProbePolicy, probe_endpoint
from cognigy_webhooks.ops.access import StackAccess
from cognigy_webhooks.ops.executions import execution_id_of
from cognigy_webhooks.ops.shapes import AuditPage, EndpointPage, ExecutionStarted

__all__ = [
    "check_name",
    "delete_endpoint",
    "endpoint_audit",
    "get_endpoint",
    "list_endpoints",
    "probe_now",
]

_NAME: TypeAdapter[str] = TypeAdapter(EndpointName)


def check_name(name: Any) -> str:
    """An endpoint name as a path gives it, or :class:`InvalidInput` naming ``name``."""
    try:
        return _NAME.validate_python(name)
    except ValidationError as exc:
        message = exc.errors(include_input=False, include_url=False)[0].get("msg", "invalid")
        raise InvalidInput(
            [{"field": "name", "message": str(message).removeprefix("Value error, ")}]
        ) from None


def list_endpoints(access: StackAccess, *, limit: int = 50, cursor: str | None = None) -> EndpointPage:
    """The records in name order, a page at a time."""
    page = access.store.page_records(limit=limit, cursor=cursor)
    return EndpointPage(items=page.items, next_cursor=page.next_cursor)


def get_endpoint(access: StackAccess, name: str) -> EndpointRecord:
    """One record. :class:`NotFound` when there is none."""
    record = access.store.get_record(check_name(name))
    if record is None:
        raise NotFound(f"no endpoint {name!r} is recorded", field="name")
    return record


def endpoint_audit(
    access: StackAccess, name: str, *, limit: int = 50, cursor: str | None = None
) -> AuditPage:
    """One endpoint's audit events, newest first, a page at a time (also once its record is gone)."""
    page = access.store.audit_page(check_name(name), limit=limit, cursor=cursor)
    return AuditPage(items=page.items, next_cursor=page.next_cursor)


def probe_now(access: StackAccess, name: str, policy: ProbePolicy) -> EndpointProbeReport:
    """Probe the recorded endpoint now (its url and every fallback), as the probe step would."""
    record = get_endpoint(access, name)
    spec = parse_endpoint(record.spec)
    return asyncio.run(probe_endpoint(spec, policy))


def delete_endpoint(access: StackAccess, name: str, *, source: str = "api") -> ExecutionStarted:
    """Start the deletion of one recorded endpoint (in Cognigy, then its record; audited)."""
    record = get_endpoint(access, name)
    execution_input = {"delete": [record.name], "source": source}
    execution_name = Executions.name_for(f"{source}-delete", f"{record.name}#{record.version}")
    arn, started = access.executions.start(execution_input, name=execution_name)
    return ExecutionStarted(
        execution_id=execution_id_of(arn),
        execution_arn=arn,
        started=started,
        source=source,
        deletes=[record.name],
    )
