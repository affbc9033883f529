"""What a validly signed delivery's content gets: every problem with it is a 4xx with a reason, the same
one every time, and nothing is claimed for it; 5xx only when AWS itself fails.

The receiver runs in the real template on the local stack. A body the parser takes but the hand-off
(JSON in UTF-8, to EventBridge) could not carry used to be claimed and then fail with 503, so that
Cognigy's retry was answered ``200 duplicate`` for a delivery never handed on."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cognigy_webhooks.dal.bus import DeliveryBus
from cognigy_webhooks.dal.deliveries import delivery_id_for
from cognigy_webhooks.receiving import MAX_JSON_DEPTH, Reply
from tests.support.receiver import ReceiverWorld, Registered, receiver_stack


@pytest.fixture(scope="module")
def world() -> Iterator[ReceiverWorld]:
    yield from receiver_stack()


@pytest.fixture(scope="module")
def json_ep(world: ReceiverWorld) -> Registered:
    return world.register("content")


@pytest.fixture(scope="module")
def xml_ep(world: ReceiverWorld) -> Registered:
    return world.register("content-xml", payload_format="XML")


def deliver(world: ReceiverWorld, reg: Registered, body: bytes) -> Reply:
    """One signed delivery through the receive function's receiver; the reply with its reason."""
    reply: Reply = world.receiver.receive(world.event(reg, body, reg.sign(body)))
    return reply


def delivery_id(reg: Registered, body: bytes) -> str:
    return delivery_id_for(reg.name, "body-sha256", hashlib.sha256(body).hexdigest())


def assert_refused_alike_and_unclaimed(
    world: ReceiverWorld, reg: Registered, body: bytes, status: int, reason: str
) -> Reply:
    first = deliver(world, reg, body)
    assert (first.status, first.reason) == (status, reason), first
    again = deliver(world, reg, body)
    assert again == first  # deterministic: the same body, the same answer
    assert world.delivery(delivery_id(reg, body)) is None  # nothing claimed, nothing left behind
    response = first.to_api_gateway()
    assert json.loads(response["body"]) == {"message": first.message}
    return first


def nested(depth: int, leaf: bytes = b"1") -> bytes:
    return b'{"a":' * (depth - 1) + b"[" + leaf + b"]" + b"}" * (depth - 1)


RECURSION = sys.getrecursionlimit()
MESSAGES = {
    "The body holds a lone surrogate (an unpaired \\ud800-\\udfff escape) in a string",
    "The body holds a number that JSON cannot carry (too large: not finite)",
    f"The body nests deeper than {MAX_JSON_DEPTH} levels",
}

UNREPRESENTABLE_JSON = {
    "lone high surrogate in a value": b'{"sessionId":"s-1","text":"\\ud83d"}',
    "lone low surrogate in a value": b'{"text":"ok \\ude00 then"}',
    "surrogates in the wrong order": b'{"text":"\\ude00\\ud83d"}',
    "lone surrogate in a key": b'{"\\udc00":1}',
    "lone surrogate deep inside": b'{"data":{"list":[1,2,{"x":["\\ud800"]}]}}',
    "1e400": b'{"n":1e400}',
    "-1e400": b'{"n":-1e400}',
    "1e400 at the top": b"1e400",
    "1e400 in a list": b"[0.5,1E+999]",
    "nesting one past the bound": nested(MAX_JSON_DEPTH + 1),
    "nesting near the recursion limit": nested(RECURSION - 10),
    "nesting at the recursion limit": nested(RECURSION),
    "nesting past the recursion limit": nested(RECURSION + 10),
    "nesting far past it, unclosed": b"[" * 100_000,
    "deep and then invalid": b"[" * (MAX_JSON_DEPTH + 1) + b"nope",
}


@pytest.mark.parametrize("body", list(UNREPRESENTABLE_JSON.values()), ids=list(UNREPRESENTABLE_JSON))
def test_a_signed_json_body_the_hand_off_cannot_carry_is_a_400_and_claims_nothing(
    world: ReceiverWorld, json_ep: Registered, body: bytes
) -> None:
    before = len(world.published_for(json_ep.name))
    reply = assert_refused_alike_and_unclaimed(world, json_ep, body, 400, "payload_unrepresentable")
    assert reply.message in MESSAGES  # names the problem, never echoes the content
    assert len(world.published_for(json_ep.name)) == before


def test_each_problem_is_named(world: ReceiverWorld, json_ep: Registered) -> None:
    messages = [
        deliver(world, json_ep, UNREPRESENTABLE_JSON[name]).message
        for name in ("lone high surrogate in a value", "1e400", "nesting one past the bound")
    ]
    assert messages == [
        "The body holds a lone surrogate (an unpaired \\ud800-\\udfff escape) in a string",
        "The body holds a number that JSON cannot carry (too large: not finite)",
        f"The body nests deeper than {MAX_JSON_DEPTH} levels",
    ]


@pytest.mark.parametrize(
    "body",
    [
        nested(MAX_JSON_DEPTH),
        b'{"text":"\\ud83d\\ude00 a pair is one character"}',
        b'{"n":1e308,"m":-1e-400,"big":' + b"9" * 4000 + b"}",
        b'{"text":"brackets in strings do not nest: ' + b"[" * 200 + b'"}',
    ],
    ids=["nesting at the bound", "a surrogate pair", "large but finite numbers", "brackets in a string"],
)
def test_what_the_hand_off_can_carry_is_accepted_once(
    world: ReceiverWorld, json_ep: Registered, body: bytes
) -> None:
    first = deliver(world, json_ep, body)
    assert first.status == 202, first
    assert deliver(world, json_ep, body).status == 200
    events = [e for e in world.published_for(json_ep.name) if e["detail"]["deliveryId"] == first.delivery_id]
    assert len(events) == 1
    assert events[0]["detail"]["payload"] == json.loads(body)


UNREADABLE_XML = {
    "unknown encoding": b'<?xml version="1.0" encoding="x-unknown"?><m><sessionId>s</sessionId></m>',
    "a codec that is not a text encoding": b'<?xml version="1.0" encoding="hex"?><m>x</m>',
    "a multi-byte codec": b'<?xml version="1.0" encoding="shift_jis"?><m>x</m>',
    "utf-32": b'<?xml version="1.0" encoding="utf-32"?><m>x</m>',
    "utf-7": b'<?xml version="1.0" encoding="utf-7"?><m>x</m>',
    "a codec that refuses to decode": b'<?xml version="1.0" encoding="undefined"?><m>x</m>',
    "utf-16 declared, utf-8 sent": b'<?xml version="1.0" encoding="utf-16"?><m>x</m>',
    "an empty encoding": b'<?xml version="1.0" encoding=""?><m>x</m>',
    "a very long encoding name": b'<?xml version="1.0" encoding="' + b"a" * 5000 + b'"?><m>x</m>',
    "not well-formed": b"<m><open></m>",
}


@pytest.mark.parametrize("body", list(UNREADABLE_XML.values()), ids=list(UNREADABLE_XML))
def test_a_signed_xml_body_that_cannot_be_read_is_a_400_and_claims_nothing(
    world: ReceiverWorld, xml_ep: Registered, body: bytes
) -> None:
    assert_refused_alike_and_unclaimed(world, xml_ep, body, 400, "payload_invalid")


def test_xml_past_its_bounds_is_unrepresentable_and_at_them_accepted(
    world: ReceiverWorld, xml_ep: Registered
) -> None:
    too_deep = b"<a>" * 65 + b"x" + b"</a>" * 65
    reply = assert_refused_alike_and_unclaimed(world, xml_ep, too_deep, 400, "payload_unrepresentable")
    assert reply.message == "The body nests deeper than 64 elements"
    at_bound = b"<a>" * 64 + b"x" + b"</a>" * 64
    assert deliver(world, xml_ep, at_bound).status == 202
    latin = '<?xml version="1.0" encoding="ISO-8859-1"?><m><text>Grüße</text></m>'.encode("latin-1")
    assert deliver(world, xml_ep, latin).status == 202


def test_a_header_that_is_not_text_is_a_400(world: ReceiverWorld, json_ep: Registered) -> None:
    body = b'{"text":"fine"}'
    event = world.event(json_ep, body, json_ep.sign(body))
    event["multiValueHeaders"]["Content-Type"] = ["application/json; x=\ud83d"]
    reply = world.receiver.receive(event)
    assert (reply.status, reply.reason) == (400, "bad_header")
    assert world.delivery(delivery_id(json_ep, body)) is None


def test_the_slimmed_detail_is_the_one_checked_and_the_one_published(
    world: ReceiverWorld, json_ep: Registered
) -> None:
    # a body too big for an EventBridge entry goes without its payload, but the whole payload is
    # still checked first: a lone surrogate past the slimming point is refused, not slimmed away
    padding = "x" * (DeliveryBus.DETAIL_LIMIT + 1024)
    bad = json.dumps({"text": padding, "tail": "\ud83d"}).encode()
    assert_refused_alike_and_unclaimed(world, json_ep, bad, 400, "payload_unrepresentable")
    good = json.dumps({"sessionId": "big-1", "text": padding}).encode()
    reply = deliver(world, json_ep, good)
    assert reply.status == 202
    [event] = [e for e in world.published_for(json_ep.name) if e["detail"]["deliveryId"] == reply.delivery_id]
    assert event["detail"]["payloadOmitted"] is True
    assert "payload" not in event["detail"]
    assert event["detail"]["sessionId"] == "big-1"


# --- the class property, fuzzed -----------------------------------------------------------------

FRAGMENTS = [
    b"{",
    b"}",
    b"[",
    b"]",
    b'"',
    b":",
    b",",
    b'"k"',
    b'"sessionId":"s"',
    b"1",
    b"-0.5",
    b"1e400",
    b"-1e400",
    b"1e-400",
    b"true",
    b"null",
    b"NaN",
    b"\\",
    b'"\\ud83d"',
    b'"\\ude00"',
    b'"\\ud83d\\ude00"',
    b'"\\u0000"',
    "ü€😀".encode(),
    b"\xff",
    b"\xed\xa0\x80",  # a surrogate encoded as UTF-8: not valid UTF-8
    b" ",
]
ENCODINGS = ["UTF-8", "utf-16", "ISO-8859-1", "x-unknown", "hex", "utf-32", "big5", "undefined", "", "cp1252"]
leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)  # infinities allowed: json.dumps writes them as Infinity
    | st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=8)
    | st.sampled_from(["\ud83d", "\ude00", "ok"])
)
keys = st.text(max_size=4) | st.sampled_from(["\ud83d", "sessionId"])
documents = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=12,
)


@st.composite
def json_ish(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return b"".join(draw(st.lists(st.sampled_from(FRAGMENTS), max_size=30)))
    if kind == 1:  # real JSON of awkward data, maybe wrapped near the nesting bound
        doc = draw(documents)
        text = json.dumps(doc, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
        depth = draw(st.sampled_from([0, 0, MAX_JSON_DEPTH - 2, MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH]))
        return b"[" * depth + text + b"]" * depth
    if kind == 2:
        return draw(st.binary(max_size=64))
    depth = draw(st.integers(MAX_JSON_DEPTH - 2, MAX_JSON_DEPTH + 2))
    return nested(depth, draw(st.sampled_from([b"1", b"1e400", b'"\\ud83d"', b"[]"])))


@st.composite
def xml_ish(draw: st.DrawFn) -> bytes:
    encoding = draw(st.sampled_from(ENCODINGS))
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>'.encode() if draw(st.booleans()) else b""
    depth = draw(st.sampled_from([1, 2, 63, 64, 65]))
    text = draw(st.text(max_size=10)).encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        text = text.replace(b"<", b"").replace(b"&", b"")
    attrs = draw(st.sampled_from([b"", b' a="1"', b' a="&#xD83D;"', b' a="\xff"']))
    return declaration + (b"<m" + attrs + b">") * depth + text + b"</m>" * depth


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_class_property(world: ReceiverWorld, reg: Registered, body: bytes) -> None:
    first = deliver(world, reg, body)
    assert first.status < 500, first  # the local AWS is up: a 5xx would be our bug
    again = deliver(world, reg, body)
    if first.status in (200, 202):
        assert again.status == 200  # handed on once; the replay is a duplicate of it
        assert again.delivery_id == first.delivery_id
        item = world.delivery(delivery_id(reg, body))
        assert item is not None
        assert item["state"] == "published"
    else:
        assert (again.status, again.reason) == (first.status, first.reason)  # deterministic
        assert first.reason in ("payload_invalid", "payload_unrepresentable"), first
        assert world.delivery(delivery_id(reg, body)) is None  # nothing left claimed


@PROPERTY
@given(body=json_ish())
@example(body=b'"\\ud83d"')
@example(body=b"1e400")
@example(body=nested(MAX_JSON_DEPTH + 1))
@example(body=nested(RECURSION - 5))
def test_any_signed_json_ish_body_is_handed_on_once_or_refused_alike_with_nothing_claimed(
    world: ReceiverWorld, json_ep: Registered, body: bytes
) -> None:
    check_class_property(world, json_ep, body)


@PROPERTY
@given(body=xml_ish())
@example(body=b'<?xml version="1.0" encoding="x-unknown"?><m>x</m>')
@example(body=b'<?xml version="1.0" encoding="utf-16"?><m>x</m>')
def test_any_signed_xml_ish_body_is_handed_on_once_or_refused_alike_with_nothing_claimed(
    world: ReceiverWorld, xml_ep: Registered, body: bytes
) -> None:
    check_class_property(world, xml_ep, body)
