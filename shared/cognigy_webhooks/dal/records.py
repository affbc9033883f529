"""EndpointsTable, its only writer: the endpoint records, the create claim, and the audit event of
every record change (the register side: pydantic records in, items of :mod:`cognigy_webhooks.dal.schema` out).

Conditional writes everywhere; no Scan: records are listed through the ``ByType`` index, audit events
by Query on the endpoint's name (:func:`cognigy_webhooks.dal.audit.query_audit`). Both also come a
page at a time (:meth:`Store.page_records`, :meth:`Store.audit_page`: a bounded ``limit``, an opaque
cursor from :mod:`cognigy_webhooks.dal.cursors`, one item beyond the page asked for so that the last
page has no cursor). The record and its
audit event are written in ONE transaction, so a record never changes without its audit event and vice
versa.

The create claim: before an execution looks a name up in Cognigy to create (or adopt, or remove
duplicates of) its webhook, it takes the name's claim with ONE conditional write on the record's own
item (:meth:`Store.claim`: a random token and a lease end, ``createClaim`` / ``createClaimExpiresAt``;
no record yet: an item holding only the claim, which has no ``recordType`` and so is no record and
is never listed). Only one execution at a time holds it; another gets
:class:`~cognigy_webhooks.errors.EndpointClaimed` (retryable). While a claim is live only its holder
writes the item: every other record write is refused (:class:`~cognigy_webhooks.errors.RecordConflict`,
retryable). The holder's commit (record + audit, one transaction, conditioned on its token) replaces
the item and so clears the claim; a holder that fails releases it (:meth:`Store.release`, keeping
``createMaybeApplied`` when its create may have been applied); a holder that died leaves it to expire.

Every other DynamoDB failure is a :class:`~cognigy_webhooks.errors.StoreError` carrying the AWS error
code and AWS's message (never a value).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from cognigy_webhooks.dal import cursors
from cognigy_webhooks.dal.audit import audit_put, query_audit, query_audit_page
from cognigy_webhooks.dal.schema import Endpoint, audit_item, from_item, record_fields, to_item
from cognigy_webhooks.errors import (
    EndpointClaimed,
    InvalidInput,
    RecordConflict,
    StoreError,
    aws_error_code,
)
from cognigy_webhooks.models.records import AuditEvent, EndpointRecord

__all__ = ["CLAIM_EXPIRES", "CLAIM_TOKEN", "MAX_PAGE", "MAYBE_APPLIED", "Page", "Store", "StoredEndpoint"]

# The create claim's attributes on an EndpointsTable item (the protocol's, not the record's).
CLAIM_TOKEN = Endpoint.CLAIM_TOKEN
CLAIM_EXPIRES = Endpoint.CLAIM_EXPIRES
MAYBE_APPLIED = Endpoint.CREATE_MAYBE_APPLIED  # also EndpointRecord.create_maybe_applied
_CONDITION_FAILED = "ConditionalCheckFailedException"
T = TypeVar("T")
#: The most items one page may hold (records and audit events alike).
MAX_PAGE = 100


def _dump(model: EndpointRecord | AuditEvent) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def _num(value: float) -> str:
    return f"{value:.6f}"


@dataclass(frozen=True)
class StoredEndpoint:
    """What the EndpointsTable holds under one name: the record (None when there is none: no item,
    or an item that holds only a claim), whether a live claim is on it, and whether a create may
    have been applied in Cognigy without being recorded (kept on the item even before any record)."""

    record: EndpointRecord | None
    claimed: bool = False
    create_maybe_applied: bool = False


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing: its items and the opaque cursor of the next page (None: the last)."""

    items: list[T]
    next_cursor: str | None = None


def _check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput([{"field": "limit", "message": f"must be an integer from 1 to {MAX_PAGE}"}])
    return limit


def _record_of(data: dict[str, Any]) -> EndpointRecord | None:
    fields = record_fields(data)
    return None if fields is None else EndpointRecord.model_validate(fields)


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

    def _key(self, name: str) -> dict[str, Any]:
        return {Endpoint.NAME: {"S": name}}

    # --- records -----------------------------------------------------------------------------------

    def get_record(self, name: str) -> EndpointRecord | None:
        return self.read(name).record

    def read(self, name: str) -> StoredEndpoint:
        """The record and the claim state of ``name``, read consistently (one GetItem)."""
        try:
            resp = self._ddb.get_item(
                TableName=self.endpoints_table, Key=self._key(name), ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreError.from_aws(f"reading the record of {name!r}", exc) from exc
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
        names = {"#c": CLAIM_TOKEN, "#e": CLAIM_EXPIRES, "#v": Endpoint.VERSION}
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
                Key=self._key(name),
                UpdateExpression="SET #c = :t, #e = :exp",
                ConditionExpression=f"(attribute_not_exists(#c) OR #e < :now) AND {version_condition}",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if aws_error_code(exc) != _CONDITION_FAILED:
                raise StoreError.from_aws(f"claiming {name!r}", exc) from exc
            old: dict[str, Any] = exc.response.get("Item") or {}  # type: ignore[assignment]
            held_until = float(old[CLAIM_EXPIRES]["N"]) if CLAIM_EXPIRES in old else float("-inf")
            if CLAIM_TOKEN in old and held_until >= now:
                raise EndpointClaimed(
                    f"another execution is creating the webhook of {name!r} (its claim ends in "
                    f"{max(0.0, held_until - now):.0f} s at the latest)"
                ) from None
            raise RecordConflict(f"the record of {name!r} changed before it could be claimed") from None
        except BotoCoreError as exc:
            raise StoreError.from_aws(f"claiming {name!r}", exc) from exc

    def release(self, name: str, *, token: str, create_maybe_applied: bool, drop_item: bool) -> bool:
        """Give the claim back (one conditional write, only while it is still ours). With
        ``create_maybe_applied`` the item keeps that mark for the next attempt and the failure
        record; ``drop_item`` deletes an item that held only the claim. False when the claim was no
        longer ours (its lease ended and another took it, or it was committed)."""
        what = f"releasing the claim of {name!r}"
        names = {"#c": CLAIM_TOKEN, "#e": CLAIM_EXPIRES}
        values: dict[str, Any] = {":t": {"S": token}}
        if drop_item and not create_maybe_applied:
            try:
                self._ddb.delete_item(
                    TableName=self.endpoints_table,
                    Key=self._key(name),
                    ConditionExpression="#c = :t AND attribute_not_exists(#v) AND attribute_not_exists(#m)",
                    ExpressionAttributeNames={"#c": CLAIM_TOKEN, "#v": Endpoint.VERSION, "#m": MAYBE_APPLIED},
                    ExpressionAttributeValues=values,
                )
                return True
            except ClientError as exc:
                if aws_error_code(exc) != _CONDITION_FAILED:
                    raise StoreError.from_aws(what, exc) from exc
                # not an item of the claim alone after all: give the claim back, keep the item
            except BotoCoreError as exc:
                raise StoreError.from_aws(what, exc) from exc
        if create_maybe_applied:
            names["#m"] = MAYBE_APPLIED
            values[":yes"] = {"BOOL": True}
            expression = "SET #m = :yes REMOVE #c, #e"
        else:
            expression = "REMOVE #c, #e"
        try:
            self._ddb.update_item(
                TableName=self.endpoints_table,
                Key=self._key(name),
                UpdateExpression=expression,
                ConditionExpression="#c = :t",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if aws_error_code(exc) == _CONDITION_FAILED:
                return False
            raise StoreError.from_aws(what, exc) from exc
        except BotoCoreError as exc:
            raise StoreError.from_aws(what, exc) from exc
        return True

    def list_records(self) -> list[EndpointRecord]:
        return list(self.iter_records())

    def iter_records(self) -> Iterator[EndpointRecord]:
        kwargs: dict[str, Any] = {
            "TableName": self.endpoints_table,
            "IndexName": Endpoint.BY_TYPE_INDEX,
            "KeyConditionExpression": "#t = :t",
            "ExpressionAttributeNames": {"#t": Endpoint.RECORD_TYPE},
            "ExpressionAttributeValues": {":t": {"S": Endpoint.TYPE_ENDPOINT}},
        }
        while True:
            try:
                resp = self._ddb.query(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise StoreError.from_aws("listing records", exc) from exc
            for item in resp.get("Items", []):
                record = _record_of(from_item(item))
                if record is not None:
                    yield record
            if "LastEvaluatedKey" not in resp:
                return
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def page_records(self, *, limit: int = 50, cursor: str | None = None) -> Page[EndpointRecord]:
        """One page of the records in name order (the ``ByType`` index, never a Scan): at most
        ``limit`` (1..:data:`MAX_PAGE`), after the position ``cursor`` (a ``next_cursor`` this
        method gave) holds. One record beyond the page is asked for, so the last page has no cursor.
        :class:`InvalidInput` naming ``limit`` or ``cursor``."""
        _check_limit(limit)
        kwargs: dict[str, Any] = {
            "TableName": self.endpoints_table,
            "IndexName": Endpoint.BY_TYPE_INDEX,
            "KeyConditionExpression": "#t = :t",
            "ExpressionAttributeNames": {"#t": Endpoint.RECORD_TYPE},
            "ExpressionAttributeValues": {":t": {"S": Endpoint.TYPE_ENDPOINT}},
            "Limit": limit + 1,
        }
        if cursor is not None:
            after = cursors.decode("records", cursor, ("n",))["n"]
            kwargs["ExclusiveStartKey"] = {
                Endpoint.NAME: {"S": after},
                Endpoint.RECORD_TYPE: {"S": Endpoint.TYPE_ENDPOINT},
            }
        try:
            resp = self._ddb.query(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise StoreError.from_aws("listing records", exc) from exc
        items = resp.get("Items", [])
        records = [r for r in (_record_of(from_item(item)) for item in items[:limit]) if r is not None]
        more = len(items) > limit or "LastEvaluatedKey" in resp
        last = records[-1].name if records else None
        return Page(records, cursors.encode("records", {"n": last}) if more and last else None)

    def commit(
        self,
        *,
        name: str,
        record: EndpointRecord | None,
        audit: AuditEvent,
        expected_version: int | None,
        claim_token: str | None = None,
        unclaimed_create: bool = False,
    ) -> None:
        """Write (or delete, when ``record`` is None) the record and put its audit event, atomically.
        ``expected_version`` None means no record may exist yet (an item holding only a claim is no
        record). ``claim_token``: the writer holds the create claim (the write requires it and clears
        it); without one, the write is refused while another holds a live claim.
        ``unclaimed_create``: the writer created the webhook without taking the claim (a name the
        plan's listing saw free), so this commit is the claim: refused while the item holds any claim
        (live or expired) or a ``createMaybeApplied`` mark."""
        names: dict[str, str] = {"#v": Endpoint.VERSION, "#c": CLAIM_TOKEN}
        values: dict[str, Any] = {}
        if expected_version is None:
            version_condition = "attribute_not_exists(#v)"
        else:
            version_condition = "#v = :v"
            values[":v"] = {"N": str(expected_version)}
        if claim_token is not None:
            claim_condition = "#c = :t"
            values[":t"] = {"S": claim_token}
        elif unclaimed_create:
            claim_condition = "attribute_not_exists(#c) AND attribute_not_exists(#m)"
            names["#m"] = MAYBE_APPLIED
        else:
            claim_condition = "(attribute_not_exists(#c) OR #e < :now)"
            names["#e"] = CLAIM_EXPIRES
            values[":now"] = {"N": _num(self._clock())}
        condition: dict[str, Any] = {
            "ConditionExpression": f"{version_condition} AND {claim_condition}",
            "ExpressionAttributeNames": names,
        }
        if values:
            condition["ExpressionAttributeValues"] = values
        if record is None:
            record_op: dict[str, Any] = {
                "Delete": {"TableName": self.endpoints_table, "Key": self._key(name), **condition}
            }
            if expected_version is None:  # nothing recorded: nothing to delete, audit only
                record_op = {}
        else:
            record_op = {
                "Put": {"TableName": self.endpoints_table, "Item": to_item(_dump(record)), **condition}
            }
        audit_op = {"Put": audit_put(self.audit_table, audit_item(_dump(audit), sk=audit.sk))}
        items = [op for op in (record_op, audit_op) if op]
        what = f"writing the record of {name!r}"
        try:
            if len(items) == 1:
                self._ddb.put_item(**items[0]["Put"])
            else:
                self._ddb.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if aws_error_code(exc) == "TransactionCanceledException":
                reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    raise RecordConflict(
                        f"the record of {name!r} changed during this action (or another execution "
                        "holds its create claim)"
                    ) from exc
            raise StoreError.from_aws(what, exc) from exc
        except BotoCoreError as exc:
            raise StoreError.from_aws(what, exc) from exc

    def write_watch(
        self,
        *,
        name: str,
        record: EndpointRecord,
        events: Sequence[AuditEvent],
        expected_version: int,
    ) -> int:
        """The watch's write: ``record`` (its new watch state and last probe) and one audit event per
        transition, in ONE transaction (a single conditional Put when nothing changed state: the
        watch's one write per endpoint). Conditioned as every record write is: the record still at
        ``expected_version`` and no live create claim on it (:class:`RecordConflict` otherwise: the
        watch reads again and decides again). Returns the number of items written."""
        if len(events) > 99:
            raise ValueError("one watch writes at most 99 audit events")
        now = _num(self._clock())
        put = {
            "TableName": self.endpoints_table,
            "Item": to_item(_dump(record)),
            "ConditionExpression": "#v = :v AND (attribute_not_exists(#c) OR #e < :now)",
            "ExpressionAttributeNames": {"#v": Endpoint.VERSION, "#c": CLAIM_TOKEN, "#e": CLAIM_EXPIRES},
            "ExpressionAttributeValues": {":v": {"N": str(expected_version)}, ":now": {"N": now}},
        }
        what = f"writing the watch of {name!r}"
        try:
            if not events:
                self._ddb.put_item(**put)
            else:
                items = [{"Put": put}]
                items += [
                    {"Put": audit_put(self.audit_table, audit_item(_dump(event), sk=event.sk))}
                    for event in events
                ]
                self._ddb.transact_write_items(TransactItems=items)
        except ClientError as exc:
            code = aws_error_code(exc)
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if code == _CONDITION_FAILED or (
                code == "TransactionCanceledException" and reasons and reasons[0] == "ConditionalCheckFailed"
            ):
                raise RecordConflict(f"the record of {name!r} changed during the watch") from exc
            raise StoreError.from_aws(what, exc) from exc
        except BotoCoreError as exc:
            raise StoreError.from_aws(what, exc) from exc
        return 1 + len(events)

    # --- audit ------------------------------------------------------------------------------------

    def audit_page(
        self, name: str, *, limit: int = 50, cursor: str | None = None, newest_first: bool = True
    ) -> Page[AuditEvent]:
        """One page of ``name``'s audit events, newest first unless told: at most ``limit``
        (1..:data:`MAX_PAGE`), after the position ``cursor`` holds (a cursor of another endpoint's
        log is refused). :class:`InvalidInput` naming ``limit`` or ``cursor``."""
        _check_limit(limit)
        after: str | None = None
        if cursor is not None:
            position = cursors.decode("audit", cursor, ("n", "s"))
            if position["n"] != name:
                raise InvalidInput([{"field": "cursor", "message": "is a cursor of another endpoint's log"}])
            after = position["s"]
        events, last_sk = query_audit_page(
            self._ddb,
            self.audit_table,
            name,
            limit=limit,
            newest_first=newest_first,
            after_sk=after,
            more=True,
        )
        return Page(
            [AuditEvent.model_validate(data) for data in events],
            cursors.encode("audit", {"n": name, "s": last_sk}) if last_sk else None,
        )

    def audit_for(self, name: str, *, limit: int = 50, newest_first: bool = True) -> list[AuditEvent]:
        """Up to ``limit`` audit events of ``name``, newest first unless told."""
        return [
            AuditEvent.model_validate(data)
            for data in query_audit(self._ddb, self.audit_table, name, limit=limit, newest_first=newest_first)
        ]
