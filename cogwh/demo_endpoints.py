"""`cogwh demo` on the endpoints dialect (Cognigy.AI's webhook Endpoints, the default): register, then the
whole round trip, on the embedded local stack.

1. The local stack speaks ``CognigyApi=endpoints`` to the simulator (or to another Cognigy-compatible
   server: :class:`cogwh.demo.CognigyChoice`); the local gateway serves the template's API over HTTPS
   (a ``webhookUrl`` must be https).
2. ``examples/cognigy-endpoints.yaml`` is applied twice through the real state machine: the receiver's
   own endpoint (``bot-outputs``, Basic auth) and a service's are created, a TLS 1.1-only target is
   refused by the probe, a signature the real API cannot send is refused by the plan; the second apply
   changes nothing (one listing page, no write).
3. The round trip: :func:`cognigy_webhooks.cognigy.say` posts user input to the Endpoint service
   (``<CognigyEndpointUrl>/<URLToken>``, the token read from Secrets Manager); the flow's output is
   POSTed by Cognigy to the receiver with Basic auth (202) and handed on to the EventBridge bus, where
   an EventBridge rule feeds an SQS queue this demo reads as a consumer would.
4. Cognigy as it may behave: a delivery with a stale password (401), the same output delivered twice
   (200, the first one's id), and a consumer that echoes every output back into the bot as input,
   which the receiver's per-conversation window stops (508: Cognigy cannot send our loop headers, so
   the window on ``sessionId`` is what stops it).
5. The watch scene (:mod:`cogwh.demo_watch`): a target of its own goes down, the watch (time
   compressed) marks it unhealthy, deactivates it in Cognigy a day later, and reactivates it once it
   is back; a healthy watch makes no Cognigy call, and the next apply changes nothing.

Exit 0 only when every verdict matches.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import ssl
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import httpx

from cogwh import ops
from cogwh.demo import (
    API_KEY_SECRET_NAME,
    ROOT,
    CognigyChoice,
    Verdict,
    apply_twice,
    local_world,
    print_verdicts,
    quiet_functions,
    render_desired,
)
from cogwh.demo_watch import CognigyReader, watch_scene
from cogwh.sim_endpoints import store_of

if TYPE_CHECKING:
    from cogwh.localstack import LocalStack

EXAMPLE = ROOT / "examples" / "cognigy-endpoints.yaml"
RECEIVER_NAME = "bot-outputs"
USERNAME = "cognigy"
#: The demo's per-conversation bound (the template's LoopMaxPerWindow; 20 by default).
LOOP_MAX_PER_WINDOW = 5

EXPECTED_FIRST = {
    RECEIVER_NAME: ("created", None),
    "crm-outputs": ("created", None),
    "legacy-crm": ("failed", "probe_tls_version_unsupported"),
    "signed-hook": ("failed", "invalid_spec"),
}
EXPECTED_SECOND = {**EXPECTED_FIRST, RECEIVER_NAME: ("unchanged", None), "crm-outputs": ("unchanged", None)}


class BusConsumer:
    """What a consumer of the delivery bus sees: an EventBridge rule (detail-type ``Cognigy Delivery``)
    feeding an SQS queue, read here."""

    def __init__(self, stack: LocalStack) -> None:
        self._sqs = stack.client("sqs")
        events = stack.client("events")
        bus = stack.outputs["DeliveryBusName"]
        self._queue = self._sqs.create_queue(QueueName=f"demo-consumer-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self._queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(
            Name="demo-consumer",
            EventBusName=bus,
            EventPattern=json.dumps({"detail-type": ["Cognigy Delivery"]}),
        )
        events.put_targets(Rule="demo-consumer", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])

    def next_for(self, session_id: str, timeout: float = 15.0) -> dict[str, Any] | None:
        """The next delivery event of ``session_id`` (its ``detail``), None after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            resp = self._sqs.receive_message(QueueUrl=self._queue, MaxNumberOfMessages=10)
            found = None
            for message in resp.get("Messages", []):
                self._sqs.delete_message(QueueUrl=self._queue, ReceiptHandle=message["ReceiptHandle"])
                detail = json.loads(message["Body"]).get("detail", {})
                if found is None and detail.get("sessionId") == session_id:
                    found = detail
            if found is not None:
                return found
            time.sleep(
                0.02
            )  # polling SQS, as a consumer would (no long poll: moto's waits are whole seconds)
        return None


def _basic(password: str) -> str:
    return "Basic " + base64.b64encode(f"{USERNAME}:{password}".encode()).decode("ascii")


def _output(session_id: str, text: str, trace_id: str) -> bytes:
    """A delivery as Cognigy.AI documents it (one POST per Flow output)."""
    doc = {
        "userId": "demo-user",
        "sessionId": session_id,
        "AIOutput": {"text": text, "data": {}, "traceId": trace_id, "disableSensitiveLogging": False},
    }
    return json.dumps(doc).encode("utf-8")


def run_endpoints_demo(
    out: TextIO, *, time_factor: float, verbose: bool, choice: CognigyChoice | None = None
) -> int:
    from cogwh.gateway import serve_gateway
    from cogwh.localstack import LocalStack

    choice = choice or CognigyChoice(api="endpoints")
    if not verbose:
        quiet_functions()
    print(
        "cogwh demo: Cognigy.AI webhook Endpoints on the embedded local stack (moto; no AWS, no Docker)\n",
        file=out,
    )
    with local_world(cognigy_api="endpoints") as world:
        leaf = world.ca.issue("localhost", "127.0.0.1")
        parameters = {
            **world.stack_parameters(),
            **choice.parameters(),
            "LoopMaxPerWindow": str(LOOP_MAX_PER_WINDOW),
        }
        with (
            LocalStack(ROOT, parameters=parameters, time_factor=time_factor) as stack,
            serve_gateway(stack, certfile=leaf.cert, keyfile=leaf.key, url_host="localhost") as gateway,
        ):
            cognigy_url = parameters["CognigyBaseUrl"]
            print(
                f"Cognigy            {cognigy_url} ({'simulator' if choice.url is None else 'given'})",
                file=out,
            )
            print(
                f"receiver           {gateway.base_url}/deliveries/<name> (the local gateway, TLS)", file=out
            )
            stack.client("secretsmanager").create_secret(
                Name=API_KEY_SECRET_NAME, SecretString=choice.api_key or world.api_key
            )
            password = secrets.token_urlsafe(24)
            desired = render_desired(
                EXAMPLE,
                {
                    **{k: str(v) for k, v in world.ports.items()},
                    "PROJECT_ID": choice.project_id,
                    "RECEIVER_URL": gateway.base_url,
                    "BOT_OUTPUTS_PASSWORD": password,
                },
            )
            applied = apply_twice(
                stack, desired, str(EXAMPLE.relative_to(ROOT)), EXPECTED_FIRST, EXPECTED_SECOND, out
            )
            if applied is None:
                return 1
            verdicts = applied
            verdicts += round_trip(
                stack, gateway.base_url, password, world.ca.ca_file, choice, out, world.simulator_state
            )
            verdicts += watch_scene(
                stack,
                leaf=leaf,
                reader=CognigyReader.of(
                    stack,
                    dialect="endpoints",
                    api_key=choice.api_key or world.api_key,
                    ca_file=choice.ca_bundle or world.ca.ca_file,
                ),
                cognigy_block={"projectId": choice.project_id},
                simulator=world.simulator_state if choice.url is None else None,
                out=out,
            )
        return print_verdicts(verdicts, out)


def direct_checks(url: str, password: str, ca_file: Path) -> list[Verdict]:
    """What Cognigy may send that the receiver must refuse or recognise: a stale password, a retry."""
    context = ssl.create_default_context(cafile=str(ca_file))
    verdicts: list[Verdict] = []
    with httpx.Client(verify=context, timeout=10) as http:

        def post(body: bytes, secret: str) -> int:
            headers = {"Content-Type": "application/json", "Authorization": _basic(secret)}
            return http.post(url, content=body, headers=headers).status_code

        trace = uuid.uuid4().hex
        stale = post(_output("demo-stale", "stale password", trace), password + "-old")
        verdicts.append(Verdict("delivery: a stale Basic auth password", "401", str(stale)))
        body = _output("demo-replay", "delivered twice", trace)
        first, again = post(body, password), post(body, password)
        verdicts.append(Verdict("delivery: one output", "202", str(first)))
        verdicts.append(Verdict("delivery: the same output again (a retry)", "200", str(again)))

    return verdicts


def round_trip(
    stack: LocalStack,
    receiver_url: str,
    password: str,
    ca_file: Path,
    choice: CognigyChoice,
    out: TextIO,
    simulator: Any = None,
) -> list[Verdict]:
    """Input into the bot, its output through Cognigy to the receiver and the bus, then Cognigy's
    failure modes against the receiver (see the module docstring)."""
    from cognigy_webhooks.cognigy import say

    record = next((r for r in ops.records(stack) if r.name == RECEIVER_NAME), None)
    if record is None or not record.url_token_arn:
        return [Verdict("round trip: URLToken recorded", "yes", "no")]
    token = stack.client("secretsmanager").get_secret_value(SecretId=record.url_token_arn)["SecretString"]
    endpoint_url = stack.outputs["CognigyEndpointUrl"]
    verify = choice.ca_bundle or str(ca_file)
    consumer = BusConsumer(stack)
    store = store_of(simulator) if simulator is not None else None
    verdicts: list[Verdict] = []
    url = f"{receiver_url}/deliveries/{RECEIVER_NAME}"
    verdicts += direct_checks(url, password, ca_file)

    def tell(session: str, text: str) -> int | None:
        """Input into the bot; the receiver's answer to the output Cognigy delivered for it (read off
        the simulator's delivery log; None when that is not the simulator)."""
        before = len(store.deliveries()) if store is not None else 0
        asyncio.run(
            say(endpoint_url, token, user_id="demo-user", session_id=session, text=text, verify=verify)
        )
        if store is None:
            return None
        status = store.wait_deliveries(before + 1, timeout=30.0)[before].get("status")
        return status if isinstance(status, int) else None

    if choice.url is not None:  # another server: it cannot be assumed to reach this machine's gateway
        print(
            f"\n== The round trip needs Cognigy to reach {url}: shown with the simulator only "
            "(run `cogwh demo` without --cognigy-url)",
            file=out,
        )
        return verdicts
    print(f"\n== The round trip: say -> {endpoint_url}/<URLToken> -> Cognigy -> {url} -> the bus", file=out)
    session = "demo-" + uuid.uuid4().hex[:8]
    status = tell(session, "hello from the demo")
    event = consumer.next_for(session)
    got = f"{status}, on the bus" if event is not None else f"{status}, nothing on the bus"
    verdicts.append(Verdict("round trip: Cognigy's output, valid Basic auth", "202, on the bus", got))
    if event is not None:
        fields = {k: event.get(k) for k in ("userId", "sessionId", "text")}
        print(f"  consumer got {json.dumps(fields)}", file=out)
        verdicts.append(
            Verdict(
                "round trip: event carries the output's text", "hello from the demo", str(event.get("text"))
            )
        )

    print(
        "\n== A consumer echoing every output back as input "
        f"(the window allows {LOOP_MAX_PER_WINDOW} per conversation)",
        file=out,
    )
    session = "echo-" + uuid.uuid4().hex[:8]
    text, echoed = "ping", 0
    status = tell(session, text)
    for _ in range(LOOP_MAX_PER_WINDOW + 2):
        if status == 508:  # the receiver stopped it: nothing reached the bus
            break
        event = consumer.next_for(session, timeout=5.0)
        if event is None:
            break
        echoed += 1
        status = tell(session, str(event.get("text") or text))
    loops = [e for e in ops.audit(stack, RECEIVER_NAME) if e.action == "loop_detected"]
    got = f"{loops[-1].status_code} after {echoed} echoes" if loops else f"no stop after {echoed} echoes"
    verdicts.append(
        Verdict(
            "loop: a consumer echoing outputs back as inputs", f"508 after {LOOP_MAX_PER_WINDOW} echoes", got
        )
    )
    return verdicts
