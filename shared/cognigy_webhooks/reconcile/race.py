"""A create sent without the name's claim, settled by the execution that sent it when the name did
not stay free.

The endpoints dialect creates a name the plan's complete listing saw free at once, without taking
the name's create claim first (:mod:`~cognigy_webhooks.reconcile.adopt`, rule 5): one Cognigy call
and, in DynamoDB, the record and its audit event alone. The claim is then the commit's condition
(:meth:`~cognigy_webhooks.dal.records.Store.commit` with ``unclaimed_create``: the item holds no
claim, live or expired, and no ``createMaybeApplied`` mark). Two things can go wrong after such a
create, and both are settled here by its creator, the one execution that knows the endpoint it made:

- **the commit is refused**: another execution claimed or recorded the name meanwhile (two applies
  racing). :func:`settle_lost_commit` takes the claim, waiting while the other holds it, and then
  * the record names our endpoint (the other adopted it): the claim is given back and the task's
    retry goes on from that record;
  * no endpoint is recorded and no create of anyone's may be pending: ours is committed under the
    claim;
  * another endpoint is recorded, or someone's create may be pending: ours is deleted (audited as
    ``orphan_removed``), the recorded endpoint's URLToken is put back in its secret (the secret is
    one per name, and ours may have overwritten it), the claim is given back and the retry goes on
    from that record. Never two endpoints for one name, never one deleted that a record names.
- **the create failed in a way that may have applied it**: :func:`mark_maybe_applied` takes the
  claim and gives it back marked ``createMaybeApplied``, so the retry looks the name up before
  anything else (never a blind second create).

When the claim cannot be had within :data:`~cognigy_webhooks.reconcile.claim.CLAIM_PATIENCE_SECONDS`
(another execution stuck on the name), the endpoint made is named in an audit event (what to delete
if the next apply reports a second endpoint under the name) and ``EndpointClaimed`` is raised.
"""

from __future__ import annotations

from typing import Any

from cognigy_webhooks.errors import CognigyError, CognigyWebhooksError, EndpointClaimed, RecordConflict
from cognigy_webhooks.observability import logger
from cognigy_webhooks.reconcile.adopt import Placed
from cognigy_webhooks.reconcile.claim import NameClaim
from cognigy_webhooks.reconcile.recording import audit_event, commit
from cognigy_webhooks.reconcile.task import RegisterDeps, RegisterRequest, Stored

__all__ = ["mark_maybe_applied", "settle_lost_commit"]


async def settle_lost_commit(
    name: str,
    created: Placed,
    claim: NameClaim,
    request: RegisterRequest,
    deps: RegisterDeps,
    api: Any,
    *,
    stored_token: bool,
) -> Stored:
    """Settle a refused commit of the endpoint ``created`` without the claim (module docstring).
    Returns the item, claimed, when ours is to be committed under the claim; otherwise settles and
    raises :class:`RecordConflict` (the task's retry goes on from the record). ``stored_token``: our
    create's URLToken was written to the name's secret."""
    mine = created.webhook_id
    try:
        stored = await claim.take_waiting(deps.sleep)
    except EndpointClaimed as exc:
        _audit_left(deps, request, name, mine, exc.reason, "another one held the name")
        raise
    record = stored.record
    recorded = record.webhook_id if record is not None else None
    if recorded == mine:  # the other execution adopted ours: its record stands
        claim.release(maybe_applied=False)
        raise RecordConflict(f"another execution recorded the endpoint made for {name!r}; retrying from it")
    if recorded is None and not stored.create_maybe_applied:
        return stored  # nothing else was made: ours is the name's endpoint
    try:
        await deps.limiter.acquire(1)
        gone = await api.delete_webhook(mine)
    except CognigyError as exc:
        _audit_left(deps, request, name, mine, exc.reason, f"another one made the name's endpoint ({exc})")
        claim.release(maybe_applied=True)  # the next attempt looks the name up first
        raise
    event = audit_event(
        request,
        name,
        action="orphan_removed",
        outcome="deleted",
        webhook_id=mine,
        status_code=204 if gone else 404,
        detail=(
            f"made by this execution while another one made the endpoint of {name!r} "
            f"({recorded or 'a create not recorded yet'}); removed"
        ),
    )
    try:
        commit(deps, name, None, None, event)
        if stored_token and record is not None and recorded is not None and record.url_token_arn:
            await _restore_url_token(name, recorded, deps, api)
    finally:
        claim.release(maybe_applied=False)
    raise RecordConflict(f"another execution made the endpoint of {name!r}; retrying from its record")


async def mark_maybe_applied(name: str, claim: NameClaim, deps: RegisterDeps) -> None:
    """A create sent without the claim may have been applied: mark the item ``createMaybeApplied``
    (take the claim, give it back marked). Never raises: the create's own error is what the caller
    raises; when the mark cannot be made, the next apply's listing still shows the endpoint."""
    try:
        await claim.take_waiting(deps.sleep)
        claim.release(maybe_applied=True)
    except CognigyWebhooksError as exc:
        logger.warning(
            "a create that may have been applied could not be marked; the next listing shows it",
            extra={"endpoint": name, "error": type(exc).__name__},
        )


async def _restore_url_token(name: str, recorded: str, deps: RegisterDeps, api: Any) -> None:
    """Write the recorded endpoint's URLToken to the name's secret again (ours may have replaced it)."""
    if deps.store_secret is None:
        return
    try:
        await deps.limiter.acquire(1)
        remote = await api.get_webhook(recorded)
    except CognigyError as exc:
        logger.warning(
            "the recorded endpoint's URLToken could not be read back after a lost race",
            extra={"endpoint": name, "webhook_id": recorded, "error": type(exc).__name__},
        )
        return
    token = getattr(remote, "url_token", None)
    if token is not None:
        deps.store_secret(name, "url-token", token.get_secret_value())


def _audit_left(
    deps: RegisterDeps, request: RegisterRequest, name: str, webhook_id: str, reason: str, why: str
) -> None:
    """Name the endpoint made without the claim that could not be settled (audit only)."""
    event = audit_event(
        request,
        name,
        action="failure",
        outcome="failed",
        reason=reason,
        webhook_id=webhook_id,
        detail=(
            f"endpoint {webhook_id} was made by this execution while {why}: if Cognigy keeps a second "
            f"endpoint named {name!r}, delete {webhook_id}"
        )[:1000],
    )
    try:
        commit(deps, name, None, None, event)
    except CognigyWebhooksError as exc:
        logger.warning(
            "the audit event of an endpoint left behind could not be written",
            extra={"endpoint": name, "webhook_id": webhook_id, "error": type(exc).__name__},
        )
