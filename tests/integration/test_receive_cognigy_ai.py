"""Real Cognigy.AI deliveries (the endpoints dialect) through the receive function on the local stack.

A real webhook Endpoint POSTs once per Flow output, ``{userId, sessionId, AIOutput: {text, data,
traceId, disableSensitiveLogging, source}}``, authenticated by HTTP Basic alone: no signature and no
header of ours. The record here is shaped like the register step writes one for such an endpoint:
``basicAuth: {username, passwordArn}``, no signature header, payloadFormat JSON. What is checked:

* Basic auth is the whole authentication; a record with none takes nothing, credentials or not;
* the replay key is the ``traceId`` with the body's digest: a retried output is ``200 duplicate``, two
  outputs of one turn (one ``traceId``) are two deliveries; without a usable ``traceId`` it is the
  body's digest, as before;
* the loop guard needs no header: more than LoopMaxPerWindow deliveries of one ``sessionId`` within
  the window are 508, another ``sessionId`` goes on, and the window slides;
* the event carries ``userId``, ``sessionId``, ``text``, ``data`` (and ``traceId``) at the top of its
  detail, where an EventBridge rule can filter on them; never a credential; a transformer-reshaped
  body is accepted with the fields it has, never a 5xx; a big one is slimmed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any

import pytest

from cognigy_webhooks.dal.bus import DeliveryBus
from cognigy_webhooks.dal.deliveries import delivery_id_for
from tests.support.clocks import ManualClock
from tests.support.receiver import LOOP_MAX_PER_WINDOW, SIGNATURE_HEADER, ReceiverWorld, Registered, unique

JSON = {"Content-Type": "application/json"}


def real_endpoint(world: ReceiverWorld, prefix: str = "cai") -> Registered:
    """A record as the register step writes one for a Cognigy.AI webhook Endpoint: Basic auth only."""
    reg = world.register(prefix, signed=False, basic=True)
    assert reg.secret_arn is None
    assert reg.password is not None
    return reg


def output(
    session: str | None = None,
    *,
    text: str | None = "Hello from the flow",
    data: Any = None,
    trace: Any = "default",
    user: str = "user-42",
    sensitive_at_top: bool = False,
) -> dict[str, Any]:
    """A body as Cognigy.AI sends it for one Flow output."""
    ai: dict[str, Any] = {"text": text, "data": {"step": 1} if data is None else data, "source": "bot"}
    if trace == "default":
        trace = "trace-" + uuid.uuid4().hex
    if trace is not None:
        ai["traceId"] = trace
    doc: dict[str, Any] = {"userId": user, "sessionId": session or "session-" + uuid.uuid4().hex}
    if sensitive_at_top:
        doc["disableSensitiveLogging"] = False
    else:
        ai["disableSensitiveLogging"] = False
    doc["AIOutput"] = ai
    return doc


def encode(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def deliver(
    world: ReceiverWorld, reg: Registered, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """POST ``body`` as Cognigy does: Content-Type and Basic auth, nothing else."""
    response = world.invoke(world.event(reg, body, reg.sign(body) if headers is None else headers))
    return int(response["statusCode"]), json.loads(response["body"])


def detail_of(world: ReceiverWorld, reg: Registered, delivery_id: str) -> dict[str, Any]:
    (event,) = [e for e in world.published_for(reg.name) if e["detail"]["deliveryId"] == delivery_id]
    detail: dict[str, Any] = event["detail"]
    return detail


def assert_no_credential(reg: Registered, text: str) -> None:
    assert reg.password is not None
    assert reg.username is not None
    token = base64.b64encode(f"{reg.username}:{reg.password}".encode()).decode()
    for secret in (reg.password, token, token[:16]):  # nor the header's value, nor a part of it
        assert secret not in text


# --- authentication -----------------------------------------------------------------------------


def test_a_real_output_is_accepted_and_its_fields_are_on_the_event(world: ReceiverWorld) -> None:
    # Given a Cognigy.AI endpoint (Basic auth only) and one Flow output, sent with no header of ours
    reg = real_endpoint(world)
    doc = output(data={"orderId": 42, "nested": {"ok": True}})
    body = encode(doc)
    headers = reg.sign(body)
    assert set(headers) == {"Content-Type", "Authorization"}
    # When it is delivered
    status, answer = deliver(world, reg, body, headers)
    # Then it is accepted and published once, with the output's fields at the top of the detail
    assert status == 202, answer
    detail = detail_of(world, reg, answer["deliveryId"])
    ai = doc["AIOutput"]
    assert detail["userId"] == doc["userId"]
    assert detail["sessionId"] == doc["sessionId"]
    assert detail["text"] == ai["text"]
    assert detail["data"] == ai["data"]
    assert detail["traceId"] == ai["traceId"]
    assert detail["disableSensitiveLogging"] is False
    assert detail["payload"] == doc
    assert "hop" not in detail  # no hop header came: that step has nothing to read
    # and neither the event, nor the stored delivery, nor the answer holds a credential
    assert_no_credential(reg, json.dumps(world.published_for(reg.name)))
    assert_no_credential(reg, json.dumps(answer))
    stored = world.delivery(answer["deliveryId"])
    assert stored is not None
    assert stored["replayKind"] == "trace-id"
    assert_no_credential(reg, repr({k: v for k, v in stored.items() if k != "body"}))


def test_consumers_filter_on_the_output_fields_with_an_event_pattern(world: ReceiverWorld) -> None:
    # Given a consumer's rule that wants one user's outputs with a given data field
    reg = real_endpoint(world)
    user = "user-" + uuid.uuid4().hex[:8]
    queue_url = world.sqs.create_queue(QueueName=unique("rx-filtered"))["QueueUrl"]
    queue_arn = world.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rule = unique("rx-user")
    pattern = {"detail": {"endpoint": [reg.name], "userId": [user], "data": {"kind": ["order"]}}}
    world.events.put_rule(Name=rule, EventBusName=world.bus, EventPattern=json.dumps(pattern))
    world.events.put_targets(Rule=rule, EventBusName=world.bus, Targets=[{"Id": "q", "Arn": queue_arn}])
    # When outputs of that user and of another are delivered
    wanted = output(user=user, data={"kind": "order", "id": 1})
    for doc in (
        wanted,
        output(user="someone-else", data={"kind": "order"}),
        output(user=user, data={"kind": "x"}),
    ):
        assert deliver(world, reg, encode(doc))[0] == 202
    # Then the rule sees exactly the one it asked for
    messages = world.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"])["detail"]["payload"] for m in messages] == [wanted]


@pytest.mark.parametrize("at_top", [False, True])
def test_disable_sensitive_logging_is_read_at_either_place(world: ReceiverWorld, at_top: bool) -> None:
    reg = real_endpoint(world)
    doc = output(sensitive_at_top=at_top)
    status, answer = deliver(world, reg, encode(doc))
    assert status == 202
    assert detail_of(world, reg, answer["deliveryId"])["disableSensitiveLogging"] is False


def test_wrong_or_missing_credentials_are_401_and_nothing_is_published(world: ReceiverWorld) -> None:
    reg = real_endpoint(world)
    assert reg.username is not None
    assert reg.password is not None
    body = encode(output())

    def basic(user: str, password: str) -> dict[str, str]:
        return JSON | {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    cases = [
        basic(reg.username, "wrong"),
        basic(reg.username, reg.password + "x"),  # a longer password: its prefix is no match
        basic(reg.username, reg.password[:-1]),
        basic("someone", reg.password),
        basic(reg.username + "x", reg.password),
        JSON,  # no Authorization at all
        JSON | {"Authorization": "Bearer " + reg.password},
        JSON | {SIGNATURE_HEADER: "t=1,v1=" + "0" * 64},  # a signature is not what this endpoint takes
    ]
    for headers in cases:
        status, answer = deliver(world, reg, body, headers)
        assert (status, answer) == (401, {"message": "Unauthorized"})
    assert world.published_for(reg.name) == []
    assert world.deliveries_of(reg.name) == []
    audit = world.audit(reg.name)
    assert len(audit) == len(cases)
    assert_no_credential(reg, json.dumps([e.model_dump(mode="json") for e in audit]))
    # and the right credentials still work
    assert deliver(world, reg, body)[0] == 202


def test_a_record_without_any_authentication_accepts_nothing(world: ReceiverWorld) -> None:
    # Given a Cognigy.AI endpoint recorded without basicAuth (and, as in that dialect, no signature)
    reg = world.register("cai-open", signed=False, basic=False)
    body = encode(output())
    anyone = JSON | {"Authorization": "Basic " + base64.b64encode(b"cognigy:whatever").decode()}
    # When a real-shaped output comes, with or without credentials
    for headers in (JSON, anyone):
        status, answer = deliver(world, reg, body, headers)
        # Then it is refused like an unknown endpoint, and nothing is stored or published
        assert (status, answer) == (401, {"message": "Unauthorized"})
    assert world.published_for(reg.name) == []
    assert world.deliveries_of(reg.name) == []
    assert {e.reason for e in world.audit(reg.name)} == {"endpoint_not_accepting"}


# --- the replay key -----------------------------------------------------------------------------


def test_a_retried_output_is_a_duplicate_and_each_output_of_a_turn_is_its_own(world: ReceiverWorld) -> None:
    # Given one flow turn (one traceId) producing three outputs, as three Say nodes do
    reg = real_endpoint(world)
    session, trace = "session-" + uuid.uuid4().hex, "trace-" + uuid.uuid4().hex
    bodies = [encode(output(session, text=f"output {i}", trace=trace)) for i in range(3)]
    # When each is delivered, then the first one is retried by Cognigy
    answers = [deliver(world, reg, body) for body in bodies]
    retry = deliver(world, reg, bodies[0])
    # Then the three are three deliveries, and the retry is a duplicate of the first
    assert [status for status, _ in answers] == [202, 202, 202]
    ids = [answer["deliveryId"] for _, answer in answers]
    assert len(set(ids)) == 3
    assert retry == (200, {"deliveryId": ids[0], "status": "duplicate"})
    assert sorted(e["detail"]["deliveryId"] for e in world.published_for(reg.name)) == sorted(ids)
    # keyed on the traceId and the body's digest
    digest = hashlib.sha256(bodies[0]).hexdigest()
    assert ids[0] == delivery_id_for(reg.name, "trace-id", f"{trace}\x00{digest}")
    assert {d["replayKind"] for d in world.deliveries_of(reg.name)} == {"trace-id"}


@pytest.mark.parametrize(
    "trace",
    [None, "", 42, {"id": "x"}, "t" * 257, "tab\there", "\u2028"],
    ids=["absent", "empty", "number", "object", "too-long", "control", "separator"],
)
def test_without_a_usable_trace_id_the_key_is_the_body_digest(world: ReceiverWorld, trace: Any) -> None:
    reg = real_endpoint(world)
    body = encode(output(trace=trace))
    status, first = deliver(world, reg, body)
    assert status == 202
    assert first["deliveryId"] == delivery_id_for(reg.name, "body-sha256", hashlib.sha256(body).hexdigest())
    assert deliver(world, reg, body) == (200, {"deliveryId": first["deliveryId"], "status": "duplicate"})
    assert len(world.published_for(reg.name)) == 1
    assert "traceId" not in detail_of(world, reg, first["deliveryId"])


def test_a_trace_id_at_the_top_of_a_flattened_body_keys_it_too(world: ReceiverWorld) -> None:
    reg = real_endpoint(world)
    doc = {"userId": "u", "sessionId": "s-" + uuid.uuid4().hex, "text": "flat", "traceId": "trace-flat"}
    status, answer = deliver(world, reg, encode(doc))
    assert status == 202
    assert world.delivery(answer["deliveryId"])["replayKind"] == "trace-id"  # type: ignore[index]
    assert detail_of(world, reg, answer["deliveryId"])["traceId"] == "trace-flat"


# --- the loop guard on sessionId ----------------------------------------------------------------


def test_one_session_past_the_window_bound_is_a_loop_another_session_is_not(
    world: ReceiverWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the receiver's clock held still (the window is the test's, not the machine's)
    clock = ManualClock(1_900_000_000.0)
    monkeypatch.setattr(world.receiver, "clock", clock)
    reg = real_endpoint(world)
    session = "session-" + uuid.uuid4().hex
    # When a consumer echoes every output back as input, so one session's outputs keep coming
    statuses = [
        deliver(world, reg, encode(output(session, text=f"echo {i}")))[0]
        for i in range(LOOP_MAX_PER_WINDOW + 1)
    ]
    # Then the bound's worth is accepted and the next one is a loop (with no header of ours anywhere)
    assert statuses == [202] * LOOP_MAX_PER_WINDOW + [508]
    published = world.published_for(reg.name)
    assert len(published) == LOOP_MAX_PER_WINDOW
    assert all("hop" not in e["detail"] for e in published)
    loops = [e for e in world.audit(reg.name) if e.action == "loop_detected"]
    assert [e.reason for e in loops] == ["conversation_limit"]
    # another session of the same endpoint is unaffected
    assert deliver(world, reg, encode(output(text="another conversation")))[0] == 202
    # and once the window has slid past, the session is taken again
    clock.now += 2 * world.receiver.settings.loop_window_seconds
    assert deliver(world, reg, encode(output(session, text="later")))[0] == 202


def test_a_retry_does_not_count_against_the_session(
    world: ReceiverWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(world.receiver, "clock", ManualClock(1_900_100_000.0))
    reg = real_endpoint(world)
    session = "session-" + uuid.uuid4().hex
    body = encode(output(session))
    assert deliver(world, reg, body)[0] == 202
    for _ in range(LOOP_MAX_PER_WINDOW + 2):  # Cognigy retrying one output is not a loop
        assert deliver(world, reg, body)[0] == 200
    assert deliver(world, reg, encode(output(session, text="next")))[0] == 202


# --- what an output transformer may send --------------------------------------------------------

RESHAPED: list[tuple[str, Any, dict[str, Any]]] = [
    (
        "flattened",
        {"userId": "u-1", "sessionId": "s-flat", "text": "flat text", "data": {"a": 1}},
        {"userId": "u-1", "sessionId": "s-flat", "text": "flat text", "data": {"a": 1}},
    ),
    ("a list", [{"text": "one"}, {"text": "two"}], {}),
    ("a string", "just a string", {}),
    ("a number", 42, {}),
    ("null", None, {}),
    ("empty object", {}, {}),
    (
        "AIOutput a string",
        {"userId": "u", "sessionId": "s-str", "AIOutput": "hi"},
        {"userId": "u", "sessionId": "s-str"},
    ),
    ("AIOutput a list", {"sessionId": "s-list", "AIOutput": [1, 2]}, {"sessionId": "s-list"}),
    ("AIOutput null", {"userId": "u", "AIOutput": None}, {"userId": "u"}),
    (
        "text null, data only",
        {"userId": "u", "AIOutput": {"text": None, "data": {"x": 1}}},
        {"userId": "u", "data": {"x": 1}},
    ),
    (
        "odd types",
        {"userId": {"id": 1}, "sessionId": True, "AIOutput": {"text": 5, "data": "raw", "traceId": 7}},
        {"data": "raw"},
    ),
    (
        "ids as numbers",
        {"userId": 7, "sessionId": 9, "AIOutput": {"text": "n"}},
        {"userId": "7", "sessionId": "9", "text": "n"},
    ),
    ("ids too long", {"userId": "u" * 257, "sessionId": "s" * 257, "text": "t"}, {"text": "t"}),
    (
        "wrapped",
        {"message": {"userId": "u-w", "sessionId": "s-w", "AIOutput": {"text": "in a wrapper"}}},
        {"userId": "u-w", "sessionId": "s-w", "text": "in a wrapper"},
    ),
    (
        "AIOutput over the top",
        {"text": "top", "data": {"top": 1}, "AIOutput": {"text": "inner", "data": {"inner": 1}}},
        {"text": "inner", "data": {"inner": 1}},
    ),
]


@pytest.mark.parametrize(("shape", "doc", "fields"), RESHAPED, ids=[case[0] for case in RESHAPED])
def test_a_reshaped_body_is_accepted_with_the_fields_it_has(
    world: ReceiverWorld, shape: str, doc: Any, fields: dict[str, Any]
) -> None:
    reg = real_endpoint(world)
    body = encode(doc)
    status, answer = deliver(world, reg, body)
    assert status == 202, (shape, answer)
    detail = detail_of(world, reg, answer["deliveryId"])
    assert detail["payload"] == doc
    found = {k: detail[k] for k in ("userId", "sessionId", "text", "data", "traceId") if k in detail}
    assert found == fields


def test_a_transformed_body_that_is_not_json_is_a_400_never_a_5xx(world: ReceiverWorld) -> None:
    reg = real_endpoint(world)
    for body in (b"Hello from the flow", b"", b'{"AIOutput": {"text": "cut', b'{"text": "\\ud83d"}'):
        status, answer = deliver(world, reg, body)
        assert status == 400, (body, answer)
    assert world.published_for(reg.name) == []


def test_a_big_output_is_slimmed_keeping_the_ids(world: ReceiverWorld) -> None:
    # Given an output whose data alone is too big for an EventBridge entry
    reg = real_endpoint(world)
    big = "x" * (DeliveryBus.DETAIL_LIMIT + 1024)
    doc = output(text="short", data={"blob": big})
    status, answer = deliver(world, reg, encode(doc))
    # Then it is still accepted, and published without the payload nor the data copied from it
    assert status == 202, answer
    detail = detail_of(world, reg, answer["deliveryId"])
    assert detail["payloadOmitted"] is True
    assert detail["dataOmitted"] is True
    assert "payload" not in detail
    assert "data" not in detail
    assert (detail["userId"], detail["sessionId"], detail["text"]) == (
        doc["userId"],
        doc["sessionId"],
        "short",
    )
    # the body is in the deliveries table for the consumer that wants it
    stored = world.delivery(answer["deliveryId"])
    assert stored is not None
    assert json.loads(bytes(stored["body"])) == doc


def test_a_body_that_fits_only_without_its_copies_keeps_the_fields(world: ReceiverWorld) -> None:
    # data of 150 KB: the payload and its top-level copy together are too big, the copy alone fits
    reg = real_endpoint(world)
    doc = output(data={"blob": "y" * (150 * 1024)})
    status, answer = deliver(world, reg, encode(doc))
    assert status == 202
    detail = detail_of(world, reg, answer["deliveryId"])
    assert detail["payloadOmitted"] is True
    assert detail["data"] == doc["AIOutput"]["data"]
    assert "dataOmitted" not in detail
