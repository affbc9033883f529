"""What a probe found: per URL (:class:`ProbeReport`), per endpoint (:class:`EndpointProbeReport`), and
the tutorial's :class:`ReachabilityResult`. Declarative, no I/O (the probe itself is
:mod:`cognigy_webhooks.net.probe`)."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from pydantic import Field

from cognigy_webhooks.models.base import _Model


class ProbeReason(enum.StrEnum):
    """Why a probe passed or failed. Only ``ok`` passes; ``redirect`` fails because Cognigy does
    not follow redirects when it delivers."""

    OK = "ok"
    DNS_FAILURE = "dns_failure"
    BLOCKED_ADDRESS = "blocked_address"
    CONNECTION_REFUSED = "connection_refused"
    CONNECT_TIMEOUT = "connect_timeout"
    TLS_VERSION_UNSUPPORTED = "tls_version_unsupported"
    CERTIFICATE_INVALID = "certificate_invalid"
    TLS_ERROR = "tls_error"
    READ_TIMEOUT = "read_timeout"
    TOO_SLOW = "too_slow"
    SERVER_ERROR = "server_error"
    REDIRECT = "redirect"
    CONNECTION_ERROR = "connection_error"
    INVALID_URL = "invalid_url"


class CertificateProblem(enum.StrEnum):
    """The ``detail`` of a ``certificate_invalid`` probe (from OpenSSL's verify code)."""

    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    UNTRUSTED = "untrusted"
    HOSTNAME_MISMATCH = "hostname_mismatch"
    INVALID = "invalid"


class PhaseTimings(_Model):
    """Durations in milliseconds: ``dns`` (resolution), ``connect`` (TCP), ``tls`` (handshake),
    ``first_byte`` (request sent until the response headers arrived) and ``total`` (the whole probe)."""

    dns: float | None = None
    connect: float | None = None
    tls: float | None = None
    first_byte: float | None = None
    total: float | None = None


class ProbeReport(_Model):
    """What probing one URL found. ``passed`` = fit for Cognigy to deliver to; ``reachable`` = an
    HTTP response (of any status) came back. ``detail`` is a short code or fact (for
    ``certificate_invalid`` one of :class:`CertificateProblem`); ``message`` explains it for people.
    Certificate facts are filled whenever the server showed a certificate, even an invalid one."""

    url: str
    passed: bool
    reachable: bool
    reason: ProbeReason
    detail: str | None = None
    message: str | None = None
    tls_version: str | None = None
    tls_cipher: str | None = None
    cert_subject: str | None = None
    cert_issuer: str | None = None
    cert_not_after: datetime | None = None
    cert_days_left: int | None = None
    status_code: int | None = None
    resolved_address: str | None = None
    timings_ms: PhaseTimings = Field(default_factory=PhaseTimings)
    warnings: list[str] = Field(default_factory=list)
    probed_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class EndpointProbeReport(_Model):
    """The probe of an endpoint: its url decides (``passed``, ``reason``); every fallback is probed
    too and a failing one only adds a warning."""

    name: str
    passed: bool
    reason: ProbeReason
    primary: ProbeReport
    fallbacks: list[ProbeReport] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class ReachabilityResult(_Model):
    """The tutorial's result of ``verify_endpoint_reachability``, filled from a real probe:
    ``tls_version`` is what was negotiated ("TLSv1.2"/"TLSv1.3"), ``latency_ms`` the whole probe."""

    url: str
    reachable: bool
    passed: bool
    status_code: int | None = None
    latency_ms: float | None = None
    tls_version: str | None = None
    certificate_valid: bool | None = None
    cert_days_left: int | None = None
    reason: ProbeReason
    error: str | None = None
