"""The one start of a reconcile (cognigy_webhooks.ops.start_reconcile), which the CLI's apply and the
deploy trigger both call, and the secrets a desired set carries, stored before it (store_secrets). On
moto: a versioned config bucket and a state machine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cognigy_webhooks.dal.desired_sets import DesiredSetStore
from cognigy_webhooks.dal.executions import Executions
from cognigy_webhooks.ops import start_reconcile, store_secrets

REGION = "us-east-1"
DEFINITION = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[DesiredSetStore, Executions, Any]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="desired-config")
        s3.put_bucket_versioning(Bucket="desired-config", VersioningConfiguration={"Status": "Enabled"})
        sfn = boto3.client("stepfunctions", region_name=REGION)
        arn = sfn.create_state_machine(
            name="reconcile",
            definition=json.dumps(DEFINITION),
            roleArn="arn:aws:iam::123456789012:role/reconcile",
        )["stateMachineArn"]
        yield DesiredSetStore(s3, "desired-config"), Executions(sfn, arn), sfn


def _input(sfn: Any, arn: str) -> dict[str, Any]:
    return dict(json.loads(sfn.describe_execution(executionArn=arn)["input"]))


def test_nothing_stored_is_nothing_started(aws: tuple[DesiredSetStore, Executions, Any]) -> None:
    desired, executions, _ = aws
    assert start_reconcile(desired, executions, source="deploy", prune=False) is None


def test_a_given_set_is_stored_as_a_new_version_and_reconciled(
    aws: tuple[DesiredSetStore, Executions, Any],
) -> None:
    desired, executions, sfn = aws
    doc = {"endpoints": [{"name": "orders", "url": "https://o.example.com/h"}]}
    started = start_reconcile(desired, executions, source="cli", prune=True, desired=doc)
    assert started is not None
    assert started.started
    assert desired.get(version_id=started.version_id) == (doc, started.version_id)
    assert started.execution_arn.endswith(":" + Executions.name_for("cli", started.version_id))
    assert _input(sfn, started.execution_arn) == {
        "desiredRef": {
            "bucket": "desired-config",
            "key": DesiredSetStore.KEY,
            "versionId": started.version_id,
        },
        "prune": True,
        "source": "cli",
    }


def test_one_version_from_one_source_is_started_once(aws: tuple[DesiredSetStore, Executions, Any]) -> None:
    desired, executions, sfn = aws
    version = desired.put({"endpoints": []})
    first = start_reconcile(desired, executions, source="deploy", prune=False)  # the latest
    assert first is not None
    assert first.started
    assert first.version_id == version
    sfn.stop_execution(executionArn=first.execution_arn)  # it ended
    again = start_reconcile(desired, executions, source="deploy", prune=False, version_id=version)
    assert again is not None
    assert (again.execution_arn, again.started) == (first.execution_arn, False)  # not an error
    other = start_reconcile(desired, executions, source="cli", prune=False, version_id=version)
    assert other is not None
    assert other.started
    assert other.execution_arn != first.execution_arn


def test_an_execution_is_described_and_stopped(aws: tuple[DesiredSetStore, Executions, Any]) -> None:
    desired, executions, _ = aws
    started = start_reconcile(desired, executions, source="cli", prune=False, desired={"endpoints": []})
    assert started is not None
    assert executions.describe(started.execution_arn).status == "RUNNING"
    assert executions.stop(started.execution_arn, cause="replaced by a newer apply") is True
    assert executions.describe(started.execution_arn).status == "ABORTED"
    assert executions.stop(started.execution_arn, cause="again") is False


def test_secrets_are_stored_under_the_stacks_prefix_before_the_set(
    aws: tuple[DesiredSetStore, Executions, Any],
) -> None:
    made: list[str] = []

    def client() -> Any:
        made.append("secretsmanager")
        return boto3.client("secretsmanager", region_name=REGION)

    plain = {"endpoints": [{"name": "orders", "url": "https://o.example.com/h", "headers": {"X-Team": "t"}}]}
    assert store_secrets(client, stack_name="s", desired={"endpoints": [{"name": "a", "url": "u"}]}) == {
        "endpoints": [{"name": "a", "url": "u"}]
    }
    assert made == []  # no secret: no client
    safe = store_secrets(
        client,
        stack_name="s",
        desired={"endpoints": [{**plain["endpoints"][0], "signatureSecret": "x" * 40}]},
    )
    [endpoint] = safe["endpoints"]
    assert "signatureSecret" not in endpoint
    assert ":secret:cognigy-webhooks/s/orders/signature" in endpoint["signatureSecretArn"]
    assert endpoint["headers"]["X-Team"].startswith("{{resolve:secretsmanager:arn:")
    assert made == ["secretsmanager"]
