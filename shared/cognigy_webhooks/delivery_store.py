"""The receiver's AWS side: endpoint lookup, secrets, the delivery ledger, loop counters, audit, the bus.

Kept apart from :mod:`cognigy_webhooks.store` because that module imports the pydantic records, and the
receiver's cold start is measured against ``import boto3`` alone: everything here is boto3, the standard
library and the Powertools Parameters utility. boto3 clients are made on first use, not at import.

DeliveriesTable (key ``pk``, TTL ``expiresAt``) holds two kinds of item:

* ``d#<delivery id>``: one delivery *and* its replay-ledger entry. The delivery id is derived from the
  endpoint and the replay key, so the conditional put that claims the replay key is the same write that
  stores the delivery. The replay key (``replayKind``) is what the scheme's authentication covers and
  nothing the verifying secret or an unsigned field could change:

  - ``body-sha256``, the SHA-256 of the raw body bytes, for the tutorial's signature (it signs the body
    alone: the same body signed with the previous secret and again with the current one, or re-sent
    with a fresh unsigned timestamp, is one delivery) and for HTTP Basic auth;
  - ``webhook-id`` for Standard Webhooks (the sender's idempotency key: re-sent with another valid
    signature or timestamp, it is the same message).

  ``state`` moves ``claimed`` -> ``published`` (or ``looped``). The invocation that wins a claim either
  publishes and marks it, or releases it (deletes the item) so that Cognigy's retry is processed
  afresh; a claim left ``claimed`` past its lease (a crashed invocation, a failed release) may be taken
  over by a retry.
* ``l#<endpoint>#<conversation digest>``: a conversation's delivery counts in sub-buckets of a sliding
  window, moved by one UpdateItem per delivery.

Audit events go to AuditTable in the same item shape as :class:`cognigy_webhooks.models.records.AuditEvent`.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

import boto3  # at init, where Lambda gives the cold start its full CPU, not on the first delivery
from botocore.exceptions import BotoCoreError, ClientError

from cognigy_webhooks.errors import CognigyWebhooksError

__all__ = [
    "AuditLog",
    "ClaimResult",
    "DeliveryBus",
    "DeliveryLedger",
    "DeliveryStoreError",
    "EndpointAuth",
    "EndpointDirectory",
    "LazyClients",
    "SecretUnavailable",
    "SecretVersions",
    "endpoint_auth_from_item",
    "iso_time",
]

STATE_CLAIMED = "claimed"
STATE_PUBLISHED = "published"
STATE_LOOPED = "looped"
#: Sub-buckets of the conversation window (the window slides in steps of window / LOOP_STEPS).
LOOP_STEPS = 6
CURRENT = "AWSCURRENT"
PREVIOUS = "AWSPREVIOUS"


class DeliveryStoreError(CognigyWebhooksError):
    """DynamoDB, EventBridge or Secrets Manager failed: transient, the receiver answers 503."""


class SecretUnavailable(DeliveryStoreError):
    """A secret could not be read (the message names the secret's ARN, never its value)."""


def _code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


def iso_time(seconds: float) -> str:
    """UTC ISO-8601 with microseconds and ``Z``, as pydantic dumps the records' datetimes."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- clients ------------------------------------------------------------------------------------


class LazyClients:
    """boto3 clients made on first use, once, thread-safely (handlers run on threads locally)."""

    def __init__(self, factory: Callable[[str], Any] | None = None) -> None:
        self._factory = factory
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is not None:
            return client
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                factory = self._factory
                if factory is None:
                    session = boto3.session.Session()
                    factory = self._factory = lambda name: session.client(name)  # type: ignore[call-overload]
                client = factory(service)
                self._clients[service] = client
        return client


# --- endpoint records ---------------------------------------------------------------------------


class EndpointAuth(NamedTuple):
    """What the receiver needs from an endpoint record: how deliveries to it authenticate, and what
    they carry. Holds secret ARNs only, never a value."""

    name: str
    status: str
    active: bool
    payload_format: str  # "JSON" | "XML"
    scheme: str  # "cognigy" | "standard"
    signature_header: str | None
    signature_secret_arn: str | None
    basic_username: str | None
    basic_password_arn: str | None

    @property
    def has_signature(self) -> bool:
        return self.signature_secret_arn is not None and (
            self.scheme == "standard" or self.signature_header is not None
        )

    @property
    def has_basic_auth(self) -> bool:
        return self.basic_username is not None and self.basic_password_arn is not None

    @property
    def accepts_deliveries(self) -> bool:
        """Registered, active, and authenticated somehow (an endpoint without any authentication
        would take deliveries from anyone: it is refused like an unknown one)."""
        return self.status == "registered" and self.active and (self.has_signature or self.has_basic_auth)


def _s(attrs: Mapping[str, Any], key: str) -> str | None:
    value = attrs.get(key)
    if isinstance(value, Mapping):
        text = value.get("S")
        if isinstance(text, str) and text:
            return text
    return None


def _m(attrs: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = attrs.get(key)
    if isinstance(value, Mapping):
        inner = value.get("M")
        if isinstance(inner, Mapping):
            return inner
    return {}


def endpoint_auth_from_item(item: Mapping[str, Any]) -> EndpointAuth | None:
    """Read an EndpointsTable item (DynamoDB attribute values) without pydantic. None when it is not
    a usable endpoint record."""
    name = _s(item, "name")
    if name is None:
        return None
    spec = _m(item, "spec")
    active_attr = spec.get("isActive")
    active = not (isinstance(active_attr, Mapping) and active_attr.get("BOOL") is False)
    basic = _m(spec, "basicAuth")
    fmt = (_s(spec, "payloadFormat") or "JSON").upper()
    scheme = (_s(spec, "signatureScheme") or "cognigy").lower()
    return EndpointAuth(
        name=name,
        status=_s(item, "status") or "failed",
        active=active,
        payload_format=fmt if fmt in ("JSON", "XML") else "JSON",
        scheme=scheme if scheme in ("cognigy", "standard") else "cognigy",
        signature_header=_s(spec, "signatureHeader"),
        signature_secret_arn=_s(spec, "signatureSecretArn"),
        basic_username=_s(basic, "username"),
        basic_password_arn=_s(basic, "passwordArn"),
    )


class EndpointDirectory:
    """Endpoint records by name, cached briefly (a known name for ``ttl`` seconds, an unknown one for a
    fifth of it, so a newly registered endpoint is seen soon). The cache is bounded: a flood of made-up
    names cannot grow it without limit."""

    def __init__(
        self,
        clients: LazyClients,
        table: str,
        *,
        ttl: float = 30.0,
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clients = clients
        self.table = table
        self.ttl = ttl
        self.negative_ttl = ttl / 5
        self.max_entries = max_entries
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, EndpointAuth | None]] = OrderedDict()
        self._lock = threading.Lock()
        self.reads = 0  # DynamoDB reads made (tests and benchmarks look)

    def get(self, name: str) -> EndpointAuth | None:
        now = self._clock()
        with self._lock:
            hit = self._cache.get(name)
            if hit is not None and hit[0] > now:
                self._cache.move_to_end(name)
                return hit[1]
        try:
            self.reads += 1
            resp = self._clients.get("dynamodb").get_item(
                TableName=self.table,
                Key={"name": {"S": name}},
                ProjectionExpression="#n, #s, spec",
                ExpressionAttributeNames={"#n": "name", "#s": "status"},
            )
        except (ClientError, BotoCoreError) as exc:
            raise DeliveryStoreError(f"reading the endpoint record failed: {_code(exc)}") from None
        item = resp.get("Item")
        auth = endpoint_auth_from_item(item) if item else None
        if auth is not None and auth.name != name:
            auth = None
        with self._lock:
            self._cache[name] = (now + (self.ttl if auth is not None else self.negative_ttl), auth)
            self._cache.move_to_end(name)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return auth

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()


# --- secrets ------------------------------------------------------------------------------------


def _staged_secrets_provider(client: Any) -> Any:
    """Powertools Parameters is imported on the first secret read, not at cold start (~6 ms)."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    class _StagedSecretsProvider(SecretsProvider):
        """Powertools' SecretsProvider keyed by ``"<stage>:<secret id>"``: its cache key is the name alone
        (it ignores the SDK options), so the version stage must be part of the name for AWSCURRENT and
        AWSPREVIOUS to be cached apart. A missing AWSPREVIOUS (never rotated) reads as ``""``."""

        fetches = 0  # Secrets Manager reads made (tests look)

        def _get(self, name: str, **sdk_options: Any) -> str | bytes:
            stage, _, secret_id = name.partition(":")
            self.fetches += 1
            try:
                resp = self.client.get_secret_value(SecretId=secret_id, VersionStage=stage)
            except ClientError as exc:
                if stage == PREVIOUS and _code(exc) == "ResourceNotFoundException":
                    return ""
                raise
            if "SecretString" in resp:
                return str(resp["SecretString"])
            return bytes(resp.get("SecretBinary") or b"")

    return _StagedSecretsProvider(boto3_client=client)


class SecretVersions:
    """A secret's current and previous values (Secrets Manager AWSCURRENT and AWSPREVIOUS) through
    Powertools Parameters, cached for ``max_age`` seconds. Both are accepted during a rotation.

    :meth:`refresh` re-fetches past the cache (to pick up a rotation that just happened) at most once
    per ``refresh_seconds`` per secret, so a flood of forgeries cannot turn into a flood of Secrets
    Manager calls."""

    def __init__(
        self,
        clients: LazyClients,
        *,
        max_age: int = 300,
        refresh_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clients = clients
        self.max_age = max_age
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._provider: Any = None
        self._lock = threading.Lock()
        self._last_refresh: dict[str, float] = {}

    def _get_provider(self) -> Any:
        if self._provider is None:
            with self._lock:
                if self._provider is None:
                    self._provider = _staged_secrets_provider(self._clients.get("secretsmanager"))
        return self._provider

    def get(self, secret_id: str, *, force: bool = False) -> tuple[str | bytes, ...]:
        """The usable values, current first. Raises :class:`SecretUnavailable` when the current
        version cannot be read."""
        provider = self._get_provider()
        values: list[str | bytes] = []
        for stage in (CURRENT, PREVIOUS):
            key = f"{stage}:{secret_id}"
            try:
                value = provider.get(key, max_age=self.max_age, force_fetch=force)
            except Exception:  # Powertools wraps every failure in GetParameterError (message not ours)
                if stage == CURRENT:
                    raise SecretUnavailable(f"reading secret {secret_id!r} failed") from None
                continue
            if isinstance(value, str | bytes) and value:
                values.append(value)
        return tuple(values)

    @property
    def fetches(self) -> int:
        """Secrets Manager reads made so far (tests look)."""
        return 0 if self._provider is None else self._provider.fetches

    def refresh(self, secret_id: str) -> tuple[str | bytes, ...] | None:
        """Re-fetch past the cache, or None when this secret was re-fetched too recently."""
        now = self._clock()
        with self._lock:
            last = self._last_refresh.get(secret_id)
            if last is not None and now - last < self.refresh_seconds:
                return None
            self._last_refresh[secret_id] = now
        return self.get(secret_id, force=True)

    def clear(self) -> None:
        with self._lock:
            self._last_refresh.clear()
            if self._provider is not None:
                self._provider.clear_cache()


# --- the ledger (deliveries) and the loop counters ----------------------------------------------


class ClaimResult(NamedTuple):
    """``won``: this request stored the delivery and must hand it on. Otherwise ``state`` is the
    first delivery's (``claimed`` = still in flight, ``published``, ``looped``)."""

    won: bool
    state: str | None = None


def delivery_id_for(endpoint: str, kind: str, key: str | bytes) -> str:
    """The delivery id: a digest of the endpoint and its replay key, so the first delivery and its
    replays share one id (and one ledger item)."""
    digest = hashlib.sha256()
    digest.update(endpoint.encode("utf-8"))
    digest.update(b"\x00")
    digest.update(kind.encode("ascii"))
    digest.update(b"\x00")
    digest.update(key if isinstance(key, bytes) else key.encode("utf-8"))
    return digest.hexdigest()[:32]


def _n(value: float) -> dict[str, str]:
    return {"N": str(int(value)) if float(value).is_integer() else f"{value:.6f}"}


class DeliveryLedger:
    """Deliveries and the replay ledger in one item each; conversation counters for the loop guard."""

    def __init__(self, clients: LazyClients, table: str) -> None:
        self._clients = clients
        self.table = table

    @staticmethod
    def key(delivery_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"d#{delivery_id}"}}

    def claim(
        self, delivery_id: str, item: dict[str, Any], *, token: str, now: float, lease: float
    ) -> ClaimResult:
        """Store the delivery if its replay key is new (or its earlier claim is abandoned: still
        ``claimed`` after ``lease`` seconds). One conditional PutItem: of any number of concurrent
        identical deliveries exactly one wins. ``token`` identifies this claim in later updates."""
        full = {
            **item,
            **self.key(delivery_id),
            "state": {"S": STATE_CLAIMED},
            "claimedAt": _n(now),
            "claimToken": {"S": token},
        }
        try:
            self._clients.get("dynamodb").put_item(
                TableName=self.table,
                Item=full,
                ConditionExpression="attribute_not_exists(pk) OR (#st = :claimed AND claimedAt < :stale)",
                ExpressionAttributeNames={"#st": "state"},
                ExpressionAttributeValues={":claimed": {"S": STATE_CLAIMED}, ":stale": _n(now - lease)},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                old: Mapping[str, Any] = exc.response.get("Item") or {}  # type: ignore[assignment]
                return ClaimResult(won=False, state=_s(old, "state") or STATE_CLAIMED)
            raise DeliveryStoreError(f"storing the delivery failed: {_code(exc)}") from None
        except BotoCoreError as exc:
            raise DeliveryStoreError(f"storing the delivery failed: {_code(exc)}") from None
        return ClaimResult(won=True)

    def finish(self, delivery_id: str, *, token: str, state: str, now: float) -> bool:
        """Move our claim to its final state. False when the claim is no longer ours (taken over)."""
        try:
            self._clients.get("dynamodb").update_item(
                TableName=self.table,
                Key=self.key(delivery_id),
                UpdateExpression="SET #st = :state, finishedAt = :now",
                ConditionExpression="claimToken = :mine",
                ExpressionAttributeNames={"#st": "state"},
                ExpressionAttributeValues={":state": {"S": state}, ":now": _n(now), ":mine": {"S": token}},
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise DeliveryStoreError(f"updating the delivery failed: {_code(exc)}") from None
        except BotoCoreError as exc:
            raise DeliveryStoreError(f"updating the delivery failed: {_code(exc)}") from None
        return True

    def release(self, delivery_id: str, *, token: str) -> None:
        """Give up our claim (the hand-off failed) so that Cognigy's retry is processed afresh."""
        try:
            self._clients.get("dynamodb").delete_item(
                TableName=self.table,
                Key=self.key(delivery_id),
                ConditionExpression="claimToken = :mine AND #st = :claimed",
                ExpressionAttributeNames={"#st": "state"},
                ExpressionAttributeValues={":mine": {"S": token}, ":claimed": {"S": STATE_CLAIMED}},
            )
        except (ClientError, BotoCoreError):  # the lease lets a retry take the claim over anyway
            return

    def get(self, delivery_id: str) -> dict[str, Any] | None:
        """The stored delivery item (raw attribute values), for consumers and tests."""
        try:
            resp = self._clients.get("dynamodb").get_item(
                TableName=self.table, Key=self.key(delivery_id), ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise DeliveryStoreError(f"reading the delivery failed: {_code(exc)}") from None
        item = resp.get("Item")
        return dict(item) if item else None

    def count_conversation(self, endpoint: str, conversation: str, *, now: float, window: float) -> int:
        """Count this delivery in its conversation and return how many the sliding window holds now.
        One UpdateItem: ADD to the current sub-bucket, REMOVE sub-buckets that fell out of the window."""
        step = max(window / LOOP_STEPS, 0.001)
        current = int(now // step)
        digest = hashlib.sha256(conversation.encode("utf-8")).hexdigest()[:32]
        names = {"#c": f"b{current}"}
        stale = [f"#o{i}" for i in range(LOOP_STEPS)]
        for i, alias in enumerate(stale):
            names[alias] = f"b{current - LOOP_STEPS - i}"
        try:
            resp = self._clients.get("dynamodb").update_item(
                TableName=self.table,
                Key={"pk": {"S": f"l#{endpoint}#{digest}"}},
                UpdateExpression=f"ADD #c :one SET expiresAt = :exp REMOVE {', '.join(stale)}",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={":one": {"N": "1"}, ":exp": _n(int(now + 2 * window + 60))},
                ReturnValues="ALL_NEW",
            )
        except (ClientError, BotoCoreError) as exc:
            raise DeliveryStoreError(f"counting the conversation failed: {_code(exc)}") from None
        attrs = resp.get("Attributes") or {}
        total = 0
        for offset in range(LOOP_STEPS):
            value = attrs.get(f"b{current - offset}")
            if isinstance(value, Mapping) and isinstance(value.get("N"), str):
                total += int(value["N"])
        return total


# --- audit and the bus --------------------------------------------------------------------------


class AuditLog:
    """Rejections and loops, in AuditTable, shaped like :class:`cognigy_webhooks.models.records.AuditEvent`
    (``model_dump(mode="json", by_alias=True, exclude_none=True)`` plus ``sk``)."""

    def __init__(self, clients: LazyClients, table: str, *, retention_days: int) -> None:
        self._clients = clients
        self.table = table
        self.retention_days = retention_days

    def put(
        self,
        *,
        name: str,
        action: str,
        outcome: str,
        reason: str,
        now: float,
        status_code: int | None = None,
        detail: str | None = None,
    ) -> str:
        event_id = os.urandom(16).hex()
        stamp = iso_time(now)
        item: dict[str, Any] = {
            "name": {"S": name},
            "sk": {"S": f"{stamp}#{event_id}"},
            "eventId": {"S": event_id},
            "timestamp": {"S": stamp},
            "action": {"S": action},
            "outcome": {"S": outcome},
            "reason": {"S": reason},
            "source": {"S": "delivery"},
            "expiresAt": _n(int(now + self.retention_days * 86400)),
        }
        if status_code is not None:
            item["statusCode"] = _n(status_code)
        if detail:
            item["detail"] = {"S": detail}
        try:
            self._clients.get("dynamodb").put_item(
                TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(sk)"
            )
        except (ClientError, BotoCoreError) as exc:
            raise DeliveryStoreError(f"writing the audit event failed: {_code(exc)}") from None
        return event_id


class DeliveryBus:
    """Publishes accepted deliveries to the EventBridge bus (detail-type ``Cognigy Delivery``)."""

    DETAIL_TYPE = "Cognigy Delivery"

    def __init__(self, clients: LazyClients, bus_name: str, *, source: str) -> None:
        self._clients = clients
        self.bus_name = bus_name
        self.source = source

    #: EventBridge takes at most 256 KB per entry; a detail bigger than this goes without its
    #: ``payload`` (``payloadOmitted``: the consumer reads the body from the deliveries table).
    DETAIL_LIMIT = 240 * 1024

    def render(self, detail: Mapping[str, Any]) -> str:
        """The exact ``Detail`` text :meth:`publish` sends for ``detail``: compact JSON, encodable as
        UTF-8, and without its ``payload`` when too big for EventBridge. No I/O, so the receiver renders
        before it claims a delivery and hands on exactly what it checked.

        Raises ``ValueError`` (``UnicodeEncodeError`` for a lone surrogate, a non-finite number),
        ``TypeError`` or ``RecursionError`` when ``detail`` cannot be JSON: a problem with the content,
        never a transient one."""
        text = json.dumps(detail, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        size = len(text.encode("utf-8"))
        if size > self.DETAIL_LIMIT and "payload" in detail:
            slim = {k: v for k, v in detail.items() if k != "payload"}
            slim.update(payloadOmitted=True, payloadDetailBytes=size)
            text = json.dumps(slim, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return text

    def publish(self, detail: Mapping[str, Any]) -> str:
        """Render and put one event; returns its EventBridge id. Raises what :meth:`render` raises,
        and DeliveryStoreError when the event was not put."""
        return self.publish_rendered(self.render(detail))

    def publish_rendered(self, text: str) -> str:
        """Put one event whose ``Detail`` is ``text`` (from :meth:`render`); returns its EventBridge id.
        Raises DeliveryStoreError when it was not put."""
        entry = {
            "Source": self.source,
            "DetailType": self.DETAIL_TYPE,
            "Detail": text,
            "EventBusName": self.bus_name,
        }
        try:
            resp = self._clients.get("events").put_events(Entries=[entry])
        except (ClientError, BotoCoreError) as exc:
            raise DeliveryStoreError(f"publishing the delivery failed: {_code(exc)}") from None
        entries = resp.get("Entries") or [{}]
        if resp.get("FailedEntryCount") or not entries[0].get("EventId"):
            code = entries[0].get("ErrorCode") or "unknown"
            raise DeliveryStoreError(f"publishing the delivery failed: {code}")
        return str(entries[0]["EventId"])
