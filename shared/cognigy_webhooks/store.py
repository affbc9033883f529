"""The only module that talks to DynamoDB (and S3 for desired sets, Secrets Manager for secrets).

Conditional writes everywhere; no Scan: records are listed through the ``ByType`` index, audit events
by Query on the endpoint's name. The record and its audit event are written in ONE transaction, so a
record never changes without its audit event and vice versa.

The create claim: before an execution looks a name up in Cognigy to create (or adopt, or remove
duplicates of) its webhook, it takes the name's claim with ONE conditional write on the record's own
item (:meth:`Store.claim`: a random token and a lease end, ``createClaim`` / ``createClaimExpiresAt``;
no record yet: an item holding only the claim, which has no ``recordType`` and so is no record and
is never listed). Only one execution at a time holds it; another gets
:class:`~cognigy_webhooks.errors.EndpointClaimed` (retryable). While a claim is live only its holder
writes the item: every other record write is refused (:class:`RecordConflict`, retryable). The
holder's commit (record + audit, one transaction, conditioned on its token) replaces the item and so
clears the claim; a holder that fails releases it (:meth:`Store.release`, keeping
``createMaybeApplied`` when its create may have been applied); a holder that died leaves it to expire.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from cognigy_webhooks.errors import CognigyThrottled, CognigyWebhooksError, EndpointClaimed
from cognigy_webhooks.models.records import RECORD_TYPE, AuditEvent, EndpointRecord

_ser = TypeSerializer()
_deser = TypeDeserializer()


class StoreError(CognigyWebhooksError):
    """DynamoDB refused or failed (transient: the state machine retries the task)."""


class RecordConflict(StoreError):
    """The record changed under us (another execution wrote it first). Safe to retry the task."""


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    """Plain JSON-able data -> DynamoDB attribute values (floats become Decimals, None is dropped)."""
    clean = json.loads(json.dumps(data), parse_float=Decimal)
    return {k: _ser.serialize(v) for k, v in clean.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return {k: plain(_deser.deserialize(v)) for k, v in item.items()}


def _dump(model: EndpointRecord | AuditEvent) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


# The create claim's attributes on an EndpointsTable item (the protocol's, not the record's).
CLAIM_TOKEN = "createClaim"
CLAIM_EXPIRES = "createClaimExpiresAt"
MAYBE_APPLIED = "createMaybeApplied"  # also EndpointRecord.create_maybe_applied
_CLAIM_ATTRIBUTES = (CLAIM_TOKEN, CLAIM_EXPIRES)


@dataclass(frozen=True)
class StoredEndpoint:
    """What the EndpointsTable holds under one name: the record (None when there is none: no item,
    or an item that holds only a claim), whether a live claim is on it, and whether a create may
    have been applied in Cognigy without being recorded (kept on the item even before any record)."""

    record: EndpointRecord | None
    claimed: bool = False
    create_maybe_applied: bool = False


def _record_of(data: dict[str, Any]) -> EndpointRecord | None:
    for attribute in _CLAIM_ATTRIBUTES:
        data.pop(attribute, None)
    if "recordType" not in data:  # only a claim (or the mark a failed holder left): no record
        return None
    return EndpointRecord.model_validate(data)


class Store:
    """Endpoint records and the audit log. ``clock`` (epoch seconds) times the create claims' leases."""

    def __init__(
        self,
        client: Any,
        *,
        endpoints_table: str,
        audit_table: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ddb = client
        self.endpoints_table = endpoints_table
        self.audit_table = audit_table
        self._clock = clock

    # --- records -----------------------------------------------------------------------------------

    def get_record(self, name: str) -> EndpointRecord | None:
        return self.read(name).record

    def read(self, name: str) -> StoredEndpoint:
        """The record and the claim state of ``name``, read consistently (one GetItem)."""
        try:
            resp = self._ddb.get_item(
                TableName=self.endpoints_table, Key={"name": {"S": name}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"reading the record of {name!r} failed: {_code(exc)}") from exc
        item = resp.get("Item")
        if item is None:
            return StoredEndpoint(record=None)
        data = from_item(item)
        expires = data.get(CLAIM_EXPIRES)
        claimed = (
            bool(data.get(CLAIM_TOKEN)) and isinstance(expires, int | float) and expires >= self._clock()
        )
        maybe_applied = data.get(MAYBE_APPLIED) is True
        return StoredEndpoint(record=_record_of(data), claimed=claimed, create_maybe_applied=maybe_applied)

    # --- the create claim --------------------------------------------------------------------------

    def claim(self, name: str, *, token: str, expected_version: int | None, lease_seconds: float) -> None:
        """Take the create claim of ``name`` for ``lease_seconds`` with ONE conditional write: no live
        claim on the item, and the record still at ``expected_version`` (None: no record yet).
        :class:`EndpointClaimed` when another holds a live claim; :class:`RecordConflict` when the
        record changed since it was read."""
        now = self._clock()
        names = {"#c": CLAIM_TOKEN, "#e": CLAIM_EXPIRES, "#v": "version"}
        values: dict[str, Any] = {
            ":t": {"S": token},
            ":exp": {"N": _num(now + lease_seconds)},
            ":now": {"N": _num(now)},
        }
        if expected_version is None:
            version_condition = "attribute_not_exists(#v)"
        else:
            version_condition = "#v = :v"
            values[":v"] = {"N": str(expected_version)}
        try:
            self._ddb.update_item(
                TableName=self.endpoints_table,
                Key={"name": {"S": name}},
                UpdateExpression="SET #c = :t, #e = :exp",
                ConditionExpression=f"(attribute_not_exists(#c) OR #e < :now) AND {version_condition}",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise StoreError(f"claiming {name!r} failed: {_code(exc)}") from exc
            old: dict[str, Any] = exc.response.get("Item") or {}  # type: ignore[assignment]
            held_until = float(old[CLAIM_EXPIRES]["N"]) if CLAIM_EXPIRES in old else float("-inf")
            if CLAIM_TOKEN in old and held_until >= now:
                raise EndpointClaimed(
                    f"another execution is creating the webhook of {name!r} (its claim ends in "
                    f"{max(0.0, held_until - now):.0f} s at the latest)"
                ) from None
            raise RecordConflict(f"the record of {name!r} changed before it could be claimed") from None
        except BotoCoreError as exc:
            raise StoreError(f"claiming {name!r} failed: {type(exc).__name__}") from exc

    def release(self, name: str, *, token: str, create_maybe_applied: bool, drop_item: bool) -> bool:
        """Give the claim back (one conditional write, only while it is still ours). With
        ``create_maybe_applied`` the item keeps that mark for the next attempt and the failure
        record; ``drop_item`` deletes an item that held only the claim. False when the claim was no
        longer ours (its lease ended and another took it, or it was committed)."""
        key = {"name": {"S": name}}
        names = {"#c": CLAIM_TOKEN, "#e": CLAIM_EXPIRES}
        values: dict[str, Any] = {":t": {"S": token}}
        if drop_item and not create_maybe_applied:
            try:
                self._ddb.delete_item(
                    TableName=self.endpoints_table,
                    Key=key,
                    ConditionExpression="#c = :t AND attribute_not_exists(#v) AND attribute_not_exists(#m)",
                    ExpressionAttributeNames={"#c": CLAIM_TOKEN, "#v": "version", "#m": MAYBE_APPLIED},
                    ExpressionAttributeValues=values,
                )
                return True
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise StoreError(f"releasing the claim of {name!r} failed: {_code(exc)}") from exc
                # not an item of the claim alone after all: give the claim back, keep the item
            except BotoCoreError as exc:
                raise StoreError(f"releasing the claim of {name!r} failed: {type(exc).__name__}") from exc
        try:
            if create_maybe_applied:
                names["#m"] = MAYBE_APPLIED
                values[":yes"] = {"BOOL": True}
                self._ddb.update_item(
                    TableName=self.endpoints_table,
                    Key=key,
                    UpdateExpression="SET #m = :yes REMOVE #c, #e",
                    ConditionExpression="#c = :t",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
            else:
                self._ddb.update_item(
                    TableName=self.endpoints_table,
                    Key=key,
                    UpdateExpression="REMOVE #c, #e",
                    ConditionExpression="#c = :t",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise StoreError(f"releasing the claim of {name!r} failed: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"releasing the claim of {name!r} failed: {type(exc).__name__}") from exc
        return True

    def list_records(self) -> list[EndpointRecord]:
        return list(self.iter_records())

    def iter_records(self) -> Iterator[EndpointRecord]:
        kwargs: dict[str, Any] = {
            "TableName": self.endpoints_table,
            "IndexName": "ByType",
            "KeyConditionExpression": "recordType = :t",
            "ExpressionAttributeValues": {":t": {"S": RECORD_TYPE}},
        }
        while True:
            try:
                resp = self._ddb.query(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise StoreError(f"listing records failed: {_code(exc)}") from exc
            for item in resp.get("Items", []):
                record = _record_of(from_item(item))
                if record is not None:
                    yield record
            if "LastEvaluatedKey" not in resp:
                return
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def commit(
        self,
        *,
        name: str,
        record: EndpointRecord | None,
        audit: AuditEvent,
        expected_version: int | None,
        claim_token: str | None = None,
    ) -> None:
        """Write (or delete, when ``record`` is None) the record and put its audit event, atomically.
        ``expected_version`` None means no record may exist yet (an item holding only a claim is no
        record). ``claim_token``: the writer holds the create claim (the write requires it and clears
        it); without one, the write is refused while another holds a live claim."""
        names: dict[str, str] = {"#v": "version", "#c": CLAIM_TOKEN}
        values: dict[str, Any] = {}
        if expected_version is None:
            version_condition = "attribute_not_exists(#v)"
        else:
            version_condition = "#v = :v"
            values[":v"] = {"N": str(expected_version)}
        if claim_token is not None:
            claim_condition = "#c = :t"
            values[":t"] = {"S": claim_token}
        else:
            claim_condition = "(attribute_not_exists(#c) OR #e < :now)"
            names["#e"] = CLAIM_EXPIRES
            values[":now"] = {"N": _num(self._clock())}
        condition: dict[str, Any] = {
            "ConditionExpression": f"{version_condition} AND {claim_condition}",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if record is None:
            record_op: dict[str, Any] = {
                "Delete": {"TableName": self.endpoints_table, "Key": {"name": {"S": name}}, **condition}
            }
            if expected_version is None:  # nothing recorded: nothing to delete, audit only
                record_op = {}
        else:
            record_op = {
                "Put": {"TableName": self.endpoints_table, "Item": to_item(_dump(record)), **condition}
            }
        audit_item = to_item(_dump(audit))
        audit_item["sk"] = {"S": audit.sk}
        audit_op = {
            "Put": {
                "TableName": self.audit_table,
                "Item": audit_item,
                "ConditionExpression": "attribute_not_exists(sk)",
            }
        }
        items = [op for op in (record_op, audit_op) if op]
        try:
            if len(items) == 1:
                self._ddb.put_item(**items[0]["Put"])
            else:
                self._ddb.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if _code(exc) == "TransactionCanceledException":
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    raise RecordConflict(
                        f"the record of {name!r} changed during this action (or another execution "
                        "holds its create claim)"
                    ) from exc
            raise StoreError(f"writing the record of {name!r} failed: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"writing the record of {name!r} failed: {type(exc).__name__}") from exc

    # --- audit ------------------------------------------------------------------------------------

    def audit_for(self, name: str, *, limit: int = 50, newest_first: bool = True) -> list[AuditEvent]:
        kwargs: dict[str, Any] = {
            "TableName": self.audit_table,
            "KeyConditionExpression": "#n = :n",
            "ExpressionAttributeNames": {"#n": "name"},
            "ExpressionAttributeValues": {":n": {"S": name}},
            "ScanIndexForward": not newest_first,
            "Limit": limit,
        }
        try:
            resp = self._ddb.query(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"reading the audit log of {name!r} failed: {_code(exc)}") from exc
        events = []
        for item in resp.get("Items", []):
            data = from_item(item)
            data.pop("sk", None)
            events.append(AuditEvent.model_validate(data))
        return events


def _code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


class DynamoRateLimiter:
    """One shared request budget per Cognigy API key across every concurrent Lambda: GCRA (a token
    bucket stated as a 'theoretical arrival time') kept in one DynamoDB item, moved only by
    conditional updates, so no two callers can spend the same capacity.

    ``acquire(n)`` takes n requests' worth. When the budget needs a wait of at most ``max_inline_wait``
    seconds it waits in place; a longer wait raises :class:`CognigyThrottled` with the seconds, which the
    state machine waits out without holding a Lambda.

    One write per acquire in the steady state: the pacing update also takes a bucket whose time passed
    less than ``slack`` seconds ago (adding the cost to it, not to now), and gives up ``slack`` of the
    tolerance for it, so the budget is never exceeded; only a bucket idle for longer needs the restart
    update, which goes first when the last look at the bucket saw it idle.
    """

    def __init__(
        self,
        client: Any,
        *,
        table: str,
        bucket: str,
        rate_per_minute: float,
        burst: int,
        clock: Callable[[], float] = time.time,
        max_inline_wait: float = 2.0,
        slack: float | None = None,
    ) -> None:
        if rate_per_minute <= 0 or burst < 1 or (slack is not None and slack < 0):
            raise ValueError("rate_per_minute must be > 0, burst >= 1 and slack >= 0")
        self._ddb = client
        self.table = table
        self.bucket = bucket
        self.interval = 60.0 / rate_per_minute
        self.tolerance = burst * self.interval
        self.burst = burst
        self._clock = clock
        self.max_inline_wait = max_inline_wait
        # Half the tolerance (at most 1 s): restarts (and their races) stay rare, the burst stays whole
        # after an idle spell and half of it remains ahead of a busy one.
        self.slack = min(1.0, self.tolerance / 2) if slack is None else slack
        self.writes = 0  # write requests sent (for benchmarks)

    async def acquire(self, n: int = 1) -> None:
        n = max(1, min(n, self.burst))
        while True:
            wait = self._try_take(n)
            if wait <= 0:
                return
            if wait > self.max_inline_wait:
                raise CognigyThrottled(
                    f"the shared Cognigy request budget is spent; wait {wait:.1f} s", retry_after=wait
                )
            await asyncio.sleep(wait)

    def _try_take(self, n: int) -> float:
        """Returns 0 when taken, else the seconds to wait. Pacing (the bucket's time is at most
        ``slack`` in the past: add the cost) and restart (longer idle: now + cost) are one conditional
        update each, their conditions complementary; the one the last look suggests goes first."""
        now = self._clock()
        cost = n * self.interval
        floor = now - self.slack
        limit = now + self.tolerance - cost - self.slack
        hint = _LAST_TAT.get(self.bucket)
        idle_first = hint is None or hint < floor
        for idle in (idle_first, not idle_first):
            old = self._restart(now, cost, floor) if idle else self._pace(cost, floor, limit)
            if old is None:
                return 0.0
            if old > limit:
                return old - limit
        return 0.001  # another caller moved it between the two updates: look again at once

    def _restart(self, now: float, cost: float, floor: float) -> float | None:
        # From the floor, not from now: that is GCRA's max(tat, now) with the idle credit capped at
        # ``slack``, so two callers restarting at once both succeed unless they are within ``cost``
        # of each other (the second one's floor is then still below the first one's new tat).
        return self._update(
            "SET tat = :new",
            "attribute_not_exists(tat) OR tat < :floor",
            {":new": {"N": _num(floor + cost)}, ":floor": {"N": _num(floor)}},
        )

    def _pace(self, cost: float, floor: float, limit: float) -> float | None:
        return self._update(
            "SET tat = tat + :cost",
            "tat BETWEEN :floor AND :limit",
            {":cost": {"N": _num(cost)}, ":floor": {"N": _num(floor)}, ":limit": {"N": _num(limit)}},
        )

    def _update(self, expression: str, condition: str, values: dict[str, Any]) -> float | None:
        """One conditional update of the bucket: None when it applied, else the tat it found
        (-inf when the bucket has none). Either way the tat seen is kept as the next hint."""
        try:
            self.writes += 1
            resp = self._ddb.update_item(
                TableName=self.table,
                Key={"bucket": {"S": self.bucket}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise StoreError(f"rate limiter update failed: {_code(exc)}") from exc
            item: dict[str, Any] = exc.response.get("Item") or {}  # type: ignore[assignment]
            old = float(item["tat"]["N"]) if "tat" in item else float("-inf")
            _LAST_TAT[self.bucket] = old
            return old
        _LAST_TAT[self.bucket] = float(resp["Attributes"]["tat"]["N"])
        return None


# The last tat seen per bucket, shared by every limiter in this process (a warm Lambda's invocations,
# the local stack's threads): only a hint for which update to try first, never trusted for the budget.
_LAST_TAT: dict[str, float] = {}


def _num(value: float) -> str:
    return f"{value:.6f}"


# --- secrets and desired sets ----------------------------------------------------------------------


class SecretStoreError(StoreError):
    """A secret could not be read or written (never carries the value)."""


class SecretResolver:
    """Secrets Manager through Powertools Parameters, cached for ``max_age`` seconds. ``force=True``
    re-fetches (to pick up a fresh rotation after a failure)."""

    def __init__(self, *, max_age: int = 300, client: Any = None) -> None:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        self.max_age = max_age
        self._provider = SecretsProvider(boto3_client=client) if client is not None else SecretsProvider()

    def get(self, secret_id: str, *, force: bool = False) -> str:
        try:
            value = self._provider.get(secret_id, max_age=self.max_age, force_fetch=force)
        except Exception as exc:  # Powertools wraps every boto3 failure in GetParameterError
            raise SecretStoreError(f"reading secret {secret_id!r} failed ({type(exc).__name__})") from None
        if isinstance(value, bytes):
            return value.decode("utf-8")
        return str(value)

    def clear(self) -> None:
        self._provider.clear_cache()


def put_secret(client: Any, name: str, value: str, *, description: str = "") -> str:
    """Create or update a secret by name; returns its ARN. The value never appears in errors."""
    try:
        resp = client.create_secret(Name=name, SecretString=value, Description=description)
        return str(resp["ARN"])
    except ClientError as exc:
        if _code(exc) != "ResourceExistsException":
            raise SecretStoreError(f"storing secret {name!r} failed: {_code(exc)}") from None
    try:
        current = client.get_secret_value(SecretId=name)
        if current.get("SecretString") != value:
            client.put_secret_value(SecretId=name, SecretString=value)
        return str(client.describe_secret(SecretId=name)["ARN"])
    except ClientError as exc:
        raise SecretStoreError(f"storing secret {name!r} failed: {_code(exc)}") from None


class DesiredSetStore:
    """Desired sets in the versioned config bucket (what a deploy reconciles)."""

    KEY = "desired/endpoints.json"

    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self.bucket = bucket

    def put(self, data: dict[str, Any], key: str = KEY) -> str:
        body = json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")
        try:
            resp = self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"storing the desired set failed: {_code(exc)}") from exc
        return str(resp.get("VersionId") or "null")

    def get(self, key: str = KEY, version_id: str | None = None) -> tuple[dict[str, Any], str]:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            resp = self._s3.get_object(**kwargs)
            data = json.loads(resp["Body"].read())
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(
                f"reading the desired set s3://{self.bucket}/{key} failed: {_code(exc)}"
            ) from exc
        except ValueError as exc:
            raise StoreError(f"the desired set s3://{self.bucket}/{key} is not JSON") from exc
        return data, str(resp.get("VersionId") or "null")

    def latest_version(self, key: str = KEY) -> str | None:
        try:
            resp = self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StoreError(f"looking up the desired set failed: {_code(exc)}") from exc
        return str(resp.get("VersionId") or "null")


class Executions:
    """Starts reconcile executions with deterministic names, so a repeated trigger runs once."""

    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self._sfn = client
        self.state_machine_arn = state_machine_arn

    @staticmethod
    def name_for(source: str, desired_version: str) -> str:
        digest = hashlib.sha256(desired_version.encode("utf-8")).hexdigest()[:32]
        return f"{source}-{digest}"[:80]

    def start(self, execution_input: dict[str, Any], *, name: str) -> tuple[str, bool]:
        """Returns (execution ARN, started). ``started`` is False when an execution of that name already
        exists and has ended (while it still runs, Step Functions answers a same-input start with it)."""
        try:
            resp = self._sfn.start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(execution_input)
            )
            return str(resp["executionArn"]), True
        except ClientError as exc:
            if _code(exc) == "ExecutionAlreadyExists":
                arn = self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
                return arn, False
            raise StoreError(f"starting execution {name!r} failed: {_code(exc)}") from exc


def start_desired_version(
    executions: Executions,
    desired: DesiredSetStore,
    *,
    source: str,
    prune: bool,
    version_id: str | None = None,
) -> tuple[str, bool] | None:
    """Reconcile one version of the desired set in the config bucket (the latest when not given)."""
    version = version_id or desired.latest_version()
    if version is None:
        return None
    execution_input = {
        "desiredRef": {"bucket": desired.bucket, "key": desired.KEY, "versionId": version},
        "prune": prune,
        "source": source,
    }
    return executions.start(execution_input, name=Executions.name_for(source, version))
