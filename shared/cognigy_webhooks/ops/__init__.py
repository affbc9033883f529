"""The operations the management API, the command line and the deploy trigger share, each implemented
once. One module per concern (each states its contract):

- :mod:`~cognigy_webhooks.ops.access`: :class:`StackAccess`, what an operation reaches of a stack.
- :mod:`~cognigy_webhooks.ops.shapes`: the API's request and response shapes (camelCase), which the
  command line's ``--json`` prints too.
- :mod:`~cognigy_webhooks.ops.endpoints`: records listed (paged), read, audited (paged), probed now,
  deleted (one reconcile that deletes just that name).
- :mod:`~cognigy_webhooks.ops.plans`: a desired set checked, and planned with no side effect.
- :mod:`~cognigy_webhooks.ops.executions`: secrets stored, reconciles started, executions described,
  stopped, listed.
- :mod:`~cognigy_webhooks.ops.progress`: an execution's history read as steps and a summary so far.
- :mod:`~cognigy_webhooks.ops.watch`: a watch started on demand and described; every endpoint's health.

Bad input is :class:`~cognigy_webhooks.errors.InvalidInput` (``InvalidSpec`` for a desired set) naming
each field; what a request names and does not exist is :class:`~cognigy_webhooks.errors.NotFound`;
AWS failures are :class:`~cognigy_webhooks.errors.StoreError`. Every name is importable from here and
loads on first use (PEP 562): the deploy trigger, which starts reconciles only, loads no more.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from cognigy_webhooks.ops.access import StackAccess
    from cognigy_webhooks.ops.endpoints import (
        check_name,
        delete_endpoint,
        endpoint_audit,
        get_endpoint,
        list_endpoints,
        probe_now,
    )
    from cognigy_webhooks.ops.executions import (
        ReconcileStart,
        describe_execution,
        execution_id_of,
        list_executions,
        start_execution,
        start_reconcile,
        stop_execution,
        store_secrets,
    )
    from cognigy_webhooks.ops.plans import check_desired, expected_digest, plan_desired
    from cognigy_webhooks.ops.progress import Step, planned_counts, progress_step, step_of, summary_so_far
    from cognigy_webhooks.ops.watch import describe_watch, health, health_of, start_watch

_WHERE = {
    "StackAccess": "access",
    "check_name": "endpoints",
    "delete_endpoint": "endpoints",
    "endpoint_audit": "endpoints",
    "get_endpoint": "endpoints",
    "list_endpoints": "endpoints",
    "probe_now": "endpoints",
    "ReconcileStart": "executions",
    "describe_execution": "executions",
    "execution_id_of": "executions",
    "list_executions": "executions",
    "start_execution": "executions",
    "start_reconcile": "executions",
    "stop_execution": "executions",
    "store_secrets": "executions",
    "check_desired": "plans",
    "expected_digest": "plans",
    "plan_desired": "plans",
    "Step": "progress",
    "step_of": "progress",
    "planned_counts": "progress",
    "progress_step": "progress",
    "summary_so_far": "progress",
    "describe_watch": "watch",
    "health": "watch",
    "health_of": "watch",
    "start_watch": "watch",
}

__all__ = [
    "ReconcileStart",
    "StackAccess",
    "Step",
    "check_desired",
    "check_name",
    "delete_endpoint",
    "describe_execution",
    "describe_watch",
    "endpoint_audit",
    "execution_id_of",
    "expected_digest",
    "get_endpoint",
    "health",
    "health_of",
    "list_endpoints",
    "list_executions",
    "plan_desired",
    "planned_counts",
    "probe_now",
    "progress_step",
    "start_execution",
    "start_reconcile",
    "start_watch",
    "step_of",
    "stop_execution",
    "store_secrets",
    "summary_so_far",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'cognigy_webhooks.ops' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"cognigy_webhooks.ops.{module}"), name)
    globals()[name] = value
    return value
