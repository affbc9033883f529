"""Adopt before create: the one engine that decides how a name comes to hold exactly one webhook.

Every registration goes through :class:`Placement`: the register task (``mode="reconcile"``: one
attempt per invocation, the state machine retries) and the tutorial's flows (``mode="create"``: a
retry loop in :mod:`cognigy_webhooks.tutorial`). Given the API and what is known about the name
(:class:`Known`: the recorded webhook, whether it is up to date, whether a create of ours may have
been applied unrecorded, whether the name is in doubt), it alone decides:

1. **Look the name up first?** Yes when a create of ours may have been applied (its answer was
   lost), when the name is in doubt (a listing saw duplicates under it or no longer saw the recorded
   webhook, an update met a 404, a 409 stood unresolved) and, in reconcile mode, whenever nothing is
   recorded (the desired set owns the name: a racing execution's or a hand-made webhook may hold
   it). Otherwise a recorded webhook is updated in place (no call at all when it is up to date);
   in create mode the create is sent at once (the happy path is exactly one call).
2. **Keep or adopt what the look-up finds?** It is sorted by
   :func:`~cognigy_webhooks.reconcile.names.sort_out` (the recorded one, else the oldest of ours,
   else the oldest). The recorded one is left alone when up to date, else updated. Another one is
   adopted: in reconcile mode it is updated to the spec (it may be a racing execution's, an older
   spec's or made by hand); in create mode it is taken as it is (it is what this very call's lost
   create made, from this spec). Nothing found: create; no create of ours was applied after all.
3. **Does a 409 to the create mean adopt?** Only when this placement looked the name up before that
   create: then the name is held by a create of ours the listing did not show yet (or a racing
   one), so it looks again and adopts as in 2. When the look-up still shows nothing, the 409 is
   raised and the name stays in doubt (:meth:`Placement.conflict_pending`: another attempt may
   settle it). Without a look-up first (create mode, nothing lost) the name is someone else's: the
   409 is raised.
4. **May a failed attempt have left a webhook?** (:meth:`Placement.failed`) Yes when the attempt
   created one, or sent a create whose failure does not rule that out (anything but a throttle, a
   rejection, a refused key, or an unavailability before the request was sent). The next attempt
   then looks first; the register task marks the record ``createMaybeApplied``.

5. **What the plan's listing already says** (the endpoints dialect, whose listing is complete and
   carries each endpoint's ``lastChanged``): ``listed_absent`` (the listing saw nothing under the
   name, nothing is recorded, no create of ours may be pending, nobody holds the name's claim)
   creates at once, without a look-up and without taking the claim first (``before_look_up`` does
   not run): the register task's commit is conditioned on the name being still unclaimed, and its
   creator settles a race it lost (:mod:`cognigy_webhooks.reconcile.race`); ``moved`` (the
   recorded endpoint's ``lastChanged`` differs from the record's) reads that endpoint and repairs
   only what drifted (:attr:`Placed.drift`), or records the new ``lastChanged`` when nothing did.
   A look-up that finds several endpoints under the name, none of them recorded, in a dialect
   whose webhooks carry no marks, cannot tell which to adopt:
   :class:`~cognigy_webhooks.errors.CognigyAmbiguousName`, and nothing is changed.

So there is never a blind second create: every create after one that may have been applied comes
after a look-up. The engine neither retries, sleeps nor records: the tutorial's loop backs off,
the register task holds the create claim and writes records and audit events. ``limiter`` (the
register task's shared one; None when the client paces itself) is asked for each call's tokens
first: one for an update, two before a look-up (the look-up and the create or update after it).
``before_look_up`` runs once, before the first look-up (the register task takes its claim there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from cognigy_webhooks.errors import (
    CognigyAmbiguousName,
    CognigyAuthError,
    CognigyForbidden,
    CognigyNotFound,
    CognigyRejected,
    CognigyThrottled,
    CognigyUnavailable,
)
from cognigy_webhooks.models import WebhookEndpoint
from cognigy_webhooks.observability import logger
from cognigy_webhooks.reconcile.names import Sorted, sort_out

__all__ = ["Known", "Limiter", "Mode", "Placed", "Placement", "Step", "WebhookApi", "first_step"]

Mode = Literal["reconcile", "create"]
Step = Literal["look_up", "create", "update", "read", "nothing"]
Placing = Literal["created", "adopted", "updated", "unchanged"]


class WebhookApi(Protocol):
    """What the engine needs of :class:`cognigy_webhooks.cognigy.CognigyClient`."""

    async def create_webhook(
        self, endpoint: WebhookEndpoint, *, signature_secret: str | None = None
    ) -> Any: ...
    async def update_webhook(
        self, webhook_id: str, endpoint: WebhookEndpoint, *, signature_secret: str | None = None
    ) -> Any: ...
    async def list_webhooks(self, name: str | None = None) -> list[Any]: ...
    async def get_webhook(self, webhook_id: str) -> Any: ...


class Limiter(Protocol):
    async def acquire(self, n: int = 1) -> None: ...


@dataclass(frozen=True, slots=True)
class Known:
    """What is known about a name before an attempt.

    ``recorded_id``: the webhook its record names (reconcile mode only). ``up_to_date``: that webhook
    holds the desired spec already (the record's spec hash). ``maybe_applied``: a create of ours may
    have been applied without its answer. ``in_doubt``: the name may hold webhooks the record does
    not say (or lack the one it says). ``listed_absent``: the plan's complete listing saw nothing
    under the name. ``moved``: the listing's ``lastChanged`` for the recorded one differs from the
    record's (rule 5)."""

    mode: Mode = "reconcile"
    recorded_id: str | None = None
    up_to_date: bool = False
    maybe_applied: bool = False
    in_doubt: bool = False
    listed_absent: bool = False
    moved: bool = False

    def __post_init__(self) -> None:
        if self.mode == "create" and self.recorded_id is not None:
            raise ValueError("create mode keeps no record: give no recorded_id")


def first_step(known: Known) -> Step:
    """The first call an attempt makes (rule 1 of the module docstring)."""
    if known.maybe_applied or known.in_doubt:
        return "look_up"
    if known.recorded_id is None:
        return "look_up" if known.mode == "reconcile" and not known.listed_absent else "create"
    if not known.up_to_date:
        return "update"
    return "read" if known.moved else "nothing"


@dataclass(frozen=True, slots=True)
class Placed:
    """What Cognigy holds for the name after a successful attempt.

    ``outcome``: ``created`` (a new webhook), ``adopted`` (one that held the name, kept instead of a
    second), ``updated`` (the recorded one, changed) or ``unchanged``. ``status_code``: Cognigy's
    answer to the write (201 created, 200 updated; None without a write). ``webhook``: what Cognigy
    answered or listed (None when no call was needed). ``found``: the name's webhooks, sorted, when
    it was looked up (the caller removes ``found.orphans`` and reports ``found.foreign``).
    ``after_conflict``: adopted after Cognigy answered 409 to our create. ``drift``: the fields a read
    found changed outside the product, repaired by this attempt (rule 5)."""

    webhook_id: str
    outcome: Placing
    status_code: int | None = None
    webhook: Any | None = None
    found: Sorted | None = None
    after_conflict: bool = False
    drift: tuple[str, ...] = ()


def _may_have_applied(exc: BaseException) -> bool:
    """Whether a create that ended in ``exc`` may have taken effect."""
    if isinstance(exc, CognigyThrottled | CognigyRejected | CognigyAuthError | CognigyForbidden):
        return False
    return not (isinstance(exc, CognigyUnavailable) and not exc.maybe_applied)


class Placement:
    """One name's way to holding exactly one webhook of ours, over one or more attempts.

    ``spec`` is the endpoint as Cognigy is told it (secrets resolved, marks added); ``secret`` the
    signature secret to send. :attr:`known` evolves from attempt to attempt."""

    def __init__(
        self,
        api: WebhookApi,
        spec: WebhookEndpoint,
        *,
        known: Known | None = None,
        secret: str | None = None,
        limiter: Limiter | None = None,
        before_look_up: Callable[[], None] | None = None,
    ) -> None:
        self.known = known or Known()
        self._api = api
        self._spec = spec
        self._secret = secret
        self._limiter = limiter
        self._before_look_up = before_look_up
        self._attempts = 0
        self._looked_up = False  # some attempt looked the name up: a 409 to a later create is ours
        self._sent_create = False  # this attempt sent a create
        self._created = False  # this attempt created a webhook
        self._conflict = False  # this attempt's 409 stood: the look-up again showed nothing

    @property
    def name(self) -> str:
        return self._spec.name

    async def attempt(self) -> Placed:
        """One attempt (rules 1 to 3). Cognigy's typed errors propagate; call :meth:`failed` then."""
        self._attempts += 1
        self._sent_create = self._created = self._conflict = False
        step = first_step(self.known)
        if step == "nothing":
            return Placed(str(self.known.recorded_id), "unchanged")
        if step == "create":
            if self.known.mode == "reconcile":  # rule 5: the listing showed the name free
                await self._take(1)
            return await self._create()
        if step == "read":
            placed = await self._read()
            if placed is not None:
                return placed
        if step == "update":
            recorded = str(self.known.recorded_id)
            await self._take(1)
            try:
                remote = await self._api.update_webhook(recorded, self._spec, signature_secret=self._secret)
            except CognigyNotFound:  # deleted behind our back: look the name up
                self.known = replace(self.known, in_doubt=True)
            else:
                return Placed(str(remote.id), "updated", 200, remote)
        found = await self._look_up()
        if found.keep is None:
            return await self._create(found)
        if str(found.keep.id) == self.known.recorded_id and self.known.up_to_date:
            return Placed(str(self.known.recorded_id), "unchanged", None, found.keep, found)
        return await self._adopt(found.keep, found)

    def failed(self, exc: BaseException) -> bool:
        """Learn from the attempt that raised ``exc`` (rule 4): True when a create of it may have
        left a webhook; the next attempt then looks the name up first."""
        maybe = self._created or (self._sent_create and _may_have_applied(exc))
        if maybe:
            self.known = replace(self.known, maybe_applied=True)
        return maybe

    def conflict_pending(self, exc: BaseException) -> bool:
        """True when ``exc`` is this attempt's 409 that rule 3 would adopt once a look-up shows what
        holds the name: another attempt may settle it (it looks first)."""
        return self._conflict and isinstance(exc, CognigyRejected) and exc.status_code == 409

    async def _take(self, n: int) -> None:
        if self._limiter is not None:
            await self._limiter.acquire(n)

    def _enter(self) -> None:
        if self._before_look_up is not None:
            enter, self._before_look_up = self._before_look_up, None
            enter()

    async def _read(self) -> Placed | None:
        """Rule 5: the recorded endpoint moved; read it and repair what drifted (None: it is gone,
        look the name up)."""
        recorded = str(self.known.recorded_id)
        await self._take(1)
        try:
            remote = await self._api.get_webhook(recorded)
        except CognigyNotFound:
            self.known = replace(self.known, in_doubt=True)
            return None
        drift = tuple(self._api.drifted(remote, self._spec)) if hasattr(self._api, "drifted") else ()
        if not drift:
            return Placed(recorded, "unchanged", None, remote)
        logger.info("repairing drift", extra={"endpoint": self.name, "fields": list(drift)})
        await self._take(1)
        updated = await self._api.update_webhook(recorded, self._spec, signature_secret=self._secret)
        return Placed(str(updated.id), "updated", 200, updated, drift=drift)

    async def _look_up(self) -> Sorted:
        self._enter()
        await self._take(2)  # the look-up and the create or update after it
        found = sort_out(
            await self._api.list_webhooks(self.name),
            self.name,
            self.known.recorded_id,
            marks=getattr(self._api, "marks", True),
        )
        if (
            found.keep is not None
            and str(found.keep.id) != self.known.recorded_id
            and found.foreign
            and not getattr(self._api, "marks", True)
        ):
            ids = ", ".join(str(w.id) for w in [found.keep, *found.foreign][:10])
            raise CognigyAmbiguousName(
                f"{1 + len(found.foreign)} Cognigy endpoints are named {self.name!r} (ids {ids}) and none "
                "is recorded as this stack's: which one to adopt cannot be told; delete or rename the "
                "others in Cognigy, then apply again"
            )
        self._looked_up = True
        if found.keep is None:  # the name is free: no create of ours was applied
            self.known = replace(self.known, maybe_applied=False, in_doubt=False)
        return found

    async def _create(self, found: Sorted | None = None) -> Placed:
        self._sent_create = True
        try:
            remote = await self._api.create_webhook(self._spec, signature_secret=self._secret)
        except CognigyRejected as exc:
            if exc.status_code != 409 or not self._looked_up:
                raise
            # The name is taken after all: a create of ours whose answer was lost and that the
            # look-up did not show yet (or a racing one). Look again and adopt; never a second.
            again = await self._look_up()
            if again.keep is None:
                self.known = replace(self.known, in_doubt=True)
                self._conflict = True
                raise
            return await self._adopt(again.keep, again, after_conflict=True)
        self._created = True
        return Placed(str(remote.id), "created", 201, remote, found)

    async def _adopt(self, keep: Any, found: Sorted, *, after_conflict: bool = False) -> Placed:
        if self.known.mode == "create":  # what this call's lost create made, from this very spec
            logger.info(
                "adopted the webhook a lost create made",
                extra={"endpoint": self.name, "webhook_id": keep.id, "attempt": self._attempts},
            )
            return Placed(str(keep.id), "adopted", None, keep, found, after_conflict)
        remote = await self._api.update_webhook(str(keep.id), self._spec, signature_secret=self._secret)
        webhook_id = str(remote.id)
        if after_conflict:
            return Placed(webhook_id, "adopted", 200, remote, found, after_conflict=True)
        if webhook_id == self.known.recorded_id:
            return Placed(webhook_id, "updated", 200, remote, found)
        logger.info(
            "adopting existing Cognigy webhook", extra={"endpoint": self.name, "webhook_id": webhook_id}
        )
        return Placed(webhook_id, "adopted", 200, remote, found)
