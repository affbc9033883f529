"""The endpoint model's rules: defaults, every refusal naming its field, secrets kept secret."""

from __future__ import annotations

import json
import traceback
from typing import Any

import pytest

from cognigy_webhooks.errors import InvalidSpec
from cognigy_webhooks.models import (
    HttpMethod,
    PayloadFormat,
    RetryPolicy,
    WebhookEndpoint,
    parse_desired_set,
    parse_endpoint,
)
from cognigy_webhooks.secrets import REDACTED

SECRET = "Sup3r-s3cret-signing-key-0123456789-XYZ"  # 39 bytes
SHORT_SECRET = "short-but-distinct-secret-Q7"  # 28 bytes
AUTH_VALUE = "Bearer tok-9f8e7d6c5b4a"


def spec(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "orders-bot", "url": "https://hooks.example.com/cognigy"}
    base.update(overrides)
    return base


def full_spec() -> dict[str, Any]:
    return spec(
        fallbackUrls=["https://backup1.example.com/cognigy", "https://backup2.example.com:8443/cognigy?x=1"],
        method="PUT",
        headers={"X-Team": "ops", "Authorization": AUTH_VALUE},
        payloadFormat="XML",
        isActive=False,
        retryPolicy={"maxRetries": 7, "retryIntervalMs": 2500},
        timeoutMs=15000,
        signatureHeader="X-Cognigy-Signature",
        signatureSecret=SECRET,
    )


def errors_of(data: dict[str, Any]) -> list[dict[str, str]]:
    with pytest.raises(InvalidSpec) as caught:
        parse_endpoint(data)
    return caught.value.errors


def fields_of(data: dict[str, Any]) -> set[str]:
    return {error["field"] for error in errors_of(data)}


def everything_shown(exc: BaseException) -> str:
    return "\n".join(
        [str(exc), repr(exc), json.dumps(getattr(exc, "errors", None)), *traceback.format_exception(exc)]
    )


# --- valid specs ---------------------------------------------------------------------------------


def test_defaults_are_the_tutorials() -> None:
    endpoint = parse_endpoint(spec())

    assert endpoint.method is HttpMethod.POST
    assert endpoint.payload_format is PayloadFormat.JSON
    assert endpoint.is_active is True
    assert endpoint.retry_policy == RetryPolicy(max_retries=3, retry_interval_ms=5000)
    assert endpoint.timeout_ms == 10000
    assert endpoint.fallback_urls == []
    assert endpoint.headers == {}
    assert endpoint.signature_header is None
    assert endpoint.signature_secret is None


def test_round_trip_camel_case() -> None:
    endpoint = parse_endpoint(full_spec())

    again = parse_endpoint(
        json.loads(endpoint.model_dump_json(by_alias=True, exclude={"signature_secret"}))
        | {"signatureSecret": SECRET}
    )

    assert again == endpoint
    assert again.spec_hash() == endpoint.spec_hash()


def test_snake_case_is_accepted_and_means_the_same() -> None:
    camel = parse_endpoint(full_spec())
    snake = parse_endpoint(
        {
            "name": "orders-bot",
            "url": "https://hooks.example.com/cognigy",
            "fallback_urls": camel.fallback_urls,
            "method": "PUT",
            "headers": {"X-Team": "ops", "Authorization": AUTH_VALUE},
            "payload_format": "XML",
            "is_active": False,
            "retry_policy": {"max_retries": 7, "retry_interval_ms": 2500},
            "timeout_ms": 15000,
            "signature_header": "X-Cognigy-Signature",
            "signature_secret": SECRET,
        }
    )

    assert snake == camel
    assert snake.model_dump(by_alias=True)["timeoutMs"] == 15000


@pytest.mark.parametrize(
    "overrides",
    [
        {"name": "abc"},
        {"name": "a" * 100},
        {"name": "Orders Bot v2.1_final-x"},
        {"url": "https://hooks.example.com:8443/a/b?c=d"},
        {"url": "HTTPS://HOOKS.EXAMPLE.COM/x"},
        {"url": "https://[::1]:8443/x"},
        {"fallbackUrls": [f"https://b{i}.example.com/" for i in range(5)]},
        {"timeoutMs": 1000},
        {"timeoutMs": 30000},
        {"retryPolicy": {"maxRetries": 0, "retryIntervalMs": 1000}},
        {"retryPolicy": {"maxRetries": 10, "retryIntervalMs": 30000}},
        {"headers": {"X-A": "1", "x-b": "2", "Accept": "application/json"}},
        {"signatureHeader": "X-Sig", "signatureSecret": "k" * 32},
        {"signatureHeader": "X-Sig", "signatureSecret": "\u00e9" * 16},  # 16 characters, 32 bytes
        {"signatureHeader": "X-Sig", "signatureSecretArn": "arn:aws:secretsmanager:eu-west-1:1:secret:s"},
    ],
)
def test_valid_edges(overrides: dict[str, Any]) -> None:
    assert parse_endpoint(spec(**overrides)).name


# --- invalid specs: each error names its field ------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        # name: length and characters
        ({"name": "ab"}, "name"),
        ({"name": "a" * 101}, "name"),
        ({"name": "orders/bot"}, "name"),
        ({"name": " orders"}, "name"),
        ({"name": "orders "}, "name"),
        ({"name": "b\u00f8t-orders"}, "name"),
        ({"name": "orders\nbot"}, "name"),
        ({"name": 42}, "name"),
        # url: https, host, user-info, fragment, port
        ({"url": "http://hooks.example.com/x"}, "url"),
        ({"url": "ftp://hooks.example.com/x"}, "url"),
        ({"url": "hooks.example.com/x"}, "url"),
        ({"url": "https:///x"}, "url"),
        ({"url": "https://user:pw@hooks.example.com/x"}, "url"),
        ({"url": "https://user@hooks.example.com/x"}, "url"),
        ({"url": "https://hooks.example.com/x#frag"}, "url"),
        ({"url": "https://hooks.example.com/x#"}, "url"),
        ({"url": "https://hooks.example.com:99999/x"}, "url"),
        ({"url": "https://hooks.example.com:0/x"}, "url"),
        ({"url": "https://hooks.example.com:http/x"}, "url"),
        ({"url": "https://hooks.example.com/a b"}, "url"),
        ({"url": "https://hooks.example.com/" + "a" * 2048}, "url"),
        # fallbacks
        ({"fallbackUrls": [f"https://b{i}.example.com/" for i in range(6)]}, "fallbackUrls"),
        ({"fallbackUrls": ["https://b.example.com/", "https://b.example.com/"]}, "fallbackUrls.1"),
        ({"fallbackUrls": ["https://b.example.com/", "https://B.EXAMPLE.COM:443/"]}, "fallbackUrls.1"),
        ({"fallbackUrls": ["https://hooks.example.com/cognigy"]}, "fallbackUrls.0"),
        ({"fallbackUrls": ["https://b.example.com/", "http://c.example.com/"]}, "fallbackUrls.1"),
        # timeout and retry policy bounds
        ({"timeoutMs": 999}, "timeoutMs"),
        ({"timeoutMs": 30001}, "timeoutMs"),
        ({"timeoutMs": "soon"}, "timeoutMs"),
        ({"retryPolicy": {"maxRetries": -1}}, "retryPolicy.maxRetries"),
        ({"retryPolicy": {"maxRetries": 11}}, "retryPolicy.maxRetries"),
        ({"retryPolicy": {"retryIntervalMs": 999}}, "retryPolicy.retryIntervalMs"),
        ({"retryPolicy": {"retryIntervalMs": 30001}}, "retryPolicy.retryIntervalMs"),
        # headers
        ({"headers": {"Bad Header": "x"}}, "headers"),
        ({"headers": {"X:Y": "x"}}, "headers"),
        ({"headers": {"": "x"}}, "headers"),
        ({"headers": {"X-\u00e9": "x"}}, "headers"),
        ({"headers": {"X-A": "one\rtwo"}}, "headers"),
        ({"headers": {"X-A": "one\ntwo"}}, "headers"),
        ({"headers": {"X-A": "one\r\nX-Injected: yes"}}, "headers"),
        ({"headers": {"X-A": "nul\x00"}}, "headers"),
        ({"headers": {"Host": "evil.example"}}, "headers"),
        ({"headers": {"HOST": "evil.example"}}, "headers"),
        ({"headers": {"content-length": "0"}}, "headers"),
        ({"headers": {"Transfer-Encoding": "chunked"}}, "headers"),
        ({"headers": {"CONNECTION": "close"}}, "headers"),
        ({"headers": {"X-A": "1", "x-a": "2"}}, "headers"),
        ({"headers": {f"X-H{i}": "v" for i in range(51)}}, "headers"),
        # signature pair and secret length
        ({"signatureHeader": "X-Sig"}, "signatureSecret"),
        ({"signatureSecret": SECRET}, "signatureHeader"),
        ({"signatureSecretArn": "arn:aws:secretsmanager:eu-west-1:1:secret:s"}, "signatureHeader"),
        ({"signatureHeader": "X-Sig", "signatureSecret": SHORT_SECRET}, "signatureSecret"),
        ({"signatureHeader": "X-Sig", "signatureSecret": "k" * 31}, "signatureSecret"),
        ({"signatureHeader": "X-Sig", "signatureSecret": ""}, "signatureSecret"),
        ({"signatureHeader": "Bad Header", "signatureSecret": SECRET}, "signatureHeader"),
        ({"signatureHeader": "Content-Length", "signatureSecret": SECRET}, "signatureHeader"),
        (
            {"signatureHeader": "X-Sig", "signatureSecret": SECRET, "signatureSecretArn": "arn:x"},
            "signatureSecretArn",
        ),
        # the rest
        ({"method": "GET"}, "method"),
        ({"payloadFormat": "YAML"}, "payloadFormat"),
        ({"unknownField": 1}, "unknownField"),
    ],
)
def test_invalid_specs_name_the_field(overrides: dict[str, Any], field: str) -> None:
    errors = errors_of(spec(**overrides))

    assert field in {error["field"] for error in errors}, errors
    assert all(error["message"] for error in errors)


def test_several_problems_are_reported_together() -> None:
    fields = fields_of(spec(name="x", url="http://a.example", timeoutMs=5, headers={"Host": "h"}))

    assert fields == {"name", "url", "timeoutMs", "headers"}


def test_an_error_message_explains() -> None:
    (error,) = errors_of(spec(signatureHeader="X-Sig", signatureSecret=SHORT_SECRET))

    assert error == {"field": "signatureSecret", "message": "must be at least 32 bytes"}


def test_errors_inside_a_set_name_the_endpoint_and_the_field() -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_desired_set({"endpoints": [spec(), spec(name="second", signatureHeader="X-Sig", timeoutMs=5)]})

    assert {e["field"] for e in caught.value.errors} == {"endpoints.1.timeoutMs"}
    with pytest.raises(InvalidSpec) as caught:
        parse_desired_set({"endpoints": [spec(), spec(name="second", signatureHeader="X-Sig")]})

    assert caught.value.errors[0]["field"] == "endpoints.1.signatureSecret"


def test_a_spec_that_is_not_a_mapping_is_refused() -> None:
    for data in (None, "orders-bot", ["orders-bot"], 3):
        with pytest.raises(InvalidSpec):
            parse_endpoint(data)


# --- secrets never show ----------------------------------------------------------------------------


def test_the_secret_never_shows_in_repr_str_json_or_public_view() -> None:
    endpoint = parse_endpoint(full_spec())

    shown = [
        repr(endpoint),
        str(endpoint),
        endpoint.model_dump_json(),
        endpoint.model_dump_json(by_alias=True),
        json.dumps(endpoint.public_view()),
        repr(endpoint.signature_secret),
        str(endpoint.model_dump()),
        endpoint.spec_hash(),
    ]
    for text in shown:
        assert SECRET not in text
    assert endpoint.signature_secret is not None
    assert endpoint.signature_secret.get_secret_value() == SECRET  # kept, just never shown


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"signatureHeader": "X-Sig", "signatureSecret": SHORT_SECRET}, id="secret-too-short"),
        pytest.param({"signatureSecret": SECRET}, id="secret-without-header"),
        pytest.param({"signatureHeader": "X-Sig", "signatureSecret": [SECRET]}, id="secret-wrong-type"),
        pytest.param(
            {"signatureHeader": "X-Sig", "signatureSecret": {"value": SECRET}}, id="secret-in-a-dict"
        ),
        pytest.param(
            {"signatureHeader": "X-Sig", "signatureSecret": SECRET, "timeoutMs": 1}, id="other-field"
        ),
        pytest.param(
            {"signatureHeader": "X-Sig", "signatureSecret": SECRET, "signatureSecretArn": "arn:x"},
            id="secret-and-arn",
        ),
        pytest.param({"headers": {"Authorization": AUTH_VALUE, "Host": "x"}}, id="header-value"),
    ],
)
def test_the_secret_never_shows_in_an_invalid_spec_error(overrides: dict[str, Any]) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_endpoint(spec(**overrides))

    text = everything_shown(caught.value)
    assert SECRET not in text
    assert SHORT_SECRET not in text
    assert AUTH_VALUE not in text


def test_sensitive_headers_are_redacted_in_public_view_and_repr() -> None:
    endpoint = parse_endpoint(
        spec(
            headers={
                "Authorization": AUTH_VALUE,
                "X-Api-Key": "key-123456",
                "X-Auth-Token": "tok-abcdef",
                "Cookie": "session=s3cr3t",
                "X-Team": "ops",
            },
            publicHeaders=["X-Team"],
        )
    )

    view = endpoint.public_view()

    assert view["headers"] == {
        "Authorization": REDACTED,
        "X-Api-Key": REDACTED,
        "X-Auth-Token": REDACTED,
        "Cookie": REDACTED,
        "X-Team": "ops",
    }
    for value in (AUTH_VALUE, "key-123456", "tok-abcdef", "s3cr3t"):
        assert value not in json.dumps(view)
        assert value not in repr(endpoint)
    assert "ops" in repr(endpoint)


def test_public_view_keeps_the_secret_arn_and_basic_auth_username_only() -> None:
    endpoint = parse_endpoint(
        spec(
            signatureHeader="X-Sig",
            signatureSecretArn="arn:aws:secretsmanager:eu-west-1:1:secret:sig",
            basicAuth={"username": "cognigy", "password": SECRET},
        )
    )

    view = endpoint.public_view()

    assert view["signatureSecretArn"] == "arn:aws:secretsmanager:eu-west-1:1:secret:sig"
    assert view["basicAuth"] == {"username": "cognigy", "passwordArn": None}
    assert "signatureSecret" not in view
    assert SECRET not in json.dumps(view)
    assert SECRET not in repr(endpoint)


# --- the API payload ---------------------------------------------------------------------------------


def test_api_payload_has_the_tutorials_shape_and_the_fallbacks() -> None:
    payload = parse_endpoint(full_spec()).to_api_payload()

    assert payload == {
        "name": "orders-bot",
        "url": "https://hooks.example.com/cognigy",
        "fallbackUrls": [
            "https://backup1.example.com/cognigy",
            "https://backup2.example.com:8443/cognigy?x=1",
        ],
        "method": "PUT",
        "headers": {"X-Team": "ops", "Authorization": AUTH_VALUE},
        "payloadFormat": "XML",
        "isActive": False,
        "retryPolicy": {"maxRetries": 7, "retryIntervalMs": 2500},
        "timeout": 15000,
        "signatureHeader": "X-Cognigy-Signature",
        "signatureSecret": SECRET,
    }


def test_api_payload_has_signature_fields_only_when_both_are_known() -> None:
    plain = parse_endpoint(spec()).to_api_payload()
    by_arn = parse_endpoint(spec(signatureHeader="X-Sig", signatureSecretArn="arn:x"))

    assert "signatureHeader" not in plain
    assert "signatureSecret" not in plain
    assert plain["fallbackUrls"] == []
    assert "signatureHeader" not in by_arn.to_api_payload()
    assert "signatureSecret" not in by_arn.to_api_payload()
    resolved = by_arn.to_api_payload(signature_secret=SECRET)
    assert resolved["signatureHeader"] == "X-Sig"
    assert resolved["signatureSecret"] == SECRET


# --- spec_hash -------------------------------------------------------------------------------------


def test_spec_hash_ignores_key_order_and_header_name_case() -> None:
    a = parse_endpoint(full_spec())
    reordered = dict(reversed(list(full_spec().items())))
    reordered["headers"] = {"authorization": AUTH_VALUE, "x-TEAM": "ops"}
    reordered["retryPolicy"] = {"retryIntervalMs": 2500, "maxRetries": 7}
    b = parse_endpoint(reordered)

    assert a.spec_hash() == b.spec_hash()
    assert len(a.spec_hash()) == 64


@pytest.mark.parametrize(
    "change",
    [
        {"name": "orders-bot-2"},
        {"url": "https://hooks.example.com/cognigy2"},
        {"fallbackUrls": ["https://backup1.example.com/cognigy"]},
        {
            "fallbackUrls": [
                "https://backup2.example.com:8443/cognigy?x=1",
                "https://backup1.example.com/cognigy",
            ]
        },
        {"method": "POST"},
        {"headers": {"X-Team": "dev", "Authorization": AUTH_VALUE}},
        {"headers": {"X-Team": "ops", "Authorization": AUTH_VALUE + "x"}},
        {"headers": {"X-Team": "ops"}},
        {"payloadFormat": "JSON"},
        {"isActive": True},
        {"retryPolicy": {"maxRetries": 6, "retryIntervalMs": 2500}},
        {"retryPolicy": {"maxRetries": 7, "retryIntervalMs": 2600}},
        {"timeoutMs": 15001},
        {"signatureHeader": "X-Other-Signature"},
        {"signatureSecret": SECRET + "!"},
        {"signatureHeader": None, "signatureSecret": None},
    ],
)
def test_spec_hash_changes_with_every_relevant_value(change: dict[str, Any]) -> None:
    base = parse_endpoint(full_spec())
    changed = parse_endpoint(full_spec() | change)

    assert changed.spec_hash() != base.spec_hash()


def test_spec_hash_is_the_same_for_equal_specs_built_separately() -> None:
    hashes = {WebhookEndpoint.model_validate(full_spec()).spec_hash() for _ in range(3)}

    assert len(hashes) == 1


# Credential headers whose names no pattern would recognise: every header value is a secret unless the
# spec declares it public.
UNPATTERNED = {
    "X-Functions-Key": "fk-0a1b2c3d4e5f",
    "Ocp-Apim-Subscription-Key": "apim-9z8y7x6w",
    "X-Auth-Key": "ak-55aa66bb",
    "Api_Key": "under-score-key-1",
    "X-Access-Key": "acc-77cc88dd",
    "X-Client-Credential": "cred-q1w2e3r4",
    "X-Team": "commerce-team",
}


def test_every_header_value_is_secret_unless_declared_public() -> None:
    endpoint = parse_endpoint(spec(headers=UNPATTERNED))

    view = endpoint.public_view()

    assert view["headers"] == dict.fromkeys(UNPATTERNED, REDACTED)
    for value in UNPATTERNED.values():
        assert value not in json.dumps(view)
        assert value not in repr(endpoint)
        assert value not in str(endpoint)
    assert not any(endpoint.is_public_header(name) for name in UNPATTERNED)


def test_public_headers_are_shown_and_name_case_does_not_matter() -> None:
    endpoint = parse_endpoint(spec(headers=UNPATTERNED, publicHeaders=["x-team"]))

    assert endpoint.public_view()["headers"]["X-Team"] == "commerce-team"
    assert "commerce-team" in repr(endpoint)
    assert endpoint.is_public_header("X-TEAM")
    assert endpoint.public_view()["headers"]["X-Functions-Key"] == REDACTED


def test_a_secret_reference_is_shown_it_names_and_does_not_reveal() -> None:
    reference = "{{resolve:secretsmanager:arn:aws:secretsmanager:eu-west-1:1:secret:fk}}"
    endpoint = parse_endpoint(spec(headers={"X-Functions-Key": reference}))

    assert endpoint.public_view()["headers"] == {"X-Functions-Key": reference}


@pytest.mark.parametrize(
    ("public", "field"),
    [(["X-Missing"], "publicHeaders.0"), (["X-Team", "x-team"], "publicHeaders.1")],
)
def test_public_headers_must_name_the_endpoints_headers_once(public: list[str], field: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        parse_endpoint(spec(headers={"X-Team": "ops"}, publicHeaders=public))

    assert field in [e["field"] for e in caught.value.errors]


def test_a_desired_set_of_10000_endpoints_is_accepted_and_one_more_refused_naming_the_field() -> None:
    from cognigy_webhooks.models import parse_desired_set
    from cognigy_webhooks.models.spec import MAX_ENDPOINTS

    endpoints = [
        {"name": f"hook-{i:05d}", "url": f"https://hooks.example.com/{i}"} for i in range(MAX_ENDPOINTS)
    ]
    assert MAX_ENDPOINTS == 10_000
    assert len(parse_desired_set({"endpoints": endpoints}).endpoints) == 10_000
    with pytest.raises(InvalidSpec) as refused:
        parse_desired_set(
            {"endpoints": [*endpoints, {"name": "one-more", "url": "https://hooks.example.com/x"}]}
        )
    assert any(e["field"] == "endpoints" for e in refused.value.errors)
