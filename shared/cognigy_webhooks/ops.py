"""The operations that the command line, the deploy trigger and (next) the management API share, each
implemented once.

- :func:`store_secrets`: every plain secret of a desired set moved into Secrets Manager (what is
  secret is :mod:`cognigy_webhooks.secrets`'s decision; where it goes,
  :func:`~cognigy_webhooks.dal.secretsmanager.secret_name`), so that only ARNs and references go on.
- :func:`start_reconcile`: the start of a reconcile: put the desired set as a new version of the
  config bucket's object (or point at a version already there: the given one, else the latest), name
  the execution after that version and its source, start it. A name already started is not an
  error: the answer is that execution, ``started`` False (a redeploy, the same apply twice: one run).

Nothing here waits for an execution to end: the CLI follows it, the deploy trigger does not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cognigy_webhooks.dal.desired_sets import DesiredSetStore
from cognigy_webhooks.dal.executions import Executions
from cognigy_webhooks.dal.secretsmanager import put_secret, secret_name
from cognigy_webhooks.secrets import move_spec_secrets

__all__ = ["ReconcileStart", "start_reconcile", "store_secrets"]


@dataclass(frozen=True)
class ReconcileStart:
    """A reconcile execution as started: its ARN, whether this call started it (False: an execution
    of that desired-set version and source already existed), and the version it reconciles."""

    execution_arn: str
    started: bool
    version_id: str


def store_secrets(
    secretsmanager: Callable[[], Any], *, stack_name: str, desired: Mapping[str, Any]
) -> dict[str, Any]:
    """A copy of ``desired`` (``{"endpoints": [...]}``) with every plain secret stored in Secrets
    Manager under the stack's prefix and replaced by its ARN or reference. ``secretsmanager()`` gives
    the client; it is called only when there is a secret to store."""
    client: Any = None

    def put_for(endpoint: str) -> Callable[[str, str], str]:
        def put(kind: str, value: str) -> str:
            nonlocal client
            client = client or secretsmanager()
            return put_secret(client, secret_name(stack_name, endpoint, kind), value)

        return put

    moved: dict[str, Any] = {
        "endpoints": [move_spec_secrets(raw, put_for(str(raw["name"]))) for raw in desired["endpoints"]]
    }
    if desired.get("cognigy") is not None:  # no secret in it: kept as it is
        moved["cognigy"] = desired["cognigy"]
    return moved


def start_reconcile(
    desired_sets: DesiredSetStore,
    executions: Executions,
    *,
    source: str,
    prune: bool,
    desired: Mapping[str, Any] | None = None,
    version_id: str | None = None,
) -> ReconcileStart | None:
    """Start the reconcile of one desired-set version: ``desired`` given, it is stored first (a new
    version; it must hold no plain secret, see :func:`store_secrets`); else ``version_id``; else the
    latest version. None when no desired set is stored at all. The execution's name is
    :meth:`Executions.name_for` ``(source, version)``."""
    if desired is not None:
        version: str | None = desired_sets.put(dict(desired))
    else:
        version = version_id or desired_sets.latest_version()
    if version is None:
        return None
    execution_input = {
        "desiredRef": {"bucket": desired_sets.bucket, "key": desired_sets.KEY, "versionId": version},
        "prune": prune,
        "source": source,
    }
    arn, started = executions.start(execution_input, name=Executions.name_for(source, version))
    return ReconcileStart(execution_arn=arn, started=started, version_id=version)
