"""EventBridge, its only caller: accepted deliveries handed on to the delivery bus, and the watch's
operational events (:class:`OperationsBus`: ``Endpoint Unhealthy``, ``Certificate Expiring``, ...).

One event per accepted delivery (detail-type ``Cognigy Delivery``); what its ``Detail`` holds is
rendered before the delivery is claimed (:meth:`DeliveryBus.render`, no I/O), and exactly that text is
put later (:meth:`DeliveryBus.publish_rendered`). The detail is what the receiver gives (its fields are
listed in :mod:`cognigy_webhooks.receiving.pipeline`), slimmed when too big for an entry
(:data:`DeliveryBus.OMITTABLE`); nothing of the request is added here (no header, so never the
Authorization one). boto3 and the standard library only (the receiver's cold start). A put that
failed (the call, or the entry) is a :class:`~cognigy_webhooks.errors.DeliveryStoreError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cognigy_webhooks.dal.clients import LazyClients
from cognigy_webhooks.errors import DeliveryStoreError, StoreError

__all__ = ["DeliveryBus", "OperationsBus"]


class DeliveryBus:
    """Publishes accepted deliveries to the EventBridge bus (detail-type ``Cognigy Delivery``)."""

    DETAIL_TYPE = "Cognigy Delivery"

    def __init__(self, clients: LazyClients, bus_name: str, *, source: str) -> None:
        self._clients = clients
        self.bus_name = bus_name
        self.source = source
        self._client: Any = None  # the EventBridge client, once made

    #: EventBridge takes at most 256 KB per entry; a detail bigger than this goes without its
    #: ``payload`` (``payloadOmitted``: the consumer reads the body from the deliveries table).
    DETAIL_LIMIT = 240 * 1024
    #: What a detail too big for :data:`DETAIL_LIMIT` goes without, in this order, until it fits: the
    #: ``payload`` first (``payloadOmitted`` and ``payloadDetailBytes``, the full detail's size), then
    #: the output's ``data`` and ``text`` copied to the top (``dataOmitted``, ``textOmitted``). What is
    #: left (names, ids bounded at 256 characters, flags) always fits.
    OMITTABLE = ("payload", "data", "text")

    #: Compact, not ASCII-escaped, no NaN or Infinity (one encoder: ``json.dumps`` makes one per call).
    _ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)

    @classmethod
    def _dumps(cls, detail: Mapping[str, Any]) -> str:
        return cls._ENCODER.encode(detail)

    @staticmethod
    def _size(text: str) -> int:
        """The text's UTF-8 size (``UnicodeEncodeError`` for a lone surrogate)."""
        return len(text) if text.isascii() else len(text.encode("utf-8"))

    def render(self, detail: Mapping[str, Any]) -> str:
        """The exact ``Detail`` text :meth:`publish` sends for ``detail``: compact JSON, encodable as
        UTF-8, and without its bulky fields (:data:`OMITTABLE`) when too big for EventBridge. No I/O,
        so the receiver renders before it claims a delivery and hands on exactly what it checked.

        Raises ``ValueError`` (``UnicodeEncodeError`` for a lone surrogate, a non-finite number),
        ``TypeError`` or ``RecursionError`` when ``detail`` cannot be JSON: a problem with the content,
        never a transient one. The whole detail is checked, whatever slimming then leaves out."""
        # _dumps and _size written out: this runs once per delivery received
        text = self._ENCODER.encode(detail)
        size = len(text) if text.isascii() else len(text.encode("utf-8"))
        if size <= self.DETAIL_LIMIT:
            return text
        slim = dict(detail)
        for field in self.OMITTABLE:
            if field not in slim:
                continue
            del slim[field]
            slim[f"{field}Omitted"] = True
            if field == "payload":
                slim["payloadDetailBytes"] = size
            text = self._dumps(slim)
            if self._size(text) <= self.DETAIL_LIMIT:
                break
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
            client = self._client
            if client is None:
                client = self._client = self._clients.get("events")
            resp = client.put_events(Entries=[entry])
        except (ClientError, BotoCoreError) as exc:
            raise DeliveryStoreError.from_aws("publishing the delivery", exc) from None
        entries = resp.get("Entries") or [{}]
        if resp.get("FailedEntryCount") or not entries[0].get("EventId"):
            code = str(entries[0].get("ErrorCode") or "unknown")
            raise DeliveryStoreError(f"publishing the delivery failed: {code}", code=code)
        return str(entries[0]["EventId"])


class OperationsBus:
    """Puts operational events (the watch's transitions) on the stack's operations bus: one entry per
    event, ``detail-type`` as given, ``source`` the product's; at most 10 entries per PutEvents (the
    API's limit). Any entry refused is a :class:`~cognigy_webhooks.errors.StoreError` (transient: the
    watch step is retried; every detail carries a stable ``eventId`` for consumers to drop repeats)."""

    BATCH = 10

    def __init__(self, clients: LazyClients, bus_name: str, *, source: str = "cognigy-webhooks") -> None:
        self._clients = clients
        self.bus_name = bus_name
        self.source = source

    def publish(self, events: Sequence[tuple[str, Mapping[str, Any]]]) -> int:
        """Put each ``(detail_type, detail)``; returns how many were put."""
        entries = [
            {
                "Source": self.source,
                "DetailType": detail_type,
                "Detail": json.dumps(detail, separators=(",", ":"), ensure_ascii=False, allow_nan=False),
                "EventBusName": self.bus_name,
            }
            for detail_type, detail in events
        ]
        for start in range(0, len(entries), self.BATCH):
            batch = entries[start : start + self.BATCH]
            try:
                resp = self._clients.get("events").put_events(Entries=batch)
            except (ClientError, BotoCoreError) as exc:
                raise StoreError.from_aws("publishing operational events", exc) from None
            if resp.get("FailedEntryCount"):
                codes = sorted(
                    {str(e.get("ErrorCode")) for e in resp.get("Entries", []) if e.get("ErrorCode")}
                )
                raise StoreError(f"publishing operational events failed: {', '.join(codes) or 'unknown'}")
        return len(entries)
