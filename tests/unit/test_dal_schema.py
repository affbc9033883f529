"""The one attribute schema (cognigy_webhooks.dal.schema): its names are the models' and the template's,
its codec is boto3's, and it stays import-light for the receiver. No AWS here."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import given
from hypothesis import strategies as st

from cognigy_webhooks.dal import schema
from cognigy_webhooks.dal.schema import Audit, Delivery, Endpoint, Spec
from cognigy_webhooks.models import BasicAuth, WebhookEndpoint
from cognigy_webhooks.models.records import AuditEvent, EndpointRecord
from cogwh.localstack.template import load_template_file

ROOT = Path(__file__).resolve().parents[2]


def _aliases(model: Any) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


# --- the names are the models' -------------------------------------------------------------------


def test_the_record_attributes_are_the_endpoint_records_fields() -> None:
    assert _aliases(EndpointRecord) == set(Endpoint.RECORD_ATTRIBUTES)
    assert EndpointRecord(name="x").record_type == Endpoint.TYPE_ENDPOINT
    assert not set(Endpoint.CLAIM_ATTRIBUTES) & set(Endpoint.RECORD_ATTRIBUTES)


def test_the_audit_attributes_are_the_audit_events_fields() -> None:
    assert _aliases(AuditEvent) == set(Audit.EVENT_ATTRIBUTES)
    assert Audit.SK not in Audit.EVENT_ATTRIBUTES


def test_the_spec_fields_the_receiver_reads_are_the_specs() -> None:
    spec_fields = _aliases(WebhookEndpoint)
    for name in (
        Spec.IS_ACTIVE,
        Spec.PAYLOAD_FORMAT,
        Spec.SIGNATURE_SCHEME,
        Spec.SIGNATURE_HEADER,
        Spec.SIGNATURE_SECRET_ARN,
        Spec.BASIC_AUTH,
    ):
        assert name in spec_fields, name
    assert {Spec.BASIC_USERNAME, Spec.BASIC_PASSWORD_ARN} <= _aliases(BasicAuth)
    # and public_view (what a record's spec is) keeps them
    endpoint = WebhookEndpoint.model_validate(
        {
            "name": "orders",
            "url": "https://o.example.com/h",
            "basicAuth": {"username": "u", "passwordArn": "arn:aws:secretsmanager:us-east-1:1:secret:p"},
        }
    )
    view = endpoint.public_view()
    assert {Spec.IS_ACTIVE, Spec.PAYLOAD_FORMAT, Spec.SIGNATURE_SCHEME, Spec.BASIC_AUTH} <= set(view)
    assert set(view[Spec.BASIC_AUTH]) == {Spec.BASIC_USERNAME, Spec.BASIC_PASSWORD_ARN}


def test_the_sort_key_is_the_audit_events() -> None:
    event = AuditEvent(
        name="n", action="a", outcome="o", timestamp=datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC), event_id="e1"
    )
    assert schema.audit_sort_key(schema.iso_time(event.timestamp.timestamp()), "e1") == event.sk
    whole_second = AuditEvent.model_validate(
        {
            "name": "n",
            "action": "a",
            "outcome": "o",
            "timestamp": "2024-05-06T07:08:09.000000Z",
            "eventId": "e",
        }
    )
    assert whole_second.sk == "2024-05-06T07:08:09.000000Z#e"


# --- the keys are the template's ----------------------------------------------------------------


def _keys(table: dict[str, Any]) -> dict[str, str]:
    return {k["KeyType"]: k["AttributeName"] for k in table["KeySchema"]}


def test_the_keys_and_the_index_are_the_templates() -> None:
    resources = load_template_file(ROOT / "template.yaml")["Resources"]
    endpoints = resources["EndpointsTable"]["Properties"]
    assert _keys(endpoints) == {"HASH": Endpoint.NAME}
    [by_type] = endpoints["GlobalSecondaryIndexes"]
    assert by_type["IndexName"] == Endpoint.BY_TYPE_INDEX
    assert _keys(by_type) == {"HASH": Endpoint.RECORD_TYPE, "RANGE": Endpoint.NAME}
    audit = resources["AuditTable"]["Properties"]
    assert _keys(audit) == {"HASH": Audit.NAME, "RANGE": Audit.SK}
    assert audit["TimeToLiveSpecification"]["AttributeName"] == Audit.EXPIRES_AT
    deliveries = resources["DeliveriesTable"]["Properties"]
    assert _keys(deliveries) == {"HASH": Delivery.PK}
    assert deliveries["TimeToLiveSpecification"]["AttributeName"] == Delivery.EXPIRES_AT


# --- the codec is boto3's ------------------------------------------------------------------------

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def _boto_to_item(data: dict[str, Any]) -> dict[str, Any]:
    clean = json.loads(json.dumps(data), parse_float=Decimal)
    return {k: TypeSerializer().serialize(v) for k, v in clean.items() if v is not None}


def _boto_from_item(item: dict[str, Any]) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return {k: plain(TypeDeserializer().deserialize(v)) for k, v in item.items()}


@given(st.dictionaries(st.text(max_size=10), _json, max_size=6))
def test_to_item_and_from_item_are_boto3s(data: dict[str, Any]) -> None:
    item = schema.to_item(data)
    assert item == _boto_to_item(data)
    assert schema.from_item(item) == _boto_from_item(item)


def test_a_record_round_trips_through_the_codec() -> None:
    record = EndpointRecord(name="orders", spec={"name": "orders", "timeoutMs": 5000}, probe_count=3)
    data = schema.from_item(schema.to_item(record.model_dump(mode="json", by_alias=True)))
    fields = schema.record_fields(data)
    assert fields is not None
    assert EndpointRecord.model_validate(fields) == record
    assert schema.record_fields({Endpoint.NAME: "x", Endpoint.CLAIM_TOKEN: "t"}) is None


def test_odd_numbers_read_as_boto3_reads_them() -> None:
    for number in ("not-a-number", "Infinity", "1E+2", "0.5", "-0"):
        item = {"n": {"N": number}}
        try:
            expected: Any = _boto_from_item(item)
        except Exception as exc:
            with pytest.raises(type(exc)):
                schema.from_item(item)
        else:
            got = schema.from_item(item)
            assert repr(got) == repr(expected), number


def test_what_is_not_an_attribute_value_is_a_type_error() -> None:
    for bad in ({"x": {"BOGUS": "1"}}, {"x": {}}, {"x": "plain"}, {"x": {"S": "a", "N": "1"}}):
        with pytest.raises(TypeError):
            schema.from_item(bad)


def test_binary_reads_as_bytes() -> None:
    assert schema.from_item({"b": {"B": b"\x00\xff"}}) == {"b": b"\x00\xff"}


# --- the receiver's items ------------------------------------------------------------------------


def test_a_delivery_audit_item_reads_back_as_an_audit_event() -> None:
    item = schema.delivery_audit_item(
        name="orders",
        event_id="ab" * 16,
        now=1_700_000_000.25,
        action="delivery_rejected",
        outcome="rejected",
        reason="signature_mismatch",
        retention_days=30,
        status_code=401,
        detail="",
    )
    data = schema.from_item(item)
    sk = data.pop(Audit.SK)
    event = AuditEvent.model_validate(data)
    assert event.sk == sk
    assert (event.source, event.status_code, event.detail) == ("delivery", 401, None)
    assert event.expires_at == int(1_700_000_000.25 + 30 * 86400)


def test_a_delivery_item_holds_the_bytes_and_the_bounds() -> None:
    item = schema.delivery_item(
        delivery_id="d1",
        endpoint="orders",
        now=100.0,
        replay_kind="body-sha256",
        payload_format="JSON",
        content_type="application/json" + "x" * 300,
        body=b"\x00{}",
        retention_days=1,
        hop=2,
    )
    assert item[Delivery.BODY] == {"B": b"\x00{}"}
    assert item[Delivery.HOP] == {"N": "2"}
    assert item[Delivery.EXPIRES_AT] == {"N": str(100 + 86400)}
    assert len(item[Delivery.CONTENT_TYPE]["S"]) == 256
    assert Delivery.SESSION_ID not in item


def test_the_schema_is_standard_library_only() -> None:
    code = (
        "import sys; import cognigy_webhooks.dal.schema, cognigy_webhooks.errors; "
        "print(sorted(m for m in ('boto3', 'botocore', 'pydantic', 'httpx') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
