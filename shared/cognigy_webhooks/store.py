"""Moved: a re-export shim until every import is updated (see cognigy_webhooks.dal).

Records and audit: :mod:`cognigy_webhooks.dal.records` (and :mod:`~cognigy_webhooks.dal.audit`);
the item codec: :mod:`cognigy_webhooks.dal.schema`; errors: :mod:`cognigy_webhooks.errors`; the
DynamoDB rate limiter: :mod:`cognigy_webhooks.ratelimit`; secrets:
:mod:`cognigy_webhooks.dal.secretsmanager`; desired sets: :mod:`cognigy_webhooks.dal.desired_sets`;
executions: :mod:`cognigy_webhooks.dal.executions`; the start of a reconcile:
:func:`cognigy_webhooks.ops.start_reconcile`.
"""

from __future__ import annotations

from cognigy_webhooks.dal.desired_sets import DesiredSetStore
from cognigy_webhooks.dal.executions import Executions
from cognigy_webhooks.dal.records import CLAIM_EXPIRES, CLAIM_TOKEN, MAYBE_APPLIED, Store, StoredEndpoint
from cognigy_webhooks.dal.schema import from_item, to_item
from cognigy_webhooks.dal.secretsmanager import SecretResolver, put_secret
from cognigy_webhooks.errors import RecordConflict, SecretStoreError, StoreError
from cognigy_webhooks.ratelimit import DynamoRateLimiter

__all__ = [
    "CLAIM_EXPIRES",
    "CLAIM_TOKEN",
    "MAYBE_APPLIED",
    "DesiredSetStore",
    "DynamoRateLimiter",
    "Executions",
    "RecordConflict",
    "SecretResolver",
    "SecretStoreError",
    "Store",
    "StoreError",
    "StoredEndpoint",
    "from_item",
    "put_secret",
    "start_desired_version",
    "to_item",
]


def start_desired_version(
    executions: Executions,
    desired: DesiredSetStore,
    *,
    source: str,
    prune: bool,
    version_id: str | None = None,
) -> tuple[str, bool] | None:
    """Moved: :func:`cognigy_webhooks.ops.start_reconcile`."""
    from cognigy_webhooks.ops import start_reconcile

    started = start_reconcile(desired, executions, source=source, prune=prune, version_id=version_id)
    return None if started is None else (started.execution_arn, started.started)
