"""cogwh listen (--local | --stack NAME): tail the deliveries the receiver hands on to the delivery bus,
like ``stripe listen``.

While it runs, an EventBridge rule of its own on the stack's bus (``DeliveryBusName``; detail-type
``Cognigy Delivery``, or only the endpoints ``--endpoint`` names) targets an SQS queue of its own
(with the queue policy EventBridge needs to send to it); both are removed when it ends: Ctrl-C,
SIGTERM, ``--max-events`` reached, or an error. One line per delivery: the endpoint, its
``deliveryId`` and, when the body had them, ``userId``, ``sessionId`` and ``text`` (each quoted as
JSON, so no control character reaches the terminal); ``--json`` prints the event's detail instead,
one JSON object per line (the shape consumers' rules see: :mod:`cognigy_webhooks.receiving.pipeline`).
``--forward-to URL`` also POSTs each detail, as JSON, to URL (a local consumer under development)
and says its answer; a failed forward is said and listening goes on.

Only deliveries published while it listens are seen (a rule does not replay the past). The detail
holds no header and no credential; nothing is stored beyond the queue, deleted at the end.

Exit status: 0 stopped (Ctrl-C included); 2 bad input; 3 the environment (no stack, AWS
unreachable or refusing). A rule or queue that could not be removed is named on stderr.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cogwh import ops
from cogwh.commands import pem_file

DETAIL_TYPE = "Cognigy Delivery"

EXAMPLE = """\
examples:
  cogwh listen --local
  cogwh listen --stack prod --endpoint orders-webhook --json | jq .text
  cogwh listen --local --forward-to http://127.0.0.1:8000/hook

exit status: 0 stopped, 2 bad input, 3 environment (no stack, AWS unreachable or refusing).
"""


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return int(text)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "listen",
        help="tail the deliveries handed on to the stack's EventBridge bus (like `stripe listen`)",
        description="Print each delivery the receiver hands on to the delivery bus while this runs: an "
        "EventBridge rule and an SQS queue of its own, removed again on exit (Ctrl-C included).",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--endpoint",
        action="append",
        default=[],
        metavar="NAME",
        help="only this endpoint's deliveries (repeatable; default: every endpoint)",
    )
    p.add_argument("--json", action="store_true", help="print each delivery's detail as one JSON line")
    p.add_argument("--forward-to", metavar="URL", help="also POST each detail (JSON) to URL")
    p.add_argument(
        "--ca-bundle", metavar="FILE", type=pem_file, help="trust the CAs in this PEM file for --forward-to"
    )
    p.add_argument("--max-events", type=_count, metavar="N", help="stop after N deliveries")
    ops.add_target_arguments(p)
    p.set_defaults(run=run)


@dataclass(frozen=True)
class Tap:
    """The rule and the queue of one `cogwh listen`."""

    bus: str
    rule: str
    queue_url: str


def _pattern(endpoints: list[str]) -> str:
    pattern: dict[str, Any] = {"detail-type": [DETAIL_TYPE]}
    if endpoints:
        pattern["detail"] = {"endpoint": sorted(set(endpoints))}
    return json.dumps(pattern)


@contextmanager
def tap(stack: ops.StackHandle, endpoints: list[str]) -> Iterator[Tap]:
    """A rule on the delivery bus and a queue it sends to, for the block's duration; removed after,
    whatever ends the block (a failure to remove is said on stderr, naming what is left)."""
    bus = stack.outputs["DeliveryBusName"]
    events, sqs = stack.client("events"), stack.client("sqs")
    name = f"cogwh-listen-{uuid.uuid4().hex[:12]}"
    undo: list[tuple[str, Any]] = []
    try:
        rule_arn = events.put_rule(
            Name=name,
            EventBusName=bus,
            EventPattern=_pattern(endpoints),
            Description="cogwh listen (removed when it stops)",
        )["RuleArn"]
        undo.append((f"rule {name} on bus {bus}", lambda: events.delete_rule(Name=name, EventBusName=bus)))
        queue_url = sqs.create_queue(QueueName=name, Attributes={"MessageRetentionPeriod": "3600"})[
            "QueueUrl"
        ]
        undo.append((f"queue {queue_url}", lambda: sqs.delete_queue(QueueUrl=queue_url)))
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        policy = {  # what EventBridge needs to send to the queue (AWS checks it; moto does not)
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                }
            ],
        }
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "cogwh-listen", "Arn": queue_arn}])
        undo.append(
            (
                f"the target of rule {name}",
                lambda: events.remove_targets(Rule=name, EventBusName=bus, Ids=["cogwh-listen"]),
            )
        )
        yield Tap(bus, name, queue_url)
    finally:
        for what, step in reversed(undo):  # targets, then the queue, then the rule
            try:
                step()
            except Exception as exc:  # best effort: say what is left behind
                print(f"cogwh listen: could not remove {what} ({type(exc).__name__})", file=sys.stderr)


def line(detail: dict[str, Any]) -> str:
    """One delivery for people: endpoint, deliveryId, then userId, sessionId, text when present."""
    parts = [str(detail.get("endpoint", "?")), str(detail.get("deliveryId", "?"))]
    for key in ("userId", "sessionId", "text"):
        if detail.get(key) is not None:
            parts.append(f"{key}={json.dumps(detail[key], ensure_ascii=False)}")
    if detail.get("payloadOmitted"):
        parts.append("(payload too big for the bus: read it from the deliveries table)")
    return "  ".join(parts)


def _forward(client: Any, url: str, detail: dict[str, Any]) -> str:
    import httpx

    try:
        resp = client.post(url, json=detail)
    except httpx.HTTPError as exc:
        return f"-> {url} failed ({type(exc).__name__})"
    return f"-> {url} HTTP {resp.status_code}"


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def run(
    args: argparse.Namespace,
    *,
    ready: threading.Event | None = None,
    stop: threading.Event | None = None,
    wait_seconds: int = 20,
) -> int:
    """Listen until Ctrl-C, SIGTERM, ``--max-events`` or ``stop`` (looked at between long polls of
    ``wait_seconds``); ``ready`` is set once the rule and the queue exist."""
    import httpx

    from cognigy_webhooks.net.tls import client_ssl_context
    from cognigy_webhooks.urls import url_problem

    if args.forward_to is not None:
        problem = url_problem(args.forward_to, plain_http="loopback")
        if problem is not None:
            raise ops.CliError(f"--forward-to {problem}")
    stack = ops.target(args)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():  # SIGTERM ends it as Ctrl-C does
        signal.signal(signal.SIGTERM, _interrupt)
    forward = None
    if args.forward_to is not None:
        verify: Any = client_ssl_context(args.ca_bundle) if args.forward_to.startswith("https:") else False
        forward = httpx.Client(verify=verify, timeout=10.0)
    seen = 0
    try:
        with tap(stack, args.endpoint) as where:
            sqs = stack.client("sqs")
            print(
                f"listening for deliveries on bus {where.bus} (rule {where.rule}); Ctrl-C to stop",
                file=sys.stderr,
                flush=True,
            )
            if ready is not None:
                ready.set()
            while not stop.is_set() and (args.max_events is None or seen < args.max_events):
                resp = sqs.receive_message(
                    QueueUrl=where.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
                )
                for message in resp.get("Messages", []):
                    seen += 1
                    _show(message, args, forward)
                    sqs.delete_message(QueueUrl=where.queue_url, ReceiptHandle=message["ReceiptHandle"])
                    if args.max_events is not None and seen >= args.max_events:
                        break
    except KeyboardInterrupt:
        pass  # Ctrl-C is how listening ends; the rule and the queue are gone already
    finally:
        if forward is not None:
            forward.close()
    return 0


def _show(message: dict[str, Any], args: argparse.Namespace, forward: Any) -> None:
    try:
        event = json.loads(message["Body"])
        detail = event["detail"] if isinstance(event, dict) and isinstance(event.get("detail"), dict) else {}
    except (KeyError, ValueError):
        detail = {}
    if args.json:
        print(json.dumps(detail, ensure_ascii=False, separators=(",", ":")), flush=True)
    else:
        print(line(detail), flush=True)
    if forward is not None:
        said = _forward(forward, args.forward_to, detail)
        print(f"  {said}", file=sys.stderr if args.json else sys.stdout, flush=True)
