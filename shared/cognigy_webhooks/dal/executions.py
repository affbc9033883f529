"""Step Functions, its only caller for reconcile executions: started, described, stopped.

An execution is named after what it reconciles (:meth:`Executions.name_for`: its source and a digest
of the desired-set version), so a repeated trigger (a redeploy, the same apply twice) runs it once:
starting a name that already exists is not an error, it answers that execution (``started`` False).
Failures are :class:`~cognigy_webhooks.errors.StoreError` with the AWS error code and AWS's message.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cognigy_webhooks.errors import StoreError, aws_error_code

__all__ = ["ExecutionStatus", "Executions"]


@dataclass(frozen=True)
class ExecutionStatus:
    """What Step Functions says of an execution: ``status`` (RUNNING, SUCCEEDED, FAILED, TIMED_OUT,
    ABORTED), its output (JSON text) once it succeeded, its error and cause once it failed."""

    execution_arn: str
    status: str
    output: str | None = None
    error: str | None = None
    cause: str | None = None


class Executions:
    """Starts reconcile executions with deterministic names, so a repeated trigger runs once."""

    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self._sfn = client
        self.state_machine_arn = state_machine_arn

    @staticmethod
    def name_for(source: str, desired_version: str) -> str:
        """The execution's name for one desired-set version from one source (at most 80 characters)."""
        digest = hashlib.sha256(desired_version.encode("utf-8")).hexdigest()[:32]
        return f"{source}-{digest}"[:80]

    def arn_for(self, name: str) -> str:
        """The ARN of this state machine's execution called ``name``."""
        return self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"

    def start(self, execution_input: dict[str, Any], *, name: str) -> tuple[str, bool]:
        """Returns (execution ARN, started). ``started`` is False when an execution of that name already
        exists and has ended (while it still runs, Step Functions answers a same-input start with it)."""
        try:
            resp = self._sfn.start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(execution_input)
            )
            return str(resp["executionArn"]), True
        except ClientError as exc:
            if aws_error_code(exc) == "ExecutionAlreadyExists":
                return self.arn_for(name), False
            raise StoreError.from_aws(f"starting execution {name!r}", exc) from exc
        except BotoCoreError as exc:
            raise StoreError.from_aws(f"starting execution {name!r}", exc) from exc

    def describe(self, execution_arn: str) -> ExecutionStatus:
        """Where an execution stands."""
        try:
            resp = self._sfn.describe_execution(executionArn=execution_arn)
        except (ClientError, BotoCoreError) as exc:
            raise StoreError.from_aws(f"describing execution {execution_arn}", exc) from exc
        return ExecutionStatus(
            execution_arn=execution_arn,
            status=str(resp["status"]),
            output=resp.get("output"),
            error=resp.get("error"),
            cause=resp.get("cause"),
        )

    def stop(self, execution_arn: str, *, cause: str) -> bool:
        """Stop a running execution (``cause`` is recorded with it: never a secret). False when it had
        already ended."""
        try:
            desc = self._sfn.describe_execution(executionArn=execution_arn)
            if desc.get("status") != "RUNNING":
                return False
            self._sfn.stop_execution(executionArn=execution_arn, error="Stopped", cause=cause)
        except (ClientError, BotoCoreError) as exc:
            raise StoreError.from_aws(f"stopping execution {execution_arn}", exc) from exc
        return True
