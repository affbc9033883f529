"""The receiver's accepted-delivery path, made cheaper, gives the same answers as the plain way of
computing them (issue 13 item 5: the handler's CPU per delivery): the headers of an event, the
answer's body, the Flow output's fields, the media type, the JSON body, the detail's size, the
delivery's record and time stamp, its id, the conversation counter's sub-buckets. Each is held
against a straightforward reference written here from the contract, over generated inputs."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cognigy_webhooks.dal.bus import DeliveryBus
from cognigy_webhooks.dal.clients import LazyClients
from cognigy_webhooks.dal.deliveries import LOOP_STEPS, DeliveryLedger, delivery_id_for
from cognigy_webhooks.dal.schema import _value, delivery_item, iso_time
from cognigy_webhooks.receiving import (
    DeliveryRequest,
    Reply,
    media_type_matches,
    parse_api_event,
    parse_payload,
)
from cognigy_webhooks.receiving.outputs import _fields_in, _object_fields, output_fields
from cognigy_webhooks.receiving.payloads import PayloadRefused, _media_type_fits

# --- references (the plain way) ----------------------------------------------------------------------


def reference_headers(event: dict[str, Any]) -> dict[str, tuple[str, ...]] | str:
    """multiValueHeaders then any name only ``headers`` has, by lower-cased name, every value kept;
    ``too_many`` past 500 values, ``bad`` for a name or value that is not UTF-8 text."""
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    multi = event.get("multiValueHeaders")
    if isinstance(multi, dict):
        for name, values in multi.items():
            if not isinstance(name, str) or not isinstance(values, list | tuple):
                continue
            seen.add(name.lower())
            pairs.extend((name, v) for v in values if isinstance(v, str))
            if len(pairs) > 500:
                return "too_many"
    single = event.get("headers")
    if isinstance(single, dict):
        for name, value in single.items():
            if isinstance(name, str) and isinstance(value, str) and name.lower() not in seen:
                pairs.append((name, value))
            if len(pairs) > 500:
                return "too_many"

    def text(value: str) -> bool:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True

    if not all(text(k) and text(v) for k, v in pairs):
        return "bad"
    out: dict[str, list[str]] = {}
    for key, value in pairs:
        out.setdefault(key.strip(" \t").lower(), []).append(value)
    return {k: tuple(v) for k, v in out.items()}


def reference_iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- the event's headers -----------------------------------------------------------------------------

_names = st.sampled_from(
    ["Content-Type", "content-type", " Authorization\t", "X-Sig", "x-sig", "Ü-Name", "\udc00"]
)
_header_values = st.one_of(
    st.sampled_from(["application/json", "Basic abc", "é", "\ud83d", ""]), st.integers()
)


@settings(max_examples=400, deadline=None)
@given(
    multi=st.dictionaries(
        _names, st.one_of(st.lists(_header_values, max_size=3), _header_values), max_size=5
    ),
    single=st.dictionaries(_names, _header_values, max_size=5),
    with_multi=st.booleans(),
)
def test_headers_are_read_as_the_plain_way_reads_them(
    multi: dict[str, Any], single: dict[str, Any], with_multi: bool
) -> None:
    event: dict[str, Any] = {"pathParameters": {"name": "orders"}, "headers": single, "body": "{}"}
    if with_multi:
        event["multiValueHeaders"] = multi
    expected = reference_headers(event)
    got = parse_api_event(event, max_body_bytes=1024)
    if expected == "bad":
        assert isinstance(got, Reply)
        assert got.reason == "bad_header"
    else:
        assert isinstance(got, DeliveryRequest)
        assert dict(got.headers) == expected
        assert [list(v) for v in got.headers.values()] == [list(v) for v in expected.values()]  # type: ignore[union-attr]


def test_a_flood_of_header_values_is_refused_however_it_comes() -> None:
    flood = {f"X-{i}": ["v"] for i in range(501)}
    for event in ({"multiValueHeaders": flood}, {"headers": {k: "v" for k in flood}}):
        reply = parse_api_event({**event, "body": "{}"}, max_body_bytes=1024)
        assert isinstance(reply, Reply)
        assert reply.reason == "too_many_headers"


# --- the answer --------------------------------------------------------------------------------------


@given(delivery_id=st.one_of(st.text(max_size=40), st.sampled_from(["0" * 32, "ab12", "ü", 'a"b'])))
def test_the_answer_body_is_what_json_writes(delivery_id: str) -> None:
    for outcome, status in (("accepted", 202), ("duplicate", 200)):
        reply = Reply(status, outcome, outcome, "", delivery_id)
        body = reply.to_api_gateway()["body"]
        assert body == json.dumps({"deliveryId": delivery_id, "status": outcome}, separators=(",", ":"))


# --- the Flow output's fields ------------------------------------------------------------------------

_field_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=5),
    st.sampled_from(["", "x", "s" * 300, "tr\x00ce", "ok-1", "ü"]),
    st.floats(allow_nan=False),
    st.lists(st.integers(), max_size=2),
    st.fixed_dictionaries(
        {}, optional={"sessionId": st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5))}
    ),
)
_field_keys = ["userId", "sessionId", "text", "data", "traceId", "disableSensitiveLogging", "other"]
_output = st.dictionaries(st.sampled_from(_field_keys), _field_values, max_size=6)
_bodies = st.dictionaries(
    st.sampled_from([*_field_keys, "AIOutput"]),
    st.one_of(_field_values, _output),
    max_size=7,
)


@settings(max_examples=600, deadline=None)
@given(payload=_bodies)
def test_the_fields_of_an_object_are_found_as_the_general_reader_finds_them(payload: dict[str, Any]) -> None:
    expected = _fields_in(payload)
    got = output_fields(payload)
    assert got == expected
    assert list(got) == list(expected)
    if len(payload) != 1:
        assert _object_fields(payload) == expected


# --- the media type, the body ------------------------------------------------------------------------


@given(value=st.text(max_size=40), payload_format=st.sampled_from(["JSON", "XML"]))
def test_the_media_type_is_answered_as_it_is_worked_out(value: str, payload_format: str) -> None:
    for _ in range(2):  # the second answer is the one kept
        assert media_type_matches((value,), payload_format) is _media_type_fits(value, payload_format)
    assert media_type_matches((value, value), payload_format) is False


@pytest.mark.parametrize("body", [b"NaN", b'{"a": Infinity}', b"\xef\xbb\xbf{}", b"{", b"-Infinity"])
def test_what_json_refuses_is_refused(body: bytes) -> None:
    with pytest.raises(PayloadRefused):
        parse_payload(body, "JSON")


@given(doc=st.dictionaries(st.text(max_size=5), st.one_of(st.text(max_size=20), st.integers()), max_size=5))
def test_the_detail_is_compact_unescaped_json_and_its_size_is_its_utf8_size(doc: dict[str, Any]) -> None:
    bus = DeliveryBus(LazyClients(lambda _: None), "bus", source="s")
    try:
        expected = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        expected.encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            bus.render(doc)
        return
    assert bus.render(doc) == expected


def test_a_lone_surrogate_and_a_number_json_cannot_carry_still_refuse_the_detail() -> None:
    bus = DeliveryBus(LazyClients(lambda _: None), "bus", source="s")
    with pytest.raises(UnicodeEncodeError):
        bus.render({"text": "\ud83d"})
    with pytest.raises(ValueError, match="not JSON compliant"):
        bus.render({"n": math.inf})


# --- the record, its time stamp and its id ----------------------------------------------------------


@settings(max_examples=500)
@given(
    seconds=st.one_of(
        st.floats(min_value=0, max_value=4e9, allow_nan=False),
        st.integers(min_value=0, max_value=4_000_000_000).map(lambda s: s + 0.9999995),
        st.integers(min_value=0, max_value=4_000_000_000).map(lambda s: s + 0.0000005),
        st.floats(min_value=-1e9, max_value=-1e-6),
    )
)
def test_the_time_stamp_is_datetimes_own(seconds: float) -> None:
    assert iso_time(seconds) == reference_iso_time(seconds)
    assert iso_time(seconds) == reference_iso_time(seconds)  # the second time, from what is kept


@given(
    now=st.floats(min_value=1.6e9, max_value=2e9),
    session=st.one_of(st.none(), st.text(max_size=10)),
    hop=st.one_of(st.none(), st.integers(min_value=0, max_value=999)),
    content_type=st.text(max_size=300),
    retention=st.integers(min_value=1, max_value=3650),
)
def test_the_record_holds_what_to_item_would_make_of_its_fields(
    now: float, session: str | None, hop: int | None, content_type: str, retention: int
) -> None:
    fields = {
        "deliveryId": "0" * 32,
        "endpoint": "orders",
        "receivedAt": reference_iso_time(now),
        "replayKind": "trace-id",
        "payloadFormat": "JSON",
        "contentType": content_type[:256],
        "body": b"{}",
        "expiresAt": int(now + retention * 86400),
        "sessionId": session,
        "hop": hop,
    }
    expected = {k: _value(v) for k, v in fields.items() if v is not None}
    item = delivery_item(
        delivery_id="0" * 32,
        endpoint="orders",
        now=now,
        replay_kind="trace-id",
        payload_format="JSON",
        content_type=content_type,
        body=b"{}",
        retention_days=retention,
        session_id=session,
        hop=hop,
    )
    assert item == expected


@given(
    endpoint=st.text(max_size=10),
    kind=st.sampled_from(["body-sha256", "trace-id"]),
    key=st.one_of(st.text(max_size=20), st.binary(max_size=20)),
)
def test_the_delivery_id_is_the_digest_of_endpoint_kind_and_key(
    endpoint: str, kind: str, key: str | bytes
) -> None:
    digest = hashlib.sha256()
    for part in (
        endpoint.encode(),
        b"\x00",
        kind.encode(),
        b"\x00",
        key if isinstance(key, bytes) else key.encode(),
    ):
        digest.update(part)
    assert delivery_id_for(endpoint, kind, key) == digest.hexdigest()[:32]


# --- the conversation counter ------------------------------------------------------------------------


class CountingTable:
    """A DynamoDB stand-in for one conversation counter (what UpdateItem does with its names)."""

    def __init__(self) -> None:
        self.attrs: dict[str, Any] = {}
        self.names: list[dict[str, str]] = []

    def update_item(self, **kwargs: Any) -> dict[str, Any]:
        names = dict(kwargs["ExpressionAttributeNames"])
        self.names.append(names)
        counter = names["#c"]
        self.attrs[counter] = {"N": str(int(self.attrs.get(counter, {"N": "0"})["N"]) + 1)}
        for alias, name in names.items():
            if alias.startswith("#o"):
                self.attrs.pop(name, None)
        return {"Attributes": dict(self.attrs)}


def test_the_counter_slides_step_by_step_with_the_names_of_each_step() -> None:
    table = CountingTable()
    ledger = DeliveryLedger(LazyClients(lambda _: table), "deliveries")
    window = 60
    step = window / LOOP_STEPS
    start = 1_700_000_000.0
    counts = [
        ledger.count_conversation("orders", "s", now=start + i * step / 2, window=window) for i in range(30)
    ]
    # two per step, LOOP_STEPS steps in the window: the count grows to 2 * LOOP_STEPS and stays there
    assert counts[: 2 * LOOP_STEPS] == list(range(1, 2 * LOOP_STEPS + 1))
    assert set(counts[2 * LOOP_STEPS :]) <= {2 * LOOP_STEPS - 1, 2 * LOOP_STEPS}
    for i, names in enumerate(table.names):
        current = int((start + i * step / 2) // step)
        assert names["#c"] == f"b{current}"
        assert {names[f"#o{k}"] for k in range(LOOP_STEPS)} == {
            f"b{current - LOOP_STEPS - k}" for k in range(LOOP_STEPS)
        }
