"""The receiver's test world: the real template on the local stack, endpoints registered the way the
register step records them, deliveries signed the way Cognigy signs them, and what came out the other
side (bus events, stored deliveries, audit items) read back from the local AWS.

Published events are captured by an EventBridge rule on the delivery bus that targets an SQS queue of
the test's own (moto delivers to SQS targets), so a test sees exactly what a consumer would.
"""

from __future__ import annotations

import base64
import json
import logging
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cognigy_webhooks.dal.schema import from_item, to_item
from cognigy_webhooks.dal.secretsmanager import put_secret
from cognigy_webhooks.models import WebhookEndpoint
from cognigy_webhooks.models.records import AuditEvent, EndpointRecord
from cognigy_webhooks.signing import sign_standard_webhook, sign_webhook_payload
from cogwh.localstack import LocalStack

ROOT = Path(__file__).resolve().parents[2]
STACK = "rxtest"
#: Small loop bounds so a loop is reached in a handful of deliveries.
LOOP_MAX_PER_WINDOW = 5
LOOP_MAX_HOPS = 3
PARAMETERS = {
    "CognigyApiKeySecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:rx-cognigy-api-key",
    "LoopMaxPerWindow": str(LOOP_MAX_PER_WINDOW),
    "LoopMaxHops": str(LOOP_MAX_HOPS),
}
SIGNATURE_HEADER = "X-Cognigy-Signature"
SAMPLE_EVENT = ROOT / "events" / "receive_json.json"
#: The sample's transport headers kept on every event (the test gives the rest).
_KEPT_SAMPLE_HEADERS = ("Host", "User-Agent", "X-Forwarded-For", "X-Forwarded-Proto")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_secret() -> str:
    return "rx-secret-" + uuid.uuid4().hex + uuid.uuid4().hex


@dataclass
class Registered:
    """An endpoint as the receiver sees it, with the plain secrets the test signs with."""

    name: str
    scheme: str = "cognigy"
    payload_format: str = "JSON"
    secret: str | None = None
    secret_arn: str | None = None
    username: str | None = None
    password: str | None = None
    password_arn: str | None = None
    secrets_seen: list[str] = field(default_factory=list)

    @property
    def content_type(self) -> str:
        return "application/xml" if self.payload_format == "XML" else "application/json"

    def sign(self, body: bytes, *, timestamp: int | None = None, secret: str | None = None) -> dict[str, str]:
        """The headers Cognigy sends with ``body`` (signature, Basic auth, content type)."""
        headers = {"Content-Type": self.content_type}
        key = secret or self.secret
        if key is not None and self.scheme == "standard":
            stamp = int(time.time()) if timestamp is None else timestamp
            msg_id = "msg_" + uuid.uuid4().hex
            headers["webhook-id"] = msg_id
            headers["webhook-timestamp"] = str(stamp)
            headers["webhook-signature"] = sign_standard_webhook(msg_id, stamp, body, key)
        elif key is not None:
            headers[SIGNATURE_HEADER] = sign_webhook_payload(body, key, timestamp)
        if self.username is not None and self.password is not None:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        return headers


class ReceiverWorld:
    """One local stack for a test module: register endpoints, deliver, and read what happened."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.ddb = stack.client("dynamodb")
        self.sm = stack.client("secretsmanager")
        self.sqs = stack.client("sqs")
        self.events = stack.client("events")
        self.endpoints_table = stack.outputs["EndpointsTableName"]
        self.audit_table = stack.outputs["AuditTableName"]
        self.deliveries_table = stack.outputs["DeliveriesTableName"]
        self.bus = stack.outputs["DeliveryBusName"]
        self.queue_url = self.sqs.create_queue(QueueName=unique("rx-capture"))["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        rule = unique("rx-all")
        self.events.put_rule(
            Name=rule, EventBusName=self.bus, EventPattern=json.dumps({"detail-type": ["Cognigy Delivery"]})
        )
        self.events.put_targets(
            Rule=rule, EventBusName=self.bus, Targets=[{"Id": "capture", "Arn": queue_arn}]
        )
        self._published: list[dict[str, Any]] = []

    # --- the receiver in the stack ---------------------------------------------------------------

    @property
    def module(self) -> Any:
        return sys.modules[self.stack.functions["ReceiveFunction"].module_name]

    @property
    def receiver(self) -> Any:
        return self.module.RECEIVER

    def invoke(self, event: Any) -> dict[str, Any]:
        """The receive function's Lambda handler, as Lambda calls it (the event through JSON)."""
        result: dict[str, Any] = self.stack.invoke("ReceiveFunction", event)
        return result

    # --- endpoints -------------------------------------------------------------------------------

    def register(
        self,
        prefix: str = "ep",
        *,
        scheme: str = "cognigy",
        payload_format: str = "JSON",
        signed: bool = True,
        basic: bool = False,
        status: str = "registered",
        is_active: bool = True,
    ) -> Registered:
        """Store the secrets in Secrets Manager and write the endpoint record as the register step does
        (EndpointRecord, spec = WebhookEndpoint.public_view())."""
        name = unique(prefix)
        reg = Registered(name=name, scheme=scheme, payload_format=payload_format)
        spec: dict[str, Any] = {
            "name": name,
            "url": f"https://hooks.example.test/{name}",
            "payloadFormat": payload_format,
            "signatureScheme": scheme,
            "isActive": is_active,
        }
        if signed:
            reg.secret = (
                ("whsec_" + base64.b64encode(uuid.uuid4().bytes * 2).decode())
                if scheme == "standard"
                else new_secret()
            )
            reg.secret_arn = put_secret(self.sm, f"cognigy-webhooks/{STACK}/{name}/signature", reg.secret)
            reg.secrets_seen.append(reg.secret)
            spec["signatureHeader"] = SIGNATURE_HEADER if scheme == "cognigy" else "webhook-signature"
            spec["signatureSecretArn"] = reg.secret_arn
        if basic:
            reg.username = "cognigy"
            reg.password = new_secret()
            reg.password_arn = put_secret(
                self.sm, f"cognigy-webhooks/{STACK}/{name}/basic-auth", reg.password
            )
            reg.secrets_seen.append(reg.password)
            spec["basicAuth"] = {"username": reg.username, "passwordArn": reg.password_arn}
        endpoint = WebhookEndpoint.model_validate(spec)
        record = EndpointRecord(name=name, spec=endpoint.public_view(), status=status)  # type: ignore[arg-type]
        self.ddb.put_item(
            TableName=self.endpoints_table, Item=to_item(record.model_dump(mode="json", by_alias=True))
        )
        return reg

    def rotate(self, reg: Registered, new_value: str | None = None) -> str:
        """Rotate the signing secret: the new value becomes AWSCURRENT, the old one AWSPREVIOUS."""
        assert reg.secret_arn is not None
        value = new_value or new_secret()
        self.sm.put_secret_value(SecretId=reg.secret_arn, SecretString=value)
        reg.secrets_seen.append(value)
        reg.secret = value
        return value

    # --- events ----------------------------------------------------------------------------------

    def event(
        self,
        reg: Registered | str,
        body: bytes,
        headers: Mapping[str, str] | None = None,
        *,
        multi: Mapping[str, list[str]] | None = None,
        base64_body: bool = True,
    ) -> dict[str, Any]:
        """An API Gateway REST proxy event for a delivery (built like the local gateway builds them)."""
        name = reg.name if isinstance(reg, Registered) else reg
        event = json.loads(SAMPLE_EVENT.read_text(encoding="utf-8"))  # the sample's shape, our request
        hdrs = {k: v for k, v in event["headers"].items() if k in _KEPT_SAMPLE_HEADERS}
        hdrs.update(headers or {})
        multi_headers = {k: [v] for k, v in hdrs.items()}
        for k, values in (multi or {}).items():
            multi_headers[k] = list(values)
            hdrs[k] = values[-1]
        event.update(
            path=f"/deliveries/{name}",
            headers=hdrs,
            multiValueHeaders=multi_headers,
            pathParameters={"name": name},
            body=base64.b64encode(body).decode() if base64_body else body.decode("utf-8"),
            isBase64Encoded=base64_body,
        )
        event["requestContext"].update(requestId=str(uuid.uuid4()), path=f"/v1/deliveries/{name}")
        return dict(event)

    # --- what came out ---------------------------------------------------------------------------

    def published(self) -> list[dict[str, Any]]:
        """Every event published to the bus so far (drains the capture queue into a list)."""
        while True:
            resp = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = resp.get("Messages", [])
            if not messages:
                return list(self._published)
            for message in messages:
                self._published.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def published_for(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.published() if e["detail"]["endpoint"] == name]

    def delivery(self, delivery_id: str) -> dict[str, Any] | None:
        resp = self.ddb.get_item(
            TableName=self.deliveries_table, Key={"pk": {"S": f"d#{delivery_id}"}}, ConsistentRead=True
        )
        item = resp.get("Item")
        return from_item(item) if item else None

    def deliveries_of(self, name: str) -> list[dict[str, Any]]:
        items = []
        kwargs: dict[str, Any] = {"TableName": self.deliveries_table}
        while True:  # tests only: a Scan of a small local table
            resp = self.ddb.scan(**kwargs)
            items.extend(from_item(i) for i in resp["Items"])
            if "LastEvaluatedKey" not in resp:
                break
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        return [i for i in items if i.get("endpoint") == name and str(i["pk"]).startswith("d#")]

    def raw_table(self, table: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": table}
        while True:
            resp = self.ddb.scan(**kwargs)
            items.extend(resp["Items"])
            if "LastEvaluatedKey" not in resp:
                return items
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def audit(self, name: str) -> list[AuditEvent]:
        """The endpoint's audit events, parsed with the records' own model (the shape must match)."""
        resp = self.ddb.query(
            TableName=self.audit_table,
            KeyConditionExpression="#n = :n",
            ExpressionAttributeNames={"#n": "name"},
            ExpressionAttributeValues={":n": {"S": name}},
        )
        events = []
        for item in resp["Items"]:
            data = from_item(item)
            sk = data.pop("sk")
            event = AuditEvent.model_validate(data)
            assert event.sk == sk
            events.append(event)
        return events

    def reset_reporting(self) -> None:
        """A fresh rejection budget (the bucket is per process, like a warm Lambda's)."""
        from cognigy_webhooks.receiving import RejectionReporter

        receiver = self.receiver
        settings = receiver.settings
        receiver.reporter = RejectionReporter(
            receiver.audit,
            receiver.log,
            burst=settings.reject_report_burst,
            per_second=settings.reject_report_per_second,
        )


def receiver_stack(extra_parameters: Mapping[str, str] | None = None) -> Iterator[ReceiverWorld]:
    """Generator for a module-scoped fixture: the real template on the local stack."""
    with LocalStack(ROOT, stack_name=STACK, parameters={**PARAMETERS, **(extra_parameters or {})}) as stack:
        yield ReceiverWorld(stack)


@contextmanager
def captured_logs() -> Iterator[list[str]]:
    """Every line the service's Powertools logger writes, formatted by its own formatter (its handler
    holds the stdout of the moment it was made, which pytest's fd capture does not see)."""
    service = logging.getLogger("cognigy-webhooks")
    formatter = next((h.formatter for h in service.handlers if h.formatter is not None), None)
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect()
    handler.setFormatter(formatter)
    service.addHandler(handler)
    try:
        yield lines
    finally:
        service.removeHandler(handler)


def json_body(**fields: Any) -> bytes:
    doc = {"sessionId": "s-" + uuid.uuid4().hex, "userId": "user-1", "text": "hello", **fields}
    return json.dumps(doc).encode()
