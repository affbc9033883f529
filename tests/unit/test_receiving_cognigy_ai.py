"""Real Cognigy.AI deliveries, the pure parts: a Flow output's fields read leniently from any body,
the replay key of a Basic-auth-only output (``traceId`` with the body's digest), Basic auth compared
in constant time over digests, and the event detail slimmed in its documented order. No AWS here."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cognigy_webhooks.dal.bus import DeliveryBus
from cognigy_webhooks.dal.clients import LazyClients
from cognigy_webhooks.dal.endpoints import EndpointAuth
from cognigy_webhooks.receiving import DeliveryRequest, conversation_of, output_fields, trace_id_of
from cognigy_webhooks.receiving.auth import Auth, Authenticator, output_replay_key
from cognigy_webhooks.receiving.outputs import MAX_ID_LENGTH

REAL = {
    "userId": "user-1",
    "sessionId": "session-1",
    "AIOutput": {
        "text": "Hello",
        "data": {"orderId": 7},
        "traceId": "endpoint-webhook-0b1c",
        "disableSensitiveLogging": False,
        "source": "bot",
    },
}


def endpoint(
    *, basic: bool = True, signed: bool = False, payload_format: str = "JSON", scheme: str = "cognigy"
) -> EndpointAuth:
    return EndpointAuth(
        name="cai",
        status="registered",
        active=True,
        payload_format=payload_format,
        scheme=scheme,
        signature_header="X-Cognigy-Signature" if signed else None,
        signature_secret_arn="arn:sig" if signed else None,
        basic_username="cognigy" if basic else None,
        basic_password_arn="arn:basic" if basic else None,
    )


# --- the fields of an output --------------------------------------------------------------------


def test_the_documented_body_gives_every_field() -> None:
    assert output_fields(REAL) == {
        "userId": "user-1",
        "sessionId": "session-1",
        "text": "Hello",
        "data": {"orderId": 7},
        "traceId": "endpoint-webhook-0b1c",
        "disableSensitiveLogging": False,
    }


def test_disable_sensitive_logging_may_sit_at_the_top() -> None:
    doc = {"userId": "u", "disableSensitiveLogging": True, "AIOutput": {"text": "t"}}
    assert output_fields(doc)["disableSensitiveLogging"] is True
    assert "disableSensitiveLogging" not in output_fields({"disableSensitiveLogging": "yes"})


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            {"userId": "u", "sessionId": "s", "text": "t", "data": [1]},
            {"userId": "u", "sessionId": "s", "text": "t", "data": [1]},
        ),
        ({"AIOutput": {"text": "in"}, "text": "out"}, {"text": "in"}),  # AIOutput's own first
        ({"AIOutput": {"text": None}, "text": "out"}, {"text": "out"}),  # a null does not count
        ({"AIOutput": {"userId": "inner"}, "userId": "outer"}, {"userId": "outer"}),  # ids: the top first
        ({"AIOutput": {"userId": "inner", "sessionId": "s-in"}}, {"userId": "inner", "sessionId": "s-in"}),
        ({"data": {"sessionId": "s-data"}}, {"sessionId": "s-data", "data": {"sessionId": "s-data"}}),
        (
            {"w": {"userId": "u", "AIOutput": {"text": "x", "traceId": "t"}}},
            {"userId": "u", "text": "x", "traceId": "t"},
        ),
        ({"userId": 12, "sessionId": 0}, {"userId": "12", "sessionId": "0"}),
        ({"userId": True, "sessionId": False}, {}),
        ({"userId": "", "sessionId": ""}, {}),
        ({"userId": "u" * MAX_ID_LENGTH}, {"userId": "u" * MAX_ID_LENGTH}),
        ({"userId": "u" * (MAX_ID_LENGTH + 1)}, {}),
        ({"AIOutput": {"text": 3, "data": None}}, {}),
        ({"AIOutput": {"data": False}}, {"data": False}),
        ({"AIOutput": "text"}, {}),
        ({"AIOutput": ["text"]}, {}),
        ([REAL], {}),
        ("a string", {}),
        (None, {}),
        (3.5, {}),
    ],
)
def test_a_reshaped_body_gives_the_fields_it_has(doc: Any, expected: dict[str, Any]) -> None:
    assert output_fields(doc) == expected


def test_an_xml_document_gives_its_fields_from_under_the_root() -> None:
    doc = {"output": {"userId": "u", "sessionId": "s", "AIOutput": {"text": "x", "traceId": "t-1"}}}
    assert output_fields(doc) == {"userId": "u", "sessionId": "s", "text": "x", "traceId": "t-1"}


@pytest.mark.parametrize(
    ("trace", "kept"),
    [
        ("t", True),
        ("t" * MAX_ID_LENGTH, True),
        ("endpoint-realtimeClient-3f2a9c4e with spaces", True),
        ("t" * (MAX_ID_LENGTH + 1), False),
        ("", False),
        ("line\nbreak", False),
        ("nul\x00", False),
        ("\ud83d", False),  # a lone surrogate cannot be hashed as UTF-8
        ("\u2028", False),
        (17, False),
        (None, False),
        (["t"], False),
    ],
)
def test_the_trace_id_is_1_to_256_printable_characters(trace: Any, kept: bool) -> None:
    doc = {"AIOutput": {"traceId": trace}}
    assert trace_id_of(doc) == (trace if kept else None)
    assert ("traceId" in output_fields(doc)) is kept


def test_the_trace_id_at_the_top_counts_when_aioutput_has_none() -> None:
    assert trace_id_of({"traceId": "top"}) == "top"
    assert trace_id_of({"traceId": "top", "AIOutput": {"traceId": "inner"}}) == "inner"
    assert trace_id_of({"traceId": "top", "AIOutput": {"traceId": ""}}) == "top"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=300),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["userId", "sessionId", "AIOutput", "text", "data", "traceId", "x"])
            | st.text(max_size=5),
            inner,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@given(JSON_VALUES)
def test_any_body_gives_well_typed_bounded_fields_and_never_raises(doc: Any) -> None:
    fields = output_fields(doc)
    assert set(fields) <= {"userId", "sessionId", "text", "data", "traceId", "disableSensitiveLogging"}
    for key in ("userId", "sessionId", "traceId"):
        if key in fields:
            assert isinstance(fields[key], str)
            assert 0 < len(fields[key]) <= MAX_ID_LENGTH
    if "text" in fields:
        assert isinstance(fields["text"], str)
    if "data" in fields:
        assert fields["data"] is not None
    if "disableSensitiveLogging" in fields:
        assert isinstance(fields["disableSensitiveLogging"], bool)
    if "traceId" in fields:
        assert fields["traceId"] == trace_id_of(doc)
        fields["traceId"].encode("utf-8")  # it feeds the replay key: always encodable
    # the event's sessionId is the conversation the loop guard counts, where the tutorial's reader finds one
    if conversation_of(doc) is not None:
        assert fields["sessionId"] == conversation_of(doc)


def test_a_record_with_no_usable_authentication_accepts_nothing() -> None:
    assert endpoint().accepts_deliveries
    assert not endpoint(basic=False).accepts_deliveries
    half = endpoint()._replace(basic_password_arn=None)  # a user name without a password
    assert not half.accepts_deliveries
    assert not endpoint()._replace(basic_username=None).accepts_deliveries


# --- the replay key -----------------------------------------------------------------------------

BODY = json.dumps(REAL).encode()
BODY_AUTH = Auth(True, "ok", "body-sha256", hashlib.sha256(BODY).hexdigest())


def test_a_basic_auth_output_is_keyed_on_its_trace_id_and_body() -> None:
    keyed = output_replay_key(BODY_AUTH, endpoint(), "trace-1")
    assert keyed == Auth(True, "ok", "trace-id", "trace-1\x00" + hashlib.sha256(BODY).hexdigest())


def test_two_outputs_of_one_turn_get_two_keys_a_retry_the_same() -> None:
    def key(body: bytes) -> Any:
        auth = Auth(True, "ok", "body-sha256", hashlib.sha256(body).hexdigest())
        return output_replay_key(auth, endpoint(), "turn-1").replay_key

    first, second = (
        b'{"AIOutput":{"text":"1","traceId":"turn-1"}}',
        b'{"AIOutput":{"text":"2","traceId":"turn-1"}}',
    )
    assert key(first) != key(second)
    assert key(first) == key(bytes(first))


@pytest.mark.parametrize(
    ("auth", "ep", "trace"),
    [
        (BODY_AUTH, endpoint(), None),  # no traceId: the body's digest
        (BODY_AUTH, endpoint(signed=True), "trace-1"),  # signed: the signature's key stays
        (BODY_AUTH, endpoint(basic=False, signed=True), "trace-1"),
        (BODY_AUTH, endpoint(payload_format="XML"), "trace-1"),  # real endpoints deliver JSON
        (Auth(True, "ok", "webhook-id", "msg_1"), endpoint(signed=True, scheme="standard"), "trace-1"),
        (Auth(False, "credentials_mismatch"), endpoint(), "trace-1"),
    ],
)
def test_other_deliveries_keep_their_key(auth: Auth, ep: EndpointAuth, trace: str | None) -> None:
    assert output_replay_key(auth, ep, trace) is auth


# --- Basic auth, compared over digests ----------------------------------------------------------


class Passwords:
    """The secret versions a Basic auth check sees (current first), without Secrets Manager."""

    def __init__(self, *values: str) -> None:
        self.values = values

    def get(self, secret_id: str) -> tuple[str, ...]:
        return self.values

    def refresh(self, secret_id: str) -> tuple[str, ...]:
        return self.values


def basic_request(user: bytes, password: bytes) -> DeliveryRequest:
    token = base64.b64encode(user + b":" + password).decode()
    return DeliveryRequest(name="cai", headers={"authorization": (f"Basic {token}",)}, body=BODY)


@pytest.mark.parametrize(
    ("user", "password", "ok"),
    [
        (b"cognigy", b"s3cret-password", True),
        (b"cognigy", b"previous-password", True),  # the previous version, during a rotation
        (b"cognigy", b"s3cret-passwor", False),  # a prefix
        (b"cognigy", b"s3cret-password-and-more", False),  # longer
        (b"cognigy", b"", False),
        (b"cognig", b"s3cret-password", False),
        (b"", b"s3cret-password", False),
        (b"cognigy", "s3cret-pässword".encode(), False),
    ],
)
def test_basic_auth_takes_exactly_the_credentials(user: bytes, password: bytes, ok: bool) -> None:
    authenticator = Authenticator(Passwords("s3cret-password", "previous-password"), tolerance_seconds=300)  # type: ignore[arg-type]
    result = authenticator.authenticate(endpoint(), basic_request(user, password), 0.0)
    assert result.ok is ok
    assert result.reason == ("ok" if ok else "credentials_mismatch")
    if ok:  # before the body is read, the key is the body's digest (the pipeline adds the traceId)
        assert (result.replay_kind, result.replay_key) == ("body-sha256", hashlib.sha256(BODY).hexdigest())


def test_basic_auth_compares_fixed_length_digests(monkeypatch: pytest.MonkeyPatch) -> None:
    # what reaches compare_digest never has the length (nor the bytes) of a credential
    import cognigy_webhooks.receiving.auth as auth_module

    seen: list[tuple[bytes, bytes]] = []
    real = auth_module.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth_module.hmac, "compare_digest", spy)
    authenticator = Authenticator(Passwords("a-much-longer-password-than-given"), tolerance_seconds=300)  # type: ignore[arg-type]
    assert not authenticator.authenticate(endpoint(), basic_request(b"cognigy", b"short"), 0.0).ok
    assert seen
    assert all(len(a) == len(b) == 32 for a, b in seen)
    assert all(b"short" not in a and b"cognigy" not in a for a, _ in seen)


# --- the detail, slimmed ------------------------------------------------------------------------

BUS = DeliveryBus(LazyClients(), "bus", source="test")
LIMIT = DeliveryBus.DETAIL_LIMIT


def test_a_detail_that_fits_is_sent_whole() -> None:
    detail = {"deliveryId": "d", "payload": REAL, **output_fields(REAL)}
    assert json.loads(BUS.render(detail)) == detail


def test_too_big_goes_without_the_payload_first() -> None:
    detail = {"deliveryId": "d", "payload": {"blob": "x" * LIMIT}, "text": "t", "data": {"small": 1}}
    slim = json.loads(BUS.render(detail))
    assert slim == {
        "deliveryId": "d",
        "text": "t",
        "data": {"small": 1},
        "payloadOmitted": True,
        "payloadDetailBytes": len(json.dumps(detail, separators=(",", ":")).encode()),
    }


def test_then_without_the_data_then_without_the_text() -> None:
    big = "x" * LIMIT
    without_data = json.loads(BUS.render({"deliveryId": "d", "payload": {}, "data": big, "text": "t"}))
    assert without_data["dataOmitted"] is True
    assert "data" not in without_data
    assert without_data["text"] == "t"
    assert "textOmitted" not in without_data
    without_both = json.loads(
        BUS.render(
            {"deliveryId": "d", "userId": "u", "sessionId": "s", "payload": big, "data": big, "text": big}
        )
    )
    assert without_both == {
        "deliveryId": "d",
        "userId": "u",
        "sessionId": "s",
        "payloadOmitted": True,
        "payloadDetailBytes": without_both["payloadDetailBytes"],
        "dataOmitted": True,
        "textOmitted": True,
    }
    assert len(BUS.render({"payload": big, "data": big, "text": big}).encode()) <= LIMIT


def test_what_is_omitted_is_still_checked() -> None:
    with pytest.raises(UnicodeEncodeError):
        BUS.render({"deliveryId": "d", "payload": {}, "data": "x" * LIMIT + "\ud83d"})
