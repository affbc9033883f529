"""The receiver's pure parts: the API Gateway event, sizes, media types, XML, conversations, Basic
credentials, replies, settings, record reading and the bounded rejection reporter. No AWS here."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cognigy_webhooks.dal.deliveries import delivery_id_for
from cognigy_webhooks.dal.endpoints import endpoint_auth_from_item
from cognigy_webhooks.dal.schema import to_item
from cognigy_webhooks.errors import InvalidSpec
from cognigy_webhooks.models import WebhookEndpoint
from cognigy_webhooks.models.records import EndpointRecord
from cognigy_webhooks.receiving import (
    DeliveryRequest,
    RejectionReporter,
    Reply,
    XmlRefused,
    basic_credentials,
    conversation_of,
    media_type_matches,
    parse_api_event,
    parse_xml,
)
from cognigy_webhooks.settings_receive import ReceiveSettings

CAP = 1024
ENV = {
    "ENDPOINTS_TABLE": "eps-table",
    "AUDIT_TABLE": "audit-table",
    "DELIVERIES_TABLE": "deliveries-table",
    "DELIVERY_BUS_NAME": "bus-name",
}


def event(body: str | None = "{}", **extra: object) -> dict[str, object]:
    return {"pathParameters": {"name": "orders"}, "body": body, "isBase64Encoded": False, **extra}


# --- the event ----------------------------------------------------------------------------------


def test_a_base64_body_is_decoded_to_the_exact_bytes() -> None:
    raw = b"\x00\xff<x>\xe9</x>"
    request = parse_api_event(event(base64.b64encode(raw).decode(), isBase64Encoded=True), max_body_bytes=CAP)
    assert isinstance(request, DeliveryRequest)
    assert request.body == raw
    assert request.name == "orders"


def test_a_text_body_is_taken_as_utf8() -> None:
    request = parse_api_event(event("Grüße"), max_body_bytes=CAP)
    assert isinstance(request, DeliveryRequest)
    assert request.body == "Grüße".encode()


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("not an event", "not_an_event"),
        (None, "not_an_event"),
        ({**event(), "body": b"bytes"}, "bad_body"),
        (event(body="@@@not base64", isBase64Encoded=True), "bad_base64"),
        (event(body="ü", isBase64Encoded=True), "bad_base64"),
        (event(body="\ud800"), "bad_body"),
        (event(headers={"Content-Type": "application/json; x=\ud83d"}), "bad_header"),
        (event(multiValueHeaders={"X-\udc00": ["v"]}), "bad_header"),
    ],
)
def test_what_is_not_a_delivery_is_a_400(bad: object, reason: str) -> None:
    reply = parse_api_event(bad, max_body_bytes=CAP)
    assert isinstance(reply, Reply)
    assert (reply.status, reply.reason) == (400, reason)


def test_size_is_checked_before_decoding_and_after() -> None:
    at_cap = "x" * CAP
    assert isinstance(parse_api_event(event(at_cap), max_body_bytes=CAP), DeliveryRequest)
    over = parse_api_event(event("x" * (CAP + 1)), max_body_bytes=CAP)
    assert isinstance(over, Reply)
    assert over.status == 413
    # multi-byte characters: fewer characters than the cap, more bytes
    wide = parse_api_event(event("é" * (CAP // 2 + 1)), max_body_bytes=CAP)
    assert isinstance(wide, Reply)
    assert wide.status == 413
    # base64 far too long is refused without decoding (it is not even valid base64)
    huge = parse_api_event(event("!" * (4 * CAP), isBase64Encoded=True), max_body_bytes=CAP)
    assert isinstance(huge, Reply)
    assert huge.status == 413
    # base64 of one byte too many
    one_over = base64.b64encode(b"a" * (CAP + 1)).decode()
    reply = parse_api_event(event(one_over, isBase64Encoded=True), max_body_bytes=CAP)
    assert isinstance(reply, Reply)
    assert reply.status == 413
    assert json.loads(reply.to_api_gateway()["body"]) == {"message": "Payload too large", "limitBytes": CAP}


def test_headers_are_merged_case_insensitively_with_every_value_kept() -> None:
    request = parse_api_event(
        event(
            headers={"X-Sig": "b", "Content-Type": "application/json", "Only-Single": "s"},
            multiValueHeaders={"X-Sig": ["a", "b"], "x-sig": ["c"], "Content-Type": ["application/json"]},
        ),
        max_body_bytes=CAP,
    )
    assert isinstance(request, DeliveryRequest)
    assert request.values("x-SIG") == ("a", "b", "c")
    assert request.values("content-type") == ("application/json",)
    assert request.values("only-single") == ("s",)  # a name only `headers` has is kept
    assert request.pairs("X-Sig") == [("x-sig", "a"), ("x-sig", "b"), ("x-sig", "c")]


def test_garbage_header_shapes_are_ignored_and_floods_refused() -> None:
    request = parse_api_event(
        event(headers={1: "x", "A": 2}, multiValueHeaders={"B": "not a list", "C": [1, "ok"]}),
        max_body_bytes=CAP,
    )
    assert isinstance(request, DeliveryRequest)
    assert dict(request.headers) == {"c": ("ok",)}
    flood = parse_api_event(event(multiValueHeaders={"X": ["v"] * 1000}), max_body_bytes=CAP)
    assert isinstance(flood, Reply)
    assert flood.status == 400


@given(
    st.dictionaries(st.text(max_size=20), st.none() | st.booleans() | st.integers() | st.text(max_size=50))
)
def test_parse_api_event_never_raises(data: dict[str, object]) -> None:
    result = parse_api_event(data, max_body_bytes=CAP)
    assert isinstance(result, DeliveryRequest | Reply)


# --- media types, payloads, conversations -------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "fmt", "fits"),
    [
        (("application/json",), "JSON", True),
        (("Application/JSON; charset=UTF-8",), "JSON", True),
        (("application/cloudevents+json",), "JSON", True),
        (("application/json; charset=latin-1",), "JSON", False),
        (("text/json",), "JSON", False),
        (("application/xml",), "JSON", False),
        (("application/json", "application/json"), "JSON", False),
        ((), "JSON", False),
        (("application/xml",), "XML", True),
        (("text/xml; charset=ISO-8859-1",), "XML", True),
        (("application/soap+xml",), "XML", True),
        (("application/json",), "XML", False),
    ],
)
def test_media_type_must_fit_the_payload_format(values: tuple[str, ...], fmt: str, fits: bool) -> None:
    assert media_type_matches(values, fmt) is fits


def test_xml_becomes_plain_data() -> None:
    doc = parse_xml(
        b'<r a="1"><sessionId>s-1</sessionId><item>x</item><item>y</item><empty/>'
        b'<n k="v">t</n><deep><list>1</list></deep></r>'
    )
    assert doc == {
        "r": {
            "@a": "1",
            "sessionId": "s-1",
            "item": ["x", "y"],
            "empty": None,
            "n": {"@k": "v", "#text": "t"},
            "deep": {"list": "1"},
        }
    }
    assert conversation_of(doc) == "s-1"


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY l2 "&lol;&lol;">]><r>&l2;</r>',
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
        b"<r><unclosed></r>",
        b"not xml at all",
        b"",
        b"<a>" * 100 + b"</a>" * 100,
    ],
)
def test_hostile_or_broken_xml_is_refused(body: bytes) -> None:
    with pytest.raises(XmlRefused):
        parse_xml(body)


@pytest.mark.parametrize(
    ("payload", "session"),
    [
        ({"sessionId": "abc"}, "abc"),
        ({"sessionId": 42}, "42"),
        ({"data": {"sessionId": "in-data"}}, "in-data"),
        ({"root": {"sessionId": "xml-root"}}, "xml-root"),
        ({"sessionId": True}, None),
        ({"sessionId": ""}, None),
        ({"sessionId": "x" * 300}, None),
        ([{"sessionId": "in a list"}], None),
        ("text", None),
    ],
)
def test_the_conversation_is_cognigys_session_id(payload: object, session: str | None) -> None:
    assert conversation_of(payload) == session


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (("Basic " + base64.b64encode(b"user:pa:ss").decode(),), (b"user", b"pa:ss")),
        (("basic " + base64.b64encode(b"u:").decode(),), (b"u", b"")),
        ((), "authorization_missing"),
        (("Basic a", "Basic b"), "authorization_duplicated"),
        (("Bearer abc",), "authorization_malformed"),
        (("Basic !!!",), "authorization_malformed"),
        (("Basic " + base64.b64encode(b"no-colon").decode(),), "authorization_malformed"),
    ],
)
def testbasic_credentials(values: tuple[str, ...], expected: object) -> None:
    assert basic_credentials(values) == expected


# --- replies ------------------------------------------------------------------------------------


def test_every_401_is_the_same_answer_whatever_the_reason() -> None:
    a = Reply(401, "rejected", "endpoint_unknown", "Unauthorized").to_api_gateway()
    b = Reply(401, "rejected", "signature_mismatch", "Unauthorized").to_api_gateway()
    assert a == b
    assert json.loads(a["body"]) == {"message": "Unauthorized"}


def test_accepted_duplicate_and_unavailable_replies() -> None:
    accepted = Reply(202, "accepted", "accepted", delivery_id="d1").to_api_gateway()
    assert json.loads(accepted["body"]) == {"deliveryId": "d1", "status": "accepted"}
    duplicate = Reply(200, "duplicate", "duplicate", delivery_id="d1").to_api_gateway()
    assert json.loads(duplicate["body"]) == {"deliveryId": "d1", "status": "duplicate"}
    unavailable = Reply(
        503, "unavailable", "unavailable", "Temporarily unavailable; retry later"
    ).to_api_gateway()
    assert unavailable["headers"]["Retry-After"] == "5"


def test_delivery_ids_derive_from_the_endpoint_and_the_replay_key() -> None:
    a = delivery_id_for("orders", "signature", "sig")
    assert a == delivery_id_for("orders", "signature", "sig")
    assert (
        len(
            {
                a,
                delivery_id_for("billing", "signature", "sig"),
                delivery_id_for("orders", "webhook-id", "sig"),
            }
        )
        == 3
    )


# --- settings -----------------------------------------------------------------------------------


def test_settings_defaults_are_the_issues() -> None:
    settings = ReceiveSettings.from_env(ENV)
    assert settings.max_body_bytes == 256 * 1024
    assert settings.tolerance_seconds == 300
    assert settings.deliveries_table == "deliveries-table"


def test_bad_settings_name_every_variable_and_never_echo_values() -> None:
    env = {**ENV, "MAX_BODY_BYTES": "lots-of-bytes", "LOOP_MAX_HOPS": "0"}
    del env["DELIVERY_BUS_NAME"]
    with pytest.raises(InvalidSpec) as info:
        ReceiveSettings.from_env(env)
    fields = {e["field"] for e in info.value.errors}
    assert fields == {"MAX_BODY_BYTES", "LOOP_MAX_HOPS", "DELIVERY_BUS_NAME"}
    assert "lots-of-bytes" not in str(info.value)


# --- records ------------------------------------------------------------------------------------


def _item(**spec: object) -> dict[str, object]:
    endpoint = WebhookEndpoint.model_validate({"name": "orders", "url": "https://o.example.com/h", **spec})
    record = EndpointRecord(name="orders", spec=endpoint.public_view(), status="registered")
    return to_item(record.model_dump(mode="json", by_alias=True))


def test_the_record_reader_follows_the_register_steps_records() -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:cognigy-webhooks/s/orders/signature-AbCdEf"
    auth = endpoint_auth_from_item(
        _item(
            signatureHeader="X-Sig", signatureSecretArn=arn, payloadFormat="XML", signatureScheme="standard"
        )
    )
    assert auth is not None
    assert (auth.name, auth.status, auth.payload_format, auth.scheme) == (
        "orders",
        "registered",
        "XML",
        "standard",
    )
    assert (auth.signature_header, auth.signature_secret_arn) == ("X-Sig", arn)
    assert auth.accepts_deliveries
    basic = endpoint_auth_from_item(_item(basicAuth={"username": "cognigy", "passwordArn": arn}))
    assert basic is not None
    assert (basic.basic_username, basic.basic_password_arn, basic.has_signature) == ("cognigy", arn, False)
    assert basic.accepts_deliveries
    unauthenticated = endpoint_auth_from_item(_item())
    assert unauthenticated is not None
    assert not unauthenticated.accepts_deliveries
    inactive = endpoint_auth_from_item(_item(isActive=False, signatureHeader="X-Sig", signatureSecretArn=arn))
    assert inactive is not None
    assert not inactive.accepts_deliveries
    assert endpoint_auth_from_item({"spec": {"M": {}}}) is None


# --- the rejection reporter ---------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rejection_reports_are_bounded_and_summarised(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test-receiving-reporter")
    clock = Clock()
    reporter = RejectionReporter(None, log, burst=3, per_second=1.0, clock=clock)
    reply = Reply(401, "rejected", "signature_mismatch", "Unauthorized")
    with caplog.at_level(logging.WARNING, logger=log.name):
        for _ in range(50):
            reporter.report(name="orders", action="delivery_rejected", reply=reply)
        assert len(caplog.records) == 3
        assert reporter.suppressed_total == 47
        # another endpoint is not silenced by the flood on this one
        reporter.report(name="billing", action="delivery_rejected", reply=reply)
        assert len(caplog.records) == 4
        # a second later one more passes and carries the count of what was left out
        clock.now += 1.0
        reporter.report(name="orders", action="delivery_rejected", reply=reply)
    assert len(caplog.records) == 5
    assert caplog.records[-1].suppressed == 47  # type: ignore[attr-defined]


def test_the_receiver_imports_neither_pydantic_nor_httpx() -> None:
    code = (
        "import sys; import cognigy_webhooks.receiving; "
        "print(sorted(m for m in ('pydantic', 'httpx', 'aws_xray_sdk') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- the sample events ----------------------------------------------------------------------------

SAMPLE_SECRET = "sample-signing-secret-not-for-production-0123456789"
SAMPLE_WHSEC = "whsec_c2FtcGxlLXNpZ25pbmctc2VjcmV0LW5vdC1mb3ItcHI="
EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.mark.parametrize(
    ("file", "format"),
    [("receive_json.json", "JSON"), ("receive_xml.json", "XML"), ("receive_standard.json", "JSON")],
)
def test_the_sample_events_are_signed_deliveries_as_api_gateway_sends_them(file: str, format: str) -> None:
    from cognigy_webhooks.signing import verify_cognigy_signature, verify_standard_webhook

    sample = json.loads((EVENTS / file).read_text(encoding="utf-8"))
    request = parse_api_event(sample, max_body_bytes=256 * 1024)
    assert isinstance(request, DeliveryRequest)
    assert sample["isBase64Encoded"] is True
    assert request.name == sample["pathParameters"]["name"]
    assert media_type_matches(request.values("content-type"), format)
    stamp = 1_700_000_000
    if "webhook-id" in request.headers:
        verification = verify_standard_webhook(
            request.body, request.pairs(*request.headers), [SAMPLE_WHSEC], now=stamp
        )
    else:
        header = request.values("x-cognigy-signature")[0]
        verification = verify_cognigy_signature(request.body, header, [SAMPLE_SECRET], now=stamp)
    assert verification.ok
    payload = parse_xml(request.body) if format == "XML" else json.loads(request.body)
    assert conversation_of(payload) == "6c1b2f3e-session"
