"""The receiver's guarantees beyond single requests: no secret leaks (logs, audit, stored deliveries,
published events, responses), bounded logs and audit under a flood with every rejection counted in
metrics, 503 (never 500, never a traceback) when AWS fails, and the ledger, loop counter, secret cache
and record cache doing what the pipeline relies on."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from cognigy_webhooks.dal.bus import DeliveryBus
from cognigy_webhooks.dal.clients import LazyClients
from cognigy_webhooks.dal.deliveries import STATE_CLAIMED, STATE_PUBLISHED, DeliveryLedger
from cognigy_webhooks.dal.endpoints import EndpointDirectory
from cognigy_webhooks.dal.secretsmanager import SecretVersions
from cognigy_webhooks.errors import DeliveryStoreError, SecretUnavailable
from cognigy_webhooks.receiving import Receiver, RejectionReporter
from tests.support.receiver import (
    LOOP_MAX_PER_WINDOW,
    SIGNATURE_HEADER,
    ReceiverWorld,
    captured_logs,
    json_body,
    new_secret,
    receiver_stack,
    unique,
)


@pytest.fixture(scope="module")
def world() -> Iterator[ReceiverWorld]:
    yield from receiver_stack()


@pytest.fixture
def exit_stack() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def status(response: dict[str, Any]) -> int:
    return int(response["statusCode"])


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- secrets never leak -------------------------------------------------------------------------


def test_no_secret_signature_or_credential_leaks_anywhere(
    world: ReceiverWorld, capfd: pytest.CaptureFixture[str], exit_stack: ExitStack
) -> None:
    # Given endpoints of every kind, and every kind of delivery, good and bad
    signed = world.register("leak")
    xml = world.register("leak-xml", payload_format="XML")
    standard = world.register("leak-std", scheme="standard")
    basic = world.register("leak-basic", signed=False, basic=True)
    world.reset_reporting()
    logs = exit_stack.enter_context(captured_logs())
    responses: list[dict[str, Any]] = []
    signatures: list[str] = []

    def send(reg: Any, body: bytes, headers: dict[str, str]) -> None:
        for name in (SIGNATURE_HEADER, "webhook-signature"):
            if name in headers:
                signatures.append(headers[name].split(",", 1)[1])
        responses.append(world.invoke(world.event(reg, body, headers)))

    for reg in (signed, xml, standard, basic):
        body = b"<m><sessionId>leak</sessionId></m>" if reg.payload_format == "XML" else json_body()
        send(reg, body, reg.sign(body))  # accepted
        send(reg, body, reg.sign(body))  # duplicate (or a new Standard Webhooks message)
        send(reg, body + b" ", reg.sign(body))  # tampered
        send(reg, body, reg.sign(body, timestamp=int(time.time()) - 3600))  # stale
        send(reg, body, reg.sign(body) | {"Content-Type": "text/plain"})  # wrong type
        if reg.secret is not None:
            send(reg, body, reg.sign(body, secret=new_secret()))  # wrong secret
    world.rotate(signed)
    world.receiver.secrets.clear()  # the wrong-secret deliveries above spent the re-fetch budget
    body = json_body()
    send(signed, body, signed.sign(body))  # signed with the rotated secret
    send(signed, b"x" * (world.receiver.settings.max_body_bytes + 1), signed.sign(b"x"))  # too large
    body = json_body()
    send(signed, body, signed.sign(body) | {"X-Cogwh-Hop": "99"})  # loop
    basic_token = base64.b64encode(f"{basic.username}:{basic.password}".encode()).decode()
    out, err = capfd.readouterr()

    # When we gather everything the receiver wrote or said
    haystacks = {
        "logs": "\n".join(logs) + out + err,
        "audit": json.dumps(world.raw_table(world.audit_table), default=_raw),
        "deliveries": json.dumps(world.raw_table(world.deliveries_table), default=_raw),
        "events": json.dumps(world.published()),
        "responses": json.dumps(responses),
    }
    # Then no secret, no signature and no credential is in any of it
    needles = [s for reg in (signed, xml, standard, basic) for s in reg.secrets_seen]
    needles += [basic_token, *signatures]
    needles += [s.removeprefix("whsec_") for s in standard.secrets_seen]
    assert len(needles) >= 12
    for where, text in haystacks.items():
        for needle in needles:
            assert needle not in text, f"a secret or signature is in the {where}"
    # and the run did produce logs, audit items, deliveries and events to look through
    assert "delivery rejected" in haystacks["logs"]
    assert "signature_mismatch" in haystacks["audit"]
    assert sorted({status(r) for r in responses}) == [200, 202, 401, 413, 415, 508]


def _raw(value: object) -> str:
    """Binary attributes (stored bodies) searched as their bytes."""
    assert isinstance(value, bytes)
    return value.decode("latin-1")


# --- floods -------------------------------------------------------------------------------------


def test_a_flood_of_forgeries_is_counted_in_full_but_logged_and_audited_in_bounds(
    world: ReceiverWorld, capfd: pytest.CaptureFixture[str], exit_stack: ExitStack
) -> None:
    reg = world.register("flood")
    bystander = world.register("bystander")
    clock = Clock()
    receiver = world.receiver
    receiver.reporter = RejectionReporter(receiver.audit, receiver.log, burst=5, per_second=1.0, clock=clock)
    logs = exit_stack.enter_context(captured_logs())
    capfd.readouterr()
    # When 200 forgeries arrive at once
    for i in range(200):
        body = json_body(n=i)
        assert status(world.invoke(world.event(reg, body, reg.sign(body, secret=new_secret())))) == 401
    # and a bystander endpoint's single bad delivery comes in the middle of it
    body = json_body()
    assert status(world.invoke(world.event(bystander, body + b" ", bystander.sign(body)))) == 401
    # and a second later one more forgery
    clock.now += 1.0
    body = json_body()
    world.invoke(world.event(reg, body, reg.sign(body, secret=new_secret())))
    out, _ = capfd.readouterr()

    # Then every rejection is counted in the metrics
    emf = [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]
    mismatches = sum(sum(doc.get("RejectedSignatureMismatch", [])) for doc in emf)
    assert mismatches == 202
    # but only the burst and the refill were logged and audited for the flooded endpoint
    rejected_logs = [json.loads(line) for line in logs if '"message":"delivery rejected"' in line]
    assert len([r for r in rejected_logs if r["endpoint"] == reg.name]) == 6
    audit = world.audit(reg.name)
    assert len(audit) == 6
    summary = max(audit, key=lambda e: e.timestamp)
    assert summary.detail is not None
    assert "195 earlier rejections not logged (signature_mismatch=195)" in summary.detail
    # and the bystander was not silenced by the flood
    assert [e.reason for e in world.audit(bystander.name)] == ["signature_mismatch"]
    world.reset_reporting()


def test_unknown_names_are_audited_under_one_name_never_echoing_garbage(world: ReceiverWorld) -> None:
    world.reset_reporting()
    before = len(world.audit("_unknown"))
    for name in ("no-such-endpoint-1", "x", "<script>alert(1)</script>"):
        event = world.event(name, b"{}", {"Content-Type": "application/json"})
        assert status(world.invoke(event)) == 401
    events = world.audit("_unknown")[before:] if before else world.audit("_unknown")
    details = {e.detail for e in world.audit("_unknown")}
    assert "requested endpoint no-such-endpoint-1" in details
    assert "requested endpoint (not a valid name)" in details
    assert not any("<script>" in (d or "") for d in details)
    assert events


# --- AWS failing --------------------------------------------------------------------------------


def _receiver_with(world: ReceiverWorld, **changes: Any) -> Receiver:
    settings = world.receiver.settings._replace(**changes)
    clients = LazyClients(world.stack.client)
    return Receiver.from_settings(settings, clients=clients, log=world.receiver.log)


def test_a_failing_table_answers_503_with_retry_after_and_no_details(world: ReceiverWorld) -> None:
    reg = world.register("down")
    receiver = _receiver_with(world, deliveries_table="no-such-table")
    body = json_body()
    response = receiver.handle_event(world.event(reg, body, reg.sign(body)))
    assert status(response) == 503
    assert response["headers"]["Retry-After"] == "5"
    assert json.loads(response["body"]) == {"message": "Temporarily unavailable; retry later"}
    assert "Traceback" not in response["body"]
    assert "no-such-table" not in response["body"]


def test_a_failed_publish_releases_the_claim_so_the_retry_goes_through(world: ReceiverWorld) -> None:
    reg = world.register("nobus")
    body = json_body()
    headers = reg.sign(body)
    broken = _receiver_with(world, bus_name="no-such-bus")
    assert status(broken.handle_event(world.event(reg, body, headers))) == 503
    assert world.deliveries_of(reg.name) == []  # the claim was given back
    # Cognigy retries the same delivery: processed afresh, handed on once
    retried = world.invoke(world.event(reg, body, headers))
    assert status(retried) == 202
    assert len(world.published_for(reg.name)) == 1


def test_an_unreadable_secret_is_a_503_not_a_401(world: ReceiverWorld) -> None:
    reg = world.register("nosecret")
    assert reg.secret_arn is not None
    world.sm.delete_secret(SecretId=reg.secret_arn, ForceDeleteWithoutRecovery=True)
    body = json_body()
    response = world.invoke(world.event(reg, body, reg.sign(body)))
    assert status(response) == 503
    assert reg.secret_arn not in response["body"]


# --- the ledger and the loop counter ------------------------------------------------------------


def test_one_claim_wins_a_lost_claim_is_taken_over_after_its_lease(world: ReceiverWorld) -> None:
    ledger = DeliveryLedger(LazyClients(world.stack.client), world.deliveries_table)
    delivery_id = unique("claim")
    item = {"endpoint": {"S": "ledger-test"}, "expiresAt": {"N": str(int(time.time()) + 3600)}}
    assert ledger.claim(delivery_id, item, token="a", now=1000.0, lease=60).won
    # in flight: another claim loses and sees it claimed
    lost = ledger.claim(delivery_id, item, token="b", now=1030.0, lease=60)
    assert (lost.won, lost.state) == (False, STATE_CLAIMED)
    # abandoned (no finish within the lease): a retry takes it over; the old holder can no longer finish
    assert ledger.claim(delivery_id, item, token="c", now=1061.0, lease=60).won
    assert not ledger.finish(delivery_id, token="a", state=STATE_PUBLISHED, now=1062.0)
    assert ledger.finish(delivery_id, token="c", state=STATE_PUBLISHED, now=1062.0)
    # published: never taken over again, however old
    done = ledger.claim(delivery_id, item, token="d", now=99_999.0, lease=60)
    assert (done.won, done.state) == (False, STATE_PUBLISHED)
    # only the holder's own claim can be released
    other = unique("claim")
    assert ledger.claim(other, item, token="x", now=1000.0, lease=60).won
    ledger.release(other, token="not-x")
    assert ledger.get(other) is not None
    ledger.release(other, token="x")
    assert ledger.get(other) is None


def test_the_conversation_window_slides(world: ReceiverWorld) -> None:
    ledger = DeliveryLedger(LazyClients(world.stack.client), world.deliveries_table)
    conversation = unique("conv")
    counts = [ledger.count_conversation("ep", conversation, now=600.0 + t, window=60) for t in (0, 5, 12, 30)]
    assert counts == [1, 2, 3, 4]
    # 61 s after the first, the first step (600-609) has left the window: 2 + 1 new
    assert ledger.count_conversation("ep", conversation, now=661.0, window=60) == 4 - 2 + 1
    # long after, only the new one counts
    assert ledger.count_conversation("ep", conversation, now=2000.0, window=60) == 1
    # conversations are counted apart
    assert ledger.count_conversation("ep", conversation + "-2", now=2000.0, window=60) == 1
    assert LOOP_MAX_PER_WINDOW >= 1


def test_publishing_to_a_missing_bus_raises_a_store_error(world: ReceiverWorld) -> None:
    bus = DeliveryBus(LazyClients(world.stack.client), "no-such-bus", source="cognigy-webhooks")
    with pytest.raises(DeliveryStoreError):
        bus.publish({"deliveryId": "x"})


# --- the caches ---------------------------------------------------------------------------------


def test_secret_versions_current_first_previous_after_rotation_refresh_throttled(
    world: ReceiverWorld,
) -> None:
    reg = world.register("versions")
    assert reg.secret_arn is not None
    assert reg.secret is not None
    clock = Clock()
    versions = SecretVersions(LazyClients(world.stack.client), max_age=300, refresh_seconds=10, clock=clock)
    assert versions.get(reg.secret_arn) == (reg.secret,)  # never rotated: no previous
    old = reg.secret
    new = world.rotate(reg)
    assert versions.get(reg.secret_arn) == (old,)  # cached
    assert versions.refresh(reg.secret_arn) == (new, old)
    assert versions.refresh(reg.secret_arn) is None  # too soon
    clock.now += 10
    assert versions.refresh(reg.secret_arn) == (new, old)
    with pytest.raises(SecretUnavailable) as info:
        versions.get(reg.secret_arn.replace("versions", "nothing-here"))
    assert reg.secret not in str(info.value)


def test_records_are_cached_briefly_unknown_names_more_briefly(world: ReceiverWorld) -> None:
    clock = Clock()
    directory = EndpointDirectory(LazyClients(world.stack.client), world.endpoints_table, ttl=30, clock=clock)
    name = unique("late")
    assert directory.get(name) is None
    reg_name = world.register("cached").name
    assert directory.get(reg_name) is not None
    reads = directory.reads
    assert directory.get(reg_name) is not None
    assert directory.reads == reads
    clock.now += 31
    assert directory.get(reg_name) is not None
    assert directory.reads == reads + 1
    # an unknown name is remembered for a fifth of the time
    assert directory.get(name) is None
    reads = directory.reads
    clock.now += 5
    assert directory.get(name) is None
    assert directory.reads == reads
    clock.now += 2
    directory.get(name)
    assert directory.reads == reads + 1
    # bounded: a flood of made-up names cannot grow it without limit
    small = EndpointDirectory(
        LazyClients(world.stack.client), world.endpoints_table, max_entries=4, clock=clock
    )
    for i in range(10):
        small.get(f"made-up-{i}")
    assert len(small._cache) == 4
    assert re.fullmatch(r"\d+", str(small.reads))
