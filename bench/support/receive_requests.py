"""The AWS requests one delivery makes, counted at the receiver's own boto3 clients, and what AWS
bills for them (bench/receive.py prints these as the capacity model's per-delivery inputs).

:class:`RequestCounter` hooks botocore's events of the clients it is given (the receiver's, as the
handler made them; nothing else is changed) and counts every request by service and operation. For
DynamoDB it also works out the **request units** AWS would bill, with the item sizes of
:func:`item_size` (DynamoDB's documented rules):

- a write (PutItem, UpdateItem, DeleteItem) costs ``ceil(size / 1 KB)`` write units, ``size`` being
  the larger of the item before and after the write (an update is billed on the whole item, not on
  what it changes); the item is read before and after each write through ``peek``, a client of the
  same tables that is *not* hooked (those reads are not counted). A write refused by its condition
  still costs the units of the item it was checked against (at least one);
- each item of a TransactWriteItems costs twice that (transactions: two units per KB);
- a GetItem costs ``ceil(size / 4 KB)`` read units for a strongly consistent read, half for an
  eventually consistent one, on the full item (a projection does not make it cheaper);
- an EventBridge entry is billed per started 64 KB (``Source``, ``DetailType``, ``Detail`` and
  ``Resources`` in UTF-8).

No timing is taken while counting: the peeks would distort it (bench/receive.py counts on deliveries
of their own, after the timed ones).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = ["RequestCounter", "attribute_size", "event_chunks", "item_size", "write_units"]

#: DynamoDB bills writes per started KB and reads per started 4 KB; EventBridge events per 64 KB.
WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
EVENT_CHUNK_BYTES = 64 * 1024

_WRITES = ("PutItem", "UpdateItem", "DeleteItem")


def _number_size(text: str) -> int:
    """A number's size: one byte per two significant digits, plus one (leading and trailing zeros
    do not count)."""
    digits = Decimal(text).normalize().as_tuple().digits
    significant = len(digits) if any(digits) else 1
    return math.ceil(significant / 2) + 1


def attribute_size(value: Mapping[str, Any]) -> int:
    """The size of one attribute value in DynamoDB's low-level form (``{"S": "..."}``...)."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        return _number_size(str(inner))
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(v).encode()) for v in inner)
    if kind == "NS":
        return sum(_number_size(str(v)) for v in inner)
    if kind == "BS":
        return sum(len(v) for v in inner)
    if kind == "L":
        return 3 + sum(1 + attribute_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + attribute_size(v) for k, v in inner.items())
    raise ValueError(f"not a DynamoDB attribute value: {kind!r}")


def item_size(item: Mapping[str, Mapping[str, Any]] | None) -> int:
    """An item's size as DynamoDB bills it: each attribute's name and value (0 for no item)."""
    if not item:
        return 0
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    """Write units of one non-transactional write of an item of ``size`` bytes (at least one)."""
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def read_units(size: int, *, consistent: bool) -> float:
    """Read units of one GetItem of an item of ``size`` bytes (an absent item costs the minimum)."""
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


def event_chunks(entry: Mapping[str, Any]) -> int:
    """How many 64 KB events EventBridge bills for one PutEvents entry."""
    size = sum(len(str(entry.get(k, "")).encode()) for k in ("Source", "DetailType", "Detail"))
    size += sum(len(str(r).encode()) for r in entry.get("Resources") or ())
    return max(1, math.ceil(size / EVENT_CHUNK_BYTES))


class RequestCounter:
    """Counts the requests of the clients given to :meth:`watch` (``peek``: an unhooked DynamoDB
    client of the same tables, to size the items written and read)."""

    def __init__(self, peek: Any) -> None:
        self.peek = peek
        self.requests: Counter[str] = Counter()  # "dynamodb.PutItem" -> n
        self.write_units = 0.0
        self.read_units = 0.0
        self.event_entries = 0
        self.event_chunks = 0
        self.largest_item_written = 0
        self._pending: list[tuple[Mapping[str, Any], int, int]] = []  # (item params, size before, factor)
        self._keys: dict[str, tuple[str, ...]] = {}

    def watch(self, client: Any) -> None:
        """Count every request ``client`` makes from now on."""
        service = client.meta.service_model.service_name
        client.meta.events.register(f"before-parameter-build.{service}", self._before_call)
        client.meta.events.register(f"after-call.{service}", self._after_call)

    def reset(self) -> None:
        self.requests.clear()
        self.write_units = self.read_units = 0.0
        self.event_entries = self.event_chunks = self.largest_item_written = 0

    # --- the hooks ---------------------------------------------------------------------------------

    def _before_call(self, params: Mapping[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.service_name
        self.requests[f"{service}.{model.name}"] += 1
        if service == "dynamodb" and model.name in _WRITES:
            self._pending = [(params, self._size_at(params), 1)]
        elif service == "dynamodb" and model.name == "TransactWriteItems":
            # every item of a transaction costs two units per KB, a condition check included
            items = [next(iter(action.values())) for action in params.get("TransactItems", ())]
            self._pending = [(item, self._size_at(item), 2) for item in items]
        elif service == "dynamodb" and model.name == "GetItem":
            consistent = bool(params.get("ConsistentRead"))
            self.read_units += read_units(self._size_at(params), consistent=consistent)
        elif service == "events" and model.name == "PutEvents":
            entries = params.get("Entries", ())
            self.event_entries += len(entries)
            self.event_chunks += sum(event_chunks(e) for e in entries)

    def _after_call(self, model: Any, **_: Any) -> None:
        pending, self._pending = self._pending, []
        if model.service_model.service_name != "dynamodb":
            return
        for params, before, factor in pending:
            after = self._size_at(params)
            self.largest_item_written = max(self.largest_item_written, after)
            self.write_units += factor * write_units(max(before, after))

    # --- sizes ---------------------------------------------------------------------------------------

    def _key_of(self, table: str, params: Mapping[str, Any]) -> dict[str, Any]:
        names = self._keys.get(table)
        if names is None:
            schema = self.peek.describe_table(TableName=table)["Table"]["KeySchema"]
            names = self._keys[table] = tuple(k["AttributeName"] for k in schema)
        source = params.get("Key") or params.get("Item") or {}
        return {n: source[n] for n in names}

    def _size_at(self, params: Mapping[str, Any]) -> int:
        """The size of the item ``params`` (a write's or a read's) addresses, as it is now."""
        table = params["TableName"]
        resp = self.peek.get_item(TableName=table, Key=self._key_of(table, params), ConsistentRead=True)
        return item_size(resp.get("Item"))

    # --- figures -------------------------------------------------------------------------------------

    def figures(self, deliveries: int) -> dict[str, float]:
        """Per-delivery figures over ``deliveries`` deliveries counted since the last :meth:`reset`."""

        def per(n: float) -> float:
            return round(n / deliveries, 3)

        ddb = {k.split(".", 1)[1]: v for k, v in self.requests.items() if k.startswith("dynamodb.")}
        writes = sum(ddb.get(op, 0) for op in _WRITES)
        transactional = ddb.get("TransactWriteItems", 0)
        return {
            "dynamodb_writes": per(writes + transactional),
            "dynamodb_transactional_writes": per(transactional),
            "dynamodb_write_units": per(self.write_units),
            "dynamodb_reads": per(ddb.get("GetItem", 0) + ddb.get("Query", 0) + ddb.get("BatchGetItem", 0)),
            "dynamodb_read_units": per(self.read_units),
            "eventbridge_puts": per(self.requests.get("events.PutEvents", 0)),
            "eventbridge_events": per(self.event_chunks),
            "secrets_calls": per(sum(v for k, v in self.requests.items() if k.startswith("secretsmanager."))),
            "s3_requests": per(sum(v for k, v in self.requests.items() if k.startswith("s3."))),
        }
