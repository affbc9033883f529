"""The tutorial's ``main()``, as its reader runs it, against the simulator over real TLS.

The block under "the tutorial's example" is plain module-level code written the way the tutorial
("Registering NICE Cognigy Bot Webhook Endpoints via REST API with Python") writes it, with only its
public names, imported from ``cognigy_webhooks``. To run it here the test changes nothing but the
constants above it, as a reader would: the Cognigy base URL and API key (the simulator), the bot's
base URL and the monitoring URL (local HTTPS servers), the CA those local servers' certificates
come from, and the reachability policy (the SSRF guard refuses loopback addresses unless told to:
a local target needs ``allow_private_networks``).
"""

from __future__ import annotations

import json
import ssl
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cognigy_webhooks import (
    HttpMethod,
    PayloadFormat,
    ProbePolicy,
    ReachabilityResult,
    RetryPolicy,
    WebhookAuditLog,
    WebhookEndpoint,
    configure_timeout_pipeline,
    create_cognigy_client,
    inject_loop_prevention_headers,
    process_registration_jobs,
    sign_webhook_payload,
    sync_to_monitoring_platform,
    verify_endpoint_reachability,
    verify_webhook_signature,
)
from cogwh.certs import LocalCA
from cogwh.servers import serve_in_thread
from tests.support.simulator import RunningSimulator

pytestmark = pytest.mark.anyio

# --- the reader's constants (the only lines a reader edits; the test points them at the local world)

COGNIGY_API_KEY = "your-cognigy-api-key"
COGNIGY_BASE_URL = "https://api.cognigy.ai"
BOT_BASE_URL = "https://bot.example.com"
MONITORING_URL = "https://monitoring.example.com/api/v1/events"
MONITORING_API_TOKEN = "your-monitoring-token"
WEBHOOK_SECRET = "replace-with-a-long-random-signing-secret-000000"
CA_BUNDLE: str | bool = True  # the CA the servers' certificates come from (True: the public roots)
REACHABILITY_POLICY: ProbePolicy | None = None  # None: public targets only (the SSRF guard)


# --- the tutorial's example ---------------------------------------------------------------------


async def main() -> dict[str, Any]:
    client = create_cognigy_client(COGNIGY_API_KEY, COGNIGY_BASE_URL, verify=CA_BUNDLE)

    # Step 1: the endpoints, their headers through the loop-prevention function
    endpoints = [
        WebhookEndpoint(
            name="order-status-webhook",
            url=f"{BOT_BASE_URL}/webhooks/order-status",
            method=HttpMethod.POST,
            headers=inject_loop_prevention_headers(
                {"Content-Type": "application/json", "X-Bot-Id": "order-bot"}
            ),
            payload_format=PayloadFormat.JSON,
            retry_policy=RetryPolicy(max_retries=3, retry_interval_ms=5000),
            timeout_ms=10000,
            signature_header="X-Cognigy-Signature",
            signature_secret=WEBHOOK_SECRET,
        ),
        WebhookEndpoint(
            name="agent-handover-webhook",
            url=f"{BOT_BASE_URL}/webhooks/handover",
            method=HttpMethod.PUT,
            headers=inject_loop_prevention_headers({"X-Bot-Id": "handover-bot"}),
            payload_format=PayloadFormat.XML,
            retry_policy=RetryPolicy(max_retries=5, retry_interval_ms=2000),
            timeout_ms=5000,
        ),
        WebhookEndpoint(
            name="survey-results-webhook",
            url=f"{BOT_BASE_URL}/webhooks/survey",
            headers=inject_loop_prevention_headers({}),
        ),
    ]

    # Step 2: is each endpoint reachable, over TLS 1.2+?
    reachability: dict[str, ReachabilityResult] = {}
    for endpoint in endpoints:
        result = await verify_endpoint_reachability(endpoint.url, client, policy=REACHABILITY_POLICY)
        reachability[endpoint.name] = result
        timeout = configure_timeout_pipeline(endpoint)
        print(
            f"{endpoint.name}: reachable={result.reachable} tls={result.tls_version} "
            f"latency={result.latency_ms}ms timeouts(connect={timeout.connect}s, read={timeout.read}s)"
        )
    ready = [endpoint for endpoint in endpoints if reachability[endpoint.name].passed]

    # Step 3: register them as a batch (bounded, paced, retried)
    results = await process_registration_jobs(
        ready, COGNIGY_API_KEY, base_url=COGNIGY_BASE_URL, verify=CA_BUNDLE
    )
    for registration in results:
        print(f"{registration.name}: {registration.status} {registration.webhook_id or ''}")

    # Step 4: audit entries, synced to the monitoring platform
    audit_logs = [
        WebhookAuditLog(
            webhook_id=registration.webhook_id,
            action="register",
            status_code=201 if registration.success else registration.status_code,
            endpoint_url=endpoint.url,
            latency_ms=reachability[endpoint.name].latency_ms,
            tls_version=reachability[endpoint.name].tls_version,
            success_rate=1.0 if registration.success else 0.0,
        )
        for registration, endpoint in zip(results, ready, strict=True)
    ]
    synced = await sync_to_monitoring_platform(
        audit_logs, MONITORING_URL, api_token=MONITORING_API_TOKEN, client=client
    )
    print(f"monitoring: {synced.sent} sent, {len(synced.failed)} failed")
    await client.aclose()
    return {"endpoints": endpoints, "reachability": reachability, "results": results, "synced": synced}


# --- the local world the constants point at -----------------------------------------------------------


@dataclass
class LocalWorld:
    """The bot's webhook server and the monitoring platform, as one local HTTPS server."""

    base_url: str = ""
    probes: list[str] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    monitoring: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def webhook(request: Request) -> Response:
            if request.method == "GET":  # the reachability probe
                self.probes.append(request.url.path)
                return JSONResponse({"ok": True})
            body = await request.body()
            ok = verify_webhook_signature(
                body, request.headers.get("X-Cognigy-Signature", ""), WEBHOOK_SECRET
            )
            self.deliveries.append({"path": request.url.path, "ok": ok, "headers": dict(request.headers)})
            return Response(status_code=204 if ok else 401)

        async def events(request: Request) -> Response:
            self.monitoring.append({"headers": dict(request.headers), "body": await request.json()})
            return JSONResponse({"accepted": True}, status_code=202)

        return Starlette(
            routes=[
                Route("/webhooks/{name}", webhook, methods=["GET", "POST", "PUT"]),
                Route("/monitoring/events", events, methods=["POST"]),
            ]
        )


@pytest.fixture
def world(local_ca: LocalCA) -> Iterator[LocalWorld]:
    leaf = local_ca.issue("localhost", "127.0.0.1")
    found = LocalWorld()
    with serve_in_thread(found.app(), certfile=leaf.cert, keyfile=leaf.key, url_host="localhost") as served:
        found.base_url = served.base_url
        yield found


@pytest.fixture
def tutorial(
    monkeypatch: pytest.MonkeyPatch, simulator: RunningSimulator, world: LocalWorld, local_ca: LocalCA
) -> ModuleType:
    """This module with the reader's constants pointed at the simulator and the local servers."""
    module = sys.modules[__name__]
    for name, value in {
        "COGNIGY_API_KEY": simulator.api_key,
        "COGNIGY_BASE_URL": simulator.base_url,
        "BOT_BASE_URL": world.base_url,
        "MONITORING_URL": f"{world.base_url}/monitoring/events",
        "MONITORING_API_TOKEN": "monitoring-token-" + "m" * 24,
        "CA_BUNDLE": str(local_ca.ca_file),
        "REACHABILITY_POLICY": ProbePolicy(allow_private_networks=True, ca_bundle=str(local_ca.ca_file)),
    }.items():
        monkeypatch.setattr(module, name, value)
    return module


TUTORIAL_HEADER_VALUES = {"X-Cognigy-Webhook-Source": "bot-integration", "Prevent-Loop": "true"}


async def test_main_runs_to_completion_and_registers_every_endpoint_with_the_tutorials_headers(
    tutorial: ModuleType,
    simulator: RunningSimulator,
    world: LocalWorld,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # When the reader runs the tutorial's main()
    outcome = await tutorial.main()

    # Then every endpoint was reachable over TLS and registered
    endpoints: list[WebhookEndpoint] = outcome["endpoints"]
    assert sorted(world.probes) == sorted(f"/webhooks/{p}" for p in ("order-status", "handover", "survey"))
    assert all(r.passed and r.tls_version in ("TLSv1.2", "TLSv1.3") for r in outcome["reachability"].values())
    assert [(r.name, r.status) for r in outcome["results"]] == [(ep.name, "registered") for ep in endpoints]

    # And Cognigy holds each one with the tutorial's headers exactly as the flow sent them
    stored = {w["name"]: w for w in simulator.state.webhooks.values()}
    assert set(stored) == {ep.name for ep in endpoints}
    for endpoint in endpoints:
        sent = stored[endpoint.name]["headers"]
        assert sent == endpoint.headers
        assert {k: sent[k] for k in TUTORIAL_HEADER_VALUES} == TUTORIAL_HEADER_VALUES
        assert {"X-Request-Id", "X-Correlation-Id"} <= set(sent)
    assert stored["order-status-webhook"]["headers"]["X-Bot-Id"] == "order-bot"
    assert stored["agent-handover-webhook"]["method"] == "PUT"
    assert stored["agent-handover-webhook"]["payloadFormat"] == "XML"
    assert simulator.state.status_counts[422] == 0

    # And the audit entries reached the monitoring platform, without the Cognigy key
    assert outcome["synced"].complete
    [batch] = world.monitoring
    assert [e["webhookId"] for e in batch["body"]["events"]] == [r.webhook_id for r in outcome["results"]]
    assert all(e["tlsVersion"] in ("TLSv1.2", "TLSv1.3") for e in batch["body"]["events"])
    assert simulator.api_key not in json.dumps(batch)
    assert batch["headers"]["authorization"] == f"Bearer {tutorial.MONITORING_API_TOKEN}"

    # And what it printed names outcomes, never a secret
    printed = capsys.readouterr().out
    assert "order-status-webhook: registered" in printed
    assert "monitoring: 3 sent, 0 failed" in printed
    for secret in (simulator.api_key, tutorial.WEBHOOK_SECRET, tutorial.MONITORING_API_TOKEN):
        assert secret not in printed


async def test_main_sends_the_same_headers_on_every_run(
    tutorial: ModuleType, simulator: RunningSimulator
) -> None:
    # Given one run of main()
    first = await tutorial.main()
    hashes = [ep.spec_hash() for ep in first["endpoints"]]
    stored = {w["name"]: w["headers"] for w in simulator.state.webhooks.values()}

    # When the reader runs it again (a fresh Cognigy: nothing to adopt)
    simulator.state.reset(simulator.state.config)
    second = await tutorial.main()

    # Then the ids did not change: the specs hash the same and Cognigy is told the same headers
    assert [ep.spec_hash() for ep in second["endpoints"]] == hashes
    assert {w["name"]: w["headers"] for w in simulator.state.webhooks.values()} == stored


async def test_a_delivery_as_cognigy_makes_it_carries_the_tutorials_headers(
    tutorial: ModuleType, simulator: RunningSimulator, world: LocalWorld
) -> None:
    # Given the registered webhooks
    await tutorial.main()
    [webhook] = [w for w in simulator.state.webhooks.values() if w["name"] == "order-status-webhook"]

    # When Cognigy delivers to one (its stored headers, signed with the endpoint's secret)
    payload = b'{"sessionId":"s-1","text":"where is my order?"}'
    headers = {
        **webhook["headers"],
        "X-Cognigy-Signature": sign_webhook_payload(payload, tutorial.WEBHOOK_SECRET),
    }
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=tutorial.CA_BUNDLE)) as cognigy:
        answer = await cognigy.post(webhook["url"], content=payload, headers=headers)

    # Then the bot's receiver (the tutorial's verify_webhook_signature) accepts it, marks and all
    assert answer.status_code == 204
    [delivery] = world.deliveries
    assert delivery["ok"]
    assert delivery["headers"]["x-cognigy-webhook-source"] == "bot-integration"
    assert delivery["headers"]["prevent-loop"] == "true"
