"""The receive handler's own CPU per accepted delivery, AWS stubbed, against a floor.

Through the local gateway the bottleneck is the gateway and moto, not the handler; so here the AWS
clients are in-memory stand-ins (:class:`StubDynamoDB`, :class:`StubEvents`, :class:`StubSecrets`:
what the receiver sends, no more; no moto, no botocore) and two handlers get the same deliveries:

- the real one: functions/receive/app.py (imported under a name of its own), its Powertools decorator,
  logs and metrics included, its ``RECEIVER`` wired as app.py wires it but with the stubs for clients;
- the floor (:class:`Floor`): only the unavoidable work of an accepted delivery. Decode the body, the
  same Basic-auth digests (SHA-256 of user and password, compared in constant time) or HMAC-SHA256,
  parse the JSON, the replay key and delivery id, the same four requests on the same stubs (the
  conditional put of the delivery, the conversation's count, the event, the mark as published), the
  event's JSON and the answer's.

Thread CPU time (``time.thread_time``), the two interleaved delivery by delivery after a warm-up,
medians per dialect; the headline is their mean (the load test sends the dialects alike) and
``handler_cpu_ratio`` = handler / floor. The Powertools logger's stream (fd 1) and the metrics'
``print`` are silenced while it runs.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import importlib.util
import io
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any, cast

from support.receive_deliveries import SIGNATURE_HEADER, USERNAME, Deliveries, Prepared, Target

__all__ = [
    "LAYERS",
    "CpuWorld",
    "Floor",
    "StubDynamoDB",
    "StubEvents",
    "StubSecrets",
    "measure_cpu",
    "quiet_stdout",
]

ROOT = Path(__file__).resolve().parents[2]
RECEIVE_ENV = {
    "ENDPOINTS_TABLE": "cpu-EndpointsTable",
    "AUDIT_TABLE": "cpu-AuditTable",
    "DELIVERIES_TABLE": "cpu-DeliveriesTable",
    "DELIVERY_BUS_NAME": "cpu-deliveries",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "cognigy-webhooks",
    "POWERTOOLS_METRICS_NAMESPACE": "CognigyWebhooks",
}
WARMUP = 50


# --- the stubs ------------------------------------------------------------------------------------


def _client_error(code: str, operation: str, **extra: Any) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError(cast(Any, {"Error": {"Code": code, "Message": code}, **extra}), operation)


class StubDynamoDB:
    """DynamoDB in memory, for what the receiver sends: items by key (``keys``: each table's key
    attributes); a put with a condition fails when the item exists (the claim); an update SETs, ADDs
    (numbers) and REMOVEs, its condition ``a = :v [AND ...]``; ``ReturnValues`` ALL_NEW, and ALL_OLD
    on a failed put's condition."""

    def __init__(self, keys: Mapping[str, tuple[str, ...]]) -> None:
        self.keys = dict(keys)
        self.items: dict[tuple[str, ...], dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()
        self._parsed: dict[str, tuple[tuple[str, str, str], ...]] = {}

    def _key(self, table: str, attrs: Mapping[str, Any]) -> tuple[str, ...]:
        return (table, *(next(iter(attrs[k].values())) for k in self.keys[table]))

    def get_item(self, *, TableName: str, Key: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        self.calls["get_item"] += 1
        item = self.items.get(self._key(TableName, Key))
        return {"Item": dict(item)} if item is not None else {}

    def put_item(self, *, TableName: str, Item: Mapping[str, Any], **kw: Any) -> dict[str, Any]:
        self.calls["put_item"] += 1
        key = self._key(TableName, Item)
        old = self.items.get(key)
        if kw.get("ConditionExpression") and old is not None:
            extra = {"Item": old} if kw.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" else {}
            raise _client_error("ConditionalCheckFailedException", "PutItem", **extra)
        self.items[key] = dict(Item)
        return {}

    def update_item(
        self, *, TableName: str, Key: Mapping[str, Any], UpdateExpression: str, **kw: Any
    ) -> dict[str, Any]:
        self.calls["update_item"] += 1
        names: Mapping[str, str] = kw.get("ExpressionAttributeNames") or {}
        values: Mapping[str, Any] = kw.get("ExpressionAttributeValues") or {}
        key = self._key(TableName, Key)
        item = dict(self.items.get(key) or Key)
        for term in (kw.get("ConditionExpression") or "").split(" AND "):
            left, equals, right = term.partition("=")
            if equals and item.get(names.get(left.strip(), left.strip())) != values.get(right.strip()):
                raise _client_error("ConditionalCheckFailedException", "UpdateItem")
        for verb, name, value in self._actions(UpdateExpression):
            attr = names.get(name, name)
            if verb == "REMOVE":
                item.pop(attr, None)
            elif verb == "SET":
                item[attr] = values[value]
            else:  # ADD a number
                item[attr] = {"N": str(int(item.get(attr, {"N": "0"})["N"]) + int(values[value]["N"]))}
        self.items[key] = item
        return {"Attributes": dict(item)} if kw.get("ReturnValues") == "ALL_NEW" else {}

    def _actions(self, expression: str) -> tuple[tuple[str, str, str], ...]:
        """``SET a = :v, ... ADD b :n REMOVE c, d`` as (verb, name, value) triples, parsed once."""
        actions = self._parsed.get(expression)
        if actions is None:
            found: list[tuple[str, str, str]] = []
            words, verb, i = expression.replace(",", " ").split(), "", 0
            while i < len(words):
                if words[i] in ("SET", "ADD", "REMOVE"):
                    verb = words[i]
                elif verb == "REMOVE":
                    found.append((verb, words[i], ""))
                elif verb == "SET":  # name = :value
                    found.append((verb, words[i], words[i + 2]))
                    i += 2
                else:  # ADD name :number
                    found.append((verb, words[i], words[i + 1]))
                    i += 1
                i += 1
            actions = self._parsed[expression] = tuple(found)
        return actions

    def delete_item(self, *, TableName: str, Key: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        self.calls["delete_item"] += 1
        self.items.pop(self._key(TableName, Key), None)
        return {}


class StubEvents:
    """EventBridge's put_events: every entry kept, every one put."""

    def __init__(self) -> None:
        self.entries: list[Mapping[str, Any]] = []

    def put_events(self, *, Entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        self.entries.extend(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(len(self.entries))} for _ in Entries]}


class StubSecrets:
    """Secrets Manager's get_secret_value: current versions only (never rotated)."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def __repr__(self) -> str:
        return f"StubSecrets({len(self._values)} secrets)"

    def get_secret_value(self, *, SecretId: str, VersionStage: str = "AWSCURRENT") -> dict[str, Any]:
        if VersionStage != "AWSCURRENT" or SecretId not in self._values:
            raise _client_error("ResourceNotFoundException", "GetSecretValue")
        return {"ARN": SecretId, "SecretString": self._values[SecretId]}


# --- the floor ------------------------------------------------------------------------------------


class Floor:
    """The minimal handler: only the unavoidable work of an accepted delivery, on the same stubs."""

    def __init__(self, ddb: StubDynamoDB, events: StubEvents, targets: Sequence[Target]) -> None:
        self.ddb, self.events = ddb, events
        self.table = RECEIVE_ENV["DELIVERIES_TABLE"]
        self.bus = RECEIVE_ENV["DELIVERY_BUS_NAME"]
        self.user = hashlib.sha256(USERNAME.encode()).digest()
        self.passwords = {t.name: hashlib.sha256((t.password or "").encode()).digest() for t in targets}
        self.keys = {t.name: (t.secret or "").encode() for t in targets}
        self.dialects = {t.name: t.dialect for t in targets}

    def __call__(self, event: Mapping[str, Any]) -> dict[str, Any]:
        name = event["pathParameters"]["name"]
        headers = event["headers"]
        body = base64.b64decode(event["body"])
        digest = hashlib.sha256(body).hexdigest()
        doc = json.loads(body)
        if self.dialects[name] == "endpoints":
            user, _, password = base64.b64decode(headers["Authorization"][6:]).partition(b":")
            ok = hmac.compare_digest(hashlib.sha256(user).digest(), self.user)
            ok &= hmac.compare_digest(hashlib.sha256(password).digest(), self.passwords[name])
            kind, key = "trace-id", f"{doc['AIOutput']['traceId']}\x00{digest}"
        else:
            _, _, signature = headers[SIGNATURE_HEADER].partition(",")
            expected = hmac.new(self.keys[name], body, hashlib.sha256).digest()
            ok = hmac.compare_digest(expected, base64.b64decode(signature))
            kind, key = "body-sha256", digest
        if not ok:
            return {"statusCode": 401}
        delivery_id = hashlib.sha256(f"{name}\x00{kind}\x00{key}".encode()).hexdigest()[:32]
        now = time.time()
        pk = {"pk": {"S": f"d#{delivery_id}"}}
        self.ddb.put_item(
            TableName=self.table,
            Item={**pk, "body": {"B": body}, "state": {"S": "claimed"}, "claimToken": {"S": "t"}},
            ConditionExpression="attribute_not_exists(pk)",
        )
        self.ddb.update_item(
            TableName=self.table,
            Key={"pk": {"S": f"l#{name}#{doc['sessionId']}"}},
            UpdateExpression="ADD #c :one SET expiresAt = :exp",
            ExpressionAttributeNames={"#c": f"b{int(now // 10)}"},
            ExpressionAttributeValues={":one": {"N": "1"}, ":exp": {"N": str(int(now) + 180)}},
            ReturnValues="ALL_NEW",
        )
        detail = {"endpoint": name, "deliveryId": delivery_id, "payload": doc}
        entry = {
            "Source": "cognigy-webhooks",
            "DetailType": "Cognigy Delivery",
            "Detail": json.dumps(detail, separators=(",", ":")),
            "EventBusName": self.bus,
        }
        self.events.put_events(Entries=[entry])
        self.ddb.update_item(
            TableName=self.table,
            Key=pk,
            UpdateExpression="SET #st = :state",
            ConditionExpression="claimToken = :mine",
            ExpressionAttributeNames={"#st": "state"},
            ExpressionAttributeValues={":state": {"S": "published"}, ":mine": {"S": "t"}},
        )
        return {"statusCode": 202, "body": json.dumps({"deliveryId": delivery_id, "status": "accepted"})}


# --- the world ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Send fd 1 to /dev/null (the Powertools logger writes there), then restore it."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


class CpuWorld:
    """One endpoint per dialect in the stubs, the real handler wired to them, and the floor."""

    def __init__(self, dialects: Sequence[str]) -> None:
        from cognigy_webhooks.dal.clients import LazyClients
        from cognigy_webhooks.dal.schema import to_item
        from cognigy_webhooks.models import WebhookEndpoint
        from cognigy_webhooks.models.records import EndpointRecord
        from cognigy_webhooks.observability import logger, metrics
        from cognigy_webhooks.receiving import Receiver

        tables = {
            RECEIVE_ENV["ENDPOINTS_TABLE"]: ("name",),
            RECEIVE_ENV["DELIVERIES_TABLE"]: ("pk",),
            RECEIVE_ENV["AUDIT_TABLE"]: ("name", "sk"),
        }
        self.ddb, self.events = StubDynamoDB(tables), StubEvents()
        secrets: dict[str, str] = {}
        targets = []
        for dialect in dialects:
            name = f"cpu-{dialect}"
            arn = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}"
            secrets[arn] = value = "cpu-" + uuid.uuid4().hex + uuid.uuid4().hex
            spec: dict[str, Any] = {"name": name, "url": f"https://hooks.example.test/{name}"}
            if dialect == "endpoints":
                spec["basicAuth"] = {"username": USERNAME, "passwordArn": arn}
                targets.append(Target(name, dialect, password=value))
            else:
                spec.update(signatureHeader=SIGNATURE_HEADER, signatureSecretArn=arn)
                targets.append(Target(name, dialect, secret=value))
            public = WebhookEndpoint.model_validate(spec).public_view()
            record = EndpointRecord(name=name, spec=public, status="registered")
            item = to_item(record.model_dump(mode="json", by_alias=True))
            self.ddb.put_item(TableName=RECEIVE_ENV["ENDPOINTS_TABLE"], Item=item)
        self.targets = tuple(targets)
        stubs = {"dynamodb": self.ddb, "events": self.events, "secretsmanager": StubSecrets(secrets)}
        path = ROOT / "functions" / "receive" / "app.py"
        spec_ = importlib.util.spec_from_file_location("bench_receive_cpu_app", path)
        assert spec_ is not None
        assert spec_.loader is not None
        self.module: Any = cast(Any, importlib.util.module_from_spec(spec_))
        with _environment(RECEIVE_ENV):
            spec_.loader.exec_module(self.module)
        self.module.RECEIVER = Receiver.from_settings(
            self.module.SETTINGS, clients=LazyClients(stubs.__getitem__), log=logger, metrics=metrics
        )
        self.floor = Floor(self.ddb, self.events, self.targets)
        self._sample = json.loads((ROOT / "events" / "receive_json.json").read_text(encoding="utf-8"))

    def event(self, prepared: Prepared) -> dict[str, Any]:
        """The API Gateway event of a delivery, as the gateway builds it (the body base64-encoded:
        the API's BinaryMediaTypes is ``*/*``)."""
        name = self.targets[prepared.target].name
        headers = {"Host": "abcdef1234.execute-api.us-east-1.amazonaws.com", "User-Agent": "Cognigy/1.0"}
        headers.update(prepared.headers)
        event = dict(self._sample)
        event.update(
            path=f"/deliveries/{name}",
            headers=headers,
            multiValueHeaders={k: [v] for k, v in headers.items()},
            pathParameters={"name": name},
            body=base64.b64encode(prepared.body).decode(),
            isBase64Encoded=True,
            requestContext={**self._sample["requestContext"], "requestId": str(uuid.uuid4())},
        )
        return event

    @staticmethod
    def context() -> Any:
        """A fresh Lambda context (made by the runtime, not the handler: never timed)."""
        from cogwh.localstack import LambdaContext

        return LambdaContext(
            function_name="cpu-ReceiveFunction",
            function_version="$LATEST",
            invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:cpu-ReceiveFunction",
            memory_limit_in_mb=256,
            aws_request_id=str(uuid.uuid4()),
            log_group_name="/aws/lambda/cpu-ReceiveFunction",
            log_stream_name="local",
            deadline_monotonic=time.monotonic() + 10,
        )

    def handler(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """The Lambda handler (with a fresh context unless given one)."""
        answer: dict[str, Any] = self.module.lambda_handler(event, context or self.context())
        return answer


def preflight(world: CpuWorld, make: Deliveries) -> None:
    """The stubs answer as AWS would for what is measured: per dialect a delivery is accepted, the
    same one again is a duplicate (the conditional put refused), a forgery is refused."""
    sink = io.StringIO()
    with quiet_stdout(), redirect_stdout(sink):
        for index in range(len(world.targets)):
            delivery = make.fresh(index)
            answers = [world.handler(world.event(delivery))["statusCode"] for _ in range(2)]
            answers.append(world.handler(world.event(make.forged(index)))["statusCode"])
            if answers != [202, 200, 401]:
                raise RuntimeError(f"the stubs do not stand in for AWS: {answers} (202, 200, 401 expected)")


#: The layers measured, each over a delivery of its own: the floor, then the receiver's pipeline
#: without and with its info log, then with its metrics and the proxy answer (``handle_event``), then
#: the Lambda handler (the Powertools decorator around it).
LAYERS = ("floor", "pipeline", "logged", "handle_event", "handler")


def measure_cpu(dialects: Sequence[str], deliveries: int, body_bytes: int, seed: int) -> dict[str, float]:
    """``deliveries`` accepted deliveries (after :data:`WARMUP`) through each layer of
    :data:`LAYERS`, interleaved, alternating the dialects: medians of thread CPU milliseconds per
    dialect, their means, and the ratio of the handler to the floor."""
    from cognigy_webhooks.observability import logger

    world = CpuWorld(dialects)
    make = Deliveries(world.targets, "cpu", random.Random(seed), body_bytes)
    receiver = world.module.RECEIVER
    level = logger.log_level
    preflight(world, make)

    def pipeline(event: dict[str, Any], context: Any) -> Any:  # the steps, and the proxy answer
        return receiver.receive(event).to_api_gateway()

    runs: dict[str, Callable[[dict[str, Any], Any], Any]] = {
        "floor": lambda event, context: world.floor(event),
        "pipeline": pipeline,  # run with the logger at WARNING (set untimed)
        "logged": pipeline,
        "handle_event": lambda event, context: receiver.handle_event(event),
        "handler": world.handler,
    }
    samples: dict[tuple[str, str], list[float]] = {(layer, d): [] for layer in LAYERS for d in dialects}
    clock = time.thread_time
    sink = io.StringIO()  # EMF metrics (print) land here; the logger's own stream is fd 1 (quieted)
    with quiet_stdout(), redirect_stdout(sink):
        for n in range(deliveries + WARMUP):
            index = n % len(world.targets)
            dialect = world.targets[index].dialect
            for layer in LAYERS:
                event, context = world.event(make.fresh(index)), world.context()
                if layer == "pipeline":  # the info log of an accepted delivery off, every other step on
                    logger.setLevel("WARNING")
                started = clock()
                reply = runs[layer](event, context)
                spent = clock() - started
                if layer == "pipeline":
                    logger.setLevel(level)
                if reply["statusCode"] != 202:
                    raise RuntimeError(f"{layer}: a delivery was not accepted ({reply['statusCode']})")
                if n >= WARMUP:
                    samples[layer, dialect].append(spent * 1000)
            if n % 64 == 0:
                sink.seek(0)
                sink.truncate()
    handed_on = len(LAYERS) * (deliveries + WARMUP) + len(world.targets)  # + the preflight's
    assert len(world.events.entries) == handed_on, "each delivery handed on once"
    figures: dict[str, float] = {}
    for layer in LAYERS:
        per_dialect = [statistics.median(samples[layer, d]) for d in dialects]
        figures[f"{layer}_cpu_ms"] = statistics.fmean(per_dialect)
        for d, value in zip(dialects, per_dialect, strict=True):
            figures[f"{layer}_cpu_ms_{d}"] = value
    figures["handler_cpu_ratio"] = figures["handler_cpu_ms"] / figures["floor_cpu_ms"]
    return figures
