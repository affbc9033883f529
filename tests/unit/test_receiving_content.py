"""The receiver's content checks on their own (no AWS): every problem with a body is a PayloadRefused
with its reason, decided by the body alone; what passes renders to the detail the bus publishes."""

from __future__ import annotations

import encodings.aliases
import json
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cognigy_webhooks.dal.bus import DeliveryBus
from cognigy_webhooks.dal.clients import LazyClients
from cognigy_webhooks.receiving import (
    MAX_JSON_DEPTH,
    PayloadRefused,
    XmlRefused,
    json_nesting_exceeds,
    parse_payload,
    parse_xml,
    representation_problem,
)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


tricky_text = st.text(alphabet='[]{}"\\a:,ü', max_size=6)  # json.dumps escapes the quotes and backslashes
json_data = st.recursive(
    st.none() | st.booleans() | st.integers() | tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
    max_leaves=30,
)


@given(doc=json_data, ascii_only=st.booleans(), limit=st.integers(0, 12))
def test_json_nesting_is_measured_exactly_on_the_bytes(doc: Any, ascii_only: bool, limit: int) -> None:
    body = json.dumps(doc, ensure_ascii=ascii_only).encode()
    assert json_nesting_exceeds(body, limit) is (depth(doc) > limit)


@given(body=st.binary(max_size=200) | st.text(alphabet='[]{}"\\ x', max_size=200).map(str.encode))
def test_json_nesting_never_raises_and_is_a_function_of_the_bytes(body: bytes) -> None:
    assert json_nesting_exceeds(body, 3) is json_nesting_exceeds(bytes(body), 3)


def test_json_nesting_is_linear_on_hostile_bodies() -> None:
    # each of these took quadratic time (or recursion) with a naive scan; here each is one pass
    for body in (b'"' + b'\\"' * 200_000, b'["",' * 60_000, b"[]" * 120_000, b"[" * 250_000):
        json_nesting_exceeds(body, MAX_JSON_DEPTH)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "payload_invalid"),
        (b"\xff{}", "payload_invalid"),
        (b'{"n": NaN}', "payload_invalid"),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "payload_unrepresentable"),
        (b"[" * sys.getrecursionlimit() + b"]" * sys.getrecursionlimit(), "payload_unrepresentable"),
        (b"[" * 1_000_000, "payload_unrepresentable"),
    ],
)
def test_json_that_does_not_parse_or_nests_too_deep_is_refused(body: bytes, reason: str) -> None:
    with pytest.raises(PayloadRefused) as info:
        parse_payload(body, "JSON")
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"a": "\ud83d"}, "lone surrogate"),
        ({"\udc00": 1}, "lone surrogate"),
        ([1, [2, ["x\ud800y"]]], "lone surrogate"),
        ({"n": float("inf")}, "not finite"),
        ([float("-inf")], "not finite"),
        (float("nan"), "not finite"),
        ({1: "x"}, "key that is not a string"),
        ({"a": b"bytes"}, "value that JSON cannot carry"),
        ({"a": (1, 2)}, "value that JSON cannot carry"),
    ],
)
def test_representation_problems_are_named(payload: Any, problem: str) -> None:
    message = representation_problem(payload, max_depth=MAX_JSON_DEPTH)
    assert message is not None
    assert problem in message


def test_representation_depth_is_bounded_without_recursion() -> None:
    doc: Any = 1
    for _ in range(sys.getrecursionlimit() * 3):
        doc = [doc]
    assert representation_problem(doc, max_depth=MAX_JSON_DEPTH) == "The body nests deeper than 64 levels"
    shallow: Any = 1
    for _ in range(MAX_JSON_DEPTH):
        shallow = {"k": shallow}
    assert representation_problem(shallow, max_depth=MAX_JSON_DEPTH) is None
    assert representation_problem({"ok": ["😀", 1.5, None, True]}, max_depth=1) == (
        "The body nests deeper than 1 levels"
    )


@given(doc=json_data)
def test_what_has_no_problem_renders(doc: Any) -> None:
    assert representation_problem(doc, max_depth=MAX_JSON_DEPTH + 1) is None or depth(doc) > MAX_JSON_DEPTH
    bus = DeliveryBus(LazyClients(), "bus", source="test")
    text = bus.render({"payload": doc})
    assert json.loads(text) == {"payload": doc}


CODECS = sorted(set(encodings.aliases.aliases) | set(encodings.aliases.aliases.values()))


@pytest.mark.parametrize("codec", [*CODECS, "x-unknown", "", "a" * 3000, "utf-16", "utf_32_be"])
def test_xml_in_any_declared_encoding_parses_or_is_refused_never_raises_otherwise(codec: str) -> None:
    body = f'<?xml version="1.0" encoding="{codec}"?><m><sessionId>s</sessionId></m>'.encode()
    outcome = _parsed_or_refused(body)
    if isinstance(outcome, XmlRefused):
        assert outcome.reason in ("payload_invalid", "payload_unrepresentable")
        assert not codec or codec not in outcome.message  # the message never echoes the content
    else:
        assert representation_problem(outcome, max_depth=200) is None


def _parsed_or_refused(body: bytes) -> Any:
    try:
        return parse_payload(body, "XML")
    except XmlRefused as exc:
        return exc


def test_xml_past_its_bounds_is_unrepresentable() -> None:
    with pytest.raises(XmlRefused) as info:
        parse_xml(b"<a>" * 65 + b"</a>" * 65)
    assert (info.value.reason, info.value.message) == (
        "payload_unrepresentable",
        "The body nests deeper than 64 elements",
    )
    with pytest.raises(XmlRefused) as info:
        parse_xml(b"<r>" + b"<a/>" * 20_001 + b"</r>")
    assert info.value.reason == "payload_unrepresentable"
    # the deepest document accepted, with repeated children at every level, still renders
    body = b"<a><a/>" * 63 + b"<a>x</a>" + b"</a>" * 63  # every "a" holds a repeated "a": a list
    doc = parse_payload(body, "XML")
    assert depth(doc) == 1 + 2 * 63  # the root mapping, then a mapping and a list per level
    DeliveryBus(LazyClients(), "bus", source="test").render({"payload": doc})


def test_the_slimmed_detail_is_what_render_returns() -> None:
    bus = DeliveryBus(LazyClients(), "bus", source="test")
    big = {"deliveryId": "d", "payload": "x" * (DeliveryBus.DETAIL_LIMIT + 1)}
    slim = json.loads(bus.render(big))
    assert slim["payloadOmitted"] is True
    assert "payload" not in slim
    with pytest.raises(UnicodeEncodeError):
        bus.render({"deliveryId": "d", "payload": "x" * (DeliveryBus.DETAIL_LIMIT + 1) + "\ud83d"})
