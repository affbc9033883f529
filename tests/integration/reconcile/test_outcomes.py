"""Reconcile outcomes through the local stack and the real ASL, over real sockets: created, updated,
unchanged, deactivated, deleted (prune), the failures that stay with their own endpoint (a failed
probe, Cognigy's 422, an invalid spec), and the reconcile a deploy starts."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest

from cognigy_webhooks.dal.desired_sets import DesiredSetStore
from cognigy_webhooks.dal.executions import Executions
from tests.integration.reconcile.harness import Harness

WEBHOOKS = "/api/v2/webhooks"


def test_happy_path_creates_and_records_real_values(h: Harness) -> None:
    # Given one healthy endpoint on the TLS 1.3 target
    spec = h.endpoint("orders-hook", headers={"X-Team": "commerce"}, retryPolicy={"maxRetries": 2})

    # When it is applied
    applied = h.apply([spec])

    # Then Cognigy holds exactly one webhook with the spec's values, made by one look-up and one create
    summary = applied.summary
    assert summary["counts"] == {"created": 1, "updated": 0, "unchanged": 0, "deleted": 0, "failed": 0}
    assert summary["created"] == ["orders-hook"]
    assert summary["executionId"] == applied.arn
    assert summary["source"] == "cli"
    [webhook] = h.sim.webhooks_named("orders-hook")
    assert webhook["url"] == spec["url"]
    assert (
        webhook["headers"]
        == {  # the user's header and our loop-prevention headers
            "X-Team": "commerce",
            "X-Cogwh-Origin": "cognigy-webhooks",
            "X-Cogwh-Loop-Id": hashlib.sha256(b"orders-hook").hexdigest()[:16],
            "X-Cogwh-Hop": "1",
        }
    )
    assert webhook["timeout"] == 5000
    assert webhook["retryPolicy"]["maxRetries"] == 2
    assert h.sim.count(method="GET", path=WEBHOOKS) == 1
    assert h.sim.count(method="POST", path=WEBHOOKS, status=201) == 1
    assert h.cognigy_writes() == 1

    result = applied.result("orders-hook")
    assert result["outcome"] == "created"
    assert result["webhookId"] == webhook["id"]
    assert result["statusCode"] == 201
    assert result["tlsVersion"] == "TLSv1.3"
    assert result["latencyMs"] > 0

    # and the record carries the webhook id, the probe and where the change came from
    record = h.record("orders-hook")
    assert record is not None
    assert record.webhook_id == webhook["id"]
    assert record.status == "registered"
    assert record.last_outcome == "created"
    assert record.last_execution_id == applied.arn
    assert record.last_source == "cli"
    assert record.spec["url"] == spec["url"]
    assert record.spec_hash
    assert record.version == 1
    assert record.success_rate == 1.0
    assert record.last_probe is not None
    assert record.last_probe.passed
    assert record.last_probe.tls_version == "TLSv1.3"
    assert record.last_probe.status_code == 200
    assert record.last_probe.latency_ms is not None
    assert record.last_probe.latency_ms > 0
    assert record.last_probe.cert_days_left is not None
    assert record.last_probe.cert_days_left > 0

    # and one audit event with the tutorial's fields filled from what really happened
    [event] = h.audit("orders-hook")
    assert event.action == "register"
    assert event.outcome == "created"
    assert event.webhook_id == webhook["id"]
    assert event.tls_version == "TLSv1.3"
    assert event.status_code == 201
    assert event.probe_status_code == 200
    assert event.latency_ms is not None
    assert event.latency_ms > 0
    assert event.cognigy_latency_ms is not None
    assert event.cognigy_latency_ms > 0
    assert event.success_rate == 1.0
    assert event.endpoint_url == spec["url"]
    assert event.execution_id == applied.arn
    assert event.source == "cli"
    assert event.expires_at == int((event.timestamp + timedelta(days=400)).timestamp())
    log = event.to_webhook_audit_log()
    assert (log.webhook_id, log.action, log.tls_version, log.status_code) == (
        webhook["id"],
        "register",
        "TLSv1.3",
        201,
    )


def test_a_changed_spec_is_patched_in_place(h: Harness) -> None:
    first = h.apply([h.endpoint("billing-hook", method="POST")])
    [webhook] = h.sim.webhooks_named("billing-hook")
    creates = h.sim.count(method="POST")

    applied = h.apply([h.endpoint("billing-hook", method="PUT", payloadFormat="XML", timeoutMs=4000)])

    assert applied.result("billing-hook")["outcome"] == "updated"
    assert applied.result("billing-hook")["statusCode"] == 200
    assert applied.summary["updated"] == ["billing-hook"]
    assert h.sim.count(method="PATCH", path=f"{WEBHOOKS}/{webhook['id']}", status=200) == 1
    assert h.sim.count(method="POST") == creates  # no second webhook
    [patched] = h.sim.webhooks_named("billing-hook")
    assert patched["id"] == webhook["id"]
    assert (patched["method"], patched["payloadFormat"], patched["timeout"]) == ("PUT", "XML", 4000)
    record = h.record("billing-hook")
    assert record is not None
    assert record.webhook_id == webhook["id"]
    assert record.last_outcome == "updated"
    assert record.last_execution_id == applied.arn != first.arn
    assert record.version == 2
    assert record.probe_count == 2
    assert record.spec["method"] == "PUT"
    assert [e.action for e in h.audit("billing-hook")] == ["register", "update"]
    update = h.audit("billing-hook")[-1]
    assert (update.outcome, update.webhook_id, update.status_code) == ("updated", webhook["id"], 200)


def test_reapplying_the_same_set_changes_nothing_in_cognigy(h: Harness) -> None:
    specs = [h.endpoint("same-one"), h.endpoint("same-two", port="PORT_TLS12")]
    h.apply(specs)
    requests_before = len(h.sim.requests)
    writes_before = h.cognigy_writes()

    applied = h.apply(specs)

    assert applied.summary["unchanged"] == ["same-one", "same-two"]
    assert applied.summary["counts"]["unchanged"] == 2
    assert h.cognigy_writes() == writes_before  # no POST, PATCH or DELETE
    # not even a look-up per endpoint: the plan's one listing (all pages) for the whole execution,
    # which is how a re-apply finds orphans and drift (issue 8)
    listing = [(r["method"], r["path"], r["query"].get("name")) for r in h.sim.requests[requests_before:]]
    assert listing == [("GET", WEBHOOKS, None)]
    for name, tls in (("same-one", "TLSv1.3"), ("same-two", "TLSv1.2")):
        assert applied.result(name)["tlsVersion"] == tls
        record = h.record(name)
        assert record is not None
        assert (record.last_outcome, record.probe_count, record.version) == ("unchanged", 2, 2)
        last = h.audit(name)[-1]
        assert (last.action, last.outcome, last.execution_id) == ("unchanged", "unchanged", applied.arn)
        assert last.webhook_id == record.webhook_id
        assert last.tls_version == tls


def test_deactivating_patches_is_active_and_audits_a_deactivate(h: Harness) -> None:
    h.apply([h.endpoint("seasonal-hook")])
    [webhook] = h.sim.webhooks_named("seasonal-hook")
    assert webhook["isActive"] is True

    applied = h.apply([h.endpoint("seasonal-hook", isActive=False)])

    assert applied.result("seasonal-hook")["outcome"] == "updated"
    [after] = h.sim.webhooks_named("seasonal-hook")
    assert (after["id"], after["isActive"]) == (webhook["id"], False)
    record = h.record("seasonal-hook")
    assert record is not None
    assert record.status == "inactive"
    last = h.audit("seasonal-hook")[-1]
    assert (last.action, last.outcome, last.status_code) == ("deactivate", "updated", 200)

    # re-applying the inactive spec is unchanged (the status is part of what is compared)
    writes = h.cognigy_writes()
    again = h.apply([h.endpoint("seasonal-hook", isActive=False)])
    assert again.result("seasonal-hook")["outcome"] == "unchanged"
    assert h.cognigy_writes() == writes


def test_cognigy_422_fails_that_endpoint_alone_with_the_field_errors(h: Harness) -> None:
    good = h.endpoint("fine-hook")
    bad = h.endpoint("reserved-hook", headers={"X-Cognigy-Route": "internal"})

    applied = h.apply([good, bad])

    assert applied.run.status == "SUCCEEDED"
    assert applied.result("fine-hook")["outcome"] == "created"
    rejected = applied.result("reserved-hook")
    assert rejected["outcome"] == "failed"
    assert rejected["reason"] == "cognigy_rejected"
    assert rejected["statusCode"] == 422
    assert "headers.X-Cognigy-Route" in rejected["detail"]
    assert "reserved for Cognigy" in rejected["detail"]
    assert {
        "name": "reserved-hook",
        "reason": "cognigy_rejected",
        "detail": rejected["detail"],
    } in applied.summary["failed"]
    assert h.sim.count(method="POST", status=422) == 1
    assert h.sim.webhooks_named("reserved-hook") == []
    record = h.record("reserved-hook")
    assert record is not None
    assert (record.status, record.last_outcome, record.last_reason, record.webhook_id) == (
        "failed",
        "failed",
        "cognigy_rejected",
        None,
    )
    [event] = h.audit("reserved-hook")
    assert (event.action, event.outcome, event.reason, event.status_code) == (
        "failure",
        "failed",
        "cognigy_rejected",
        422,
    )
    assert event.detail == rejected["detail"]
    # Step Functions treated it as a result, not as an error to retry
    assert applied.task_failures() == []


def test_a_failed_probe_is_recorded_and_never_registered(h: Harness) -> None:
    down = h.endpoint("offline-hook", port="PORT_DOWN")
    legacy = h.endpoint("legacy-hook", port="PORT_TLS11")
    healthy = h.endpoint("online-hook")

    applied = h.apply([down, legacy, healthy])

    assert applied.result("online-hook")["outcome"] == "created"
    expected = {"offline-hook": "probe_connection_refused", "legacy-hook": "probe_tls_version_unsupported"}
    for name, reason in expected.items():
        result = applied.result(name)
        assert (result["outcome"], result["reason"]) == ("failed", reason)
        # not a single request about it reached Cognigy
        assert h.sim.create_attempts_by_name[name] == 0
        assert h.sim.webhooks_named(name) == []
        assert applied.entered_for("Register", name) == []
        assert len(applied.entered_for("RecordProbeFailure", name)) == 1
        record = h.record(name)
        assert record is not None
        assert (record.status, record.last_reason, record.webhook_id) == ("failed", reason, None)
        assert record.last_probe is not None
        assert record.last_probe.passed is False
        assert record.success_rate == 0.0
        [event] = h.audit(name)
        assert (event.action, event.outcome, event.reason) == ("probe", "failed", reason)
        assert event.endpoint_url == h.url(name, "PORT_DOWN" if name == "offline-hook" else "PORT_TLS11")
    assert applied.result("legacy-hook")["tlsVersion"] == "TLSv1.1"  # what the server insisted on
    assert h.sim.count(method="POST") == 1  # the healthy one only
    assert h.sim.create_attempts_by_name["online-hook"] == 1


def test_an_invalid_spec_fails_alone(h: Harness) -> None:
    valid = h.endpoint("valid-hook")
    invalid = {"name": "invalid-hook", "url": "http://localhost/plain-http", "timeoutMs": 5000}
    negative = h.endpoint("negative-timeout-hook", timeoutMs=-5)

    applied = h.apply([valid, invalid, negative])

    assert applied.result("valid-hook")["outcome"] == "created"
    for name, field in (("invalid-hook", "url"), ("negative-timeout-hook", "timeout")):
        result = applied.result(name)
        assert (result["outcome"], result["reason"]) == ("failed", "invalid_spec")
        assert field in result["detail"]
        assert h.sim.create_attempts_by_name[name] == 0
        assert applied.entered_for("Probe", name) == []
    assert applied.summary["counts"] == {
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
        "failed": 2,
    }


def test_prune_deletes_what_is_no_longer_desired(h: Harness) -> None:
    keep, drop = h.endpoint("keep-hook"), h.endpoint("drop-hook")
    h.apply([keep, drop])
    [dropped] = h.sim.webhooks_named("drop-hook")

    # Without prune, an endpoint left out of the set is left alone
    left_alone = h.apply([keep])
    assert left_alone.summary["deleted"] == []
    assert h.record("drop-hook") is not None
    assert h.sim.count(method="DELETE") == 0

    applied = h.apply([keep], prune=True)

    assert applied.summary["deleted"] == ["drop-hook"]
    assert applied.summary["unchanged"] == ["keep-hook"]
    deleted = applied.result("drop-hook")
    assert (deleted["outcome"], deleted["webhookId"], deleted["statusCode"]) == (
        "deleted",
        dropped["id"],
        204,
    )
    assert h.sim.count(method="DELETE", path=f"{WEBHOOKS}/{dropped['id']}", status=204) == 1
    assert h.sim.webhooks_named("drop-hook") == []
    assert len(h.sim.webhooks_named("keep-hook")) == 1
    assert h.record("drop-hook") is None
    assert [r.name for r in h.store.list_records()] == ["keep-hook"]
    # a delete is neither probed nor re-registered
    assert applied.entered_for("Probe", "drop-hook") == []
    # the audit log keeps the whole history, the delete last
    events = h.audit("drop-hook")
    assert [e.action for e in events] == ["register", "delete"]
    assert (events[-1].outcome, events[-1].webhook_id, events[-1].status_code) == (
        "deleted",
        dropped["id"],
        204,
    )
    assert events[-1].endpoint_url == drop["url"]
    assert events[-1].execution_id == applied.arn


def test_a_deploy_starts_one_reconcile_per_desired_set_version(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a desired set stored in the config bucket (as `cogwh apply` or a pipeline leaves it)
    desired = DesiredSetStore(h.stack.client("s3"), h.stack.outputs["ConfigBucketName"])
    version = desired.put({"endpoints": [h.endpoint("deployed-hook")]})
    sfn = h.stack.client("stepfunctions")
    machine = h.stack.outputs["ReconcileStateMachineArn"]

    def execution_names() -> list[str]:
        return [e["name"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]]

    before = execution_names()

    # When CloudFormation reports this stack's update complete, twice (a redelivered event)
    h.stack.put_stack_status_event("UPDATE_COMPLETE")
    h.stack.put_stack_status_event("UPDATE_COMPLETE")

    # Then exactly one execution ran, named after that version of the desired set: both triggers
    # asked for the same name (Step Functions answers a repeat of a running one with the same execution,
    # and refuses it once that ended)
    name = Executions.name_for("deploy", version)
    assert [n for n in execution_names() if n not in before] == [name]
    arn = machine.replace(":stateMachine:", ":execution:") + f":{name}"
    triggered = [r for r in caplog.records if r.getMessage() == "deploy reconcile"]
    assert [getattr(r, "execution", None) for r in triggered] == [arn, arn]
    result = h.stack.wait_execution(arn)
    assert result["status"] == "SUCCEEDED"
    summary = json.loads(result["output"])
    assert (summary["source"], summary["created"]) == ("deploy", ["deployed-hook"])
    record = h.record("deployed-hook")
    assert record is not None
    assert (record.last_source, record.last_execution_id) == ("deploy", arn)
    assert [e.source for e in h.audit("deployed-hook")] == ["deploy"]
    assert h.sim.creates_by_name["deployed-hook"] == 1

    # A third delivery after it ended is refused by name: still one execution, nothing registered twice
    h.stack.put_stack_status_event("UPDATE_COMPLETE")
    assert [n for n in execution_names() if n not in before] == [name]
    last_trigger = [r for r in caplog.records if r.getMessage() == "deploy reconcile"][-1]
    assert getattr(last_trigger, "new", None) is False

    # A status the rule does not match (a rollback) starts nothing; a new version starts a new one
    h.stack.put_stack_status_event("UPDATE_ROLLBACK_COMPLETE")
    assert [n for n in execution_names() if n not in before] == [name]
    newer = desired.put({"endpoints": [h.endpoint("deployed-hook", timeoutMs=6000)]})
    h.stack.put_stack_status_event("CREATE_COMPLETE")
    second = Executions.name_for("deploy", newer)
    assert sorted(n for n in execution_names() if n not in before) == sorted([name, second])
    second_arn = machine.replace(":stateMachine:", ":execution:") + f":{second}"
    assert h.stack.wait_execution(second_arn)["status"] == "SUCCEEDED"
    assert [e.action for e in h.audit("deployed-hook")] == ["register", "update"]
