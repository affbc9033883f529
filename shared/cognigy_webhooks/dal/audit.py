"""AuditTable's requests, all of them: every audit item is put and read here.

Two writers share one item shape (:mod:`cognigy_webhooks.dal.schema`: the attributes of
``models.records.AuditEvent`` plus ``sk``), and :func:`audit_put` is the only Put either sends:

- the register side's lifecycle events, each in the same transaction as the record change it
  describes (:class:`cognigy_webhooks.dal.records.Store` takes :func:`audit_put` into its
  TransactWriteItems), and read back newest first by :func:`query_audit`;
- the receiver's events (rejections, loops), put one by one by :class:`AuditLog` without pydantic
  (the receiver's cold start), ``source`` ``delivery``.

Every put is conditioned on a new ``sk``: an event is never overwritten. The table's stream carries
each new item to the audit sync.
"""

from __future__ import annotations

import os
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cognigy_webhooks.dal.clients import LazyClients
from cognigy_webhooks.dal.schema import Audit, delivery_audit_item, from_item
from cognigy_webhooks.errors import DeliveryStoreError, StoreError

__all__ = ["AuditLog", "audit_put", "query_audit", "query_audit_page"]


def audit_put(table: str, item: dict[str, Any]) -> dict[str, Any]:
    """The Put of one audit item (a PutItem's or a transaction's): only when its ``sk`` is new."""
    return {
        "TableName": table,
        "Item": item,
        "ConditionExpression": "attribute_not_exists(#sk)",
        "ExpressionAttributeNames": {"#sk": Audit.SK},
    }


def query_audit(
    client: Any, table: str, name: str, *, limit: int, newest_first: bool
) -> list[dict[str, Any]]:
    """Up to ``limit`` audit events of ``name`` in time order (newest first unless told), as plain
    fields without ``sk``. :class:`StoreError` when DynamoDB fails."""
    events, _more = query_audit_page(client, table, name, limit=limit, newest_first=newest_first)
    return events


def query_audit_page(
    client: Any,
    table: str,
    name: str,
    *,
    limit: int,
    newest_first: bool,
    after_sk: str | None = None,
    more: bool = False,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page: up to ``limit`` audit events of ``name`` in time order (newest first unless told),
    starting after the event whose sort key is ``after_sk``, as plain fields without ``sk``. With
    ``more`` the second value is the sort key of the page's last event when more may follow (else
    None): one item beyond the page is asked for, so a page that ends the log says so."""
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "#n = :n",
        "ExpressionAttributeNames": {"#n": Audit.NAME},
        "ExpressionAttributeValues": {":n": {"S": name}},
        "ScanIndexForward": not newest_first,
        "Limit": limit + 1 if more else limit,
    }
    if after_sk is not None:
        kwargs["ExclusiveStartKey"] = {Audit.NAME: {"S": name}, Audit.SK: {"S": after_sk}}
    try:
        resp = client.query(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise StoreError.from_aws(f"reading the audit log of {name!r}", exc) from exc
    items = resp.get("Items", [])
    page = items[:limit]
    last_sk: str | None = None
    if more and page and (len(items) > limit or "LastEvaluatedKey" in resp):
        last_sk = str(from_item(page[-1]).get(Audit.SK))
    events = []
    for item in page:
        data = from_item(item)
        data.pop(Audit.SK, None)
        events.append(data)
    return events, last_sk


class AuditLog:
    """The receiver's events (rejections and loops), in AuditTable, shaped like
    :class:`cognigy_webhooks.models.records.AuditEvent`
    (:func:`~cognigy_webhooks.dal.schema.delivery_audit_item`)."""

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
        """Put one event; returns its event id. :class:`DeliveryStoreError` when it was not put."""
        event_id = os.urandom(16).hex()
        item = delivery_audit_item(
            name=name,
            event_id=event_id,
            now=now,
            action=action,
            outcome=outcome,
            reason=reason,
            retention_days=self.retention_days,
            status_code=status_code,
            detail=detail,
        )
        try:
            self._clients.get("dynamodb").put_item(**audit_put(self.table, item))
        except (ClientError, BotoCoreError) as exc:
            raise DeliveryStoreError.from_aws("writing the audit event", exc) from None
        return event_id
