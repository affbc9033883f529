"""Property tests at the receive handler (the real function on the local stack, invoked in-process):
malformed events, headers, bodies, encodings and sizes never give a 5xx, and a forgery is never
accepted. The size cap is lowered to 2 KiB here so that sizes around it are cheap to generate."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from tests.support.receiver import SIGNATURE_HEADER, ReceiverWorld, Registered, receiver_stack

CAP = 2048
PROPERTY_SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@pytest.fixture(scope="module")
def small() -> Iterator[ReceiverWorld]:
    yield from receiver_stack({"ReceiveMaxBodyBytes": str(CAP)})


@pytest.fixture(scope="module")
def signed(small: ReceiverWorld) -> Registered:
    return small.register("prop")


@pytest.fixture(scope="module")
def standard(small: ReceiverWorld) -> Registered:
    return small.register("prop-std", scheme="standard")


@pytest.fixture(scope="module")
def basic(small: ReceiverWorld) -> Registered:
    return small.register("prop-basic", signed=False, basic=True)


def check_response(response: dict[str, Any]) -> int:
    """A well-formed proxy response with a JSON body and no traceback; returns the status."""
    status = response["statusCode"]
    assert isinstance(status, int)
    assert status < 500 or status == 503, response
    assert response["headers"]["Content-Type"] == "application/json"
    body = json.loads(response["body"])
    assert isinstance(body, dict)
    assert "Traceback" not in response["body"]
    return status


text = st.text(max_size=40)
header_values = st.one_of(
    text,
    st.text(alphabet=st.characters(codec="ascii"), max_size=80),
    st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
    st.integers().map(str),
)
header_names = (
    st.sampled_from(
        [
            SIGNATURE_HEADER,
            SIGNATURE_HEADER.lower(),
            "Content-Type",
            "content-type",
            "Authorization",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "X-Cogwh-Hop",
            "X-Cogwh-Origin",
        ]
    )
    | text
)
anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=10,
)


@st.composite
def hostile_events(draw: st.DrawFn, names: list[str]) -> Any:
    """Events of every shape: valid-looking ones with garbage in each field, and plain garbage."""
    if draw(st.integers(0, 9)) == 0:
        return draw(anything)
    body_bytes = draw(
        st.binary(min_size=0, max_size=CAP + 8) | st.just(b"{}") | st.just(b'{"sessionId":"s"}')
    )
    encoded = draw(st.booleans())
    if encoded:
        body: Any = base64.b64encode(body_bytes).decode()
    else:
        body = body_bytes.decode("utf-8", errors="surrogateescape")
    event: dict[str, Any] = {
        "pathParameters": draw(st.fixed_dictionaries({"name": st.sampled_from(names) | text}) | anything),
        "headers": draw(st.dictionaries(header_names, header_values, max_size=6) | anything),
        "multiValueHeaders": draw(
            st.dictionaries(header_names, st.lists(header_values, max_size=3)) | anything
        ),
        "body": draw(st.just(body) | anything),
        "isBase64Encoded": draw(st.just(encoded) | anything),
        "requestContext": draw(st.just({"requestId": "r"}) | anything),
    }
    for key in draw(st.lists(st.sampled_from(sorted(event)), max_size=3)):
        event.pop(key, None)
    return event


@PROPERTY_SETTINGS
@given(data=st.data())
def test_no_event_ever_gives_a_5xx_or_an_acceptance(
    small: ReceiverWorld, signed: Registered, standard: Registered, basic: Registered, data: st.DataObject
) -> None:
    event = data.draw(hostile_events([signed.name, standard.name, basic.name]))
    response = small.invoke(event)  # the Lambda handler itself, Powertools decorator included
    status = check_response(response)
    assert status not in (200, 202), (event, response)  # nothing here was signed with the secret
    assert status != 503, response  # the local AWS is up: a 503 would be our bug


forgeries = st.sampled_from(["flip-body", "flip-signature", "wrong-secret", "recode-signature", "truncate"])


@PROPERTY_SETTINGS
@given(
    body=st.binary(min_size=1, max_size=CAP),
    how=forgeries,
    position=st.integers(min_value=0),
    base64_body=st.booleans(),
)
def test_a_forgery_is_never_accepted(
    small: ReceiverWorld, signed: Registered, body: bytes, how: str, position: int, base64_body: bool
) -> None:
    headers = signed.sign(body)
    stamp, _, signature = headers[SIGNATURE_HEADER].partition(",")
    raw_signature = bytearray(base64.b64decode(signature))
    forged_body = body
    if how == "flip-body":
        i = position % len(body)
        forged_body = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
    elif how == "flip-signature":
        raw_signature[position % 32] ^= 0x80
        headers[SIGNATURE_HEADER] = f"{stamp},{base64.b64encode(bytes(raw_signature)).decode()}"
    elif how == "wrong-secret":
        headers = signed.sign(body, secret="another-secret-" + "z" * 30)
    elif how == "recode-signature":  # the same bytes, spelled another way (urlsafe, no padding)
        headers[SIGNATURE_HEADER] = (
            f"{stamp},{base64.urlsafe_b64encode(bytes(raw_signature)).decode().rstrip('=')}"
        )
        assume(headers[SIGNATURE_HEADER] != f"{stamp},{signature}")
    else:
        headers[SIGNATURE_HEADER] = f"{stamp},{signature[: position % len(signature)]}"
    if not base64_body:
        assume(_is_text(forged_body))
    event = small.event(signed, forged_body, headers, base64_body=base64_body)
    reply = small.receiver.receive(event)
    assert (reply.status, reply.reason) in {(401, "signature_mismatch"), (401, "signature_malformed")}
    assert check_response(reply.to_api_gateway()) == 401


@PROPERTY_SETTINGS
@given(body=st.binary(max_size=CAP + 64), base64_body=st.booleans(), offset=st.integers(-250, 250))
@example(body=b'{"text":"\\ud83d"}', base64_body=False, offset=0)
@example(body=b'{"n":1e400}', base64_body=True, offset=0)
@example(body=b"[" * 65 + b"]" * 65, base64_body=True, offset=0)
def test_a_genuine_delivery_is_accepted_once_whatever_it_carries(
    small: ReceiverWorld, signed: Registered, body: bytes, base64_body: bool, offset: int
) -> None:
    # Given a genuinely signed delivery of arbitrary bytes (within the tolerance)
    if not base64_body:
        assume(_is_text(body))
    event = small.event(
        signed, body, signed.sign(body, timestamp=int(time.time()) + offset), base64_body=base64_body
    )
    status = check_response(small.receiver.handle_event(event))
    # Then it is too large (413), not JSON the hand-off can carry (400), or accepted (202; 200 when
    # hypothesis repeats a body)
    if len(body) > CAP:
        assert status == 413
    elif not _is_json(body):
        assert status == 400
    else:
        assert status in (200, 202)
        assert check_response(small.receiver.handle_event(event)) == 200  # and never twice


@PROPERTY_SETTINGS
@given(
    body=st.binary(max_size=256), how=st.sampled_from(["wrong-password", "wrong-user", "garbage"]), junk=text
)
def test_basic_auth_forgeries_are_never_accepted(
    small: ReceiverWorld, basic: Registered, body: bytes, how: str, junk: str
) -> None:
    headers = basic.sign(body)
    if how == "wrong-password":
        token = base64.b64encode(f"{basic.username}:{basic.password}{junk}x".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    elif how == "wrong-user":
        token = base64.b64encode(f"{basic.username}{junk}x:{basic.password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    else:
        headers["Authorization"] = junk
    reply = small.receiver.receive(small.event(basic, body, headers))
    assert reply.status == 401
    assert reply.reason in {"credentials_mismatch", "authorization_malformed", "authorization_missing"}


@PROPERTY_SETTINGS
@given(body=st.binary(max_size=512), field=st.sampled_from(["webhook-id", "webhook-timestamp", "body"]))
def test_standard_webhooks_bind_id_timestamp_and_body(
    small: ReceiverWorld, standard: Registered, body: bytes, field: str
) -> None:
    headers = standard.sign(body)
    if field == "body":
        body = body + b" "
    elif field == "webhook-id":
        headers["webhook-id"] = headers["webhook-id"] + "x"
    else:
        headers["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) - 1)
    reply = small.receiver.receive(small.event(standard, body, headers))
    assert (reply.status, reply.reason) == (401, "signature_mismatch")


def _is_text(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _is_json(body: bytes) -> bool:
    """JSON the receiver hands on: valid, at most 64 levels deep, and representable again as JSON in
    UTF-8 (no lone surrogate, no number that parses as infinity)."""
    try:
        doc = json.loads(body.decode("utf-8"), parse_constant=_no_constants)
        json.dumps(doc, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (ValueError, RecursionError):
        return False
    return _depth(doc) <= 64


def _depth(doc: object) -> int:
    if isinstance(doc, dict):
        return 1 + max((_depth(v) for v in doc.values()), default=0)
    if isinstance(doc, list):
        return 1 + max((_depth(v) for v in doc), default=0)
    return 0


def _no_constants(name: str) -> None:
    raise ValueError(name)
