"""One webhook per name: what Cognigy holds under an endpoint's name, and which of it is ours.

Cognigy does not promise to refuse a second webhook with a taken name, so a name may hold several
(two executions that both created, a create whose answer was lost and that was sent again, a webhook
made by hand). Reconcile keeps exactly one per name; this module says which (the registration
engine, :mod:`cognigy_webhooks.reconcile.adopt`, acts on it):

- :func:`cognigy_inventory` is the plan step's ONE listing of Cognigy per execution (every page, each
  request through the caller's rate limiter), reduced to the webhook ids each name of the plan holds.
  The register task acts on a name only when that listing shows duplicates or lacks the recorded id
  (drift), so a clean re-apply still makes no Cognigy call per endpoint.
- :func:`sort_out` splits the webhooks a name holds (as a fresh look-up returned them, oldest first)
  into the one to keep, our orphans (to remove) and the ones we cannot attribute (left alone and
  reported). Attributable means it carries our loop marks: ``X-Cogwh-Origin: cognigy-webhooks`` and
  ``X-Cogwh-Loop-Id`` = ``loop_id_for(name)`` (:mod:`cognigy_webhooks.loopguard`), which every
  webhook this stack registers carries. The one kept is the recorded one when Cognigy still holds
  it, else the oldest attributable one, else (nothing of ours) the oldest one, which is adopted as
  the tutorial's flow always did.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from cognigy_webhooks.reconcile.plan import CognigyHeld

from cognigy_webhooks.loopguard import read_loop_headers

__all__ = [
    "INVENTORY_PAGE_SIZE",
    "HeldWebhook",
    "Lister",
    "Sorted",
    "cognigy_endpoint_inventory",
    "cognigy_inventory",
    "describe_left",
    "is_ours",
    "sort_out",
]

INVENTORY_PAGE_SIZE = 100


class HeldWebhook(Protocol):
    """What this module reads of a webhook Cognigy returned (a ``CognigyWebhook``)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def headers(self) -> dict[str, str]: ...


class Lister(Protocol):
    def iter_webhooks(self, name: str | None = None, *, page_size: int = ...) -> AsyncIterator[Any]: ...


async def cognigy_inventory(
    api: Lister, names: Collection[str], *, budget_seconds: float | None = None
) -> dict[str, list[str]]:
    """Every webhook id Cognigy holds under each of ``names`` (oldest first; a name it lacks maps to
    ``[]``), from one listing of all pages. ``budget_seconds`` bounds the whole listing
    (:class:`TimeoutError` past it). Cognigy's and the limiter's typed errors propagate."""
    wanted = set(names)
    held: dict[str, list[str]] = {name: [] for name in wanted}

    async def run() -> None:
        async for webhook in api.iter_webhooks(page_size=INVENTORY_PAGE_SIZE):
            if webhook.name in wanted:
                held[webhook.name].append(str(webhook.id))

    if budget_seconds is None:
        await run()
    else:
        async with asyncio.timeout(budget_seconds):
            await run()
    return held


class ProjectLister(Protocol):
    def scoped(self, project_id: str | None) -> Lister: ...


async def cognigy_endpoint_inventory(
    api: ProjectLister, wanted: Mapping[str, str], *, budget_seconds: float | None = None
) -> dict[str, CognigyHeld]:
    """The endpoints dialect's listing: every webhook Endpoint of each project ``wanted`` names (one
    listing per project, every page), reduced to what each wanted name holds in its own project:
    the ids (oldest first) and their ``lastChanged``. ``budget_seconds`` bounds it all."""
    from cognigy_webhooks.reconcile.plan import CognigyHeld

    by_project: dict[str, set[str]] = {}
    for name, project in wanted.items():
        by_project.setdefault(project, set()).add(name)
    held = {name: CognigyHeld(listed=True) for name in wanted}

    async def run() -> None:
        for project, names in by_project.items():
            async for endpoint in api.scoped(project).iter_webhooks(page_size=INVENTORY_PAGE_SIZE):
                if endpoint.name in names:
                    entry = held[endpoint.name]
                    entry.ids.append(str(endpoint.id))
                    if endpoint.last_changed is not None:
                        entry.last_changed[str(endpoint.id)] = int(endpoint.last_changed)

    if budget_seconds is None:
        await run()
    else:
        async with asyncio.timeout(budget_seconds):
            await run()
    return held


def is_ours(webhook: HeldWebhook, name: str) -> bool:
    """True when ``webhook`` carries this stack's loop marks for ``name``."""
    return read_loop_headers(webhook.headers).matches(name)


@dataclass(frozen=True)
class Sorted:
    keep: Any | None  # the webhook to keep (update in place or adopt); None: create one
    orphans: list[Any] = field(default_factory=list)  # ours, besides the one kept: to remove
    foreign: list[Any] = field(default_factory=list)  # not attributable to us: left alone, reported


def sort_out(
    held: Sequence[HeldWebhook], name: str, recorded_id: str | None, *, marks: bool = True
) -> Sorted:
    """Which of the webhooks ``name`` holds (oldest first) to keep, remove and leave; only webhooks
    with exactly that name count. ``marks`` False: the dialect's webhooks cannot carry our marks
    (Cognigy.AI's Endpoints), so nothing but the recorded one is attributable: no orphans, every
    other one is foreign."""
    same = [w for w in held if w.name == name]
    ours = [w for w in same if marks and is_ours(w, name)]
    recorded = next((w for w in same if recorded_id is not None and str(w.id) == recorded_id), None)
    keep = recorded or (ours[0] if ours else None) or (same[0] if same else None)
    mine = {id(w) for w in ours}
    return Sorted(
        keep=keep,
        orphans=[w for w in ours if w is not keep],
        foreign=[w for w in same if w is not keep and id(w) not in mine],
    )


def describe_left(name: str, foreign: Sequence[HeldWebhook], *, marks: bool = True) -> str | None:
    """The result's note about same-named webhooks left alone (None when there are none). ``marks``
    False: the dialect's webhooks carry no marks (Cognigy.AI's Endpoints), only records tell."""
    if not foreign:
        return None
    ids = ", ".join(str(w.id) for w in foreign[:10]) + (", ..." if len(foreign) > 10 else "")
    why = "that do not carry this stack's marks" if marks else "that no record of this stack names"
    return (
        f"left {len(foreign)} other webhook(s) named {name!r} {why} "
        f"(ids {ids}): Cognigy may deliver twice; delete or rename them in Cognigy"
    )
