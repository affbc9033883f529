"""Replay keys, per scheme: what makes two deliveries one. The key never depends on the secret version
that verified a delivery, nor on anything the scheme leaves unsigned; and one delivery is one event on
the bus, however often and however it is re-sent.

* the tutorial's signature signs the body alone: the key is the body's SHA-256, so a retry across a
  rotation (the same body signed with the previous secret, then the current one) and a captured
  delivery re-sent with a fresh (unsigned) timestamp are duplicates;
* Standard Webhooks: the key is ``webhook-id``, so a re-send with another valid signature or timestamp
  is a duplicate;
* Basic auth: the key is the body's SHA-256, so an identical delivery is a duplicate and a different
  body is a new one."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from cognigy_webhooks.dal.deliveries import delivery_id_for
from cognigy_webhooks.signing import sign_standard_webhook
from tests.support.receiver import SIGNATURE_HEADER, ReceiverWorld, Registered, json_body, receiver_stack


@pytest.fixture(scope="module")
def world() -> Iterator[ReceiverWorld]:
    yield from receiver_stack()


def send(world: ReceiverWorld, reg: Registered, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    response = world.invoke(world.event(reg, body, headers))
    return int(response["statusCode"]), json.loads(response["body"])


def one_event_per_delivery(world: ReceiverWorld, reg: Registered, delivery_ids: set[str]) -> None:
    events = world.published_for(reg.name)
    assert sorted(e["detail"]["deliveryId"] for e in events) == sorted(delivery_ids)


def whsec() -> str:
    return "whsec_" + base64.b64encode(uuid.uuid4().bytes * 2).decode()


# --- the tutorial's signature -------------------------------------------------------------------


def test_a_retry_across_a_rotation_is_one_delivery(world: ReceiverWorld) -> None:
    # Given an endpoint whose secret was rotated: AWSCURRENT is new, AWSPREVIOUS the old one
    reg = world.register("rot-replay")
    old = reg.secret
    assert old is not None
    new = world.rotate(reg)
    world.receiver.secrets.clear()
    body = json_body(text="the same output, sent before and after the rotation")
    # When Cognigy sends it signed with the previous secret, then retries it signed with the current one
    first_status, first = send(world, reg, body, reg.sign(body, secret=old))
    second_status, second = send(world, reg, body, reg.sign(body, secret=new))
    # Then the first is accepted, the retry is its duplicate, and the bus saw it once
    assert (first_status, first["status"]) == (202, "accepted")
    assert (second_status, second) == (200, {"deliveryId": first["deliveryId"], "status": "duplicate"})
    # and the other way round (current first, previous after) too
    body = json_body(text="current first")
    third_status, third = send(world, reg, body, reg.sign(body, secret=new))
    fourth_status, fourth = send(world, reg, body, reg.sign(body, secret=old))
    assert (third_status, fourth_status) == (202, 200)
    assert fourth["deliveryId"] == third["deliveryId"]
    one_event_per_delivery(world, reg, {first["deliveryId"], third["deliveryId"]})
    assert len(world.deliveries_of(reg.name)) == 2
    assert {d["replayKind"] for d in world.deliveries_of(reg.name)} == {"body-sha256"}


def test_the_delivery_id_is_the_bodys_digest_whichever_secret_verified_it(world: ReceiverWorld) -> None:
    reg = world.register("rot-id")
    old = reg.secret
    assert old is not None
    world.rotate(reg)
    world.receiver.secrets.clear()
    body = json_body()
    _, reply = send(world, reg, body, reg.sign(body, secret=old))
    assert reply["deliveryId"] == delivery_id_for(reg.name, "body-sha256", hashlib.sha256(body).hexdigest())


def test_a_captured_delivery_re_sent_with_a_fresh_timestamp_is_still_refused(world: ReceiverWorld) -> None:
    # The tutorial's timestamp is not signed: an attacker can put a fresh one on a captured delivery,
    # even one signed long ago (beyond the tolerance). The ledger still knows the body.
    reg = world.register("fresh-stamp")
    body = json_body()
    captured = reg.sign(body, timestamp=int(time.time()) - 200)
    status, first = send(world, reg, body, captured)
    assert status == 202
    signature = captured[SIGNATURE_HEADER].split(",", 1)[1]
    # near the edge of the 300 s tolerance, with room for a slow machine (int() truncates up to 1 s)
    for stamp in (int(time.time()), int(time.time()) + 100, int(time.time()) - 290):
        replayed = captured | {SIGNATURE_HEADER: f"{stamp},{signature}"}
        assert send(world, reg, body, replayed) == (
            200,
            {"deliveryId": first["deliveryId"], "status": "duplicate"},
        )
    # re-signed with a fresh timestamp by the real sender: the same body, still one delivery
    assert send(world, reg, body, reg.sign(body))[0] == 200
    one_event_per_delivery(world, reg, {first["deliveryId"]})
    # a different body is a different delivery
    other = json_body()
    status, second = send(world, reg, other, reg.sign(other))
    assert status == 202
    one_event_per_delivery(world, reg, {first["deliveryId"], second["deliveryId"]})


# --- Standard Webhooks --------------------------------------------------------------------------


def standard_headers(
    reg: Registered, msg_id: str, body: bytes, *, timestamp: int, secrets: list[str]
) -> dict[str, str]:
    signatures = " ".join(sign_standard_webhook(msg_id, timestamp, body, s) for s in secrets)
    return {
        "Content-Type": reg.content_type,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures,
    }


def test_a_webhook_id_re_sent_with_another_valid_signature_or_timestamp_is_a_duplicate(
    world: ReceiverWorld,
) -> None:
    reg = world.register("std-replay", scheme="standard")
    old = reg.secret
    assert old is not None
    new = world.rotate(reg, whsec())
    world.receiver.secrets.clear()
    body = json_body()
    msg_id = "msg_" + uuid.uuid4().hex
    now = int(time.time())
    status, first = send(world, reg, body, standard_headers(reg, msg_id, body, timestamp=now, secrets=[old]))
    assert status == 202
    duplicate = (200, {"deliveryId": first["deliveryId"], "status": "duplicate"})
    resends = [
        standard_headers(reg, msg_id, body, timestamp=now, secrets=[old]),  # the very same
        standard_headers(reg, msg_id, body, timestamp=now, secrets=[new]),  # another secret version
        standard_headers(reg, msg_id, body, timestamp=now - 120, secrets=[old]),  # another timestamp
        standard_headers(reg, msg_id, body, timestamp=now + 60, secrets=[new, old]),  # both, later
    ]
    for headers in resends:
        assert send(world, reg, body, headers) == duplicate
    # a new webhook-id is a new message, even with the same body
    status, other = send(
        world, reg, body, standard_headers(reg, "msg_" + uuid.uuid4().hex, body, timestamp=now, secrets=[new])
    )
    assert status == 202
    one_event_per_delivery(world, reg, {first["deliveryId"], other["deliveryId"]})
    assert {d["replayKind"] for d in world.deliveries_of(reg.name)} == {"webhook-id"}


# --- Basic auth ---------------------------------------------------------------------------------


def test_basic_auth_an_identical_delivery_is_a_duplicate_a_different_body_a_new_one(
    world: ReceiverWorld,
) -> None:
    reg = world.register("basic-replay", signed=False, basic=True)
    body = json_body()
    status, first = send(world, reg, body, reg.sign(body))
    assert status == 202
    assert send(world, reg, body, reg.sign(body)) == (
        200,
        {"deliveryId": first["deliveryId"], "status": "duplicate"},
    )
    other = json_body()
    status, second = send(world, reg, other, reg.sign(other))
    assert status == 202
    assert second["deliveryId"] != first["deliveryId"]
    one_event_per_delivery(world, reg, {first["deliveryId"], second["deliveryId"]})
    assert {d["replayKind"] for d in world.deliveries_of(reg.name)} == {"body-sha256"}


def test_basic_auth_across_a_password_rotation_is_one_delivery(world: ReceiverWorld) -> None:
    reg = world.register("basic-rot", signed=False, basic=True)
    assert reg.password_arn is not None
    body = json_body()
    status, first = send(world, reg, body, reg.sign(body))
    assert status == 202
    old_password = reg.password
    reg.password = "rotated-" + uuid.uuid4().hex
    world.sm.put_secret_value(SecretId=reg.password_arn, SecretString=reg.password)
    world.receiver.secrets.clear()
    assert send(world, reg, body, reg.sign(body))[0] == 200
    reg.password = old_password  # the previous password is still accepted, and still the same delivery
    assert send(world, reg, body, reg.sign(body))[0] == 200
    one_event_per_delivery(world, reg, {first["deliveryId"]})
