"""DeliveriesTable, its only writer: the delivery ledger and the conversations' loop counters.

The table (key ``pk``, TTL ``expiresAt``; attribute names in :class:`cognigy_webhooks.dal.schema.Delivery`)
holds two kinds of item:

* ``d#<delivery id>``: one delivery *and* its replay-ledger entry. The delivery id is derived from the
  endpoint and the replay key (:func:`delivery_id_for`), so the conditional put that claims the replay
  key is the same write that stores the delivery. The replay key (``replayKind``) is what the scheme's
  authentication covers and nothing the verifying secret or an unsigned field could change:

  - ``body-sha256``, the SHA-256 of the raw body bytes, for the tutorial's signature (it signs the body
    alone: the same body signed with the previous secret and again with the current one, or re-sent
    with a fresh unsigned timestamp, is one delivery) and for HTTP Basic auth;
  - ``trace-id``, a Cognigy.AI output's ``traceId`` with the body's SHA-256, for HTTP Basic auth alone
    when the body carries one (a retried output is one delivery, two outputs of one turn are two:
    :mod:`cognigy_webhooks.receiving.auth` says why, and what is assumed);
  - ``webhook-id`` for Standard Webhooks (the sender's idempotency key: re-sent with another valid
    signature or timestamp, it is the same message).

  ``state`` moves ``claimed`` -> ``published`` (or ``looped``). The invocation that wins a claim either
  publishes and marks it, or releases it (deletes the item) so that Cognigy's retry is processed
  afresh; a claim left ``claimed`` past its lease (a crashed invocation, a failed release) may be taken
  over by a retry.
* ``l#<endpoint>#<conversation digest>``: a conversation's delivery counts in sub-buckets of a sliding
  window, moved by one UpdateItem per delivery.

boto3 and the standard library only (the receiver's cold start). Failures are
:class:`~cognigy_webhooks.errors.DeliveryStoreError` (the receiver answers 503; a failed release is
reported, and its lease frees the claim).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError

from cognigy_webhooks.dal.clients import LazyClients
from cognigy_webhooks.dal.schema import Delivery, text
from cognigy_webhooks.errors import DeliveryStoreError, aws_error_code

__all__ = [
    "LOOP_STEPS",
    "STATE_CLAIMED",
    "STATE_LOOPED",
    "STATE_PUBLISHED",
    "ClaimResult",
    "DeliveryLedger",
    "delivery_id_for",
]

STATE_CLAIMED = Delivery.STATE_CLAIMED
STATE_PUBLISHED = Delivery.STATE_PUBLISHED
STATE_LOOPED = Delivery.STATE_LOOPED
#: Sub-buckets of the conversation window (the window slides in steps of window / LOOP_STEPS).
LOOP_STEPS = 6


class ClaimResult(NamedTuple):
    """``won``: this request stored the delivery and must hand it on. Otherwise ``state`` is the
    first delivery's (``claimed`` = still in flight, ``published``, ``looped``)."""

    won: bool
    state: str | None = None


def delivery_id_for(endpoint: str, kind: str, key: str | bytes) -> str:
    """The delivery id: a digest of the endpoint and its replay key, so the first delivery and its
    replays share one id (and one ledger item)."""
    raw = key if isinstance(key, bytes) else key.encode("utf-8")
    return hashlib.sha256(
        b"%b\x00%b\x00%b" % (endpoint.encode("utf-8"), kind.encode("ascii"), raw)
    ).hexdigest()[:32]


def _n(value: float) -> dict[str, str]:
    return {"N": str(int(value)) if float(value).is_integer() else f"{value:.6f}"}


# What every claim sends (boto3 reads its parameters, never writes them: shared, not copied).
_CLAIMED = {"S": STATE_CLAIMED}
_CLAIM_CONDITION = "attribute_not_exists(#pk) OR (#st = :claimed AND #at < :stale)"
_CLAIM_NAMES = {"#pk": Delivery.PK, "#st": Delivery.STATE, "#at": Delivery.CLAIMED_AT}


class DeliveryLedger:
    """Deliveries and the replay ledger in one item each; conversation counters for the loop guard."""

    def __init__(self, clients: LazyClients, table: str) -> None:
        self._clients = clients
        self.table = table
        self._window: _Window | None = None  # the counters' names and update of the current sub-bucket
        self._client: Any = None  # the DynamoDB client, once made

    def _connect(self) -> Any:
        """The DynamoDB client, made on first use (LazyClients) and then kept here."""
        self._client = self._clients.get("dynamodb")
        return self._client

    @staticmethod
    def key(delivery_id: str) -> dict[str, Any]:
        return {Delivery.PK: {"S": f"{Delivery.DELIVERY_PREFIX}{delivery_id}"}}

    def claim(
        self, delivery_id: str, item: dict[str, Any], *, token: str, now: float, lease: float
    ) -> ClaimResult:
        """Store the delivery (``item``: its attributes, as
        :func:`~cognigy_webhooks.dal.schema.delivery_item` builds them) if its replay key is new (or
        its earlier claim is abandoned: still ``claimed`` after ``lease`` seconds). One conditional
        PutItem: of any number of concurrent identical deliveries exactly one wins. ``token``
        identifies this claim in later updates."""
        full = dict(item)
        full[Delivery.PK] = {"S": f"{Delivery.DELIVERY_PREFIX}{delivery_id}"}
        full[Delivery.STATE] = _CLAIMED
        full[Delivery.CLAIMED_AT] = _n(now)
        full[Delivery.CLAIM_TOKEN] = {"S": token}
        try:
            (self._client or self._connect()).put_item(
                TableName=self.table,
                Item=full,
                ConditionExpression=_CLAIM_CONDITION,
                ExpressionAttributeNames=_CLAIM_NAMES,
                ExpressionAttributeValues={":claimed": _CLAIMED, ":stale": _n(now - lease)},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if aws_error_code(exc) == "ConditionalCheckFailedException":
                old: Mapping[str, Any] = exc.response.get("Item") or {}  # type: ignore[assignment]
                state = old.get(Delivery.STATE)
                found = text(state, "S") if isinstance(state, Mapping) else None
                return ClaimResult(won=False, state=found or STATE_CLAIMED)
            raise DeliveryStoreError.from_aws("storing the delivery", exc) from None
        except BotoCoreError as exc:
            raise DeliveryStoreError.from_aws("storing the delivery", exc) from None
        return ClaimResult(won=True)

    def finish(self, delivery_id: str, *, token: str, state: str, now: float) -> bool:
        """Move our claim to its final state. False when the claim is no longer ours (taken over)."""
        try:
            (self._client or self._connect()).update_item(
                TableName=self.table,
                Key=self.key(delivery_id),
                UpdateExpression="SET #st = :state, #fin = :now",
                ConditionExpression="#tok = :mine",
                ExpressionAttributeNames={
                    "#st": Delivery.STATE,
                    "#fin": Delivery.FINISHED_AT,
                    "#tok": Delivery.CLAIM_TOKEN,
                },
                ExpressionAttributeValues={":state": {"S": state}, ":now": _n(now), ":mine": {"S": token}},
            )
        except ClientError as exc:
            if aws_error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise DeliveryStoreError.from_aws("updating the delivery", exc) from None
        except BotoCoreError as exc:
            raise DeliveryStoreError.from_aws("updating the delivery", exc) from None
        return True

    def release(self, delivery_id: str, *, token: str) -> None:
        """Give up our claim (the hand-off failed) so that Cognigy's retry is processed afresh. Quiet
        when the claim is no longer ours (taken over, or finished); any other failure raises
        :class:`DeliveryStoreError` for the caller to report, and the lease then frees the claim (a
        retry after it takes the claim over)."""
        try:
            (self._client or self._connect()).delete_item(
                TableName=self.table,
                Key=self.key(delivery_id),
                ConditionExpression="#tok = :mine AND #st = :claimed",
                ExpressionAttributeNames={"#st": Delivery.STATE, "#tok": Delivery.CLAIM_TOKEN},
                ExpressionAttributeValues={":mine": {"S": token}, ":claimed": {"S": STATE_CLAIMED}},
            )
        except ClientError as exc:
            if aws_error_code(exc) == "ConditionalCheckFailedException":
                return
            raise DeliveryStoreError.from_aws("releasing the delivery's claim", exc) from None
        except BotoCoreError as exc:
            raise DeliveryStoreError.from_aws("releasing the delivery's claim", exc) from None

    def get(self, delivery_id: str) -> dict[str, Any] | None:
        """The stored delivery item (raw attribute values), for consumers and tests."""
        try:
            resp = (self._client or self._connect()).get_item(
                TableName=self.table, Key=self.key(delivery_id), ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise DeliveryStoreError.from_aws("reading the delivery", exc) from None
        item = resp.get("Item")
        return dict(item) if item else None

    def count_conversation(self, endpoint: str, conversation: str, *, now: float, window: float) -> int:
        """Count this delivery in its conversation and return how many the sliding window holds now.
        One UpdateItem: ADD to the current sub-bucket, REMOVE sub-buckets that fell out of the window."""
        step = max(window / LOOP_STEPS, 0.001)
        current = int(now // step)
        counters = self._window
        if counters is None or counters.step != step or counters.current != current:
            counters = self._window = _Window.of(step, current)
        digest = hashlib.sha256(conversation.encode("utf-8")).hexdigest()[:32]
        try:
            resp = (self._client or self._connect()).update_item(
                TableName=self.table,
                Key={Delivery.PK: {"S": f"{Delivery.CONVERSATION_PREFIX}{endpoint}#{digest}"}},
                UpdateExpression=_COUNT_UPDATE,
                ExpressionAttributeNames=counters.names,
                ExpressionAttributeValues={":one": {"N": "1"}, ":exp": _n(int(now + 2 * window + 60))},
                ReturnValues="ALL_NEW",
            )
        except (ClientError, BotoCoreError) as exc:
            raise DeliveryStoreError.from_aws("counting the conversation", exc) from None
        attrs = resp.get("Attributes") or {}
        total = 0
        for name in counters.counted:
            value = attrs.get(name)
            if value is not None and (type(value) is dict or isinstance(value, Mapping)):
                number = value.get("N")
                if isinstance(number, str):
                    total += int(number)
        return total


_STALE_ALIASES = tuple(f"#o{i}" for i in range(LOOP_STEPS))
#: The conversation counter's update: the same text for every sub-bucket (its names are aliases).
_COUNT_UPDATE = f"ADD #c :one SET #exp = :exp REMOVE {', '.join(_STALE_ALIASES)}"


class _Window(NamedTuple):
    """The counters of sub-bucket ``current`` (of ``step`` seconds): the attribute names the update
    writes (``#c``) and removes (``#o0``...: those that fell out of the window), and the ones it adds
    up. The same for every delivery within a step, so made once per step."""

    step: float
    current: int
    names: dict[str, str]  # given to the client as it is: boto3 reads its parameters, never writes them
    counted: tuple[str, ...]

    @classmethod
    def of(cls, step: float, current: int) -> _Window:
        bucket = Delivery.COUNT_PREFIX
        names = {"#c": f"{bucket}{current}", "#exp": Delivery.EXPIRES_AT}
        for i, alias in enumerate(_STALE_ALIASES):
            names[alias] = f"{bucket}{current - LOOP_STEPS - i}"
        counted = tuple(f"{bucket}{current - offset}" for offset in range(LOOP_STEPS))
        return cls(step, current, names, counted)
