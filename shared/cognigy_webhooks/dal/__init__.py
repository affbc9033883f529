"""Data access: one module per store, each the only one that talks to its table or service.

- :mod:`~cognigy_webhooks.dal.schema`: the tables' attribute names and the one codec (standard library
  only; every module below, the receiver and the audit sync read and write items through it).
- :mod:`~cognigy_webhooks.dal.records`: EndpointsTable (records, the create claim) with the audit
  event of every record change in the same transaction (the register side; pydantic records).
- :mod:`~cognigy_webhooks.dal.audit`: AuditTable's requests: the receiver's events (rejections,
  loops), the audit part of the records' transaction, the audit queries.
- :mod:`~cognigy_webhooks.dal.endpoints`: the receiver's endpoint lookup (EndpointsTable, read only).
- :mod:`~cognigy_webhooks.dal.deliveries`: DeliveriesTable: the delivery ledger and the loop counters.
- :mod:`~cognigy_webhooks.dal.bus`: EventBridge: accepted deliveries handed on.
- :mod:`~cognigy_webhooks.dal.secretsmanager`: Secrets Manager: secrets stored, read, rotated.
- :mod:`~cognigy_webhooks.dal.desired_sets`: the config bucket (S3): desired sets by version.
- :mod:`~cognigy_webhooks.dal.executions`: Step Functions: reconcile executions started, described,
  stopped.
- :mod:`~cognigy_webhooks.dal.clients`: boto3 clients made on first use.
- :mod:`~cognigy_webhooks.dal.cursors`: the opaque page cursors of the paged listings.

The RateLimitTable's writer is :class:`cognigy_webhooks.ratelimit.DynamoRateLimiter`, beside the
in-process token bucket. AWS failures become :class:`~cognigy_webhooks.errors.StoreError` (register
side) or :class:`~cognigy_webhooks.errors.DeliveryStoreError` (receiver), with the AWS error code and
AWS's message, never a value. Nothing is imported here: the receiver imports only what it uses.
"""
