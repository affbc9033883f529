"""The plan step: validate a desired set, list Cognigy once, list deletions.

:func:`plan` validates each desired endpoint on its own (one bad spec never stops the others: it
lands in ``invalid`` with the reason ``invalid_spec``), refuses secrets in clear (they are moved to
Secrets Manager before an execution starts: execution state carries ARNs only, see
:func:`spec_to_state`) and, with ``prune``, plans the deletion of every recorded name the set no
longer declares.

When something of the plan is recorded it lists Cognigy ONCE for the whole execution (all pages,
through the shared rate limiter, :func:`~cognigy_webhooks.reconcile.names.cognigy_inventory`): each
item carries the webhook ids its name holds there (:class:`CognigyHeld`), so the register task looks
a name up only when it holds duplicates or lacks the recorded id. A failed listing never stops the
plan: the items go without (``listed`` False) and ``Plan.listing`` says why.

A deletion alone (``{"delete": [names], "source": ...}``, no desired set: what the management API's
``DELETE /endpoints/{name}`` starts) plans the deletion of exactly those names and nothing else: no
desired set is read, nothing else is pruned, and the state machine runs it as it runs any plan.

:func:`plan_output` is what the plan step hands the state machine: the items written to the config
bucket, ``itemsRef`` in their place (the Distributed Map reads them), the concurrency
:func:`map_concurrency` derives from the Cognigy budget.

:func:`check_endpoint` is the one validation of a desired endpoint (plain secrets refused, what the
dialect cannot express refused naming the field, the spec's own rules): the plan runs it on each
endpoint, and so does the side-effect-free preview (:mod:`cognigy_webhooks.ops`).

Two dialects (``dialect``): for Cognigy.AI's Endpoints the desired set's top-level ``cognigy:`` block
(projectId, flowId, localeId) is spread into every endpoint (its own block wins field by field), the
fields an Endpoint cannot honour are refused naming the field and what to use instead
(:func:`~cognigy_webhooks.cognigy.endpoints.unsupported_fields`), and Cognigy is listed ALWAYS, once
per project (``endpoint_inventory``: every page, channel ``webhook``), so that each item carries the
ids its name holds and their ``lastChanged``: a name the listing saw free is created without a
look-up, an endpoint that did not move is not read, and a re-apply with nothing changed costs the
listing pages alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import Field

from cognigy_webhooks.cognigy.endpoints import unsupported_fields
from cognigy_webhooks.dal.run_files import RunFiles
from cognigy_webhooks.errors import CognigyWebhooksError, InvalidSpec
from cognigy_webhooks.models import WebhookEndpoint, _Model, parse_endpoint, with_cognigy_defaults
from cognigy_webhooks.observability import logger
from cognigy_webhooks.secrets import plain_secret_fields

__all__ = [
    "MAX_DELETIONS",
    "CognigyHeld",
    "Dialect",
    "Inventory",
    "Plan",
    "PlanItem",
    "check_endpoint",
    "map_concurrency",
    "plan",
    "plan_output",
    "spec_to_state",
]

#: The most names one deletion-only input may hold (a desired set's own bound).
MAX_DELETIONS = 1000
#: The refusals a plan's output carries for a follower (summarize reads them all from the bucket).
INLINE_INVALID = 50


class CognigyHeld(_Model):
    """What the plan's one listing of Cognigy saw under an item's name. ``listed`` False: there was
    no listing (nothing of the plan was recorded yet, or the listing failed): register then acts on
    its record alone, as before."""

    listed: bool = False
    ids: list[str] = Field(default_factory=list)
    # id -> Cognigy's lastChanged (the endpoints dialect's listing carries it; the tutorial's does not)
    last_changed: dict[str, int] = Field(default_factory=dict)


class PlanItem(_Model):
    action: Literal["apply", "delete"]
    endpoint: dict[str, Any]
    cognigy: CognigyHeld = Field(default_factory=CognigyHeld)


class Plan(_Model):
    items: list[PlanItem] = Field(default_factory=list)
    invalid: list[dict[str, Any]] = Field(default_factory=list)
    execution_id: str | None = None
    source: str = "cli"
    prune: bool = False
    listing: str = "not needed"  # the one Cognigy listing: "complete", "not needed" or why it failed


def map_concurrency(*, requests_per_minute: float, seconds_per_endpoint: float, most: int) -> int:
    """How many endpoints one reconcile runs at once (the Distributed Map's MaxConcurrency): as many
    as the shared Cognigy budget keeps busy and no more (more only makes throttles and children
    sleeping in the limiter). An endpoint makes about one Cognigy call in ``seconds_per_endpoint``
    (probe, register, the Lambda and Step Functions overheads: an assumption, a stack parameter), so
    ``requests_per_minute / 60 * seconds_per_endpoint`` children keep the budget spent (Little's
    law); at least 1, at most ``most`` (the MapConcurrency parameter)."""
    wanted = math.ceil(requests_per_minute / 60.0 * seconds_per_endpoint)
    return max(1, min(int(most), wanted))


def plan_output(result: Plan, files: RunFiles, *, concurrency: int) -> dict[str, Any]:
    """The plan step's output: the items (and the refusals) written to the config bucket under
    ``reconcile/<execution name>/`` and ``itemsRef`` in their place (the map's ItemReader reads
    them, its MaxConcurrencyPath is ``concurrency``), the first :data:`INLINE_INVALID` refusals
    kept inline: the execution's state stays small whatever the number of endpoints."""
    out = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    invalid = out["invalid"]
    ref = files.put_items(
        "reconcile", result.execution_id, out.pop("items"), concurrency=concurrency, invalid=invalid
    )
    out["itemsRef"] = ref.as_state()
    out["invalid"] = invalid[:INLINE_INVALID]
    return out


Inventory = Callable[[list[str]], Mapping[str, list[str]]]
#: name -> project in; name -> what the project holds under the name (ids, lastChanged) out
EndpointInventory = Callable[[Mapping[str, str]], Mapping[str, CognigyHeld]]
Dialect = Literal["tutorial", "endpoints"]


def plan(
    execution_input: dict[str, Any],
    *,
    recorded_names: Callable[[], list[str]],
    load_desired: Callable[[dict[str, Any]], dict[str, Any]],
    recorded_projects: Callable[[], Mapping[str, str]] | None = None,
    execution_id: str | None = None,
    inventory: Inventory | None = None,
    dialect: Dialect = "tutorial",
    endpoint_inventory: EndpointInventory | None = None,
) -> Plan:
    """Validate each desired endpoint on its own (one bad spec never stops the others), refuse plain
    secrets (they must be stored in Secrets Manager before an execution starts), list deletions.

    ``inventory(names)`` lists Cognigy once (all pages) and gives the webhook ids each name holds;
    it is called only when some name of the plan is recorded (a first apply needs no listing: every
    create looks its name up under the name's claim anyway). Each item then carries what Cognigy
    holds under its name (:class:`CognigyHeld`), so register looks a name up only when it holds
    duplicates or lacks the recorded id. A failed listing never stops the plan: the items go
    without (``listed`` False) and ``listing`` says why."""
    if not isinstance(execution_input, dict):
        raise InvalidSpec([{"field": "input", "message": "must be an object"}])
    source = str(execution_input.get("source") or "cli")
    prune = execution_input.get("prune", False)
    if not isinstance(prune, bool):
        raise InvalidSpec([{"field": "prune", "message": "must be true or false"}])
    if "delete" in execution_input:
        result = Plan(execution_id=execution_id, source=source, prune=False)
        for name in _deletions(execution_input):
            result.items.append(PlanItem(action="delete", endpoint={"name": name}))
        if dialect == "endpoints" and endpoint_inventory is not None:
            _list_projects(result, endpoint_inventory, recorded_projects)
        elif inventory is not None:
            _list_once(result, [str(i.endpoint["name"]) for i in result.items], inventory)
        return result
    raw_endpoints = _desired_endpoints(execution_input, load_desired)

    result = Plan(execution_id=execution_id, source=source, prune=prune)
    seen: set[str] = set()
    for index, raw in enumerate(raw_endpoints):
        label = raw.get("name") if isinstance(raw, dict) and isinstance(raw.get("name"), str) else f"#{index}"
        try:
            spec = check_endpoint(raw, dialect=dialect)
        except InvalidSpec as exc:
            result.invalid.append(
                {"name": label, "outcome": "failed", "reason": "invalid_spec", "detail": str(exc)[:500]}
            )
            continue
        if spec.name in seen:
            result.invalid.append(
                {
                    "name": spec.name,
                    "outcome": "failed",
                    "reason": "invalid_spec",
                    "detail": "name declared twice",
                }
            )
            continue
        seen.add(spec.name)
        result.items.append(PlanItem(action="apply", endpoint=spec_to_state(spec)))
    recorded = recorded_names() if prune or inventory is not None else []
    if prune:
        invalid_names = {i["name"] for i in result.invalid}
        for name in recorded:
            if name not in seen and name not in invalid_names:
                result.items.append(PlanItem(action="delete", endpoint={"name": name}))
    names = [str(item.endpoint["name"]) for item in result.items]
    if dialect == "endpoints" and endpoint_inventory is not None:
        if result.items:
            _list_projects(result, endpoint_inventory, recorded_projects)
    elif inventory is not None and set(names) & set(recorded):
        _list_once(result, names, inventory)
    return result


def check_endpoint(raw: Any, *, dialect: Dialect, allow_plain_secrets: bool = False) -> WebhookEndpoint:
    """One desired endpoint as a plan takes it: no secret in clear (execution state carries ARNs
    only; ``allow_plain_secrets`` for a preview, where they are still to be moved), nothing the
    dialect cannot express, the spec's own rules. :class:`InvalidSpec` naming each field at fault
    (the first plain secret alone, before anything else)."""
    if not allow_plain_secrets and isinstance(raw, dict) and (plain := _plain_secret_field(raw)):
        raise InvalidSpec(
            [{"field": plain, "message": "store secrets in Secrets Manager and pass their ARN"}]
        )
    if dialect == "endpoints" and isinstance(raw, dict) and (refused := unsupported_fields(raw)):
        raise InvalidSpec(refused)
    return parse_endpoint(raw)


def _deletions(execution_input: dict[str, Any]) -> list[str]:
    """The names a deletion-only input deletes (each once, in the order given)."""
    if "desired" in execution_input or "desiredRef" in execution_input:
        raise InvalidSpec([{"field": "delete", "message": "goes without desired or desiredRef"}])
    if execution_input.get("prune"):
        raise InvalidSpec([{"field": "prune", "message": "a deletion alone prunes nothing"}])
    names = execution_input["delete"]
    if not isinstance(names, list) or not names or len(names) > MAX_DELETIONS:
        raise InvalidSpec(
            [{"field": "delete", "message": f"must be a list of 1 to {MAX_DELETIONS} endpoint names"}]
        )
    for index, name in enumerate(names):
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise InvalidSpec([{"field": f"delete.{index}", "message": "must be an endpoint name"}])
    return list(dict.fromkeys(names))


def _desired_endpoints(
    execution_input: dict[str, Any], load_desired: Callable[[dict[str, Any]], dict[str, Any]]
) -> list[Any]:
    """The raw endpoint list of the desired set, inline (``desired``) or stored (``desiredRef``)."""
    if "desiredRef" in execution_input:
        ref = execution_input["desiredRef"]
        if not isinstance(ref, dict) or not ref.get("key"):
            raise InvalidSpec(
                [{"field": "desiredRef", "message": "must name a key (and optionally versionId)"}]
            )
        desired = load_desired(ref)
    elif "desired" in execution_input:
        desired = execution_input["desired"]
    else:
        raise InvalidSpec([{"field": "desired", "message": "give desired (inline) or desiredRef"}])
    raw_endpoints = desired.get("endpoints") if isinstance(desired, dict) else None
    if not isinstance(raw_endpoints, list):
        raise InvalidSpec([{"field": "desired.endpoints", "message": "must be a list"}])
    defaults = desired.get("cognigy")
    if defaults is not None:
        if not isinstance(defaults, dict):
            raise InvalidSpec([{"field": "desired.cognigy", "message": "must be a mapping"}])
        raw_endpoints = [with_cognigy_defaults(raw, defaults) for raw in raw_endpoints]
    return raw_endpoints


def _listed(result: Plan, listing: Callable[[], Mapping[str, Any]], without: str) -> Mapping[str, Any] | None:
    """The listing's answer, or None when it failed: then ``Plan.listing`` says why and what the
    apply goes ``without``."""
    try:
        held = listing()
    except (CognigyWebhooksError, TimeoutError) as exc:
        result.listing = f"failed ({type(exc).__name__}): {without}"
        logger.warning("listing Cognigy failed", extra={"error": type(exc).__name__})
        return None
    result.listing = "complete"
    return held


def _list_once(result: Plan, names: list[str], inventory: Inventory) -> None:
    """Give each item what Cognigy holds under its name; a failed listing only says why."""
    held = _listed(result, lambda: inventory(names), "orphans and drift are not looked for")
    if held is None:
        return
    for item in result.items:
        ids = list(held.get(str(item.endpoint["name"]), []))
        item.cognigy = CognigyHeld(listed=True, ids=ids)


def _list_projects(
    result: Plan,
    inventory: EndpointInventory,
    recorded_projects: Callable[[], Mapping[str, str]] | None,
) -> None:
    """The endpoints dialect's listing: once per project of the plan (deletions in the project their
    record names), each item given what its project holds under its name."""
    known = dict(recorded_projects()) if recorded_projects is not None else {}
    wanted: dict[str, str] = {}
    for item in result.items:
        name = str(item.endpoint["name"])
        target = item.endpoint.get("cognigy") or {}
        project = target.get("projectId") if item.action == "apply" else known.get(name)
        if isinstance(project, str) and project:
            wanted[name] = project
    held = _listed(result, lambda: inventory(wanted), "drift and adoption are looked for per endpoint")
    if held is None:
        return
    for item in result.items:
        found = held.get(str(item.endpoint["name"]))
        if found is not None:
            item.cognigy = CognigyHeld(
                listed=True, ids=list(found.ids), last_changed=dict(found.last_changed)
            )


def _plain_secret_field(raw: dict[str, Any]) -> str | None:
    """The first field of a raw spec that holds a secret in clear (execution state must not)."""
    found = plain_secret_fields(raw)
    return found[0] if found else None


def spec_to_state(spec: WebhookEndpoint) -> dict[str, Any]:
    """The spec as execution state may carry it: no secret values (ARNs only)."""
    return spec.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"signature_secret"})
