"""Moved to :mod:`cognigy_webhooks.reconcile.names` (this re-export goes when every import has moved)."""

from cognigy_webhooks.reconcile.names import (
    INVENTORY_PAGE_SIZE,
    HeldWebhook,
    Lister,
    Sorted,
    cognigy_inventory,
    describe_left,
    is_ours,
    sort_out,
)

__all__ = [
    "INVENTORY_PAGE_SIZE",
    "HeldWebhook",
    "Lister",
    "Sorted",
    "cognigy_inventory",
    "describe_left",
    "is_ours",
    "sort_out",
]
