"""cognigy_webhooks.errors: every class has its own reason code, bad input has one base, and AWS
failures are described with their code and message, never a value. No AWS here (botocore's own
exception classes, as a failed call raises them)."""

from __future__ import annotations

import inspect
import re

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ParamValidationError

from cognigy_webhooks import errors
from cognigy_webhooks.errors import (
    CognigyWebhooksError,
    DeliveryStoreError,
    InvalidInput,
    InvalidProbeRequest,
    InvalidSpec,
    InvalidStreamRecord,
    SecretStoreError,
    StoreError,
    aws_error_code,
    describe_aws_error,
    reason_for_error_name,
)

CLASSES = [
    value
    for value in vars(errors).values()
    if inspect.isclass(value)
    and issubclass(value, CognigyWebhooksError)
    and value.__module__ == errors.__name__
]

#: What the reconcile step derived from each class before the reason moved onto the class (its
#: ``_reason``: four names mapped, the rest snake-cased): the attribute must say the same.
REASONS_BEFORE = {
    "CognigyAuthError": "cognigy_auth",
    "CognigyForbidden": "cognigy_forbidden",
    "CognigyNotFound": "cognigy_not_found",
    "CognigyRejected": "cognigy_rejected",
    "CognigyUnavailable": "cognigy_unavailable",
    "CognigyThrottled": "cognigy_throttled",
    "CognigyError": "cognigy_error",
    "InvalidSpec": "invalid_spec",
    "InvalidSettings": "invalid_settings",
    "EndpointClaimed": "endpoint_claimed",
    "StoreError": "store_error",
    "RecordConflict": "record_conflict",
    "SecretStoreError": "secret_store_error",
    "DeliveryStoreError": "delivery_store_error",
    "SecretUnavailable": "secret_unavailable",
}


def test_every_class_defines_its_own_reason_code() -> None:
    assert len(CLASSES) >= 20
    for cls in CLASSES:
        assert "reason" in vars(cls), f"{cls.__name__} inherits its reason"
        assert re.fullmatch(r"[a-z][a-z_]*[a-z]", cls.reason), cls.__name__
    assert len({cls.reason for cls in CLASSES}) == len(CLASSES)  # no two classes share one


def test_the_reasons_are_the_ones_derived_before() -> None:
    by_name = {cls.__name__: cls for cls in CLASSES}
    for name, reason in REASONS_BEFORE.items():
        assert by_name[name].reason == reason, name


def test_an_error_name_from_the_state_machine_maps_to_its_reason() -> None:
    assert reason_for_error_name("CognigyAuthError") == "cognigy_auth"
    assert reason_for_error_name("StoreError") == "store_error"
    assert reason_for_error_name("States.Timeout") == "states_timeout"
    assert reason_for_error_name("Lambda.ServiceException") == "lambda_service_exception"
    assert reason_for_error_name("aws_error_code") == "aws_error_code"  # a function is no class


def test_precise_bad_input_is_still_caught_as_a_bad_spec() -> None:
    for cls in (InvalidStreamRecord, InvalidProbeRequest):
        with pytest.raises(InvalidSpec) as caught:
            raise cls([{"field": "Records[0].dynamodb", "message": "is required"}])
        assert isinstance(caught.value, InvalidInput | ValueError)
        assert caught.value.errors == [{"field": "Records[0].dynamodb", "message": "is required"}]
    assert not issubclass(InvalidSpec, InvalidStreamRecord)


# --- AWS failures -----------------------------------------------------------------------------------


def _client_error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "PutItem")


def test_a_client_error_keeps_its_code_and_message() -> None:
    exc = _client_error(
        "ProvisionedThroughputExceededException", "Rate of requests exceeds the allowed\nthroughput."
    )
    assert aws_error_code(exc) == "ProvisionedThroughputExceededException"
    assert describe_aws_error(exc) == (
        "ProvisionedThroughputExceededException: Rate of requests exceeds the allowed throughput."
    )
    error = StoreError.from_aws("reading the record of 'orders'", exc)
    assert str(error) == (
        "reading the record of 'orders' failed: ProvisionedThroughputExceededException: "
        "Rate of requests exceeds the allowed throughput."
    )
    assert error.code == "ProvisionedThroughputExceededException"
    assert DeliveryStoreError.from_aws("storing the delivery", exc).code == error.code


def test_a_network_failure_keeps_its_type_and_text() -> None:
    exc = EndpointConnectionError(endpoint_url="https://dynamodb.invalid/")
    assert aws_error_code(exc) == "EndpointConnectionError"
    assert describe_aws_error(exc) == (
        'EndpointConnectionError: Could not connect to the endpoint URL: "https://dynamodb.invalid/"'
    )


def test_a_parameter_echoed_by_botocore_is_never_shown() -> None:
    client = boto3.client(
        "secretsmanager", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    marker = 918273645546372819
    with pytest.raises(ParamValidationError) as caught:
        client.get_secret_value(SecretId=marker)  # validated before any request is sent
    text = describe_aws_error(caught.value)
    assert text.startswith(
        "ParamValidationError: Parameter validation failed: Invalid type for parameter SecretId"
    )
    assert str(marker) not in text
    assert str(marker) not in str(SecretStoreError.from_aws("reading secret 'x'", caught.value))


def test_a_secret_in_the_message_is_scrubbed_in_every_form() -> None:
    secret = "s3cr3t-value-that-must-not-leak"
    exc = _client_error(
        "ValidationException",
        f"bad SecretString {secret!r} (b64 czNjcjN0LXZhbHVlLXRoYXQtbXVzdC1ub3QtbGVhaw==)",
    )
    text = describe_aws_error(exc, secrets=[secret])
    assert secret not in text
    assert "czNjcjN0LXZhbHVlLXRoYXQtbXVzdC1ub3QtbGVhaw" not in text
    assert text.startswith("ValidationException: bad SecretString")


def test_a_wrapped_failure_is_described_by_the_aws_error_behind_it() -> None:
    def wrap() -> None:  # as Powertools' GetParameterError wraps a failed GetSecretValue
        try:
            raise _client_error("AccessDeniedException", "User is not authorized to perform GetSecretValue")
        except ClientError as inner:
            raise RuntimeError(str(inner))  # noqa: B904 - the implicit context is what is read

    with pytest.raises(RuntimeError) as caught:
        wrap()
    assert aws_error_code(caught.value) == "AccessDeniedException"
    assert describe_aws_error(caught.value).startswith("AccessDeniedException: User is not authorized")


def test_a_long_message_is_bounded() -> None:
    text = describe_aws_error(_client_error("X", "word " * 500))
    assert len(text) <= len("X: ") + 300
    assert text.endswith("...")
