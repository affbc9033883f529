"""Probe an endpoint before Cognigy is told about it: reachable, TLS 1.2 or newer, certificate facts,
phase timings, behind an SSRF guard.

How one probe runs (:func:`probe_url`), all under one overall deadline:

1. resolve the host once and refuse it when ANY address is not publicly routable (:mod:`.netguard`);
2. connect to the checked address itself (an IP literal, so no second lookup can happen), while SNI,
   the ``Host`` header and certificate verification keep the hostname;
3. TLS with a context that accepts TLS 1.2 and 1.3 only, verified against certifi's public roots or the
   policy's ``ca_bundle``; one context per bundle, built once (loading a bundle costs milliseconds);
4. ``GET`` the URL without any credential of ours (not the Cognigy client's, not the spec's headers),
   follow no redirect, read at most ``max_body_bytes`` of the body.

The exchange runs on asyncio streams with h11 (the HTTP/1.1 parser httpx uses): measured against the
same bare TLS handshakes, httpx/httpcore with a pinned network backend and its ``trace`` extension cost
1.5-1.7x the floor's CPU per probe here (httpcore re-imports the absent ``sniffio`` on every lock), this
path about 1.2x. The phase timings are taken at the same points the trace extension reports (TCP
connect, TLS handshake, request sent to response headers received); the TLS version, cipher and
certificate come from the transport's ``ssl_object``. When the handshake fails, a second handshake to
the same address that verifies nothing collects the certificate (so an expired or untrusted
certificate is still described) or the old TLS version a server insists on; it never sends a request.

Verdicts: an HTTP response of any status makes the URL reachable; 5xx fails as ``server_error``, 3xx
as ``redirect`` (Cognigy does not follow redirects when it delivers); an answer slower than the
endpoint's ``timeoutMs`` fails as ``too_slow``; everything else that answered passes. A certificate
expiring within ``cert_warning_days`` adds a warning, not a failure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from typing import Any

from cognigy_webhooks.errors import InvalidProbeRequest, InvalidSpec
from cognigy_webhooks.models import (
    EndpointProbeReport,
    ProbeReason,
    ProbeReport,
    ReachabilityResult,
    WebhookEndpoint,
)
from cognigy_webhooks.net.exchange import (
    ACCEPTED_TLS_VERSIONS,
    USER_AGENT,
    check_target,
    run_probe,
    without_userinfo,
)
from cognigy_webhooks.net.netguard import Resolver
from cognigy_webhooks.net.tls import client_ssl_context
from cognigy_webhooks.net.x509 import certificate_facts

__all__ = [
    "ACCEPTED_TLS_VERSIONS",
    "USER_AGENT",
    "ProbePolicy",
    "ReachabilityResult",
    "certificate_facts",
    "client_ssl_context",
    "probe_endpoint",
    "probe_url",
    "verify_endpoint_reachability",
]

DEFAULT_MAX_BODY_BYTES = 64 * 1024
# How long past the endpoint's timeout the probe keeps waiting, to tell a slow answer (too_slow)
# from none at all (read_timeout), when the policy sets no deadline of its own.
DEFAULT_DEADLINE_GRACE_MS = 2000


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProbePolicy:
    """How to probe. ``timeout_ms`` is the endpoint's timeoutMs (an answer slower than it is
    ``too_slow``); ``deadline_ms`` bounds the whole probe (default: ``timeout_ms`` + 2 s).
    ``allow_private_networks`` lets loopback and private-use addresses through (local stack and
    tests only); cloud metadata, link-local and the other blocked ranges stay refused.
    ``resolver`` replaces getaddrinfo (tests)."""

    allow_private_networks: bool = False
    ca_bundle: str | None = None
    cert_warning_days: int = 21
    timeout_ms: int = 10_000
    deadline_ms: int | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    resolver: Resolver | None = None

    def __post_init__(self) -> None:
        errors = []
        if self.timeout_ms <= 0:
            errors.append({"field": "timeout_ms", "message": "must be greater than 0"})
        if self.deadline_ms is not None and self.deadline_ms <= 0:
            errors.append({"field": "deadline_ms", "message": "must be greater than 0"})
        if self.cert_warning_days < 0:
            errors.append({"field": "cert_warning_days", "message": "must not be negative"})
        if self.max_body_bytes < 0:
            errors.append({"field": "max_body_bytes", "message": "must not be negative"})
        try:
            client_ssl_context(self.ca_bundle)  # built (and cached) now, not in the first probe
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            errors.append({"field": "ca_bundle", "message": f"is not a readable PEM CA bundle ({exc})"})
        if errors:
            raise InvalidProbeRequest(errors)

    @property
    def effective_deadline_ms(self) -> int:
        return (
            self.deadline_ms if self.deadline_ms is not None else self.timeout_ms + DEFAULT_DEADLINE_GRACE_MS
        )

    def with_timeout(self, timeout_ms: int) -> ProbePolicy:
        return dataclasses.replace(self, timeout_ms=timeout_ms)

    def ssl_context(self) -> ssl.SSLContext:
        return client_ssl_context(self.ca_bundle)


async def probe_url(url: str, policy: ProbePolicy | None = None) -> ProbeReport:
    """Probe one https URL. Never raises for what the network does (that is the report); raises
    :class:`InvalidSpec` (field ``url``) when ``url`` is not a valid https URL."""
    return await run_probe(url, policy or ProbePolicy())


async def probe_endpoint(spec: WebhookEndpoint, policy: ProbePolicy | None = None) -> EndpointProbeReport:
    """Probe an endpoint's url and every fallback at once, each against the endpoint's timeoutMs.
    The endpoint passes when its url passes; a failing fallback only adds a warning. Raises
    :class:`InvalidSpec` (``url`` or ``fallbackUrls.N``) for a URL that cannot be probed at all."""
    policy = (policy or ProbePolicy()).with_timeout(spec.timeout_ms)
    fields = ["url", *(f"fallbackUrls.{i}" for i in range(len(spec.fallback_urls)))]
    urls = [spec.url, *spec.fallback_urls]
    for field, url in zip(fields, urls, strict=True):
        try:
            check_target(url)
        except InvalidSpec as exc:
            raise InvalidSpec([{**e, "field": field} for e in exc.errors]) from None
    primary, *fallbacks = await asyncio.gather(*(probe_url(url, policy) for url in urls))
    notes = [f"url: {w}" for w in primary.warnings]
    for report in fallbacks:
        if not report.passed:
            notes.append(f"fallback {report.url} failed: {report.reason.value} ({report.message})")
        notes.extend(f"fallback {report.url}: {w}" for w in report.warnings)
    return EndpointProbeReport(
        name=spec.name,
        passed=primary.passed,
        reason=primary.reason,
        primary=primary,
        fallbacks=fallbacks,
        warnings=notes,
    )


async def verify_endpoint_reachability(
    url: str, client: Any = None, *, policy: ProbePolicy | None = None
) -> ReachabilityResult:
    """The tutorial's check, done right. ``client`` (the tutorial passed its Cognigy client) is
    accepted for compatibility and never used: the probe makes its own connection and sends none of
    the client's headers or credentials to the target."""
    del client
    try:
        report = await probe_url(url, policy)
    except InvalidSpec as exc:
        return ReachabilityResult(
            url=without_userinfo(url),
            reachable=False,
            passed=False,
            reason=ProbeReason.INVALID_URL,
            error=str(exc),
        )
    certificate_valid = None
    if report.reason is ProbeReason.CERTIFICATE_INVALID:
        certificate_valid = False
    elif report.status_code is not None:
        certificate_valid = True
    return ReachabilityResult(
        url=url,
        reachable=report.reachable,
        passed=report.passed,
        status_code=report.status_code,
        latency_ms=report.timings_ms.total,
        tls_version=report.tls_version,
        certificate_valid=certificate_valid,
        cert_days_left=report.cert_days_left,
        reason=report.reason,
        error=None if report.passed else report.message,
    )
