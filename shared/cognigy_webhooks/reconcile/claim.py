"""A name's create claim, as one register invocation holds it.

Before a name is looked up to create, adopt or remove duplicates, the register task takes the name's
create claim: one conditional write on the record's item
(:meth:`~cognigy_webhooks.dal.records.Store.claim`), so two executions never work on one name at
once. Another execution holding it raises :class:`~cognigy_webhooks.errors.EndpointClaimed` (the ASL
retries; the retry finds that execution's record). The commit of the outcome clears the claim
(``claim_token``); every failure gives it back (:meth:`NameClaim.release`, marking the item
``createMaybeApplied`` when a create may have been applied); a holder that died leaves it to its
lease, :data:`CREATE_CLAIM_LEASE_SECONDS`.

A create made without the claim (a name the plan's complete listing saw free) takes it only when
something went wrong after it (:mod:`cognigy_webhooks.reconcile.race`), waiting for another holder
to finish (:meth:`NameClaim.take_waiting`).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from cognigy_webhooks.errors import CognigyWebhooksError, EndpointClaimed, RecordConflict
from cognigy_webhooks.observability import logger
from cognigy_webhooks.reconcile.task import RecordStore, Stored

__all__ = ["CLAIM_PATIENCE_SECONDS", "CREATE_CLAIM_LEASE_SECONDS", "NameClaim"]

# How long a create claim holds: longer than the register function's Timeout (60 s in template.yaml),
# so a holder still running never loses it; one that died frees it this long after it claimed.
CREATE_CLAIM_LEASE_SECONDS = 90.0
# How long :meth:`NameClaim.take_waiting` waits for another holder: one register invocation's work
# (a look-up, a create or an update, a commit) takes seconds; well inside the function's Timeout.
CLAIM_PATIENCE_SECONDS = 20.0


class NameClaim:
    """The create claim on ``name`` for one invocation: taken at most once, held (``token``) until
    the commit clears it or :meth:`release` gives it back."""

    def __init__(self, store: RecordStore, name: str, stored: Stored) -> None:
        self._store = store
        self._name = name
        self._stored = stored
        self.token: str | None = None

    def take(self) -> None:
        """Claim the name (raises ``EndpointClaimed`` when another execution holds it)."""
        existing = self._stored.record
        mine = uuid.uuid4().hex
        self._store.claim(
            self._name,
            token=mine,
            expected_version=existing.version if existing else None,
            lease_seconds=CREATE_CLAIM_LEASE_SECONDS,
        )
        self.token = mine  # held from here on: every way out gives it back or commits it

    @property
    def stored(self) -> Stored:
        """The item as it was read last (by :meth:`take_waiting`, when it took the claim)."""
        return self._stored

    async def take_waiting(
        self, sleep: Callable[[float], Awaitable[object]], *, patience: float = CLAIM_PATIENCE_SECONDS
    ) -> Stored:
        """Take the claim on the item as it is now (read again), waiting with backoff while another
        execution holds it, ``patience`` seconds of sleep at most (then ``EndpointClaimed``). Returns
        the item as it was when the claim was taken."""
        slept, pause, conflicts = 0.0, 0.2, 0
        while True:
            self._stored = self._store.read(self._name)
            try:
                self.take()
            except RecordConflict:  # written between the read and the claim: read it again
                conflicts += 1
                if conflicts > 5:
                    raise
                continue
            except EndpointClaimed:
                if slept >= patience:
                    raise
                await sleep(pause)
                slept, pause = slept + pause, min(pause * 2, 2.0)
                continue
            return self._stored

    def handed_over(self) -> None:
        """The commit cleared the claim: nothing is left to give back."""
        self.token = None

    def release(self, *, maybe_applied: bool) -> None:
        """Give the claim back after a failure (nothing when it is not held); when that fails too,
        its lease frees it."""
        if self.token is None:
            return
        token, self.token = self.token, None
        stored = self._stored
        try:
            self._store.release(
                self._name,
                token=token,
                create_maybe_applied=maybe_applied,
                drop_item=stored.record is None and not stored.create_maybe_applied,
            )
        except CognigyWebhooksError as exc:
            logger.warning(
                "the create claim could not be released; its lease frees it",
                extra={"endpoint": self._name, "error": type(exc).__name__},
            )
