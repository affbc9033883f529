"""Load test of the receiver: concurrent senders through the local gateway, with duplicates and
forgeries mixed in; then the receive handler's CPU per delivery against a minimal handler's.

Load. The real template runs on the local stack in this process and its APIs are served over HTTPS
on 127.0.0.1 by the local gateway (cogwh/gateway.py; a certificate from a throwaway CA). ``--endpoints``
endpoints are registered as the register step records them. In the endpoints dialect (the default)
each has HTTP Basic auth alone and gets Cognigy.AI Flow outputs, ``{userId, sessionId, AIOutput:
{text, data, traceId, ...}}``: one to three outputs per turn sharing a ``traceId``, at most
:data:`OUTPUTS_PER_SESSION` per session (under the loop guard's bound, ``LoopMaxPerWindow``). In the
tutorial's dialect each has a signing secret and gets signed bodies; ``--dialect both`` alternates.
Bodies are ``--body-bytes`` long.

``--senders`` threads, in a child process of their own (they do not share the server's interpreter
lock) and each with one keep-alive HTTPS connection on the loopback, send for ``--seconds``: with
probability ``--bad`` a fresh delivery with a wrong password, a wrong user name or none (a signature
by another secret, over other bytes, or none), with probability ``--duplicates`` one sent before
sent again byte for byte (picked from the last :data:`RECENT` sent by any sender, so it often races
its original still in flight), otherwise a fresh one. Before the clock starts, one delivery per
endpoint warms the receiver (its clients and caches); it is checked like the others.

Counted: accepted (202) per second; p50/p99 latency of every request; 5xx answers; lost (a delivery
id answered 202 that is not on the bus: an EventBridge rule on the delivery bus targets an SQS queue of
the bench's, drained once every sender has its answers, since the receiver answers 202 only once the
event is out); double hand-offs (a delivery id on the bus more than once); duplicates answered 200;
bad ones answered 401. Anything else unexpected is printed too: a bad delivery accepted, a body
accepted twice, a delivery left ``claimed`` in the deliveries table, an event on the bus that no 202
announced, transport errors. When there are 5xx answers, the receiver's warnings and errors of the
run are summarised (they say why). The exit status is 1 unless lost, double hand-offs and 5xx are 0.

CPU. On this machine the local gateway (uvicorn, moto's in-process AWS) is the bottleneck, not the
handler; so the handler's own CPU per accepted delivery is measured with the AWS clients stubbed
(bench/support/receive_cpu.py: in-memory stand-ins for DynamoDB, EventBridge and Secrets Manager; no
moto, no botocore): the real Lambda handler (functions/receive/app.py, its Powertools decorator, logs
and metrics included) against a minimal handler doing only the unavoidable work of an accepted
delivery (decode the body, the same Basic-auth digests or HMAC, parse the JSON, the delivery id, the
same four requests on the same stubs, the event's JSON, the answer). Thread CPU time, interleaved
delivery by delivery, medians; ``handler_cpu_ratio`` = handler / floor (aim: at most 2). Where the
handler's CPU goes is printed beside it: the pipeline alone, its info log line, the metrics and the
proxy answer, the Powertools decorator (each layer measured on deliveries of its own).

    .venv/bin/python bench/receive_load.py [--senders 16] [--seconds 10] [--duplicates 0.1] [--bad 0.05]
        [--endpoints 2] [--dialect endpoints|tutorial|both] [--body-bytes 1024] [--cpu-deliveries 1500]

Last line: one JSON object: senders, seconds, sent, accepted_per_second, p50_ms, p99_ms,
server_errors, lost, double_handoffs, duplicates_200, bad_401, handler_cpu_ms, floor_cpu_ms,
handler_cpu_ratio (then a few extra figures).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import random
import ssl
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.receive_cpu import measure_cpu, quiet_stdout
from support.receive_deliveries import DIALECTS, SIGNATURE_HEADER, USERNAME, Deliveries, Prepared, Target

ROOT = Path(__file__).resolve().parents[1]
STACK = "loadbench"
PARAMETERS = {"CognigyApiKeySecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:load-key"}
#: The receiver's default body limit (ReceiveMaxBodyBytes): a bigger body is a 413, not a delivery.
MAX_BODY_BYTES = 256 * 1024
#: At most this many senders (the local gateway's listen backlog is 512).
MAX_SENDERS = 256
#: How far back a duplicate reaches: the last deliveries sent by any sender.
RECENT = 32


# --- what is sent ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What the senders' process is given (the targets' credentials never show in a repr)."""

    base_url: str
    ca_file: str
    targets: tuple[Target, ...]
    senders: int
    seconds: float
    duplicates: float
    bad: float
    body_bytes: int
    seed: int


@dataclass(frozen=True)
class Sent:
    """One request's outcome."""

    kind: str  # warmup | fresh | duplicate | bad
    key: str
    target: int
    status: int  # 0: no answer (a transport error)
    latency: float
    delivery_id: str | None = None
    detail: str | None = None  # the answer's message (not 2xx) or the transport error's type


@dataclass
class Sending:
    """Every request's outcome (the warm-up's first), and how long the measured sending took."""

    sent: list[Sent]
    seconds: float


def post(client: Any, plan: Plan, prepared: Prepared, kind: str) -> Sent:
    import httpx

    name = plan.targets[prepared.target].name
    started = time.perf_counter()
    try:
        resp = client.post(f"/deliveries/{name}", content=prepared.body, headers=prepared.headers)
    except httpx.HTTPError as exc:
        return Sent(
            kind, prepared.key, prepared.target, 0, time.perf_counter() - started, None, type(exc).__name__
        )
    latency = time.perf_counter() - started
    try:
        doc = resp.json()
    except ValueError:
        doc = {}
    doc = doc if isinstance(doc, dict) else {}
    detail = None if resp.status_code < 300 else str(doc.get("message", resp.text[:200]))
    return Sent(kind, prepared.key, prepared.target, resp.status_code, latency, doc.get("deliveryId"), detail)


def send_all(plan: Plan) -> Sending:
    """The senders (run in a child process): warm-up, then ``plan.senders`` threads for
    ``plan.seconds``. Returns every request's outcome."""
    import httpx

    context = ssl.create_default_context(cafile=plan.ca_file)
    run = uuid.uuid4().hex[:8]

    def client() -> httpx.Client:
        return httpx.Client(base_url=plan.base_url, verify=context, timeout=60.0)

    warm = Deliveries(plan.targets, f"{run}-w", random.Random(plan.seed), plan.body_bytes)
    with client() as http:
        warmup = [post(http, plan, warm.fresh(i), "warmup") for i in range(len(plan.targets))]

    recent: list[Prepared] = []
    lock = threading.Lock()
    results: list[list[Sent]] = [[] for _ in range(plan.senders)]
    crashed: list[BaseException] = []
    started = time.perf_counter()
    deadline = started + plan.seconds

    def sender(i: int) -> None:
        rng = random.Random(plan.seed * 7919 + i)
        make = Deliveries(plan.targets, f"{run}-{i}", rng, plan.body_bytes)
        out = results[i]
        try:
            with client() as http:
                while time.perf_counter() < deadline:
                    roll = rng.random()
                    target = rng.randrange(len(plan.targets))
                    kind = "fresh"
                    if roll < plan.bad:
                        prepared, kind = make.forged(target), "bad"
                    elif roll < plan.bad + plan.duplicates and recent:
                        with lock:
                            earlier = rng.choice(recent[-RECENT:])
                        prepared, kind = make.again(earlier), "duplicate"
                    else:
                        prepared = make.fresh(target)
                        with lock:  # known before it is sent: a duplicate may race it
                            recent.append(prepared)
                            del recent[: -4 * RECENT]
                    out.append(post(http, plan, prepared, kind))
        except BaseException as exc:  # a bug of the bench: reported, never a hang
            crashed.append(exc)

    threads = [threading.Thread(target=sender, args=(i,), daemon=True) for i in range(plan.senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if crashed:
        raise RuntimeError(f"{len(crashed)} senders crashed: {type(crashed[0]).__name__}: {crashed[0]}")
    seconds = time.perf_counter() - started
    return Sending(warmup + [s for out in results for s in out], seconds)


# --- the local stack's side -----------------------------------------------------------------------


@dataclass
class Observed:
    """What the parent knows of the run: the stack's records of it, read once the senders are done."""

    bus: Counter[str] = field(default_factory=Counter)
    left_claimed: int = 0
    problems: Counter[str] = field(default_factory=Counter)


class Capture(logging.Handler):
    """The receiver's warnings and errors during the run (what explains a 5xx), by message."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        why = getattr(record, "error", None) or getattr(record, "reason", None)
        self.seen[f"{record.getMessage()}: {why}"[:300] if why else record.getMessage()[:300]] += 1


def register(stack: Any, dialect: str, index: int) -> Target:
    from cognigy_webhooks.dal.schema import to_item
    from cognigy_webhooks.dal.secretsmanager import put_secret, secret_name
    from cognigy_webhooks.models import WebhookEndpoint
    from cognigy_webhooks.models.records import EndpointRecord

    name = f"load-{dialect}-{index}"
    value = "load-" + uuid.uuid4().hex + uuid.uuid4().hex
    spec: dict[str, Any] = {
        "name": name,
        "url": f"https://hooks.example.test/{name}",
        "payloadFormat": "JSON",
    }
    sm = stack.client("secretsmanager")
    if dialect == "endpoints":
        arn = put_secret(sm, secret_name(STACK, name, "basic-auth"), value)
        spec["basicAuth"] = {"username": USERNAME, "passwordArn": arn}
        target = Target(name, dialect, password=value)
    else:
        arn = put_secret(sm, secret_name(STACK, name, "signature"), value)
        spec.update(signatureHeader=SIGNATURE_HEADER, signatureSecretArn=arn)
        target = Target(name, dialect, secret=value)
    endpoint = WebhookEndpoint.model_validate(spec)
    record = EndpointRecord(name=name, spec=endpoint.public_view(), status="registered")
    stack.client("dynamodb").put_item(
        TableName=stack.outputs["EndpointsTableName"],
        Item=to_item(record.model_dump(mode="json", by_alias=True)),
    )
    return target


def capture_queue(stack: Any) -> str:
    """An SQS queue receiving every delivery event of the bus (a rule, as a consumer's would be)."""
    sqs, events = stack.client("sqs"), stack.client("events")
    url = str(sqs.create_queue(QueueName="load-capture")["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = stack.outputs["DeliveryBusName"]
    events.put_rule(
        Name="load-all", EventBusName=bus, EventPattern=json.dumps({"detail-type": ["Cognigy Delivery"]})
    )
    events.put_targets(Rule="load-all", EventBusName=bus, Targets=[{"Id": "capture", "Arn": arn}])
    return url


def drained(stack: Any, queue_url: str) -> Counter[str]:
    """Every delivery id on the bus, with how many times it came."""
    sqs = stack.client("sqs")
    ids: Counter[str] = Counter()
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return ids
        for message in messages:
            ids[json.loads(message["Body"])["detail"]["deliveryId"]] += 1
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )


def left_claimed(stack: Any) -> int:
    """Deliveries still ``claimed`` (neither handed on nor given back) once every answer is in."""
    ddb = stack.client("dynamodb")
    kwargs: dict[str, Any] = {
        "TableName": stack.outputs["DeliveriesTableName"],
        "ProjectionExpression": "pk",
        "FilterExpression": "#st = :claimed",
        "ExpressionAttributeNames": {"#st": "state"},
        "ExpressionAttributeValues": {":claimed": {"S": "claimed"}},
    }
    count = 0
    while True:
        resp = ddb.scan(**kwargs)
        count += len(resp["Items"])
        if "LastEvaluatedKey" not in resp:
            return count
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def load(args: argparse.Namespace, dialects: tuple[str, ...]) -> tuple[Sending, Observed]:
    from cogwh.certs import LocalCA
    from cogwh.gateway import serve_gateway
    from cogwh.localstack import LocalStack

    observed = Observed()
    capture = Capture()
    service_log = logging.getLogger("cognigy-webhooks")
    ca = LocalCA()
    try:
        leaf = ca.issue("127.0.0.1")
        with quiet_stdout(), LocalStack(ROOT, parameters=PARAMETERS, stack_name=STACK) as stack:
            queue_url = capture_queue(stack)
            targets = tuple(register(stack, dialects[i % len(dialects)], i) for i in range(args.endpoints))
            with serve_gateway(stack, certfile=leaf.cert, keyfile=leaf.key) as gateway:
                plan = Plan(
                    base_url=gateway.api_url("ReceiveApi"),
                    ca_file=str(ca.ca_file),
                    targets=targets,
                    senders=args.senders,
                    seconds=args.seconds,
                    duplicates=args.duplicates,
                    bad=args.bad,
                    body_bytes=args.body_bytes,
                    seed=args.seed,
                )
                service_log.addHandler(capture)
                try:
                    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                        sending = pool.submit(send_all, plan).result()
                finally:
                    service_log.removeHandler(capture)
            observed.bus = drained(stack, queue_url)
            observed.left_claimed = left_claimed(stack)
            observed.problems = capture.seen
    finally:
        ca.close()
    return sending, observed


# --- the tally ------------------------------------------------------------------------------------


def tally(sending: Sending, observed: Observed) -> dict[str, Any]:
    sent = sending.sent
    timed = [s for s in sent if s.kind != "warmup"]
    valid = [s for s in sent if s.kind != "bad"]
    bad = [s for s in sent if s.kind == "bad"]
    accepted_ids = {s.delivery_id for s in sent if s.status == 202 and s.delivery_id}
    unnamed = sum(1 for s in sent if s.status == 202 and not s.delivery_id)  # cannot be found: lost
    per_key: dict[str, list[Sent]] = {}
    for s in valid:
        per_key.setdefault(s.key, []).append(s)
    accepted_twice = sum(1 for group in per_key.values() if sum(s.status == 202 for s in group) > 1)
    latencies = sorted(s.latency * 1000 for s in timed if s.status)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else [0.0] * 99
    statuses = Counter((s.kind, s.status) for s in sent)
    five = [s for s in sent if s.status >= 500]
    return {
        "sent": len(timed),
        "accepted": sum(1 for s in timed if s.status == 202),
        "accepted_per_second": sum(1 for s in timed if s.status == 202) / sending.seconds,
        "requests_per_second": len(timed) / sending.seconds,
        "p50_ms": cuts[49],
        "p99_ms": cuts[98],
        "server_errors": len(five),
        "lost": len(accepted_ids - set(observed.bus)) + unnamed,
        "double_handoffs": sum(1 for n in observed.bus.values() if n > 1),
        "duplicates_sent": len(valid) - len(per_key),
        "duplicates_200": sum(1 for s in valid if s.status == 200),
        "bad_sent": len(bad),
        "bad_401": sum(1 for s in bad if s.status == 401),
        "bad_accepted": sum(1 for s in bad if s.status in (200, 202)),
        "accepted_twice": accepted_twice,
        "published_unannounced": len(set(observed.bus) - accepted_ids),
        "left_claimed": observed.left_claimed,
        "transport_errors": sum(1 for s in sent if s.status == 0),
        "measured_seconds": sending.seconds,
        "_statuses": statuses,
        "_five": Counter(f"{s.status} {s.detail}" for s in five),
        "_transport": Counter(s.detail for s in sent if s.status == 0),
    }


# --- main -----------------------------------------------------------------------------------------


def fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction between 0 and 1")
    return value


def bounded(top: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not 1 <= value <= top:
            raise argparse.ArgumentTypeError(f"{text} is not between 1 and {top}")
        return value

    return parse


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add("--senders", type=bounded(MAX_SENDERS), default=16, help="concurrent senders (default 16)")
    add("--seconds", type=float, default=10.0, help="how long they send (default 10)")
    add("--duplicates", type=fraction, default=0.1, help="share of re-sends (default 0.1)")
    add("--bad", type=fraction, default=0.05, help="share of forgeries (default 0.05)")
    add("--endpoints", type=bounded(100), default=2, help="endpoints registered (default 2)")
    add(
        "--dialect",
        choices=(*DIALECTS, "both"),
        default="endpoints",
        help="endpoints: Basic auth, Flow outputs (default); tutorial: signed; both: alternating",
    )
    add("--body-bytes", type=bounded(MAX_BODY_BYTES), default=1024, help="body size (default 1024)")
    add(
        "--cpu-deliveries",
        type=bounded(100_000),
        default=1500,
        help="deliveries per layer in the CPU measurement (default 1500)",
    )
    add("--seed", type=int, default=1, help="the senders' random choices (default 1)")
    args = parser.parse_args()
    if args.duplicates + args.bad > 1:
        parser.error("--duplicates and --bad add up to more than 1")
    if not 0 < args.seconds <= 3600:
        parser.error("--seconds must be more than 0 and at most 3600")

    print(
        f"load: {args.senders} senders for {args.seconds:g} s through the local gateway ...", file=sys.stderr
    )
    dialects = DIALECTS if args.dialect == "both" else (args.dialect,)
    sending, observed = load(args, dialects)
    t = tally(sending, observed)
    print("CPU: the receive handler against the floor, AWS stubbed ...", file=sys.stderr)
    c = measure_cpu(dialects, args.cpu_deliveries, args.body_bytes, args.seed)

    def show(label: str, text: str) -> None:
        print(f"{label:<30}{text}")

    setup = f"({args.dialect} dialect, {args.endpoints} endpoints, {args.body_bytes}-byte bodies)"
    show("senders, seconds", f"{args.senders}, {t['measured_seconds']:.2f} s measured {setup}")
    mix = f"{t['duplicates_sent']} duplicates, {t['bad_sent']} bad"
    show("sent", f"{t['sent']} ({t['requests_per_second']:.1f}/s), {mix}")
    show("accepted", f"{t['accepted']} ({t['accepted_per_second']:.1f}/s)")
    show("latency", f"p50 {t['p50_ms']:.1f} ms, p99 {t['p99_ms']:.1f} ms")
    show("5xx answers", str(t["server_errors"]))
    show("lost (202, not on the bus)", str(t["lost"]))
    show("double hand-offs", str(t["double_handoffs"]))
    show("duplicates answered 200", f"{t['duplicates_200']} of {t['duplicates_sent']}")
    show("bad answered 401", f"{t['bad_401']} of {t['bad_sent']}")
    for label, key in (
        ("bad ones accepted", "bad_accepted"),
        ("a body accepted twice", "accepted_twice"),
        ("on the bus, no 202 for it", "published_unannounced"),
        ("left claimed", "left_claimed"),
        ("transport errors", "transport_errors"),
    ):
        if t[key]:
            show(label, str(t[key]))
    show("answers", ", ".join(f"{k} {s}: {n}" for (k, s), n in sorted(t["_statuses"].items())))
    for text, n in t["_five"].most_common(5):
        show("  5xx", f"{n} x {text}")
    for text, n in t["_transport"].most_common(5):
        show("  transport", f"{n} x {text}")
    if t["server_errors"] or t["lost"] or t["double_handoffs"]:
        for text, n in observed.problems.most_common(8):
            show("  receiver said", f"{n} x {text}")
    for d in dialects:
        handler, floor = c[f"handler_cpu_ms_{d}"], c[f"floor_cpu_ms_{d}"]
        show(f"handler CPU, {d}", f"{handler:.3f} ms vs floor {floor:.3f} ms per delivery")
    show("handler_cpu_ratio", f"{c['handler_cpu_ratio']:.2f} (aim <= 2; AWS stubbed, medians)")
    steps = (
        ("the pipeline", c["pipeline_cpu_ms"]),
        ("its info log line", c["logged_cpu_ms"] - c["pipeline_cpu_ms"]),
        ("metrics (EMF), answer", c["handle_event_cpu_ms"] - c["logged_cpu_ms"]),
        ("Powertools decorator", c["handler_cpu_ms"] - c["handle_event_cpu_ms"]),
    )
    show("  where it goes", ", ".join(f"{label} {ms:.3f} ms" for label, ms in steps))
    order = ["sent", "accepted_per_second", "p50_ms", "p99_ms", "server_errors", "lost", "double_handoffs"]
    order += ["duplicates_200", "bad_401"]
    figures: dict[str, Any] = {"senders": args.senders, "seconds": args.seconds}
    figures.update({k: t[k] for k in order})
    figures.update({k: c[k] for k in ("handler_cpu_ms", "floor_cpu_ms", "handler_cpu_ratio")})
    extra = ["duplicates_sent", "bad_sent", "bad_accepted", "accepted_twice", "published_unannounced"]
    extra += ["left_claimed", "transport_errors", "requests_per_second", "measured_seconds"]
    figures.update({k: t[k] for k in extra})
    figures.update({k: v for k, v in c.items() if k not in figures})
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}))
    failed = t["lost"] or t["double_handoffs"] or t["server_errors"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
