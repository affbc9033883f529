"""One probe's exchange with a server: resolve behind the SSRF guard, connect to the checked address,
TLS 1.2/1.3 (with a second, non-verifying handshake only to describe a certificate or an old TLS
version a server insists on), one ``GET`` over h11 with phase timings, the verdict. The contract is in
:mod:`cognigy_webhooks.net.probe`, which drives it."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
import ssl
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import h11
import httpx
from pydantic import TypeAdapter, ValidationError

from cognigy_webhooks.errors import InvalidProbeRequest
from cognigy_webhooks.models import (
    CertificateProblem,
    HttpsUrl,
    PhaseTimings,
    ProbeReason,
    ProbeReport,
)
from cognigy_webhooks.net.netguard import check_addresses, resolve
from cognigy_webhooks.net.x509 import CertificateFacts, certificate_facts

if TYPE_CHECKING:
    from cognigy_webhooks.net.probe import ProbePolicy

__all__ = ["USER_AGENT", "check_target", "run_probe", "without_userinfo"]

USER_AGENT = "cognigy-webhooks-probe/1"
ACCEPTED_TLS_VERSIONS = frozenset({"TLSv1.2", "TLSv1.3"})

_URL = TypeAdapter(HttpsUrl)


# --- TLS contexts (the verifying one is cognigy_webhooks.net.tls.client_ssl_context) -------------------


@functools.lru_cache(maxsize=1)
def _inspection_context() -> ssl.SSLContext:
    """Verifies nothing and accepts old protocols: used only to describe a server whose handshake
    failed (its certificate, the TLS version it insists on). No request is ever sent over it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
        except (ValueError, ssl.SSLError):  # pragma: no cover - an OpenSSL built without them
            pass
    return context


# OpenSSL reason codes (ssl.SSLError.reason) that mean "no TLS version in common".
_VERSION_REASONS = frozenset(
    {
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "UNSUPPORTED_PROTOCOL",
        "VERSION_TOO_LOW",
        "NO_PROTOCOLS_AVAILABLE",
        "WRONG_SSL_VERSION",
    }
)
# OpenSSL X509_V_ERR_* verify codes.
_VERIFY_CODES: dict[int, CertificateProblem] = {
    9: CertificateProblem.NOT_YET_VALID,
    10: CertificateProblem.EXPIRED,
    62: CertificateProblem.HOSTNAME_MISMATCH,
    64: CertificateProblem.HOSTNAME_MISMATCH,  # IP address mismatch
    2: CertificateProblem.UNTRUSTED,  # unable to get issuer certificate
    18: CertificateProblem.UNTRUSTED,  # self-signed leaf
    19: CertificateProblem.UNTRUSTED,  # self-signed certificate in chain
    20: CertificateProblem.UNTRUSTED,  # unable to get local issuer certificate
    21: CertificateProblem.UNTRUSTED,  # unable to verify the first certificate
    24: CertificateProblem.UNTRUSTED,  # invalid CA certificate
    27: CertificateProblem.UNTRUSTED,  # certificate not trusted
    28: CertificateProblem.UNTRUSTED,  # certificate rejected
}


# --- one probe ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Target:
    url: str
    host: str  # IDNA-encoded ASCII, an IPv6 literal without brackets: what is resolved and sent as SNI
    port: int
    host_header: str  # the name (with a non-default port), never the address connected to
    path: bytes  # path and query, percent-encoded


@functools.lru_cache(maxsize=1024)
def _target(url: str) -> _Target:
    try:
        _URL.validate_python(url)
        parsed = httpx.URL(url)
    except ValidationError as exc:
        raise InvalidProbeRequest.from_validation_error(exc, prefix="url") from None
    except httpx.InvalidURL as exc:
        raise InvalidProbeRequest([{"field": "url", "message": f"is not a valid URL ({exc})"}]) from None
    return _Target(
        url=url,
        host=parsed.raw_host.decode("ascii"),
        port=parsed.port or 443,
        host_header=parsed.netloc.decode("ascii"),
        path=parsed.raw_path,
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and contexts, and the members of any exception group among them."""
    stack, seen = [exc], set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                stack.append(linked)


def _find(exc: BaseException, kind: type[BaseException]) -> Any:
    return next((e for e in _causes(exc) if isinstance(e, kind)), None)


# The phases of one exchange, as the report words them when a probe fails in one.
_PHASE_WORDS = {
    "connect": "while connecting",
    "tls": "during the TLS handshake",
    "request": "while sending the request",
    "response_headers": "while waiting for the response headers",
    "response_body": "while reading the response body",
}
_READ_SIZE = 64 * 1024


class _Probe:
    """The facts of one probe as they arrive; turned into a :class:`ProbeReport` at the end."""

    def __init__(self, target: _Target, policy: ProbePolicy) -> None:
        self.target = target
        self.policy = policy
        self.started = time.perf_counter()
        self.marks: dict[str, float] = {}  # phase -> perf_counter() when it began; "+<phase>" when done
        self.phase: str | None = None  # the phase under way (a failure or timeout happened in it)
        self.dns_ms: float | None = None
        self.address: str | None = None
        self.reason: ProbeReason | None = None
        self.detail: str | None = None
        self.message: str | None = None
        self.tls_version: str | None = None
        self.tls_cipher: str | None = None
        self.cert: CertificateFacts | None = None
        self.status: int | None = None
        self.location: str | None = None
        self.answered_ms: float | None = None
        self.warnings: list[str] = []

    def begin(self, phase: str) -> None:
        now = time.perf_counter()
        if self.phase is not None:
            self.marks["+" + self.phase] = now
        self.phase = phase
        self.marks[phase] = now

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def fail(self, reason: ProbeReason, message: str, detail: str | None = None) -> None:
        if self.reason is None:
            self.reason, self.message, self.detail = reason, message, detail

    async def run(self) -> None:
        target = self.target
        t0 = time.perf_counter()
        try:
            addresses = await resolve(target.host, target.port, self.policy.resolver)
        except (OSError, ValueError) as exc:  # gaierror; a name IDNA or the resolver cannot take
            self.dns_ms = (time.perf_counter() - t0) * 1000
            self.fail(ProbeReason.DNS_FAILURE, f"{target.host} does not resolve ({exc})")
            return
        self.dns_ms = (time.perf_counter() - t0) * 1000
        refusal = check_addresses(addresses, allow_private_networks=self.policy.allow_private_networks)
        if refusal is not None:
            self.address = refusal.address
            self.fail(
                ProbeReason.BLOCKED_ADDRESS,
                f"not publicly routable: {refusal.explain(target.host)}",
                refusal.label,
            )
            return
        for index, address in enumerate(addresses):
            self.address = address
            retry = await self._exchange(address, last=index == len(addresses) - 1)
            if not retry:
                return

    async def _exchange(self, address: str, *, last: bool) -> bool:
        """One attempt at ``address``. True when the next address should be tried (connect failed)."""
        target = self.target
        writer = None
        try:
            self.begin("connect")
            # An IP literal: asyncio connects to it as it is, no lookup.
            reader, writer = await asyncio.open_connection(address, target.port, limit=_READ_SIZE)
            self.begin("tls")
            await writer.start_tls(self.policy.ssl_context(), server_hostname=target.host)
            self._read_tls(writer.get_extra_info("ssl_object"))
            self.begin("request")
            http = h11.Connection(h11.CLIENT)
            request = h11.Request(
                method="GET",
                target=target.path,
                headers=[
                    ("Host", target.host_header),
                    ("User-Agent", USER_AGENT),
                    ("Accept", "*/*"),
                    ("Connection", "close"),
                ],
            )
            writer.write(b"".join(http.send(event) or b"" for event in (request, h11.EndOfMessage())))
            await writer.drain()
            self.begin("response_headers")
            event = await _next_event(http, reader)
            while isinstance(event, h11.InformationalResponse):
                event = await _next_event(http, reader)
            if not isinstance(event, h11.Response):
                raise h11.RemoteProtocolError(f"the server closed the connection without an answer ({event})")
            self.status = event.status_code
            for name, value in event.headers:
                if name == b"location":
                    self.location = without_userinfo(value.decode("latin-1"))[:300]
            self.begin("response_body")
            received = 0
            while received < self.policy.max_body_bytes:
                event = await _next_event(http, reader)
                if not isinstance(event, h11.Data):
                    break
                received += len(event.data)
            self.begin("done")
            self.answered_ms = self.elapsed_ms()
        except (OSError, EOFError, h11.ProtocolError) as exc:
            if self.phase == "connect" and not last:
                self.marks.clear()
                return True
            if self.phase == "response_body":  # it answered; the status decides, the cut is noted
                self.begin("done")
                self.answered_ms = self.elapsed_ms()
                self.warnings.append(f"the response body was cut short ({type(exc).__name__})")
            else:
                await self._classify(exc, address)
        finally:
            if writer is not None:
                writer.transport.abort()  # no lingering shutdown: safe while being cancelled
        return False

    def _read_tls(self, ssl_object: Any) -> None:
        if ssl_object is None:
            return
        self.tls_version = ssl_object.version()
        cipher = ssl_object.cipher()
        self.tls_cipher = cipher[0] if cipher else None
        der = ssl_object.getpeercert(binary_form=True)
        if der:
            try:
                self.cert = certificate_facts(der)
            except ValueError as exc:
                self.warnings.append(f"could not read the certificate: {exc}")

    async def _classify(self, exc: BaseException, address: str) -> None:
        phase = self.phase
        where = _PHASE_WORDS.get(phase or "", "during the exchange")
        verify_error = _find(exc, ssl.SSLCertVerificationError)
        ssl_error = _find(exc, ssl.SSLError)
        if verify_error is not None:
            code = verify_error.verify_code
            problem = _VERIFY_CODES.get(code, CertificateProblem.INVALID)
            self.fail(
                ProbeReason.CERTIFICATE_INVALID,
                f"certificate rejected: {verify_error.verify_message} (verify code {code})",
                problem.value,
            )
            await self._inspect(address)
        elif _find(exc, ConnectionRefusedError) is not None:
            self.fail(
                ProbeReason.CONNECTION_REFUSED, f"{address} port {self.target.port} refused the connection"
            )
        elif ssl_error is not None or phase == "tls":
            # A server that allows only old TLS answers our hello with a protocol-version alert, or
            # just hangs up (the alert may even be lost to a TCP reset): ask it which version it speaks.
            reason = getattr(ssl_error, "reason", None)
            if reason in _VERSION_REASONS:
                self.fail(
                    ProbeReason.TLS_VERSION_UNSUPPORTED, "the server does not speak TLS 1.2 or 1.3", reason
                )
            await self._inspect(address)
            if self.tls_version is not None and self.tls_version not in ACCEPTED_TLS_VERSIONS:
                self.fail(
                    ProbeReason.TLS_VERSION_UNSUPPORTED,
                    f"the server speaks only {self.tls_version}; TLS 1.2 or 1.3 is required",
                    self.tls_version,
                )
            cause = reason or (str(ssl_error) if ssl_error is not None else f"the connection closed {where}")
            self.fail(ProbeReason.TLS_ERROR, f"TLS handshake failed: {cause}", reason)
        elif isinstance(exc, h11.ProtocolError):
            self.fail(ProbeReason.CONNECTION_ERROR, f"not a valid HTTP/1.1 answer {where}: {exc}"[:300])
        else:
            self.fail(ProbeReason.CONNECTION_ERROR, f"{type(exc).__name__} {where}: {exc}"[:300])

    def timed_out(self) -> None:
        phase = self.phase
        where = _PHASE_WORDS.get(phase or "", "during the exchange")
        limit = f"within the {self.policy.effective_deadline_ms} ms deadline"
        if self.dns_ms is None:
            self.fail(ProbeReason.DNS_FAILURE, f"{self.target.host} did not resolve {limit}")
        elif phase == "connect":
            self.fail(ProbeReason.CONNECT_TIMEOUT, f"no TCP connection {limit}")
        elif self.status is not None:
            self.fail(ProbeReason.TOO_SLOW, f"the response body did not arrive {limit}")
        else:
            self.fail(ProbeReason.READ_TIMEOUT, f"no answer {where} {limit}")

    async def _inspect(self, address: str) -> None:
        """A handshake that verifies nothing, to describe the server's TLS and certificate."""
        writer = None
        try:
            _, writer = await asyncio.open_connection(address, self.target.port)
            await writer.start_tls(_inspection_context(), server_hostname=self.target.host)
            self._read_tls(writer.get_extra_info("ssl_object"))
        except (OSError, EOFError):
            pass  # nothing more to learn; the probe's verdict stands
        finally:
            if writer is not None:
                writer.transport.abort()

    def report(self) -> ProbeReport:
        total = self.elapsed_ms()
        if self.reason is None:
            self._verdict()
        assert self.reason is not None
        days_left = None
        if self.cert is not None:
            days_left = math.floor((self.cert.not_after - datetime.now(UTC)).total_seconds() / 86400)
            if 0 <= days_left < self.policy.cert_warning_days:
                self.warnings.append(
                    f"certificate expires in {days_left} days (warning threshold "
                    f"{self.policy.cert_warning_days} days)"
                )
        return ProbeReport(
            url=self.target.url,
            passed=self.reason is ProbeReason.OK,
            reachable=self.status is not None,
            reason=self.reason,
            detail=self.detail,
            message=self.message,
            tls_version=self.tls_version,
            tls_cipher=self.tls_cipher,
            cert_subject=self.cert.subject if self.cert else None,
            cert_issuer=self.cert.issuer if self.cert else None,
            cert_not_after=self.cert.not_after if self.cert else None,
            cert_days_left=days_left,
            status_code=self.status,
            resolved_address=self.address,
            timings_ms=self._timings(total),
            warnings=self.warnings,
        )

    def _verdict(self) -> None:
        status = self.status
        if status is None:  # pragma: no cover - every path without a response sets a reason
            self.fail(ProbeReason.CONNECTION_ERROR, "no response")
        elif self.tls_version not in ACCEPTED_TLS_VERSIONS:
            self.fail(ProbeReason.TLS_VERSION_UNSUPPORTED, f"negotiated {self.tls_version}", self.tls_version)
        elif status >= 500:
            self.fail(ProbeReason.SERVER_ERROR, f"the server answered {status}", str(status))
        elif 300 <= status < 400:
            self.fail(
                ProbeReason.REDIRECT,
                f"the server redirects ({status} to {self.location or 'nowhere'}); Cognigy would not follow",
                self.location,
            )
        elif self.answered_ms is not None and self.answered_ms > self.policy.timeout_ms:
            self.fail(
                ProbeReason.TOO_SLOW,
                f"answered after {self.answered_ms:.0f} ms, above the endpoint's {self.policy.timeout_ms} ms",
            )
        else:
            self.reason = ProbeReason.OK

    def _timings(self, total: float) -> PhaseTimings:
        def span(phase: str) -> float | None:
            if phase in self.marks and "+" + phase in self.marks:
                return round((self.marks["+" + phase] - self.marks[phase]) * 1000, 3)
            return None

        request, headers = span("request"), span("response_headers")
        return PhaseTimings(
            dns=round(self.dns_ms, 3) if self.dns_ms is not None else None,
            connect=span("connect"),
            tls=span("tls"),
            first_byte=round(request + headers, 3) if request is not None and headers is not None else None,
            total=round(total, 3),
        )


async def _next_event(http: h11.Connection, reader: asyncio.StreamReader) -> Any:
    """The next HTTP event from the server, reading as much as h11 needs for it."""
    while True:
        event = http.next_event()
        if event is not h11.NEED_DATA:
            return event
        http.receive_data(await reader.read(_READ_SIZE))


def check_target(url: str) -> None:
    """Raise :class:`InvalidProbeRequest` (field ``url``) when ``url`` cannot be probed at all."""
    _target(url)


async def run_probe(url: str, policy: ProbePolicy) -> ProbeReport:
    """Probe one URL under ``policy``, all within its overall deadline (see
    :func:`cognigy_webhooks.net.probe.probe_url`)."""
    probe = _Probe(_target(url), policy)
    try:
        async with asyncio.timeout(policy.effective_deadline_ms / 1000):
            await probe.run()
    except TimeoutError:
        probe.timed_out()
    return probe.report()


def without_userinfo(url: str) -> str:
    """``url`` with any ``user:password@`` replaced: a refused URL is echoed, its credentials never."""
    scheme, sep, rest = url.partition("://")
    authority, slash, tail = rest.partition("/")
    if sep and "@" in authority:
        return f"{scheme}{sep}***@{authority.rpartition('@')[2]}{slash}{tail}"
    return url
