"""What the operations reach of one stack: its stores, its reconcile and watch state machines, its Secrets
Manager prefix and the Cognigy API it speaks, as one value handed to every operation.

The management API's function builds it from its settings (:meth:`StackAccess.from_settings`), the
command line from a stack's outputs (:meth:`StackAccess.from_outputs`: the embedded local stack or a
deployed one), the tests from the local stack. ``client(service)`` gives a boto3 client; Secrets
Manager's is asked for only when a secret is to be stored or compared.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cognigy_webhooks.dal.desired_sets import DesiredSetStore
from cognigy_webhooks.dal.executions import Executions
from cognigy_webhooks.dal.records import Store
from cognigy_webhooks.reconcile.plan import Dialect

__all__ = ["StackAccess"]


@dataclass(frozen=True)
class StackAccess:
    """One stack's stores and state machine. ``secretsmanager()`` makes (or returns) its Secrets
    Manager client; ``dialect`` is the stack's ``CognigyApi``."""

    store: Store
    desired_sets: DesiredSetStore
    executions: Executions
    secretsmanager: Callable[[], Any]
    stack_name: str
    dialect: Dialect = "endpoints"
    #: The watch state machine's executions (None: a stack without the watch, deployed before it).
    watches: Executions | None = None

    @classmethod
    def from_outputs(
        cls, client: Callable[[str], Any], outputs: Mapping[str, str], *, stack_name: str
    ) -> StackAccess:
        """From a stack's outputs (template.yaml's ``Outputs``: the tables, the bucket, the state
        machine, ``CognigyApi``). ``KeyError`` naming the output when one is missing."""
        dialect: Dialect = "tutorial" if outputs.get("CognigyApi") == "tutorial" else "endpoints"
        return cls(
            store=Store(
                client("dynamodb"),
                endpoints_table=outputs["EndpointsTableName"],
                audit_table=outputs["AuditTableName"],
            ),
            desired_sets=DesiredSetStore(client("s3"), outputs["ConfigBucketName"]),
            executions=Executions(client("stepfunctions"), outputs["ReconcileStateMachineArn"]),
            secretsmanager=lambda: client("secretsmanager"),
            stack_name=stack_name,
            dialect=dialect,
            watches=Executions(client("stepfunctions"), outputs["WatchStateMachineArn"])
            if outputs.get("WatchStateMachineArn")
            else None,
        )

    @classmethod
    def from_settings(cls, client: Callable[[str], Any], settings: Any) -> StackAccess:
        """From the management API's settings (:class:`cognigy_webhooks.settings.ApiSettings`)."""
        made: dict[str, Any] = {}

        def secretsmanager() -> Any:
            if "sm" not in made:
                made["sm"] = client("secretsmanager")
            return made["sm"]

        return cls(
            store=Store(
                client("dynamodb"),
                endpoints_table=settings.endpoints_table,
                audit_table=settings.audit_table,
            ),
            desired_sets=DesiredSetStore(client("s3"), settings.config_bucket),
            executions=Executions(client("stepfunctions"), settings.state_machine_arn),
            secretsmanager=secretsmanager,
            stack_name=settings.stack_name,
            dialect=settings.cognigy_api,
            watches=Executions(client("stepfunctions"), settings.watch_state_machine_arn)
            if getattr(settings, "watch_state_machine_arn", None)
            else None,
        )
