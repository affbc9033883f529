"""A name's create claim, as one register invocation holds it.

Before anything is created under a name, the register task takes the name's create claim: one
conditional write on the record's item (:meth:`~cognigy_webhooks.dal.records.Store.claim`), so two
executions never create under one name at once. Another execution holding it raises
:class:`~cognigy_webhooks.errors.EndpointClaimed` (the ASL retries; the retry finds that execution's
record). The commit of the outcome clears the claim (``claim_token``); every failure gives it back
(:meth:`NameClaim.release`, marking the item ``createMaybeApplied`` when a create may have been
applied); a holder that died leaves it to its lease, :data:`CREATE_CLAIM_LEASE_SECONDS`.
"""

from __future__ import annotations

import uuid

from cognigy_webhooks.errors import CognigyWebhooksError
from cognigy_webhooks.observability import logger
from cognigy_webhooks.reconcile.task import RecordStore, Stored

__all__ = ["CREATE_CLAIM_LEASE_SECONDS", "NameClaim"]

# How long a create claim holds: longer than the register function's Timeout (60 s in template.yaml),
# so a holder still running never loses it; one that died frees it this long after it claimed.
CREATE_CLAIM_LEASE_SECONDS = 90.0


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
