"""Benchmark: the receive handler against the floor, warm and cold.

Warm: the receive handler's time per valid delivery (1 KiB JSON body, the Lambda handler itself with
its Powertools decorator, endpoint record and secrets cached as they are when warm) against a *floor*
handler that does only the unavoidable work of an accepted delivery: one HMAC-SHA256 over the same
body and the same AWS writes on the same local tables (the conditional put of the delivery, the
conversation counter, the mark as published) plus the same EventBridge put. Both run on the local
stack (moto in this process), interleaved, and the medians are compared.

Cold: the import of the receive handler module against ``import boto3`` alone, each in a fresh
interpreter, alternating, medians compared. The handler and the library are staged in a temporary
directory as ``sam build`` ships them: the layer's Makefile compiles the library's .pyc files in, the
function's own module stays source; third-party packages keep the .pyc files pip compiled. The same is
measured again with nothing compiled (what SAM's plain python builder would ship). boto3 clients are
made on the first delivery, which is reported too (``first_delivery_ms``).

Requests: after the timed deliveries, more of them (their own, untimed) are counted at the receiver's
own boto3 clients (bench/support/receive_requests.py): the AWS requests one accepted delivery makes
and the units AWS bills for them, each dialect apart (``endpoints``: a Cognigy.AI Flow output under
Basic auth, the default; ``tutorial``: the signed body above), with the caches warm, and again with
both caches (the endpoint record, the secret) emptied before each delivery, as for the first
delivery an instance sees of an endpoint. The bytes the function logs per delivery (its JSON log
lines and the EMF metrics line) are counted too. These are the capacity model's per-delivery inputs
(docs/CAPACITY.md); the top-level ones are the default dialect's.

    .venv/bin/python bench/receive.py [--deliveries 300] [--imports 15] [--counted 40] [--library DIR]

Last line: one JSON object with per_delivery_ms, floor_ms, ratio, cold_import_ms, boto3_import_ms,
import_ratio (and a few extra figures), then the per-delivery AWS figures:
dynamodb_writes_per_delivery, dynamodb_write_units_per_delivery, dynamodb_reads_per_delivery,
dynamodb_read_units_per_delivery, eventbridge_puts_per_delivery, eventbridge_events_per_delivery,
secrets_calls_per_delivery (caches warm), the same on a cache miss (``cache_miss``), claim_item_bytes,
log_bytes_per_delivery, handler_ms (the warm per-delivery time above), lambda_memory_mb, the cache
lifetimes (record_cache_seconds, secret_cache_seconds) and ``by_dialect``.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import hashlib
import hmac
import io
import json
import os
import py_compile
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from random import Random
from typing import Any

from support.receive_cpu import quiet_stdout
from support.receive_deliveries import USERNAME, Deliveries, Target
from support.receive_requests import RequestCounter

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-signing-secret-0123456789abcdefghij"
BASIC_PASSWORD = "bench-basic-password-0123456789abcdefghij"
PARAMETERS = {"CognigyApiKeySecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench-key"}
RECEIVE_ENV = {
    "ENDPOINTS_TABLE": "bench-EndpointsTable",
    "AUDIT_TABLE": "bench-AuditTable",
    "DELIVERIES_TABLE": "bench-DeliveriesTable",
    "DELIVERY_BUS_NAME": "bench-deliveries",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "cognigy-webhooks",
    "POWERTOOLS_METRICS_NAMESPACE": "CognigyWebhooks",
}


#: The per-delivery AWS figures of the last line (the endpoints dialect's, caches warm), for the
#: capacity model (docs/capacity/model.py), then what else the counting gives.
PER_DELIVERY = (
    "dynamodb_writes_per_delivery",
    "dynamodb_transactional_writes_per_delivery",
    "dynamodb_write_units_per_delivery",
    "dynamodb_reads_per_delivery",
    "dynamodb_read_units_per_delivery",
    "eventbridge_puts_per_delivery",
    "eventbridge_events_per_delivery",
    "secrets_calls_per_delivery",
    "s3_requests_per_delivery",
    "log_bytes_per_delivery",
)
REQUEST_EXTRAS = (
    "cache_miss",
    "claim_item_bytes",
    "lambda_memory_mb",
    "record_cache_seconds",
    "secret_cache_seconds",
    "counted_deliveries",
    "body_bytes",
    "by_dialect",
)


def body_of(i: int) -> bytes:
    """A 1 KiB JSON delivery, unique per i (a new conversation each: no loop bound is reached)."""
    doc: dict[str, Any] = {"sessionId": f"bench-{i}-{uuid.uuid4().hex}", "userId": "u-1", "text": ""}
    doc["data"] = {"channel": "webhook", "seq": i}
    size = len(json.dumps(doc, separators=(",", ":")).encode())
    doc["text"] = "x" * (1024 - size)
    body = json.dumps(doc, separators=(",", ":")).encode()
    assert len(body) == 1024, len(body)
    return body


# --- cold import --------------------------------------------------------------------------------------

_MEASURE = (
    "import sys, time; sys.path.insert(0, {code!r}); w = time.perf_counter(); c = time.process_time(); "
    "import {module}; print((time.perf_counter() - w) * 1000, (time.process_time() - c) * 1000)"
)
_HEAVY = "print(' '.join(sorted(m for m in ('pydantic', 'httpx', 'aws_xray_sdk') if m in sys.modules)))"


def stage(into: Path, library: Path, *, precompile: bool) -> tuple[Path, Path]:
    """The handler and the library copied as ``sam build`` ships them: the layer's Makefile
    (shared/Makefile) compiles the library's .pyc files in (``precompile``, unchecked-hash: valid
    whatever the file times) while the function's own code stays source (SAM's python builder); without
    ``precompile`` nothing is compiled (Lambda's file system is read-only, so every cold start compiles
    the sources again). Third-party packages keep the .pyc files pip compiled, as in the layer."""
    layer, code = into / "layer", into / "function"
    shutil.copytree(library, layer / "cognigy_webhooks", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "functions" / "receive", code, ignore=shutil.ignore_patterns("__pycache__"))
    if precompile:
        compileall.compile_dir(
            layer, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
        )
    return layer, code


def cold_imports(runs: int, library: Path, *, precompile: bool) -> dict[str, Any]:
    """Median wall (and CPU) milliseconds of ``import app`` (the receive handler) and of ``import
    boto3``, each in a fresh interpreter, alternating so that the machine's load hits both alike."""
    samples: dict[str, list[tuple[float, float]]] = {"boto3": [], "app": []}
    with tempfile.TemporaryDirectory(prefix="cogwh-bench-") as tmp:
        layer, code = stage(Path(tmp), library, precompile=precompile)
        env = {**os.environ, **RECEIVE_ENV, "PYTHONPATH": str(layer), "PYTHONDONTWRITEBYTECODE": "1"}

        def once(module: str, extra: str = "") -> list[str]:
            command = _MEASURE.format(code=str(code), module=module) + extra
            out = subprocess.run(
                [sys.executable, "-c", command], env=env, capture_output=True, text=True, check=True, cwd=tmp
            )
            return out.stdout.strip().splitlines()

        lines = once("app", "; " + _HEAVY + "; print(sys.modules['cognigy_webhooks'].__file__)")
        heavy = lines[1].split()
        assert lines[2].startswith(str(layer)), f"the staged library was not the one imported: {lines[2]}"
        for _ in range(runs):
            for module in ("boto3", "app"):
                wall, cpu = once(module)[0].split()
                samples[module].append((float(wall), float(cpu)))

    def median(module: str, i: int) -> float:
        return statistics.median(s[i] for s in samples[module])

    pairs = [a[0] / b[0] for a, b in zip(samples["app"], samples["boto3"], strict=True)]
    return {
        "cold_import_ms": median("app", 0),
        "boto3_import_ms": median("boto3", 0),
        "cold_import_cpu_ms": median("app", 1),
        "boto3_import_cpu_ms": median("boto3", 1),
        "paired_ratio": statistics.median(pairs),
        "heavy": heavy,
    }


# --- warm deliveries ----------------------------------------------------------------------------


@contextlib.contextmanager
def logged_bytes() -> Iterator[list[int]]:
    """fd 1 (where the function's logger writes) into a temporary file for the block; the list
    given holds, once the block is over, how many bytes were written to it."""
    sys.stdout.flush()
    total: list[int] = []
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(1)
        os.dup2(sink.fileno(), 1)
        try:
            yield total
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
            total.append(os.fstat(sink.fileno()).st_size)


def warm(deliveries: int, counted: int) -> dict[str, Any]:
    from cognigy_webhooks.dal.deliveries import STATE_PUBLISHED, delivery_id_for
    from cognigy_webhooks.dal.schema import to_item
    from cognigy_webhooks.dal.secretsmanager import put_secret
    from cognigy_webhooks.models import WebhookEndpoint
    from cognigy_webhooks.models.records import EndpointRecord
    from cognigy_webhooks.signing import sign_webhook_payload
    from cogwh.localstack import LocalStack
    from cogwh.localstack.handlers import make_context

    with LocalStack(ROOT, parameters=PARAMETERS, stack_name="bench") as stack:
        arn = put_secret(stack.client("secretsmanager"), "cognigy-webhooks/bench/orders/signature", SECRET)
        spec = WebhookEndpoint(
            name="orders",
            url="https://orders.example.com/hook",
            signatureHeader="X-Cognigy-Signature",
            signatureSecretArn=arn,
        )
        password_arn = put_secret(
            stack.client("secretsmanager"), "cognigy-webhooks/bench/orders-basic/password", BASIC_PASSWORD
        )
        basic = WebhookEndpoint.model_validate(
            {
                "name": "orders-basic",
                "url": "https://orders.example.com/basic",
                "basicAuth": {"username": USERNAME, "passwordArn": password_arn},
            }
        )
        for name, endpoint in (("orders", spec), ("orders-basic", basic)):
            record = EndpointRecord(name=name, spec=endpoint.public_view(), status="registered")
            stack.client("dynamodb").put_item(
                TableName=stack.outputs["EndpointsTableName"],
                Item=to_item(record.model_dump(mode="json", by_alias=True)),
            )
        fn = stack.functions["ReceiveFunction"]
        module = sys.modules[fn.module_name]
        handler = module.lambda_handler
        receiver = module.RECEIVER
        settings = receiver.settings
        ddb = receiver.ledger._clients.get("dynamodb")
        events = receiver.bus._clients.get("events")
        key = SECRET.encode()

        def event_for(body: bytes) -> dict[str, Any]:
            return {
                "resource": "/deliveries/{name}",
                "path": "/deliveries/orders",
                "httpMethod": "POST",
                "headers": {
                    "Content-Type": "application/json",
                    "X-Cognigy-Signature": sign_webhook_payload(body, SECRET),
                },
                "multiValueHeaders": None,
                "pathParameters": {"name": "orders"},
                "requestContext": {"requestId": str(uuid.uuid4()), "stage": "v1"},
                "body": body.decode(),
                "isBase64Encoded": False,
            }

        def floor(body: bytes, session: str) -> None:
            """The unavoidable work: one HMAC over the body, then the very requests the handler sends
            for an accepted delivery (same expressions, same attributes), with no parsing, checks,
            logs or metrics around them."""
            now = time.time()
            digest = hmac.new(key, body, hashlib.sha256).digest()
            delivery_id = delivery_id_for("orders", "signature", digest.hex())
            pk = {"pk": {"S": f"d#{delivery_id}"}}
            stamp = {"S": "2026-01-01T00:00:00.000000Z"}
            ddb.put_item(
                TableName=settings.deliveries_table,
                Item={
                    "deliveryId": {"S": delivery_id},
                    "endpoint": {"S": "orders"},
                    "receivedAt": stamp,
                    "replayKind": {"S": "signature"},
                    "payloadFormat": {"S": "JSON"},
                    "contentType": {"S": "application/json"},
                    "body": {"B": body},
                    "expiresAt": {"N": str(int(now) + 86400)},
                    "sessionId": {"S": session},
                    **pk,
                    "state": {"S": "claimed"},
                    "claimedAt": {"N": f"{now:.6f}"},
                    "claimToken": {"S": "t"},
                },
                ConditionExpression="attribute_not_exists(pk) OR (#st = :claimed AND claimedAt < :stale)",
                ExpressionAttributeNames={"#st": "state"},
                ExpressionAttributeValues={":claimed": {"S": "claimed"}, ":stale": {"N": f"{now - 60:.6f}"}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            step = int(now // 10)
            names = {"#c": f"b{step}", **{f"#o{i}": f"b{step - 6 - i}" for i in range(6)}}
            ddb.update_item(
                TableName=settings.deliveries_table,
                Key={"pk": {"S": f"l#orders#{session}"}},
                UpdateExpression="ADD #c :one SET expiresAt = :exp REMOVE #o0, #o1, #o2, #o3, #o4, #o5",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={":one": {"N": "1"}, ":exp": {"N": str(int(now) + 180)}},
                ReturnValues="ALL_NEW",
            )
            detail = {"endpoint": "orders", "deliveryId": delivery_id, "payload": body.decode()}
            events.put_events(
                Entries=[
                    {
                        "Source": "cognigy-webhooks",
                        "DetailType": "Cognigy Delivery",
                        "Detail": json.dumps(detail, separators=(",", ":")),
                        "EventBusName": settings.bus_name,
                    }
                ]
            )
            ddb.update_item(
                TableName=settings.deliveries_table,
                Key=pk,
                UpdateExpression="SET #st = :state, finishedAt = :now",
                ConditionExpression="claimToken = :mine",
                ExpressionAttributeNames={"#st": "state"},
                ExpressionAttributeValues={
                    ":state": {"S": STATE_PUBLISHED},
                    ":now": {"N": f"{now:.6f}"},
                    ":mine": {"S": "t"},
                },
            )

        sink = io.StringIO()  # EMF metrics (print) land here; the logger's own stream is fd 1 (silenced)
        # first delivery: makes the boto3 clients and fills the record and secret caches
        first_body = body_of(-1)
        first_event = event_for(first_body)
        with redirect_stdout(sink):
            started = time.perf_counter()
            first = handler(first_event, make_context(fn))
            first_ms = (time.perf_counter() - started) * 1000
        assert first["statusCode"] == 202, first

        handler_ms: list[float] = []
        floor_ms: list[float] = []
        warmup = 20
        for i in range(deliveries + warmup):
            body = body_of(i)
            event = event_for(body)
            context = make_context(fn)
            session = uuid.uuid4().hex
            with redirect_stdout(sink):
                t0 = time.perf_counter()
                result = handler(event, context)
                t1 = time.perf_counter()
                floor(body_of(10_000_000 + i), session)
                t2 = time.perf_counter()
            if result["statusCode"] != 202:
                raise SystemExit(f"delivery {i} was not accepted: {result}")
            sink.seek(0)
            sink.truncate()
            if i >= warmup:
                handler_ms.append((t1 - t0) * 1000)
                floor_ms.append((t2 - t1) * 1000)
        requests = count_requests(stack, fn, handler, receiver, event_for, counted)
        return {
            **requests,
            "per_delivery_ms": statistics.median(handler_ms),
            "floor_ms": statistics.median(floor_ms),
            "per_delivery_p90_ms": statistics.quantiles(handler_ms, n=10)[-1],
            "floor_p90_ms": statistics.quantiles(floor_ms, n=10)[-1],
            "first_delivery_ms": first_ms,
        }


def count_requests(
    stack: Any, fn: Any, handler: Any, receiver: Any, signed_event: Any, deliveries: int
) -> dict[str, Any]:
    """The AWS requests per accepted delivery, each dialect on ``deliveries`` deliveries of its own
    (none timed), caches warm then emptied before each one; and the bytes logged per delivery."""
    from cogwh.localstack.handlers import make_context

    counter = RequestCounter(stack.client("dynamodb"))
    clients = receiver.ledger._clients
    for service in ("dynamodb", "events", "secretsmanager", "s3"):
        counter.watch(clients.get(service))
    make = Deliveries(
        [Target("orders-basic", "endpoints", password=BASIC_PASSWORD)], "count", Random(7), 1024
    )

    def basic_event(i: int) -> dict[str, Any]:
        delivery = make.fresh(0)
        event = signed_event(delivery.body)
        event.update(
            path="/deliveries/orders-basic", pathParameters={"name": "orders-basic"}, headers=delivery.headers
        )
        return event

    events = {"endpoints": basic_event, "tutorial": lambda i: signed_event(body_of(20_000_000 + i))}
    sink = io.StringIO()
    by_dialect: dict[str, dict[str, Any]] = {}
    for dialect, event_of in events.items():
        figures: dict[str, Any] = {}
        for cache in ("warm", "cache_miss"):
            handler(event_of(-1), make_context(fn))  # this dialect's caches filled
            counter.reset()
            with logged_bytes() as logged, redirect_stdout(sink):
                for i in range(deliveries):
                    if cache == "cache_miss":
                        receiver.directory.clear()
                        receiver.secrets.clear()
                    result = handler(event_of(i), make_context(fn))
                    if result["statusCode"] != 202:
                        raise SystemExit(f"counted {dialect} delivery {i} was not accepted: {result}")
            counted = counter.figures(deliveries)
            if cache == "warm":
                figures.update(counted)
                figures["claim_item_bytes"] = counter.largest_item_written
                emitted = len(sink.getvalue().encode())
                figures["log_bytes"] = round((logged[0] + emitted) / deliveries, 1)
            else:
                figures["cache_miss"] = counted
            sink.seek(0)
            sink.truncate()
        by_dialect[dialect] = figures
    default = by_dialect["endpoints"]  # CognigyApi's default dialect
    settings = receiver.settings
    per_delivery = {k: v for k, v in default.items() if k not in ("cache_miss", "claim_item_bytes")}
    return {
        **{f"{k}_per_delivery": v for k, v in per_delivery.items()},
        "cache_miss": {f"{k}_per_delivery": v for k, v in default["cache_miss"].items()},
        "claim_item_bytes": default["claim_item_bytes"],
        "lambda_memory_mb": fn.memory_mb,
        "record_cache_seconds": settings.record_cache_seconds,
        "secret_cache_seconds": settings.secret_max_age,
        "counted_deliveries": deliveries,
        "body_bytes": 1024,
        "by_dialect": by_dialect,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=300, help="warm deliveries measured (default 300)")
    parser.add_argument("--imports", type=int, default=15, help="fresh interpreters per import (default 15)")
    parser.add_argument(
        "--counted",
        type=int,
        default=40,
        help="deliveries whose AWS requests are counted, per dialect and cache",
    )
    parser.add_argument(
        "--library",
        type=Path,
        default=ROOT / "shared" / "cognigy_webhooks",
        help="the cognigy_webhooks package to import cold (default: this repository's)",
    )
    args = parser.parse_args()

    with quiet_stdout():
        warm_figures = warm(args.deliveries, args.counted)
    shipped = cold_imports(args.imports, args.library, precompile=True)
    sources = cold_imports(args.imports, args.library, precompile=False)
    figures: dict[str, Any] = {
        **warm_figures,
        "ratio": warm_figures["per_delivery_ms"] / warm_figures["floor_ms"],
        "cold_import_ms": shipped["cold_import_ms"],
        "boto3_import_ms": shipped["boto3_import_ms"],
        "import_ratio": shipped["cold_import_ms"] / shipped["boto3_import_ms"],
        "import_ratio_paired": shipped["paired_ratio"],
        "import_cpu_ratio": shipped["cold_import_cpu_ms"] / shipped["boto3_import_cpu_ms"],
        "sources_import_ms": sources["cold_import_ms"],
        "sources_boto3_import_ms": sources["boto3_import_ms"],
        "sources_import_ratio": sources["cold_import_ms"] / sources["boto3_import_ms"],
    }

    def show(label: str, text: str) -> None:
        print(f"{label:<28}{text}")

    f = figures
    show("warm deliveries measured", f"{args.deliveries} (1 KiB JSON), interleaved with the floor")
    show(
        "handler per delivery", f"{f['per_delivery_ms']:.2f} ms median, p90 {f['per_delivery_p90_ms']:.2f} ms"
    )
    show("floor per delivery", f"{f['floor_ms']:.2f} ms median, p90 {f['floor_p90_ms']:.2f} ms")
    show("ratio", f"{f['ratio']:.3f}  (target <= 1.3)")
    show("first delivery", f"{f['first_delivery_ms']:.1f} ms (makes the boto3 clients, fills the caches)")
    for label, c in (("as sam build ships it", shipped), ("sources only, nothing compiled", sources)):
        show(f"cold import, {label}", "")
        show("  handler module", f"{c['cold_import_ms']:.1f} ms wall, {c['cold_import_cpu_ms']:.1f} ms CPU")
        show("  import boto3", f"{c['boto3_import_ms']:.1f} ms wall, {c['boto3_import_cpu_ms']:.1f} ms CPU")
        ratio = c["cold_import_ms"] / c["boto3_import_ms"]
        show("  ratio", f"{ratio:.3f} (pairwise median {c['paired_ratio']:.3f}; target <= 1.3)")
    show("", f"(medians of {args.imports} fresh interpreters each, alternating)")
    show(
        "heavy modules imported",
        f"{', '.join(shipped['heavy']) or 'none'} (of pydantic, httpx, aws_xray_sdk)",
    )
    order = [
        "per_delivery_ms",
        "floor_ms",
        "ratio",
        "cold_import_ms",
        "boto3_import_ms",
        "import_ratio",
        "import_ratio_paired",
        "import_cpu_ratio",
        "sources_import_ms",
        "sources_boto3_import_ms",
        "sources_import_ratio",
        "first_delivery_ms",
        "per_delivery_p90_ms",
        "floor_p90_ms",
    ]
    m = figures["cache_miss"]
    show(
        "AWS requests per delivery",
        f"{f['dynamodb_writes_per_delivery']:g} DynamoDB writes "
        f"({f['dynamodb_write_units_per_delivery']:g} write units; claim item {f['claim_item_bytes']} B), "
        f"{f['dynamodb_reads_per_delivery']:g} reads, {f['eventbridge_puts_per_delivery']:g} PutEvents, "
        f"{f['secrets_calls_per_delivery']:g} Secrets Manager calls",
    )
    show("", f"(caches warm; {args.counted} Basic-auth deliveries counted)")
    show(
        "  on a cache miss",
        f"{m['dynamodb_reads_per_delivery']:g} DynamoDB reads "
        f"({m['dynamodb_read_units_per_delivery']:g} units), {m['secrets_calls_per_delivery']:g} "
        "Secrets Manager calls (the record and the secret fetched again)",
    )
    show("logged per delivery", f"{f['log_bytes_per_delivery']:g} bytes (JSON log lines + the EMF line)")
    rounded = {k: round(figures[k], 3) for k in order}
    requests = {k: figures[k] for k in (*PER_DELIVERY, *REQUEST_EXTRAS)}
    print(json.dumps({**rounded, **requests, "handler_ms": rounded["per_delivery_ms"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
