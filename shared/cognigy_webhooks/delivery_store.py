"""Moved: a re-export shim until every import is updated (see cognigy_webhooks.dal).

The endpoint lookup: :mod:`cognigy_webhooks.dal.endpoints`; secrets:
:mod:`cognigy_webhooks.dal.secretsmanager`; the ledger and loop counters:
:mod:`cognigy_webhooks.dal.deliveries`; audit: :mod:`cognigy_webhooks.dal.audit`; the bus:
:mod:`cognigy_webhooks.dal.bus`; clients: :mod:`cognigy_webhooks.dal.clients`; errors:
:mod:`cognigy_webhooks.errors`; ``iso_time``: :mod:`cognigy_webhooks.dal.schema`.
"""

from __future__ import annotations

from cognigy_webhooks.dal.audit import AuditLog
from cognigy_webhooks.dal.bus import DeliveryBus
from cognigy_webhooks.dal.clients import LazyClients
from cognigy_webhooks.dal.deliveries import (
    LOOP_STEPS,
    STATE_CLAIMED,
    STATE_LOOPED,
    STATE_PUBLISHED,
    ClaimResult,
    DeliveryLedger,
    delivery_id_for,
)
from cognigy_webhooks.dal.endpoints import EndpointAuth, EndpointDirectory, endpoint_auth_from_item
from cognigy_webhooks.dal.schema import iso_time
from cognigy_webhooks.dal.secretsmanager import CURRENT, PREVIOUS, SecretVersions
from cognigy_webhooks.errors import DeliveryStoreError, SecretUnavailable

__all__ = [
    "CURRENT",
    "LOOP_STEPS",
    "PREVIOUS",
    "STATE_CLAIMED",
    "STATE_LOOPED",
    "STATE_PUBLISHED",
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
    "delivery_id_for",
    "endpoint_auth_from_item",
    "iso_time",
]
