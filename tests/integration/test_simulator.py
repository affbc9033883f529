"""The Cognigy simulator's own rules, over real TLS sockets (raw httpx, not our client)."""

from __future__ import annotations

import dataclasses
import email.utils
import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cogwh.certs import LocalCA
from cogwh.simulator import WEBHOOKS_PATH, Faults, SimulatorConfig, SimulatorState, key_fingerprint
from tests.support.simulator import (
    READ_ONLY_KEY,
    RunningSimulator,
)

SECRET = "whsec-test-" + "s" * 40


def body(name: str = "orders-hook", **extra: Any) -> dict[str, Any]:
    return {"name": name, "url": "https://hooks.example.test/orders", **extra}


@pytest.fixture
def http(simulator: RunningSimulator) -> Iterator[httpx.Client]:
    ctx = ssl.create_default_context(cafile=str(simulator.ca_file))
    with httpx.Client(
        base_url=simulator.base_url, verify=ctx, headers={"X-API-Key": simulator.api_key}
    ) as client:
        yield client


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- auth -----------------------------------------------------------------------------------------


def test_missing_and_unknown_keys_get_401(simulator: RunningSimulator, http: httpx.Client) -> None:
    # Given no key, then a wrong one
    missing = http.get(WEBHOOKS_PATH, headers={"X-API-Key": ""})
    wrong = http.post(WEBHOOKS_PATH, json=body(), headers={"X-API-Key": "not-a-known-key"})

    # Then both are refused and nothing was created
    assert missing.status_code == 401
    assert "missing" in missing.json()["message"]
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "Unauthorized"
    assert simulator.state.webhooks == {}
    recorded = simulator.state.requests
    assert [r["key"] for r in recorded] == [None, key_fingerprint("not-a-known-key")]


def test_read_only_key_reads_but_cannot_write(simulator: RunningSimulator, http: httpx.Client) -> None:
    created = http.post(WEBHOOKS_PATH, json=body()).json()
    ro = {"X-API-Key": READ_ONLY_KEY}

    assert http.get(WEBHOOKS_PATH, headers=ro).status_code == 200
    assert http.get(f"{WEBHOOKS_PATH}/{created['id']}", headers=ro).status_code == 200
    refused = [
        http.post(WEBHOOKS_PATH, json=body("other-hook"), headers=ro),
        http.patch(f"{WEBHOOKS_PATH}/{created['id']}", json={"isActive": False}, headers=ro),
        http.delete(f"{WEBHOOKS_PATH}/{created['id']}", headers=ro),
    ]

    assert [r.status_code for r in refused] == [403, 403, 403]
    assert "webhooks:write" in refused[0].json()["message"]
    assert list(simulator.state.webhooks) == [created["id"]]
    assert simulator.state.webhooks[created["id"]]["isActive"] is True


# --- schema (422) ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "ab"}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"url": "http://hooks.example.test/a"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"fallbackUrls": [f"https://f{i}.example.test" for i in range(6)]}, "fallbackUrls"),
        ({"fallbackUrls": ["ftp://f.example.test"]}, "fallbackUrls.0"),
        ({"method": "GET"}, "method"),
        ({"payloadFormat": "YAML"}, "payloadFormat"),
        ({"isActive": "yes"}, "isActive"),
        ({"retryPolicy": {"maxRetries": 11, "retryIntervalMs": 5000}}, "retryPolicy.maxRetries"),
        ({"retryPolicy": {"maxRetries": 3, "retryIntervalMs": 999}}, "retryPolicy.retryIntervalMs"),
        ({"retryPolicy": {"maxRetries": 3, "backoff": "linear"}}, "retryPolicy.backoff"),
        ({"timeout": 999}, "timeout"),
        ({"timeout": 30001}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"signatureHeader": "X-Signature"}, "signatureSecret"),
        ({"signatureSecret": SECRET}, "signatureSecret"),
        ({"colour": "blue"}, "colour"),
        ({"headers": {"X-Cognigy-Trace": "1"}}, "headers.X-Cognigy-Trace"),
        ({"headers": {"x-cognigy-bot": "1"}}, "headers.x-cognigy-bot"),
    ],
)
def test_schema_violations_get_422_naming_the_field(
    http: httpx.Client, simulator: RunningSimulator, changes: dict[str, Any], field: str
) -> None:
    response = http.post(WEBHOOKS_PATH, json=body(**changes))

    assert response.status_code == 422
    fields = [e["field"] for e in response.json()["fieldErrors"]]
    assert field in fields
    assert simulator.state.webhooks == {}


def test_required_fields_and_body_shape(http: httpx.Client) -> None:
    missing = http.post(WEBHOOKS_PATH, json={"isActive": True})
    not_object = http.post(WEBHOOKS_PATH, json=[1, 2])
    not_json = http.post(WEBHOOKS_PATH, content=b"{nope", headers={"Content-Type": "application/json"})
    not_json_type = http.post(
        WEBHOOKS_PATH, content=json.dumps(body()), headers={"Content-Type": "text/plain"}
    )

    assert missing.status_code == 422
    assert {e["field"] for e in missing.json()["fieldErrors"]} == {"name", "url"}
    assert not_object.status_code == 422
    assert not_json.status_code == 400
    assert not_json_type.status_code == 415


def test_a_rejected_secret_is_never_echoed(http: httpx.Client, simulator: RunningSimulator) -> None:
    response = http.post(WEBHOOKS_PATH, json=body(signatureSecret=SECRET, timeout=5))

    assert response.status_code == 422
    assert SECRET not in response.text
    assert SECRET not in json.dumps(simulator.state.requests)


def test_valid_create_gets_defaults_and_never_returns_the_secret(
    http: httpx.Client, simulator: RunningSimulator
) -> None:
    response = http.post(
        WEBHOOKS_PATH,
        json=body(
            signatureHeader="X-Signature", signatureSecret=SECRET, headers={"Authorization": "Bearer t0k3n"}
        ),
    )

    assert response.status_code == 201
    created = response.json()
    assert created["method"] == "POST"
    assert created["payloadFormat"] == "JSON"
    assert created["retryPolicy"] == {"maxRetries": 3, "retryIntervalMs": 5000}
    assert created["timeout"] == 10000
    assert created["signatureHeader"] == "X-Signature"
    assert "signatureSecret" not in created
    assert SECRET not in response.text
    # What the simulator recorded: no secret, sensitive header values redacted, key as fingerprint.
    recorded = json.dumps(simulator.state.requests)
    assert SECRET not in recorded
    assert "t0k3n" not in recorded
    assert simulator.api_key not in recorded
    assert simulator.state.requests[0]["key"] == key_fingerprint(simulator.api_key)
    assert simulator.state.creates_by_name == {"orders-hook": 1}


# --- conflicts, lookup, lifecycle -----------------------------------------------------------------


def test_duplicate_name_is_409_unless_duplicates_are_allowed(
    http: httpx.Client, simulator: RunningSimulator
) -> None:
    assert http.post(WEBHOOKS_PATH, json=body()).status_code == 201
    second = http.post(WEBHOOKS_PATH, json=body())
    assert second.status_code == 409
    assert simulator.state.creates_by_name["orders-hook"] == 1
    assert simulator.state.create_attempts_by_name["orders-hook"] == 2

    simulator.configure(allow_duplicate_names=True)
    assert http.post(WEBHOOKS_PATH, json=body()).status_code == 201
    assert http.post(WEBHOOKS_PATH, json=body()).status_code == 201
    assert len(simulator.state.webhooks_named("orders-hook")) == 2


def test_list_pages_with_cursor_and_name_filter(http: httpx.Client) -> None:
    ids = [http.post(WEBHOOKS_PATH, json=body(f"hook-{i}")).json()["id"] for i in range(7)]

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = http.get(WEBHOOKS_PATH, params=params).json()
        pages += 1
        seen += [item["id"] for item in page["items"]]
        cursor = page["nextCursor"]
        if not cursor:
            break

    assert pages == 3
    assert seen == ids
    named = http.get(WEBHOOKS_PATH, params={"name": "hook-4"}).json()
    assert [item["id"] for item in named["items"]] == [ids[4]]
    assert named["nextCursor"] is None
    assert http.get(WEBHOOKS_PATH, params={"limit": 0}).status_code == 422
    assert http.get(WEBHOOKS_PATH, params={"limit": 101}).status_code == 422
    assert http.get(WEBHOOKS_PATH, params={"cursor": "!!garbage"}).status_code == 400


def test_get_patch_delete_by_id(http: httpx.Client) -> None:
    created = http.post(WEBHOOKS_PATH, json=body()).json()
    path = f"{WEBHOOKS_PATH}/{created['id']}"

    patched = http.patch(path, json={"isActive": False, "retryPolicy": {"maxRetries": 0}})
    assert patched.status_code == 200
    assert patched.json()["isActive"] is False
    assert patched.json()["retryPolicy"] == {"maxRetries": 0, "retryIntervalMs": 5000}
    assert http.get(path).json()["isActive"] is False
    assert http.patch(path, json={"timeout": 1}).status_code == 422
    assert http.patch(path, json={"signatureHeader": "X-Sig"}).status_code == 422  # no secret stored
    assert http.patch(path, json={"signatureHeader": "X-Sig", "signatureSecret": SECRET}).status_code == 200

    assert http.delete(path).status_code == 204
    assert http.delete(path).status_code == 404
    assert http.get(path).status_code == 404
    assert http.patch(path, json={"isActive": True}).status_code == 404


def test_rename_onto_a_taken_name_is_409(http: httpx.Client) -> None:
    http.post(WEBHOOKS_PATH, json=body("first-hook"))
    second = http.post(WEBHOOKS_PATH, json=body("second-hook")).json()

    response = http.patch(f"{WEBHOOKS_PATH}/{second['id']}", json={"name": "first-hook"})

    assert response.status_code == 409


# --- the rate limit -------------------------------------------------------------------------------


def test_bucket_answers_429_with_retry_after_rounded_up(
    simulator: RunningSimulator, http: httpx.Client
) -> None:
    # Given a bucket of 3 refilled at 6 per minute (one token every 10 s), on a clock we drive
    clock = FakeClock()
    simulator.configure(rate_per_minute=6, burst=3, clock=clock)

    statuses = [http.get(WEBHOOKS_PATH).status_code for _ in range(3)]
    throttled = http.get(WEBHOOKS_PATH)
    clock.now += 2.5  # a quarter of a token
    still = http.get(WEBHOOKS_PATH)
    clock.now += 7.5  # one whole token now
    again = http.get(WEBHOOKS_PATH)

    assert statuses == [200, 200, 200]
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "10"
    assert still.headers["Retry-After"] == "8"  # 7.5 s, rounded up
    assert again.status_code == 200
    assert simulator.state.status_counts[429] == 2


def test_buckets_are_per_key_and_auth_failures_spend_none(
    simulator: RunningSimulator, http: httpx.Client
) -> None:
    simulator.configure(rate_per_minute=1, burst=1, clock=FakeClock())

    assert http.get(WEBHOOKS_PATH, headers={"X-API-Key": "unknown-key"}).status_code == 401
    assert http.get(WEBHOOKS_PATH).status_code == 200
    assert http.get(WEBHOOKS_PATH).status_code == 429
    assert http.get(WEBHOOKS_PATH, headers={"X-API-Key": READ_ONLY_KEY}).status_code == 200


def test_retry_after_as_http_date(simulator: RunningSimulator, http: httpx.Client) -> None:
    simulator.configure(
        rate_per_minute=1, burst=1, clock=FakeClock(), faults=Faults(retry_after_http_date=True)
    )
    http.get(WEBHOOKS_PATH)
    before = time.time()

    throttled = http.get(WEBHOOKS_PATH)

    assert throttled.status_code == 429
    when = email.utils.parsedate_to_datetime(throttled.headers["Retry-After"]).timestamp()
    assert when >= before + 60  # never earlier than the token is due (60 s at 1/min)


# --- faults ---------------------------------------------------------------------------------------


def test_admin_route_sets_reads_and_validates_faults(simulator: RunningSimulator, http: httpx.Client) -> None:
    assert http.get("/_admin/faults").json()["fault_5xx"] == 0.0

    changed = http.post(
        "/_admin/faults", json={"fault_5xx": 1.0, "status_5xx": 502}, headers={"X-API-Key": ""}
    )
    assert changed.status_code == 200
    assert changed.json()["status_5xx"] == 502
    assert [http.get(WEBHOOKS_PATH).status_code for _ in range(3)] == [502, 502, 502]

    bad = http.post("/_admin/faults", json={"fault_5xx": 0.7, "fault_429": 0.7})
    assert bad.status_code == 422
    assert http.post("/_admin/faults", json={"fault_drop": 2}).status_code == 422
    assert http.post("/_admin/faults", json={"script": ["explode"]}).status_code == 422
    assert http.post("/_admin/faults", json={"nonsense": 1}).status_code == 422

    assert http.post("/_admin/reset").status_code == 204
    assert http.get(WEBHOOKS_PATH).status_code == 200
    assert simulator.state.faults == Faults()


def test_scripted_faults_apply_in_order(simulator: RunningSimulator, http: httpx.Client) -> None:
    http.post("/_admin/faults", json={"script": ["5xx", "429", "408", "501", "pass"], "retry_after_s": 4})

    responses = [http.get(WEBHOOKS_PATH) for _ in range(6)]

    assert [r.status_code for r in responses] == [503, 429, 408, 501, 200, 200]
    assert responses[1].headers["Retry-After"] == "4"
    assert [r["fault"] for r in simulator.state.requests] == ["5xx", "429", "408", "501", None, None]


def test_raw_retry_after_can_be_garbage_or_absent(http: httpx.Client) -> None:
    http.post("/_admin/faults", json={"script": ["429"], "retry_after_raw": "soon-ish"})
    garbage = http.get(WEBHOOKS_PATH)
    http.post("/_admin/faults", json={"script": ["429"], "retry_after_raw": ""})
    absent = http.get(WEBHOOKS_PATH)

    assert garbage.headers["Retry-After"] == "soon-ish"
    assert absent.status_code == 429
    assert "Retry-After" not in absent.headers


def test_dropped_connection_gets_no_response(simulator: RunningSimulator, http: httpx.Client) -> None:
    simulator.state.set_faults({"script": ["drop"]})

    with pytest.raises(httpx.RemoteProtocolError):
        http.get(WEBHOOKS_PATH)

    assert simulator.state.requests[0]["fault"] == "drop"
    assert simulator.state.requests[0]["status"] is None
    assert http.get(WEBHOOKS_PATH).status_code == 200  # the server is fine


def test_drop_after_create_creates_then_loses_the_answer(
    simulator: RunningSimulator, http: httpx.Client
) -> None:
    simulator.state.set_faults({"drop_after_create": True})

    with pytest.raises(httpx.RemoteProtocolError):
        http.post(WEBHOOKS_PATH, json=body())

    assert len(simulator.state.webhooks_named("orders-hook")) == 1
    assert simulator.state.requests[0]["fault"] == "drop_after"
    assert http.get(WEBHOOKS_PATH, params={"name": "orders-hook"}).json()["items"][0]["name"] == "orders-hook"


def test_slow_answers_trip_a_short_read_timeout(simulator: RunningSimulator, http: httpx.Client) -> None:
    simulator.state.set_faults({"slow_ms": 400})

    with pytest.raises(httpx.ReadTimeout):
        http.get(WEBHOOKS_PATH, timeout=httpx.Timeout(5.0, read=0.05))


def test_fault_draws_are_reproducible_from_the_seed() -> None:
    config = SimulatorConfig(
        api_keys=("k",), seed=42, faults=Faults(fault_5xx=0.3, fault_429=0.2, fault_drop=0.1)
    )
    first, second = SimulatorState(config), SimulatorState(config)
    other = SimulatorState(dataclasses.replace(config, seed=43))

    draws = [first.next_fault() for _ in range(200)]

    assert draws == [second.next_fault() for _ in range(200)]
    assert draws != [other.next_fault() for _ in range(200)]
    assert 30 < draws.count("5xx") < 90  # roughly the fractions asked for
    assert draws.count(None) > 40


def test_config_checks_and_hides_keys() -> None:
    config = SimulatorConfig(api_keys=("secret-key-123",))

    assert "secret-key-123" not in repr(config)
    with pytest.raises(ValueError, match="at least one API key"):
        SimulatorConfig()
    with pytest.raises(ValueError, match="visible ASCII"):
        SimulatorConfig(api_keys=("has space",))
    with pytest.raises(ValueError, match="burst"):
        SimulatorConfig(api_keys=("k",), burst=0)
    with pytest.raises(ValueError, match="must not exceed 1"):
        Faults(fault_5xx=0.5, fault_drop=0.6)


# --- the command ----------------------------------------------------------------------------------


def test_cogwh_simulator_serves_over_tls(local_ca: LocalCA) -> None:
    leaf = local_ca.issue("127.0.0.1")
    env = {**os.environ, "COGWH_SIMULATOR_API_KEYS": "cli-key-1234"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cogwh", "simulator", "--port", "0", "--tls-cert", str(leaf.cert),
         "--tls-key", str(leaf.key), "--rate-per-minute", "600", "--burst", "5",
         "--read-only-key", "cli-ro-key"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once the socket listens
        assert "listening on https://127.0.0.1:" in line
        assert "cli-key-1234" not in line
        base_url = line.split("listening on ", 1)[1].split()[0]
        ctx = ssl.create_default_context(cafile=str(local_ca.ca_file))
        with httpx.Client(base_url=base_url, verify=ctx) as client:
            created = client.post(WEBHOOKS_PATH, json=body(), headers={"X-API-Key": "cli-key-1234"})
            refused = client.post(WEBHOOKS_PATH, json=body("x-hook"), headers={"X-API-Key": "cli-ro-key"})
        assert created.status_code == 201
        assert refused.status_code == 403
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cogwh_simulator_refuses_bad_flags_without_a_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cogwh", "simulator", "--api-key", "k", "--tls-cert", "/nonexistent.pem",
         "--tls-key", "/nonexistent.key"],
        capture_output=True,
        text=True,
        timeout=30,
    )  # fmt: skip

    assert result.returncode == 2
    assert "no such file" in result.stderr
    assert "Traceback" not in result.stderr


# --- duplicate names and stale listings (issue 8) -------------------------------------------------


def test_duplicate_names_are_switched_live_by_the_admin_route(
    simulator: RunningSimulator, http: httpx.Client
) -> None:
    # Given a webhook, and the default that refuses a second one with its name
    assert http.post(WEBHOOKS_PATH, json=body()).status_code == 201
    assert http.get("/_admin/config").json() == {"allow_duplicate_names": False}
    assert http.post(WEBHOOKS_PATH, json=body()).status_code == 409

    # When duplicates are allowed live (no key needed, nothing else forgotten)
    switched = http.post("/_admin/config", json={"allow_duplicate_names": True}, headers={"X-API-Key": ""})

    # Then a second webhook with the name is stored, as the real service may do
    assert switched.status_code == 200
    assert switched.json() == {"allow_duplicate_names": True}
    assert http.post(WEBHOOKS_PATH, json=body()).status_code == 201
    assert len(simulator.state.webhooks_named("orders-hook")) == 2
    # and a bad setting is refused, naming the field
    bad = http.post("/_admin/config", json={"allow_duplicate_names": "yes", "burst": 3})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["fieldErrors"]} == {"allow_duplicate_names", "burst"}
    not_json = http.post("/_admin/config", content=b"[", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400
    assert simulator.state.config.allow_duplicate_names is True


def test_a_stale_listing_answers_empty_once(simulator: RunningSimulator, http: httpx.Client) -> None:
    created = http.post(WEBHOOKS_PATH, json=body()).json()
    http.post("/_admin/faults", json={"script": ["stale", "stale"]})

    stale = http.get(WEBHOOKS_PATH, params={"name": "orders-hook"})
    by_id = http.get(f"{WEBHOOKS_PATH}/{created['id']}")  # not a listing: "stale" passes it
    fresh = http.get(WEBHOOKS_PATH, params={"name": "orders-hook"})

    assert (stale.status_code, stale.json()) == (200, {"items": [], "nextCursor": None})
    assert by_id.status_code == 200
    assert [w["id"] for w in fresh.json()["items"]] == [created["id"]]
    assert [r["fault"] for r in simulator.state.requests[1:]] == ["stale", "stale", None]


def test_cogwh_simulator_accepts_duplicate_names_when_asked(local_ca: LocalCA) -> None:
    leaf = local_ca.issue("127.0.0.1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cogwh", "simulator", "--port", "0", "--tls-cert", str(leaf.cert),
         "--tls-key", str(leaf.key), "--api-key", "cli-key-dup", "--allow-duplicate-names"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().split("listening on ", 1)[1].split()[0]
        ctx = ssl.create_default_context(cafile=str(local_ca.ca_file))
        with httpx.Client(base_url=base_url, verify=ctx, headers={"X-API-Key": "cli-key-dup"}) as client:
            statuses = [client.post(WEBHOOKS_PATH, json=body()).status_code for _ in range(2)]
            config = client.get("/_admin/config").json()
        assert statuses == [201, 201]
        assert config == {"allow_duplicate_names": True}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
