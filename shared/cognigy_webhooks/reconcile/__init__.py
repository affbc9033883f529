"""The reconcile steps' logic: plan a desired set, register one endpoint, summarize.

One module per concern (each states its contract):

- :mod:`~cognigy_webhooks.reconcile.plan`: validate the desired set (one bad spec never stops the
  others; secrets in clear are refused), list Cognigy ONCE per execution when something of it is
  recorded (each item carries the webhook ids its name holds there), list deletions.
- :mod:`~cognigy_webhooks.reconcile.names`: what a name holds in Cognigy and which of it is ours
  (keep, adopt, orphans, foreign), and the plan's one listing.
- :mod:`~cognigy_webhooks.reconcile.adopt`: the ONE registration engine (adopt before create): given
  the API and what is known about a name, it alone decides whether to look the name up first,
  what to keep or adopt, whether to create, and what a 409 means. The register task and the
  tutorial's flows (:mod:`cognigy_webhooks.tutorial`) both run it.
- :mod:`~cognigy_webhooks.reconcile.register`: the register task, decide -> call Cognigy -> record,
  under the name's create claim (:mod:`~cognigy_webhooks.reconcile.claim`), writing records, audit
  events and failures through :mod:`~cognigy_webhooks.reconcile.recording`; its request, result and
  dependencies are in :mod:`~cognigy_webhooks.reconcile.task`.
- :mod:`~cognigy_webhooks.reconcile.throttle`: a throttle re-stated with the wait the ASL reads.
- :mod:`~cognigy_webhooks.reconcile.session`: the plan and register tasks' Cognigy client, shared
  rate limiter and API key, built once from the settings.
- :mod:`~cognigy_webhooks.reconcile.summary`: the summarize step.

Transient failures are raised for the state machine to retry; throttling is raised with the seconds
to wait (Retry-After plus a whole-second jitter); rejections are results. Every name is importable
from this package; the session's names load on first use (PEP 562), so the tutorial, which needs
only the engine, does not load the AWS clients.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cognigy_webhooks.reconcile.adopt import Known, Placed, Placement, first_step
from cognigy_webhooks.reconcile.claim import CREATE_CLAIM_LEASE_SECONDS, NameClaim
from cognigy_webhooks.reconcile.names import (
    INVENTORY_PAGE_SIZE,
    HeldWebhook,
    Lister,
    Sorted,
    cognigy_endpoint_inventory,
    cognigy_inventory,
    describe_left,
    is_ours,
    sort_out,
)
from cognigy_webhooks.reconcile.plan import CognigyHeld, Inventory, Plan, PlanItem, plan, spec_to_state
from cognigy_webhooks.reconcile.recording import MAYBE_APPLIED_NOTE
from cognigy_webhooks.reconcile.register import register, resolve_basic_auth, resolve_for_cognigy
from cognigy_webhooks.reconcile.summary import Summary, summarize
from cognigy_webhooks.reconcile.task import (
    Action,
    CognigyApi,
    Limiter,
    RecordStore,
    RegisterDeps,
    RegisterRequest,
    RegisterResult,
    Stored,
    parse_register_request,
)
from cognigy_webhooks.reconcile.throttle import (
    DEFAULT_THROTTLE_WAIT,
    throttle_jitter_bound,
    throttled_for_state_machine,
)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from cognigy_webhooks.reconcile.session import (
        CognigySession,
        Connection,
        limiter_bucket,
        with_rotated_key,
    )

# Names whose module brings the AWS clients: loaded when first used.
_LAZY = {"CognigySession", "Connection", "limiter_bucket", "with_rotated_key"}

__all__ = [
    "CREATE_CLAIM_LEASE_SECONDS",
    "DEFAULT_THROTTLE_WAIT",
    "INVENTORY_PAGE_SIZE",
    "MAYBE_APPLIED_NOTE",
    "Action",
    "CognigyApi",
    "CognigyHeld",
    "CognigySession",
    "Connection",
    "HeldWebhook",
    "Inventory",
    "Known",
    "Limiter",
    "Lister",
    "NameClaim",
    "Placed",
    "Placement",
    "Plan",
    "PlanItem",
    "RecordStore",
    "RegisterDeps",
    "RegisterRequest",
    "RegisterResult",
    "Sorted",
    "Stored",
    "Summary",
    "cognigy_endpoint_inventory",
    "cognigy_inventory",
    "describe_left",
    "first_step",
    "is_ours",
    "limiter_bucket",
    "parse_register_request",
    "plan",
    "register",
    "resolve_basic_auth",
    "resolve_for_cognigy",
    "sort_out",
    "spec_to_state",
    "summarize",
    "throttle_jitter_bound",
    "throttled_for_state_machine",
    "with_rotated_key",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'cognigy_webhooks.reconcile' has no attribute {name!r}")
    value = getattr(importlib.import_module("cognigy_webhooks.reconcile.session"), name)
    globals()[name] = value
    return value
