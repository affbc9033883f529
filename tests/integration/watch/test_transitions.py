"""The watch's other rules end to end, through the local stack (issue 12 items 2 and 4): failover to a
healthy fallback and back, one ``Certificate Expiring`` per certificate and threshold, 410 Gone
deactivating at once, a host that now resolves to a blocked address, an endpoint deleted outside the
product (``Drift Detected``), and no secret anywhere the watch writes (records, audit, bus events,
its history, its summaries, the targets and result files it keeps in the config bucket)."""

from __future__ import annotations

import hashlib
import json
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cogwh.demo import LocalWorld
from cogwh.sim_endpoints import ENDPOINTS_PATH, EndpointStore
from cogwh.targets import SwitchableTarget, server_context
from tests.integration.reconcile.harness import Harness
from tests.integration.watch.conftest import BLOCK, Watches
from tests.support import emf


def _spec(name: str, target: SwitchableTarget, *fallbacks: SwitchableTarget, **fields: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "url": target.url(f"/hooks/{name}"), "timeoutMs": 3000, **fields}
    if fallbacks:
        spec["fallbackUrls"] = [f.url(f"/hooks/{name}") for f in fallbacks]
    return spec


def _patches(h: Harness) -> list[str]:
    return [r["path"] for r in h.sim.requests if r["method"] == "PATCH"]


def test_a_failing_primary_with_a_healthy_fallback_fails_over_and_back(
    h: Harness, cognigy: EndpointStore, watches: Watches, target: SwitchableTarget, fallback: SwitchableTarget
) -> None:
    spec = _spec("failover-hook", target, fallback)
    h.apply([spec], cognigy=BLOCK)
    (endpoint,) = cognigy.named("failover-hook")
    primary_url, fallback_url = spec["url"], spec["fallbackUrls"][0]
    assert endpoint["settings"]["webhookUrl"] == primary_url

    target.down()
    over = watches.run()  # at once: the fallback is verified fit now, staying costs deliveries
    assert over["transitions"] == {"Endpoint Failed Over": 1}
    assert over["cognigyCalls"] == 1
    (endpoint,) = cognigy.named("failover-hook")
    assert endpoint["settings"]["webhookUrl"] == fallback_url
    assert endpoint["active"] is True
    record = h.record("failover-hook")
    assert record is not None
    assert record.watch is not None
    assert record.watch.current_url == fallback_url
    assert record.watch.state == "healthy"  # deliveries are served: the endpoint is not unhealthy

    # while it serves from the fallback, a re-apply's probe of the primary fails: the apply says so and
    # leaves Cognigy alone (the failover stays; the record stays registered and watched)
    writes = len(_patches(h))
    reapplied = h.apply([spec], cognigy=BLOCK).result("failover-hook")
    assert (reapplied["outcome"], reapplied["reason"]) == ("failed", "probe_connection_refused")
    assert len(_patches(h)) == writes
    assert cognigy.named("failover-hook")[0]["settings"]["webhookUrl"] == fallback_url
    assert h.record("failover-hook").status == "registered"  # type: ignore[union-attr]
    watches.run()  # the primary still down: nothing changes, no call
    assert len(_patches(h)) == writes

    target.up()
    watches.run()
    watches.run()
    assert cognigy.named("failover-hook")[0]["settings"]["webhookUrl"] == fallback_url  # hysteresis
    back = watches.run()
    assert back["transitions"] == {"Endpoint Failed Back": 1}
    assert cognigy.named("failover-hook")[0]["settings"]["webhookUrl"] == primary_url
    assert h.record("failover-hook").watch.current_url is None  # type: ignore[union-attr]
    # and once the primary is back, a re-apply finds it up to date
    assert h.apply([spec], cognigy=BLOCK).result("failover-hook")["outcome"] == "unchanged"
    events = watches.events("failover-hook")
    assert [e["detail-type"] for e in events] == ["Endpoint Failed Over", "Endpoint Failed Back"]
    assert (events[0]["detail"]["fromUrl"], events[0]["detail"]["toUrl"]) == (primary_url, fallback_url)
    assert (events[1]["detail"]["fromUrl"], events[1]["detail"]["toUrl"]) == (fallback_url, primary_url)
    assert [e.action for e in h.audit("failover-hook") if e.source == "watch"] == [
        "endpoint_failed_over",
        "endpoint_failed_back",
    ]
    assert len(_patches(h)) == writes + 1


def test_a_certificate_with_10_days_left_gives_exactly_one_certificate_expiring_across_watches(
    h: Harness, world: LocalWorld, cognigy: EndpointStore, watches: Watches
) -> None:
    leaf = world.ca.issue(
        "localhost", "127.0.0.1", not_after=datetime.now(UTC) + timedelta(days=10, hours=12)
    )
    expiring = SwitchableTarget(server_context(leaf))
    try:
        h.apply([_spec("cert-hook", expiring)], cognigy=BLOCK)
        before = len(h.sim.requests)
        for _ in range(4):
            watches.run()
        events = watches.events("cert-hook")
        assert [e["detail-type"] for e in events] == ["Certificate Expiring"]
        detail = events[0]["detail"]
        assert (detail["threshold"], detail["daysLeft"]) == (14, 10)
        assert detail["url"] == expiring.url("/hooks/cert-hook")
        assert [e.action for e in h.audit("cert-hook") if e.source == "watch"] == ["certificate_expiring"]
        assert len(h.sim.requests) == before  # a warning, not a Cognigy matter
        record = h.record("cert-hook")
        assert record is not None
        assert record.watch is not None
        assert record.watch.state == "healthy"
        assert record.watch.certificates[expiring.url("/hooks/cert-hook")].announced == (30, 14)
    finally:
        expiring.close()


def test_a_target_answering_410_gone_is_deactivated_at_once(
    h: Harness, cognigy: EndpointStore, watches: Watches, target: SwitchableTarget, fallback: SwitchableTarget
) -> None:
    h.apply([_spec("gone-hook", target, fallback)], cognigy=BLOCK)
    target.answer(410)
    gone = watches.run()
    assert gone["transitions"] == {"Endpoint Deactivated": 1}  # whatever the fallback says
    (endpoint,) = cognigy.named("gone-hook")
    assert endpoint["active"] is False
    (event,) = watches.events("gone-hook")
    assert event["detail-type"] == "Endpoint Deactivated"
    assert "410" in event["detail"]["reason"]
    assert _patches(h) == [f"{ENDPOINTS_PATH}/{endpoint['_id']}"]


@pytest.fixture
def changing_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """``hooks.watch.test`` resolves to what the test says (DNS can change under a registered URL);
    every other name as usual. The probe function runs in this process, so it asks this resolver."""
    answers = {"hooks.watch.test": "127.0.0.1"}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            return real(answers[host], port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def test_a_host_that_now_resolves_to_a_blocked_address_is_unhealthy_with_that_reason(
    h: Harness, world: LocalWorld, watches: Watches, changing_dns: dict[str, str]
) -> None:
    leaf = world.ca.issue("hooks.watch.test")
    served = SwitchableTarget(server_context(leaf))
    try:
        h.apply([{"name": "dns-hook", "url": served.url("/x", host="hooks.watch.test")}], cognigy=BLOCK)
        assert h.record("dns-hook").status == "registered"  # type: ignore[union-attr]
        changing_dns["hooks.watch.test"] = "169.254.169.254"  # the cloud metadata address
        for _ in range(3):
            watches.run()
        (event,) = watches.events("dns-hook")
        assert event["detail-type"] == "Endpoint Unhealthy"
        assert "blocked_address" in event["detail"]["reason"]
        record = h.record("dns-hook")
        assert record is not None
        assert record.last_probe is not None
        assert record.last_probe.reason == "blocked_address"
    finally:
        served.close()


def test_an_endpoint_deleted_outside_is_drift_detected_when_the_watch_must_change_it(
    h: Harness, cognigy: EndpointStore, watches: Watches, target: SwitchableTarget
) -> None:
    h.apply([_spec("vanishing-hook", target)], cognigy=BLOCK)
    (endpoint,) = cognigy.named("vanishing-hook")
    cognigy.delete(endpoint["_id"])
    target.answer(410)
    judged = watches.run()
    assert judged["transitions"] == {"Endpoint Deactivated": 1, "Drift Detected": 1}
    kinds = watches.kinds("vanishing-hook")
    assert kinds == ["Endpoint Deactivated", "Drift Detected"]
    record = h.record("vanishing-hook")
    assert record is not None
    assert record.watch is not None
    assert record.watch.state == "deactivated"
    # the next apply makes it again, as the watch has it: inactive until it recovers
    target.up()
    run = h.apply([_spec("vanishing-hook", target)], cognigy=BLOCK)
    assert run.result("vanishing-hook")["outcome"] == "created"
    (remade,) = cognigy.named("vanishing-hook")
    assert remade["active"] is False


def test_a_deactivation_keeps_the_basic_auth_password_in_cognigy_and_shows_it_nowhere(
    h: Harness, cognigy: EndpointStore, watches: Watches, target: SwitchableTarget
) -> None:
    password = "watch-basic-password-0123456789"
    h.apply(
        [_spec("secret-hook", target, basicAuth={"username": "cognigy", "password": password})], cognigy=BLOCK
    )
    target.answer(410)
    watches.run()
    (endpoint,) = cognigy.named("secret-hook")
    assert endpoint["active"] is False
    # the PATCH carried the whole settings: Cognigy still sends the right password
    assert cognigy.password_digest(endpoint["_id"]) == hashlib.sha256(password.encode()).hexdigest()
    seen = json.dumps(h.raw_items("EndpointsTableName")) + json.dumps(h.raw_items("AuditTableName"))
    seen += json.dumps(watches.events()) + json.dumps(watches.runs)
    for summary in watches.runs:
        seen += json.dumps(summary)
    arn = h.stack.client("stepfunctions").list_executions(
        stateMachineArn=h.stack.outputs["WatchStateMachineArn"]
    )["executions"][0]["executionArn"]
    seen += json.dumps(h.stack.execution_history(arn), default=str)
    written = watches.objects()  # the targets, the map's result files, the summaries
    assert any(key.endswith("/targets.json") for key in written)
    assert any("/results/" in key for key in written)
    seen += json.dumps(written)
    assert password not in seen
    assert h.world.api_key not in seen
    assert endpoint["URLToken"] not in seen


def test_the_watch_counts_its_endpoints_transitions_and_deactivations_as_metrics(
    h: Harness, watches: Watches, target: SwitchableTarget, capfd: pytest.CaptureFixture[str]
) -> None:
    h.apply([_spec("metered-hook", target)], cognigy=BLOCK)
    capfd.readouterr()
    target.answer(410)
    watches.run()
    docs = emf.documents(capfd.readouterr().out)
    assert emf.total(docs, "EndpointsWatched") == 1
    assert emf.total(docs, "EndpointsDeactivated") == 1
    assert emf.total(docs, "EndpointsUnhealthy") == 1
    assert emf.total(docs, "WatchTransitions", DetailType="Endpoint Deactivated") == 1
    assert emf.values(docs, "CertificateMinDaysLeft")  # the target showed a certificate
    assert emf.total(docs, "CognigyCalls") == 1  # the one PATCH
    (transitions,) = [d for d in docs if "WatchTransitions" in emf.metric_names(d)]
    assert emf.dimensions(transitions)["stack"]  # each stack's metrics stay its own


def test_a_certificate_that_has_expired_since_the_apply_is_unhealthy_with_that_reason(
    h: Harness, world: LocalWorld, watches: Watches, target: SwitchableTarget
) -> None:
    h.apply([_spec("expired-hook", target)], cognigy=BLOCK)
    now = datetime.now(UTC)
    expired = world.ca.issue(
        "localhost", "127.0.0.1", not_before=now - timedelta(days=90), not_after=now - timedelta(days=1)
    )
    target.up(context=server_context(expired))  # the server now shows a certificate that has expired
    for _ in range(3):
        watches.run()
    kinds = watches.kinds("expired-hook")
    # the first watch that sees it announces it once (every threshold is crossed), the third is unhealthy
    assert kinds == ["Certificate Expiring", "Endpoint Unhealthy"]
    assert "has expired" in watches.events("expired-hook")[0]["detail"]["reason"]
    unhealthy = watches.events("expired-hook")[-1]["detail"]
    assert "certificate_invalid expired" in unhealthy["reason"]
    record = h.record("expired-hook")
    assert record is not None
    assert record.last_probe is not None
    assert record.last_probe.reason == "certificate_invalid"
