"""The receiver's secret versions (current + previous) on moto's Secrets Manager: a previous version
that cannot be read is no longer skipped in silence. It is logged (a warning naming the secret's ARN
and the AWS error code, never a value; at most once a minute per secret) and the current version
alone is used, so a rotation's 401s come with their explanation. A secret never rotated has no
previous version: nothing to say."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from cognigy_webhooks.dal.clients import LazyClients
from cognigy_webhooks.dal.secretsmanager import PREVIOUS, SecretVersions

OLD = "old-signing-secret-" + "o" * 24
NEW = "new-signing-secret-" + "n" * 24


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class PreviousRefused:
    """moto's Secrets Manager, except that AWS refuses the AWSPREVIOUS stage (a key policy, a KMS key
    the function may no longer use: what a half-done rotation can look like)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.refused = 0

    def get_secret_value(self, **kwargs: Any) -> Any:
        if kwargs.get("VersionStage") == PREVIOUS:
            self.refused += 1
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "not authorized to use the key"}},
                "GetSecretValue",
            )
        return self.inner.get_secret_value(**kwargs)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(f"{r.getMessage()} {vars(r)}" for r in self.records)


@pytest.fixture
def secret() -> Iterator[tuple[Any, str]]:
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        arn = client.create_secret(Name="cognigy-webhooks/s/orders/signature", SecretString=OLD)["ARN"]
        yield client, arn


@pytest.fixture
def log() -> Iterator[tuple[logging.Logger, Records]]:
    logger = logging.getLogger("test-secret-versions")
    handler = Records()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield logger, handler
    finally:
        logger.removeHandler(handler)


def test_a_previous_version_that_cannot_be_read_is_logged_not_skipped(
    secret: tuple[Any, str], log: tuple[logging.Logger, Records]
) -> None:
    # Given a rotated secret whose previous version AWS refuses to give
    client, arn = secret
    client.put_secret_value(SecretId=arn, SecretString=NEW)
    refusing = PreviousRefused(client)
    logger, records = log
    clock = Clock()
    versions = SecretVersions(LazyClients(lambda _: refusing), log=logger, clock=clock, refresh_seconds=0)
    # When the receiver reads it
    values = versions.get(arn)
    # Then the current version alone is used, and a warning says why the previous one is not
    assert values == (NEW,)
    [warning] = records.records
    assert warning.levelno == logging.WARNING
    assert "previous version" in warning.getMessage()
    assert warning.secretArn == arn  # type: ignore[attr-defined]
    assert warning.error == "AccessDeniedException"  # type: ignore[attr-defined]
    assert OLD not in records.text()
    assert NEW not in records.text()
    # a flood of refreshes (forgeries) does not become a flood of warnings: once a minute per secret
    for _ in range(5):
        assert versions.refresh(arn) == (NEW,)
    assert len(records.records) == 1
    assert refusing.refused == 6
    clock.now += 61
    assert versions.refresh(arn) == (NEW,)
    assert len(records.records) == 2
    assert records.records[1].notLoggedSince == 5  # type: ignore[attr-defined]


def test_a_secret_never_rotated_has_no_previous_version_and_no_warning(
    secret: tuple[Any, str], log: tuple[logging.Logger, Records]
) -> None:
    client, arn = secret
    logger, records = log
    versions = SecretVersions(LazyClients(lambda _: client), log=logger)
    assert versions.get(arn) == (OLD,)
    assert records.records == []
    client.put_secret_value(SecretId=arn, SecretString=NEW)
    assert versions.refresh(arn) == (NEW, OLD)
    assert records.records == []


def test_the_receiver_wires_its_logger_into_its_secret_versions() -> None:
    from cognigy_webhooks.receiving import Receiver
    from cognigy_webhooks.settings_receive import ReceiveSettings

    settings = ReceiveSettings.from_env(
        {
            "ENDPOINTS_TABLE": "eps-table",
            "AUDIT_TABLE": "audit-table",
            "DELIVERIES_TABLE": "deliveries-table",
            "DELIVERY_BUS_NAME": "bus-name",
        }
    )
    logger = logging.getLogger("test-receiver-wiring")
    receiver = Receiver.from_settings(settings, clients=LazyClients(lambda _: None), log=logger)
    assert receiver.secrets.log is logger


def test_a_delivery_reads_both_versions_in_one_lookup_and_max_age_still_bounds_them(
    secret: tuple[Any, str],
) -> None:
    # Given a rotated secret read once (both versions fetched), and the provider's reads counted
    client, arn = secret
    client.put_secret_value(SecretId=arn, SecretString=NEW)
    clock = Clock()
    versions = SecretVersions(LazyClients(lambda _: client), max_age=300, clock=clock, refresh_seconds=0)
    assert versions.get(arn) == (NEW, OLD)
    provider = versions._provider
    looked_up: list[str] = []
    real_get = provider.get

    def counted(name: str, **kwargs: Any) -> Any:
        looked_up.append(name)
        return real_get(name, **kwargs)

    provider.get = counted
    # When deliveries come within max_age: the pair is answered at once, without a cache lookup each
    for _ in range(5):
        assert versions.get(arn) == (NEW, OLD)
    assert looked_up == []
    assert versions.fetches == 2
    # and a rotation is seen after max_age, or at once by a refresh (a mismatch), both versions anew
    newest = "newest-signing-secret-" + "z" * 24
    client.put_secret_value(SecretId=arn, SecretString=newest)
    assert versions.get(arn) == (NEW, OLD)  # still within max_age
    clock.now += 301
    assert versions.get(arn) == (newest, NEW)
    assert versions.fetches == 4
    assert versions.refresh(arn) == (newest, NEW)
    assert versions.fetches == 6
    assert len(looked_up) == 4
