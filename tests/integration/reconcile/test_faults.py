"""What Cognigy's failures do to a reconcile, through the real ASL: throttling waited out for exactly
the Retry-After, 5xx retried, a lost create response adopted without a duplicate, and a refused API
key failing the whole execution with a clear cause."""

from __future__ import annotations

import dataclasses
import json
import secrets

import pytest

from cognigy_webhooks.reconcile import throttle_jitter_bound
from cogwh.simulator import SimulatorConfig
from tests.integration.reconcile.harness import Harness


def test_a_429_is_waited_out_for_its_retry_after_then_registered(h: Harness) -> None:
    # Given Cognigy answers the next request with 429 and Retry-After: 3
    h.sim.set_faults({"script": ["429"], "retry_after_s": 3})

    applied = h.apply([h.endpoint("throttled-hook")])

    # Then the register task failed once as CognigyThrottled carrying the seconds ...
    [failure] = applied.task_failures()
    assert failure["error"] == "CognigyThrottled"
    assert json.loads(json.loads(failure["cause"])["errorMessage"])["retryAfterSeconds"] == 3
    # ... the Wait state ran once with exactly those seconds, then Register ran again and created it
    [waited] = applied.entered_for("WaitRetryAfter", "throttled-hook")
    assert waited["throttle"] == {"rounds": 1, "seconds": 3}
    assert len(applied.entered_for("Register", "throttled-hook")) == 2
    assert applied.result("throttled-hook")["outcome"] == "created"
    assert h.sim.count(status=429) == 1
    assert h.sim.creates_by_name["throttled-hook"] == 1
    [event] = h.audit("throttled-hook")
    assert (event.action, event.outcome, event.status_code) == ("register", "created", 201)


def test_throttling_beyond_the_bounded_rounds_fails_that_endpoint_only(h: Harness) -> None:
    # ThrottleRounds defaults to 5: the sixth 429 in a row gives up
    h.sim.set_faults({"script": ["429"] * 6, "retry_after_s": 1})

    applied = h.apply([h.endpoint("always-throttled")])

    assert applied.run.status == "SUCCEEDED"
    waits = applied.entered_for("WaitRetryAfter", "always-throttled")
    assert [w["throttle"] for w in waits] == [{"rounds": n, "seconds": 1} for n in range(1, 6)]
    result = applied.result("always-throttled")
    assert (result["outcome"], result["reason"]) == ("failed", "cognigy_throttled")
    assert "HTTP 429" in result["detail"]
    assert h.sim.count(status=429) == 6
    assert h.sim.create_attempts_by_name["always-throttled"] == 0
    record = h.record("always-throttled")
    assert record is not None
    assert (record.status, record.last_reason) == ("failed", "cognigy_throttled")


def test_a_5xx_burst_is_retried_and_succeeds(h: Harness) -> None:
    h.sim.set_faults({"script": ["5xx", "5xx", "5xx"], "status_5xx": 503})

    applied = h.apply([h.endpoint("flaky-hook")])

    assert [f["error"] for f in applied.task_failures()] == ["CognigyUnavailable"] * 3
    assert all("HTTP 503" in json.loads(f["cause"])["errorMessage"] for f in applied.task_failures())
    # retried inside the one Register state (its Retry), not by re-entering it
    assert len(applied.entered_for("Register", "flaky-hook")) == 1
    register_attempts = [
        e
        for e in applied.history
        if "RegisterFunction" in e.get("lambdaFunctionScheduledEventDetails", {}).get("resource", "")
    ]
    assert len(register_attempts) == 4
    assert applied.result("flaky-hook")["outcome"] == "created"
    assert h.sim.count(status=503) == 3
    assert h.sim.creates_by_name["flaky-hook"] == 1
    assert [e.action for e in h.audit("flaky-hook")] == ["register"]


def test_5xx_beyond_the_retries_is_recorded_as_failed_without_failing_the_execution(h: Harness) -> None:
    # Register retries CognigyUnavailable 4 times (MaxAttempts 4): the fifth 5xx in a row gives up
    h.sim.set_faults({"script": ["5xx"] * 5, "status_5xx": 502})

    applied = h.apply([h.endpoint("down-for-long")])

    assert applied.run.status == "SUCCEEDED"
    assert [f["error"] for f in applied.task_failures()] == ["CognigyUnavailable"] * 5
    result = applied.result("down-for-long")
    assert (result["outcome"], result["reason"]) == ("failed", "cognigy_unavailable")
    assert "HTTP 502" in result["detail"]
    [event] = h.audit("down-for-long")
    assert (event.action, event.outcome, event.reason) == ("failure", "failed", "cognigy_unavailable")


def test_a_lost_create_response_is_adopted_without_a_duplicate(h: Harness) -> None:
    # Given Cognigy creates the webhook, then drops the connection before answering
    h.sim.set_faults({"drop_after_create": True})

    applied = h.apply([h.endpoint("lost-response-hook")])

    # The lost answer surfaced as a retryable error, and the retry found the webhook by name
    assert [f["error"] for f in applied.task_failures()] == ["CognigyUnavailable"]
    result = applied.result("lost-response-hook")
    assert result["outcome"] == "created"
    assert h.sim.creates_by_name["lost-response-hook"] == 1
    assert h.sim.create_attempts_by_name["lost-response-hook"] == 1
    [webhook] = h.sim.webhooks_named("lost-response-hook")
    assert result["webhookId"] == webhook["id"]
    assert h.sim.count(method="PATCH", path=f"/api/v2/webhooks/{webhook['id']}", status=200) == 1
    record = h.record("lost-response-hook")
    assert record is not None
    assert record.webhook_id == webhook["id"]
    [event] = h.audit("lost-response-hook")
    assert (event.action, event.outcome, event.webhook_id) == ("register", "created", webhook["id"])

    # and once Cognigy behaves again, a re-apply finds nothing to do
    h.sim.set_faults({"drop_after_create": False})
    writes = h.cognigy_writes()
    again = h.apply([h.endpoint("lost-response-hook")])
    assert again.result("lost-response-hook")["outcome"] == "unchanged"
    assert h.cognigy_writes() == writes
    assert len(h.sim.webhooks_named("lost-response-hook")) == 1


@pytest.mark.parametrize(
    ("refusal", "error", "status"),
    [("revoked", "CognigyAuthError", 401), ("read_only", "CognigyForbidden", 403)],
)
def test_a_refused_api_key_fails_the_execution_with_a_clear_cause(
    h: Harness, simulator_config: SimulatorConfig, refusal: str, error: str, status: int
) -> None:
    # Given an endpoint registered while the key was good
    h.apply([h.endpoint("keyed-hook")])
    before = h.record("keyed-hook")
    assert before is not None
    assert before.webhook_id

    # When Cognigy stops accepting the key (revoked), or accepts it for reading only
    other_key = "ck_rotated_" + secrets.token_urlsafe(16)
    if refusal == "revoked":
        h.sim.reset(dataclasses.replace(simulator_config, api_keys=(other_key,)))
    else:
        h.sim.reset(
            dataclasses.replace(simulator_config, api_keys=(other_key,), read_only_keys=(h.world.api_key,))
        )
    applied = h.apply([h.endpoint("keyed-hook", timeoutMs=7000), h.endpoint("new-hook")])

    # Then the whole execution fails, naming the error and saying what Cognigy said
    assert applied.run.status == "FAILED"
    assert applied.run.error == error
    cause = json.loads(applied.run.cause or "{}")
    assert cause["errorType"] == error
    assert f"HTTP {status}" in cause["errorMessage"]
    assert h.world.api_key not in (applied.run.cause or "")
    assert h.sim.count(status=status) >= 1
    assert h.sim.count(method="POST", status=201) + h.sim.count(method="PATCH", status=200) == 0
    # the endpoint registered before keeps its record, and the refusal is in its audit log
    after = h.record("keyed-hook")
    assert after is not None
    assert after.webhook_id == before.webhook_id
    refused = [e for e in h.audit("keyed-hook") + h.audit("new-hook") if e.action == "failure"]
    assert refused
    assert all((e.outcome, e.status_code) == ("failed", status) for e in refused)
    assert all(e.reason == ("cognigy_auth" if status == 401 else "cognigy_forbidden") for e in refused)


def test_the_wait_state_waits_what_each_throttle_carries(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    # Record the seconds moto's Wait state is given (the local stack's wait hook), never the clock
    waited: list[float] = []
    monkeypatch.setattr(h.stack, "wait_state", lambda env, seconds: waited.append(seconds))
    carried: list[int] = []

    # When two endpoints are throttled with two different Retry-After values
    for retry_after in (2, 40):
        h.sim.set_faults({"script": ["429"], "retry_after_s": retry_after})
        applied = h.apply([h.endpoint(f"wait-{retry_after}-hook")])
        [failure] = applied.task_failures()
        message = json.loads(json.loads(failure["cause"])["errorMessage"])
        # the task carries Cognigy's Retry-After and the wait: that plus a bounded whole-second jitter
        assert message["retryAfterSeconds"] == retry_after
        assert retry_after <= message["waitSeconds"] <= retry_after + throttle_jitter_bound(retry_after)
        carried.append(message["waitSeconds"])
        assert applied.result(f"wait-{retry_after}-hook")["outcome"] == "created"

    # Then the Wait state waited exactly what each throttle carried (not a fixed number of seconds)
    assert waited == carried
    assert carried[0] != carried[1]
