"""The receiver through the local gateway over real HTTP: every rule of the delivery pipeline.

The real template runs on the local stack; requests go through uvicorn on 127.0.0.1 into the local
gateway, which builds API Gateway proxy events and invokes the receive function in-process.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from cogwh.gateway import serve_gateway
from tests.support.receiver import (
    LOOP_MAX_HOPS,
    LOOP_MAX_PER_WINDOW,
    SIGNATURE_HEADER,
    ReceiverWorld,
    json_body,
    new_secret,
)


@pytest.fixture(scope="module")
def http(world: ReceiverWorld) -> Iterator[httpx.Client]:
    with serve_gateway(world.stack) as served, httpx.Client(base_url=served.base_url, timeout=30) as client:
        yield client


def post(
    http: httpx.Client, name: str, body: bytes, headers: dict[str, str] | list[tuple[str, str]]
) -> httpx.Response:
    return http.post(f"/deliveries/{name}", content=body, headers=headers)


# --- accepted -----------------------------------------------------------------------------------


def test_valid_json_delivery_is_accepted_stored_and_published_once(
    world: ReceiverWorld,
    http: httpx.Client,
) -> None:
    # Given a registered JSON endpoint and a delivery signed as Cognigy signs it
    reg = world.register("orders")
    body = json_body(text="order 42 shipped")
    # When it is posted through the gateway
    resp = post(http, reg.name, body, reg.sign(body))
    # Then it is accepted with a delivery id
    assert resp.status_code == 202, resp.text
    delivery_id = resp.json()["deliveryId"]
    assert resp.json() == {"deliveryId": delivery_id, "status": "accepted"}
    # and published once to the bus, with the parsed payload
    events = world.published_for(reg.name)
    assert len(events) == 1
    event = events[0]
    assert event["detail-type"] == "Cognigy Delivery"
    assert event["source"] == "cognigy-webhooks"
    assert event["detail"]["deliveryId"] == delivery_id
    assert event["detail"]["payload"] == json.loads(body)
    assert event["detail"]["sessionId"] == json.loads(body)["sessionId"]
    # and stored with a TTL, marked published, the raw bytes kept
    stored = world.delivery(delivery_id)
    assert stored is not None
    assert stored["state"] == "published"
    assert bytes(stored["body"]) == body
    assert 29 * 86400 < stored["expiresAt"] - time.time() <= 30 * 86400


def test_valid_xml_delivery_is_accepted_with_the_payload_parsed(
    world: ReceiverWorld,
    http: httpx.Client,
) -> None:
    reg = world.register("billing", payload_format="XML")
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<delivery kind="bot"><sessionId>x-1</sessionId><text>hi</text><text>there</text></delivery>'
    )
    resp = post(http, reg.name, body, reg.sign(body))
    assert resp.status_code == 202, resp.text
    (event,) = world.published_for(reg.name)
    assert event["detail"]["payloadFormat"] == "XML"
    assert event["detail"]["payload"] == {
        "delivery": {"@kind": "bot", "sessionId": "x-1", "text": ["hi", "there"]}
    }
    assert event["detail"]["sessionId"] == "x-1"


def test_xml_in_another_encoding_is_verified_over_the_exact_bytes(
    world: ReceiverWorld,
    http: httpx.Client,
) -> None:
    # the gateway base64-encodes every body (BinaryMediaTypes */*): not-UTF-8 bytes survive intact
    reg = world.register("latin", payload_format="XML")
    body = '<?xml version="1.0" encoding="ISO-8859-1"?><m><text>Grüße</text></m>'.encode("latin-1")
    resp = post(http, reg.name, body, reg.sign(body) | {"Content-Type": "text/xml"})
    assert resp.status_code == 202, resp.text
    (event,) = world.published_for(reg.name)
    assert event["detail"]["payload"] == {"m": {"text": "Grüße"}}


def test_header_names_are_case_insensitive(world: ReceiverWorld, http: httpx.Client) -> None:
    reg = world.register("cases")
    for spelling in (SIGNATURE_HEADER.lower(), SIGNATURE_HEADER.upper()):
        body = json_body()
        headers = {spelling: reg.sign(body)[SIGNATURE_HEADER], "CONTENT-TYPE": "application/json"}
        assert post(http, reg.name, body, headers).status_code == 202


def test_timestamp_tolerance_holds_both_ways(world: ReceiverWorld, http: httpx.Client) -> None:
    reg = world.register("clock")
    now = int(time.time())
    for offset, expected in ((-250, 202), (250, 202), (-400, 401), (400, 401)):
        body = json_body()
        resp = post(http, reg.name, body, reg.sign(body, timestamp=now + offset))
        assert resp.status_code == expected, (offset, resp.text)
    reasons = sorted(e.reason or "" for e in world.audit(reg.name))
    assert reasons == ["timestamp_future", "timestamp_stale"]


# --- refused ------------------------------------------------------------------------------------


def test_unknown_endpoint_and_failed_authentication_answer_the_same_401(
    world: ReceiverWorld,
    http: httpx.Client,
) -> None:
    reg = world.register("probe-me")
    inactive = world.register("inactive", status="inactive")
    body = json_body()
    wrong = reg.sign(body, secret=new_secret())
    answers = [
        post(http, "no-such-endpoint", body, reg.sign(body)),
        post(http, reg.name, body, wrong),
        post(http, reg.name, body, {"Content-Type": "application/json"}),
        post(http, inactive.name, body, inactive.sign(body)),
        post(http, "x", body, reg.sign(body)),  # not even a valid name
    ]
    volatile = {"date", "x-amzn-requestid"}
    shapes = {
        (r.status_code, r.content, tuple(sorted((k, v) for k, v in r.headers.items() if k not in volatile)))
        for r in answers
    }
    assert len(shapes) == 1
    (status, content, _headers) = shapes.pop()
    assert status == 401
    assert json.loads(content) == {"message": "Unauthorized"}
    assert world.published_for(reg.name) == []


def test_tampered_body_is_refused(world: ReceiverWorld, http: httpx.Client) -> None:
    reg = world.register("tamper")
    body = json_body(amount=10)
    headers = reg.sign(body)
    tampered = body.replace(b'"amount": 10', b'"amount": 1000')
    assert tampered != body
    resp = post(http, reg.name, tampered, headers)
    assert resp.status_code == 401
    assert [e.reason for e in world.audit(reg.name)] == ["signature_mismatch"]
    assert world.published_for(reg.name) == []


def test_wrong_secret_is_refused(world: ReceiverWorld, http: httpx.Client) -> None:
    reg = world.register("wrong")
    body = json_body()
    assert post(http, reg.name, body, reg.sign(body, secret=new_secret())).status_code == 401
    assert world.deliveries_of(reg.name) == []


def test_two_signature_headers_are_refused(world: ReceiverWorld, http: httpx.Client) -> None:
    reg = world.register("twice")
    body = json_body()
    good = reg.sign(body)[SIGNATURE_HEADER]
    headers = [
        ("Content-Type", "application/json"),
        (SIGNATURE_HEADER, good),
        (SIGNATURE_HEADER.lower(), good),
    ]
    resp = post(http, reg.name, body, headers)
    assert resp.status_code == 401
    assert [e.reason for e in world.audit(reg.name)] == ["signature_duplicated"]


def test_oversized_body_gets_413_before_any_lookup_or_hmac(
    world: ReceiverWorld,
    http: httpx.Client,
) -> None:
    reg = world.register("big")
    limit = world.receiver.settings.max_body_bytes
    body = b'{"text": "' + b"x" * limit + b'"}'
    reads, fetches = world.receiver.directory.reads, world.receiver.secrets.fetches
    for name in (reg.name, "no-such-endpoint"):  # the same 413 whether the endpoint exists or not
        resp = post(http, name, body, reg.sign(body))
        assert resp.status_code == 413
        assert resp.json() == {"message": "Payload too large", "limitBytes": limit}
    # no record was read and no secret fetched: the size was refused first
    assert (world.receiver.directory.reads, world.receiver.secrets.fetches) == (reads, fetches)
    # exactly the cap is fine
    exact = b'{"t":"' + b"y" * (limit - 8) + b'"}'
    assert len(exact) == limit
    accepted = post(http, reg.name, exact, reg.sign(exact))
    assert accepted.status_code == 202
    # too big for an EventBridge entry: published without the payload, which stays in the table
    (event,) = world.published_for(reg.name)
    assert event["detail"]["payloadOmitted"] is True
    assert "payload" not in event["detail"]
    stored = world.delivery(accepted.json()["deliveryId"])
    assert stored is not None
    assert bytes(stored["body"]) == exact


def test_content_type_must_match_the_payload_format(
    world: ReceiverWorld,
    http: httpx.Client,
) -> None:
    reg = world.register("types")
    body = json_body()
    signed = reg.sign(body)
    for content_type in ("application/xml", "text/plain", "application/json; charset=latin-1"):
        resp = post(http, reg.name, body, signed | {"Content-Type": content_type})
        assert resp.status_code == 415, content_type
    no_type = {k: v for k, v in signed.items() if k != "Content-Type"}
    assert post(http, reg.name, body, no_type).status_code == 415
    assert (
        post(http, reg.name, body, signed | {"Content-Type": "application/cloudevents+json"}).status_code
        == 202
    )


def test_a_signed_body_that_does_not_parse_is_a_400(world: ReceiverWorld, http: httpx.Client) -> None:
    reg = world.register("garbled")
    for body in (b"{not json", b'{"n": NaN}', b"\xff\xfe{}"):
        resp = post(http, reg.name, body, reg.sign(body))
        assert resp.status_code == 400, body[:20]
        assert resp.json() == {"message": "The body is not valid JSON"}
    # nesting past the bound is refused on the bytes, before parsing, whatever follows it
    resp = post(http, reg.name, b"[" * 100_000, reg.sign(b"[" * 100_000))
    assert resp.status_code == 400
    assert resp.json() == {"message": "The body nests deeper than 64 levels"}
    assert world.deliveries_of(reg.name) == []


# --- replays and duplicates ---------------------------------------------------------------------


def test_a_replayed_signature_is_recognised_beyond_the_tolerance(
    world: ReceiverWorld,
    http: httpx.Client,
) -> None:
    # The tutorial's scheme does not sign the timestamp: an attacker can put a fresh one on a captured
    # body and signature. The ledger, keyed on the signature, still knows it.
    reg = world.register("replay")
    body = json_body()
    captured = reg.sign(body, timestamp=int(time.time()) - 200)
    first = post(http, reg.name, body, captured)
    assert first.status_code == 202
    signature = captured[SIGNATURE_HEADER].split(",", 1)[1]
    replayed = captured | {SIGNATURE_HEADER: f"{int(time.time())},{signature}"}
    again = post(http, reg.name, body, replayed)
    assert again.status_code == 200
    assert again.json() == {"deliveryId": first.json()["deliveryId"], "status": "duplicate"}
    assert len(world.published_for(reg.name)) == 1
    assert len(world.deliveries_of(reg.name)) == 1


def test_standard_webhooks_dedupe_on_webhook_id(world: ReceiverWorld, http: httpx.Client) -> None:
    reg = world.register("std", scheme="standard")
    body = json_body()
    headers = reg.sign(body)
    first = post(http, reg.name, body, headers)
    assert first.status_code == 202, first.text
    again = post(http, reg.name, body, headers)
    assert again.status_code == 200
    assert again.json()["deliveryId"] == first.json()["deliveryId"]
    other = post(http, reg.name, body, reg.sign(body))  # same body, new webhook-id: a new message
    assert other.status_code == 202
    assert other.json()["deliveryId"] != first.json()["deliveryId"]
    forged = headers | {"webhook-id": "msg_forged"}  # the id is signed: changing it breaks the signature
    assert post(http, reg.name, body, forged).status_code == 401
    assert len(world.published_for(reg.name)) == 2


def test_twenty_identical_deliveries_at_once_are_handed_on_exactly_once(
    world: ReceiverWorld,
    http: httpx.Client,
) -> None:
    reg = world.register("burst")
    body = json_body()
    headers = reg.sign(body)
    start = threading.Barrier(20)

    def deliver(_: int) -> httpx.Response:
        with httpx.Client(base_url=str(http.base_url), timeout=60) as client:
            start.wait()
            return post(client, reg.name, body, headers)

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(deliver, range(20)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] * 19 + [202], statuses
    assert len({r.json()["deliveryId"] for r in answers}) == 1
    assert len(world.published_for(reg.name)) == 1
    assert len(world.deliveries_of(reg.name)) == 1


# --- other ways to authenticate -----------------------------------------------------------------


def test_basic_auth_endpoints(world: ReceiverWorld, http: httpx.Client) -> None:
    reg = world.register("basic", signed=False, basic=True)
    body = json_body()
    assert post(http, reg.name, body, reg.sign(body)).status_code == 202
    wrong = reg.sign(body) | {"Authorization": "Basic " + base64.b64encode(b"cognigy:nope").decode()}
    assert post(http, reg.name, json_body(), wrong).status_code == 401
    assert post(http, reg.name, json_body(), {"Content-Type": "application/json"}).status_code == 401
    reasons = sorted(e.reason or "" for e in world.audit(reg.name))
    assert reasons == ["authorization_missing", "credentials_mismatch"]


def test_signature_and_basic_auth_together_need_both(world: ReceiverWorld, http: httpx.Client) -> None:
    reg = world.register("both", basic=True)
    body = json_body()
    good = reg.sign(body)
    assert post(http, reg.name, body, good).status_code == 202
    body2 = json_body()
    no_basic = {k: v for k, v in reg.sign(body2).items() if k != "Authorization"}
    assert post(http, reg.name, body2, no_basic).status_code == 401


def test_an_endpoint_without_any_authentication_takes_nothing(
    world: ReceiverWorld,
    http: httpx.Client,
) -> None:
    reg = world.register("open", signed=False)
    resp = post(http, reg.name, json_body(), {"Content-Type": "application/json"})
    assert resp.status_code == 401


def test_rotation_accepts_current_and_previous_and_refetches_once(
    world: ReceiverWorld,
    http: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(world.receiver.secrets, "_clock", lambda: 5_000.0)  # the re-fetch budget's clock
    reg = world.register("rotate")
    old = reg.secret
    assert old is not None
    # warm the cache with the old secret
    body = json_body()
    assert post(http, reg.name, body, reg.sign(body)).status_code == 202
    fetches = world.receiver.secrets.fetches
    # rotate: the receiver still holds the old value only; a delivery signed with the new one makes it
    # re-fetch once, past its cache
    new = world.rotate(reg)
    body = json_body()
    assert post(http, reg.name, body, reg.sign(body, secret=new)).status_code == 202
    assert world.receiver.secrets.fetches == fetches + 2  # AWSCURRENT and AWSPREVIOUS, once
    # during the rotation both are accepted, from the cache
    body = json_body()
    assert post(http, reg.name, body, reg.sign(body, secret=old)).status_code == 202
    body = json_body()
    assert post(http, reg.name, body, reg.sign(body, secret=new)).status_code == 202
    assert world.receiver.secrets.fetches == fetches + 2
    # a forgery does not make it fetch again at once (a flood must not become Secrets Manager calls)
    for _ in range(3):
        body = json_body()
        assert post(http, reg.name, body, reg.sign(body, secret=new_secret())).status_code == 401
    assert world.receiver.secrets.fetches == fetches + 2


# --- loops --------------------------------------------------------------------------------------


def test_a_hop_header_past_the_bound_is_a_loop(world: ReceiverWorld, http: httpx.Client) -> None:
    reg = world.register("hops")
    body = json_body()
    ok = post(http, reg.name, body, reg.sign(body) | {"X-Cogwh-Hop": str(LOOP_MAX_HOPS)})
    assert ok.status_code == 202
    body = json_body()
    resp = post(http, reg.name, body, reg.sign(body) | {"X-Cogwh-Hop": str(LOOP_MAX_HOPS + 1)})
    assert resp.status_code == 508
    assert resp.json() == {"message": "Loop detected"}
    (audit,) = [e for e in world.audit(reg.name) if e.action == "loop_detected"]
    assert audit.reason == "hop_limit"
    assert audit.status_code == 508
    assert len(world.published_for(reg.name)) == 1


def test_an_echoing_conversation_is_stopped_with_508(world: ReceiverWorld, http: httpx.Client) -> None:
    reg = world.register("echo")
    statuses = []
    for turn in range(LOOP_MAX_PER_WINDOW + 3):
        body = json.dumps({"sessionId": "conversation-1", "text": f"echo {turn}"}).encode()
        statuses.append(post(http, reg.name, body, reg.sign(body)).status_code)
    assert statuses == [202] * LOOP_MAX_PER_WINDOW + [508] * 3
    assert len(world.published_for(reg.name)) == LOOP_MAX_PER_WINDOW
    loops = [e for e in world.audit(reg.name) if e.action == "loop_detected"]
    assert {e.reason for e in loops} == {"conversation_limit"}
    # other conversations of the same endpoint go on
    body = json.dumps({"sessionId": "conversation-2", "text": "hi"}).encode()
    assert post(http, reg.name, body, reg.sign(body)).status_code == 202
    # Cognigy retrying a looped delivery gets 508 again, not a duplicate's 200
    looped = json.dumps({"sessionId": "conversation-1", "text": f"echo {LOOP_MAX_PER_WINDOW}"}).encode()
    assert post(http, reg.name, looped, reg.sign(looped)).status_code == 508


# --- the gateway itself -------------------------------------------------------------------------


def test_the_gateway_serves_the_stage_path_and_refuses_unknown_routes(
    world: ReceiverWorld,
    http: httpx.Client,
) -> None:
    reg = world.register("stage")
    body = json_body()
    assert http.post(f"/v1/deliveries/{reg.name}", content=body, headers=reg.sign(body)).status_code == 202
    missing = http.get(f"/deliveries/{reg.name}")
    assert missing.status_code == 403
    assert missing.json() == {"message": "Missing Authentication Token"}
    assert http.post("/elsewhere", content=b"{}").status_code == 403


# --- the demo's checks and `cogwh sign`, against the gateway ------------------------------------


def test_the_delivery_checks_all_match(world: ReceiverWorld, http: httpx.Client) -> None:
    from cogwh.deliveries import DeliveryTarget, format_verdicts, run_delivery_checks

    orders = world.register("demo-json")
    billing = world.register("demo-xml", payload_format="XML")
    assert orders.secret is not None
    assert billing.secret is not None
    verdicts = run_delivery_checks(
        str(http.base_url),
        DeliveryTarget(orders.name, orders.secret),
        DeliveryTarget(billing.name, billing.secret, payload_format="XML"),
        max_body_bytes=world.receiver.settings.max_body_bytes,
        loop_max_per_window=LOOP_MAX_PER_WINDOW,
        loop_max_hops=LOOP_MAX_HOPS,
    )
    table = format_verdicts(verdicts)
    assert all(v.ok for v in verdicts), table
    assert len(verdicts) == 12
    assert orders.secret not in table
    assert orders.secret not in repr(verdicts)
    assert "MISMATCH" not in table
    # the table tells a mismatch apart
    from cogwh.deliveries import Verdict

    assert "MISMATCH" in format_verdicts([Verdict("x", 202, 401, False)])


def test_the_delivery_checks_report_a_receiver_that_lets_a_forgery_through(
    world: ReceiverWorld,
    http: httpx.Client,
) -> None:
    # an endpoint whose recorded secret is not the one the checks sign with: every good case fails
    from cogwh.deliveries import DeliveryTarget, run_delivery_checks

    orders = world.register("demo-off")
    verdicts = run_delivery_checks(
        str(http.base_url),
        DeliveryTarget(orders.name, new_secret()),
        loop_max_per_window=LOOP_MAX_PER_WINDOW,
        loop_max_hops=LOOP_MAX_HOPS,
    )
    failed = {v.case for v in verdicts if not v.ok}
    assert "valid JSON delivery" in failed
    assert "tampered body" not in failed


def test_cogwh_sign_output_is_a_delivery_the_receiver_accepts(
    world: ReceiverWorld,
    http: httpx.Client,
    tmp_path: object,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import shlex
    from pathlib import Path

    from cogwh.cli import main

    for scheme in ("cognigy", "standard"):
        reg = world.register(f"sign-{scheme}", scheme=scheme)
        assert reg.secret is not None
        body_file = Path(str(tmp_path)) / f"{scheme}.json"
        body_file.write_bytes(json_body())
        monkeypatch.setenv("RX_SIGNING_SECRET", reg.secret)
        url = f"{str(http.base_url).rstrip('/')}/deliveries/{reg.name}"
        assert (
            main(
                [
                    "sign",
                    "--secret-env",
                    "RX_SIGNING_SECRET",
                    "--scheme",
                    scheme,
                    "--url",
                    url,
                    str(body_file),
                ]
            )
            == 0
        )
        out = capsys.readouterr().out
        assert reg.secret not in out
        curl = shlex.split(out.strip().splitlines()[-1])
        assert curl[:5] == ["curl", "-sS", "-X", "POST", url]
        headers = [curl[i + 1].split(": ", 1) for i, part in enumerate(curl) if part == "-H"]
        assert curl[-1] == f"@{body_file}"
        resp = http.post(url, content=body_file.read_bytes(), headers=[(k, v) for k, v in headers])
        assert resp.status_code == 202, (scheme, resp.text)
