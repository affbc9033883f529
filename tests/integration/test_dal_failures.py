"""AWS failures through the data access layer: typed (StoreError on the register side,
DeliveryStoreError on the receiver's), with the AWS error code *and* AWS's message, never a value, and
never swallowed. AWS is moto (a table or a secret that does not exist) or a closed port on 127.0.0.1
(nothing answers: botocore's own connection error)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from cognigy_webhooks.dal.clients import LazyClients
from cognigy_webhooks.dal.deliveries import DeliveryLedger
from cognigy_webhooks.dal.desired_sets import DesiredSetStore
from cognigy_webhooks.dal.endpoints import EndpointDirectory
from cognigy_webhooks.dal.executions import Executions
from cognigy_webhooks.dal.records import Store
from cognigy_webhooks.dal.secretsmanager import SecretResolver, put_secret
from cognigy_webhooks.errors import DeliveryStoreError, SecretStoreError, StoreError
from cognigy_webhooks.models.records import AuditEvent, EndpointRecord
from cognigy_webhooks.ratelimit import DynamoRateLimiter
from cogwh.targets import closed_port

REGION = "us-east-1"
SECRET_VALUE = "never-in-a-message-" + "q" * 24
MISSING = "ResourceNotFoundException"
#: moto's text for a table that does not exist (AWS's own is "Requested resource not found")
NOT_FOUND_TEXT = "Requested resource not found"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Any]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield lambda service: boto3.client(service, region_name=REGION)


@pytest.fixture
def nowhere() -> Callable[[str], Any]:
    """Clients of a service nobody runs: every call is an EndpointConnectionError, at once."""
    url = f"http://127.0.0.1:{closed_port()}"
    config = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=2)

    def make(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=config,
        )

    return make


def _record_calls(store: Store) -> dict[str, Callable[[], object]]:
    record = EndpointRecord(name="x", version=1)
    event = AuditEvent(name="x", action="register", outcome="created")
    return {
        "read": lambda: store.read("x"),
        "claim": lambda: store.claim("x", token="t", expected_version=None, lease_seconds=60),
        "release": lambda: store.release("x", token="t", create_maybe_applied=False, drop_item=True),
        "release-marked": lambda: store.release("x", token="t", create_maybe_applied=True, drop_item=False),
        "commit": lambda: store.commit(name="x", record=record, audit=event, expected_version=None),
        "commit-audit-only": lambda: store.commit(name="x", record=None, audit=event, expected_version=None),
        "list": store.list_records,
        "audit": lambda: store.audit_for("x"),
    }


def test_a_table_failure_keeps_the_aws_code_and_message(aws: Callable[[str], Any]) -> None:
    store = Store(aws("dynamodb"), endpoints_table="no-such-endpoints", audit_table="no-such-audit")
    for what, call in _record_calls(store).items():
        with pytest.raises(StoreError) as caught:
            call()
        assert caught.value.code in (MISSING, "TransactionCanceledException"), what
        if caught.value.code == MISSING:
            assert f"failed: {MISSING}: {NOT_FOUND_TEXT}" in str(caught.value), what


def test_a_network_failure_is_a_store_error_with_its_text(nowhere: Callable[[str], Any]) -> None:
    store = Store(nowhere("dynamodb"), endpoints_table="endpoints", audit_table="audit")
    calls: dict[str, Callable[[], object]] = {
        **_record_calls(store),
        "desired-put": lambda: DesiredSetStore(nowhere("s3"), "bucket").put({"endpoints": []}),
        "desired-get": lambda: DesiredSetStore(nowhere("s3"), "bucket").get(),
        "desired-latest": lambda: DesiredSetStore(nowhere("s3"), "bucket").latest_version(),
        "start": lambda: Executions(
            nowhere("stepfunctions"), "arn:aws:states:us-east-1:1:stateMachine:m"
        ).start({}, name="n"),
        "limiter": lambda: asyncio.run(
            DynamoRateLimiter(
                nowhere("dynamodb"), table="t", bucket="b", rate_per_minute=60, burst=1
            ).acquire()
        ),
    }
    for what, call in calls.items():
        with pytest.raises(StoreError) as caught:
            call()
        assert caught.value.code == "EndpointConnectionError", what
        assert "failed: EndpointConnectionError: Could not connect to the endpoint URL" in str(
            caught.value
        ), what


def test_a_secret_that_cannot_be_read_names_the_aws_error(aws: Callable[[str], Any]) -> None:
    resolver = SecretResolver(client=aws("secretsmanager"))
    with pytest.raises(SecretStoreError) as caught:
        resolver.get("cognigy-webhooks/s/missing")
    assert caught.value.code == MISSING
    assert str(caught.value).startswith(f"reading secret 'cognigy-webhooks/s/missing' failed: {MISSING}: ")


def test_a_secret_that_cannot_be_stored_never_shows_its_value(nowhere: Callable[[str], Any]) -> None:
    with pytest.raises(SecretStoreError) as caught:
        put_secret(nowhere("secretsmanager"), "cognigy-webhooks/s/e/signature", SECRET_VALUE)
    assert caught.value.code == "EndpointConnectionError"
    assert SECRET_VALUE not in str(caught.value)
    assert SECRET_VALUE not in repr(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_a_stored_secret_is_updated_in_place(aws: Callable[[str], Any]) -> None:
    client = aws("secretsmanager")
    arn = put_secret(client, "cognigy-webhooks/s/e/signature", SECRET_VALUE)
    assert put_secret(client, "cognigy-webhooks/s/e/signature", SECRET_VALUE + "2") == arn
    assert client.get_secret_value(SecretId=arn)["SecretString"] == SECRET_VALUE + "2"


def test_the_receivers_failures_keep_the_aws_code_and_message(aws: Callable[[str], Any]) -> None:
    clients = LazyClients(aws)
    with pytest.raises(DeliveryStoreError) as looked_up:
        EndpointDirectory(clients, "no-such-endpoints").get("orders")
    assert looked_up.value.code == MISSING
    assert f"reading the endpoint record failed: {MISSING}: {NOT_FOUND_TEXT}" in str(looked_up.value)
    ledger = DeliveryLedger(clients, "no-such-deliveries")
    with pytest.raises(DeliveryStoreError) as claimed:
        ledger.claim("d1", {}, token="t", now=0.0, lease=1.0)
    assert f"storing the delivery failed: {MISSING}" in str(claimed.value)


def test_a_release_that_fails_is_raised_not_swallowed(aws: Callable[[str], Any]) -> None:
    # DynamoDB refuses the release: the caller hears of it (the receiver reports it; the claim's
    # lease then frees it) instead of nothing at all
    with pytest.raises(DeliveryStoreError) as caught:
        DeliveryLedger(LazyClients(aws), "no-such-deliveries").release("d1", token="t")
    assert caught.value.code == MISSING
    assert str(caught.value).startswith("releasing the delivery's claim failed: ResourceNotFoundException")
