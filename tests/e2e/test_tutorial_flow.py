"""The tutorial's complete example flow, end to end over real TLS sockets, with its bugs fixed.

Cognigy is the simulator; the bot's webhook target and the monitoring platform are small local
HTTPS servers. Every tutorial name comes from ``cognigy_webhooks`` itself."""

from __future__ import annotations

import hashlib
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
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
    RetryPolicy,
    WebhookAuditLog,
    WebhookEndpoint,
    configure_timeout_pipeline,
    create_cognigy_client,
    inject_loop_prevention_headers,
    process_registration_jobs,
    register_webhook_with_retry,
    sign_webhook_payload,
    sync_to_monitoring_platform,
    verify_webhook_signature,
)
from cogwh.certs import LocalCA
from cogwh.servers import serve_in_thread
from tests.support.simulator import RunningSimulator

pytestmark = pytest.mark.anyio

SECRET = "tutorial-signing-secret-" + "k" * 24
SIGNATURE_HEADER = "X-Signature"


@dataclass
class Target:
    """The bot's webhook receiver and the monitoring platform, as one local HTTPS server."""

    base_url: str = ""
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    monitoring: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            ok = verify_webhook_signature(body, request.headers.get(SIGNATURE_HEADER, ""), SECRET)
            self.deliveries.append(
                {"name": request.path_params["name"], "ok": ok, "headers": dict(request.headers)}
            )
            return Response(status_code=204 if ok else 401)

        async def events(request: Request) -> Response:
            self.monitoring.append({"headers": dict(request.headers), "body": await request.json()})
            return JSONResponse({"accepted": True}, status_code=202)

        return Starlette(
            routes=[
                Route("/hooks/{name}", hook, methods=["POST", "PUT"]),
                Route("/monitoring/events", events, methods=["POST"]),
            ]
        )


@pytest.fixture
def target(local_ca: LocalCA) -> Iterator[Target]:
    leaf = local_ca.issue("localhost", "127.0.0.1")
    found = Target()
    with serve_in_thread(found.app(), certfile=leaf.cert, keyfile=leaf.key, url_host="localhost") as served:
        found.base_url = served.base_url
        yield found


def tutorial_endpoints(base_url: str) -> list[WebhookEndpoint]:
    """Step 1 of the tutorial: payloads as models, headers through its loop-prevention function."""
    return [
        WebhookEndpoint(
            name="order-status",
            url=f"{base_url}/hooks/order-status",
            fallback_urls=[f"{base_url}/hooks/order-status-fallback"],
            headers=inject_loop_prevention_headers({"X-Bot-Id": "order-bot"}),
            signature_header=SIGNATURE_HEADER,
            signature_secret=SECRET,
        ),
        WebhookEndpoint(
            name="handover-events",
            url=f"{base_url}/hooks/handover-events",
            method=HttpMethod.PUT,
            headers=inject_loop_prevention_headers({"Content-Type": "application/xml"}),
            payload_format=PayloadFormat.XML,
            retry_policy=RetryPolicy(max_retries=5, retry_interval_ms=2000),
            timeout_ms=5000,
        ),
        WebhookEndpoint(
            name="survey-results",
            url=f"{base_url}/hooks/survey-results",
            headers=inject_loop_prevention_headers({}),
        ),
    ]


async def test_the_tutorials_flow(simulator: RunningSimulator, target: Target) -> None:
    # Step 1: payloads as models (the tutorial's schema, defaults and rules)
    endpoints = tutorial_endpoints(target.base_url)
    assert endpoints[2].method is HttpMethod.POST
    assert endpoints[2].retry_policy == RetryPolicy(max_retries=3, retry_interval_ms=5000)
    assert endpoints[2].timeout_ms == 10000

    # Step 2: loop-prevention headers, without making the spec look changed on every run
    assert [ep.spec_hash() for ep in tutorial_endpoints(target.base_url)] == [
        ep.spec_hash() for ep in endpoints
    ]
    assert all(ep.headers["Prevent-Loop"] == "true" for ep in endpoints)
    prepared = endpoints

    # Step 3: register the batch (bounded, paced) and one more through the tutorial's client
    results = await process_registration_jobs(
        prepared,
        simulator.api_key,
        base_url=simulator.base_url,
        verify=simulator.ca_file,
        requests_per_minute=600,
        burst=10,
    )
    late = WebhookEndpoint(
        name="late-joiner",
        url=f"{target.base_url}/hooks/late-joiner",
        headers=inject_loop_prevention_headers({"X-Bot-Id": "late-bot"}),
    )
    async with create_cognigy_client(
        simulator.api_key, simulator.base_url, verify=simulator.ca_file
    ) as cognigy:
        single = await register_webhook_with_retry(cognigy, late)

        assert [(r.name, r.status) for r in results] == [(ep.name, "registered") for ep in endpoints]
        stored = simulator.state.webhooks
        assert {w["name"] for w in stored.values()} == {
            "order-status",
            "handover-events",
            "survey-results",
            "late-joiner",
        }
        order_status = stored[results[0].webhook_id or ""]
        assert order_status["fallbackUrls"] == [f"{target.base_url}/hooks/order-status-fallback"]
        assert order_status["signatureHeader"] == SIGNATURE_HEADER
        assert order_status["headers"] == prepared[0].headers  # the tutorial's headers, as sent
        assert stored[single["id"]]["headers"] == late.headers
        assert (
            simulator.state.secret_digest(order_status["id"]) == hashlib.sha256(SECRET.encode()).hexdigest()
        )
        assert stored[results[1].webhook_id or ""]["method"] == "PUT"
        assert stored[single["id"]]["name"] == "late-joiner"
        assert simulator.state.status_counts[429] == 0
        assert len(simulator.state.requests) == 4  # one call per endpoint: nothing wasted

        # Step 4: a delivery as Cognigy makes it: signed, with the endpoint's headers and timeouts
        endpoint = prepared[0]
        payload = json.dumps({"sessionId": "s-1", "orderId": "A-17", "status": "shipped"}).encode()
        headers = {**endpoint.headers, SIGNATURE_HEADER: sign_webhook_payload(payload, SECRET)}
        timeout = configure_timeout_pipeline(endpoint)
        trust = ssl.create_default_context(cafile=str(simulator.ca_file))  # the same local CA
        async with httpx.AsyncClient(verify=trust, timeout=timeout) as bot:
            good = await bot.post(endpoint.url, content=payload, headers=headers)
            forged = await bot.post(
                endpoint.url, content=payload.replace(b"shipped", b"refunded"), headers=headers
            )
        assert (good.status_code, forged.status_code) == (204, 401)
        assert [d["ok"] for d in target.deliveries] == [True, False]
        assert target.deliveries[0]["headers"]["x-cognigy-webhook-source"] == "bot-integration"
        assert target.deliveries[0]["headers"]["prevent-loop"] == "true"

        # Step 5: audit entries, synced to monitoring (even through the Cognigy client: no key leaks)
        audit = [
            WebhookAuditLog(
                webhook_id=r.webhook_id,
                action="register",
                status_code=201,
                endpoint_url=ep.url,
                tls_version="TLSv1.3",
            )
            for r, ep in zip(results, prepared, strict=True)
        ]
        synced = await sync_to_monitoring_platform(
            audit, f"{target.base_url}/monitoring/events", api_token="monitoring-token-123", client=cognigy
        )

    assert synced.sent == 3
    assert synced.complete
    [batch] = target.monitoring
    assert [e["webhookId"] for e in batch["body"]["events"]] == [r.webhook_id for r in results]
    assert "x-api-key" not in batch["headers"]
    assert simulator.api_key not in json.dumps(batch)
    assert batch["headers"]["authorization"] == "Bearer monitoring-token-123"
