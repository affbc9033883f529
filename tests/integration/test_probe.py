"""probe_url / probe_endpoint / verify_endpoint_reachability against real servers on 127.0.0.1 with
certificates made by a local CA (trustme)."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from cognigy_webhooks import (
    InvalidSpec,
    ProbePolicy,
    ProbeReason,
    ReachabilityResult,
    WebhookEndpoint,
    create_cognigy_client,
    probe_endpoint,
    probe_url,
    verify_endpoint_reachability,
)
from cognigy_webhooks.net.probe import certificate_facts
from cogwh.certs import CertFiles, LocalCA
from tests.support.tls_servers import (
    LocalServer,
    answer,
    endless_body,
    full_backlog_port,
    never_answer,
    raw,
    refused_port,
    server_context,
    trickle,
)

API_KEY = "ck-live-0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def leaf(local_ca: LocalCA) -> CertFiles:
    return local_ca.issue("localhost", "127.0.0.1")


@pytest.fixture(scope="module")
def policy(local_ca: LocalCA) -> ProbePolicy:
    return ProbePolicy(allow_private_networks=True, ca_bundle=str(local_ca.ca_file), timeout_ms=5000)


@pytest.fixture
def tls13(leaf: CertFiles) -> Iterator[LocalServer]:
    with LocalServer(answer(200, body=b'{"ok":true}'), server_context(leaf)) as server:
        yield server


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every socket.connect attempt of this process (asyncio's connects go through it)."""
    attempts: list[object] = []
    original = socket.socket.connect

    def recording(self: socket.socket, address: object) -> None:
        attempts.append(address)
        return original(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", recording)
    return attempts


def _leaf_cert(files: CertFiles) -> x509.Certificate:
    return x509.load_pem_x509_certificates(files.cert.read_bytes())[0]


# --- what passes --------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_tls13_server_passes_with_every_fact(
    tls13: LocalServer, leaf: CertFiles, policy: ProbePolicy
) -> None:
    report = await probe_url(tls13.url("localhost", "/hook?x=1"), policy)

    assert report.passed
    assert report.reachable
    assert report.reason is ProbeReason.OK
    assert report.tls_version == "TLSv1.3"
    assert report.tls_cipher
    assert report.tls_cipher.startswith("TLS_")
    assert report.status_code == 200
    assert report.resolved_address == "127.0.0.1"
    cert = _leaf_cert(leaf)
    assert report.cert_subject == cert.subject.rfc4514_string()
    assert report.cert_issuer == cert.issuer.rfc4514_string()
    assert report.cert_not_after == cert.not_valid_after_utc
    assert report.cert_days_left is not None
    assert report.cert_days_left > 365
    assert report.warnings == []
    t = report.timings_ms
    assert None not in (t.dns, t.connect, t.tls, t.first_byte, t.total)
    assert t.total >= t.dns + t.connect + t.tls + t.first_byte
    # one plain GET, with the hostname kept for the Host header
    (request,) = tls13.requests
    assert (request.method, request.target) == ("GET", "/hook?x=1")
    assert request.header("Host") == f"localhost:{tls13.port}"


@pytest.mark.anyio
async def test_tls12_only_server_passes_as_tls12(leaf: CertFiles, policy: ProbePolicy) -> None:
    with LocalServer(answer(), server_context(leaf, maximum=ssl.TLSVersion.TLSv1_2)) as server:
        report = await probe_url(server.url(), policy)
    assert report.passed
    assert report.tls_version == "TLSv1.2"
    assert report.tls_cipher is not None
    assert "TLS_" not in report.tls_cipher


@pytest.mark.anyio
async def test_any_status_below_500_passes(leaf: CertFiles, policy: ProbePolicy) -> None:
    with LocalServer(answer(405, body=b"use POST"), server_context(leaf)) as server:
        report = await probe_url(server.url(), policy)
    assert report.passed
    assert report.status_code == 405


# --- TLS and certificates that fail -------------------------------------------------------------------


@pytest.mark.anyio
async def test_server_speaking_only_tls10_or_11_fails_as_unsupported(
    leaf: CertFiles, policy: ProbePolicy
) -> None:
    context = server_context(leaf, minimum=ssl.TLSVersion.TLSv1, maximum=ssl.TLSVersion.TLSv1_1)
    with LocalServer(answer(), context) as server:
        report = await probe_url(server.url(), policy)
    assert not report.passed
    assert not report.reachable
    assert report.reason is ProbeReason.TLS_VERSION_UNSUPPORTED
    assert report.tls_version == "TLSv1.1"  # what the server insisted on, learnt without a request
    assert server.requests == []


@pytest.mark.anyio
async def test_expired_certificate_is_invalid_and_still_described(
    local_ca: LocalCA, policy: ProbePolicy
) -> None:
    expired = local_ca.issue(
        "localhost",
        not_before=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        not_after=dt.datetime(2021, 1, 1, tzinfo=dt.UTC),
    )
    with LocalServer(answer(), server_context(expired)) as server:
        report = await probe_url(server.url(), policy)
    assert (report.reason, report.detail) == (ProbeReason.CERTIFICATE_INVALID, "expired")
    assert not report.passed
    assert not report.reachable
    assert report.cert_not_after == dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
    assert report.cert_days_left is not None
    assert report.cert_days_left < -365
    assert report.cert_subject == _leaf_cert(expired).subject.rfc4514_string()
    assert server.requests == []  # nothing is ever sent over an unverified connection


@pytest.mark.anyio
async def test_certificate_from_an_unknown_ca_is_untrusted(policy: ProbePolicy) -> None:
    stranger = LocalCA()
    try:
        stranger_name = x509.load_pem_x509_certificate(stranger.ca_file.read_bytes()).subject.rfc4514_string()
        with LocalServer(answer(), server_context(stranger.issue("localhost"))) as server:
            report = await probe_url(server.url(), policy)
    finally:
        stranger.close()
    assert (report.reason, report.detail) == (ProbeReason.CERTIFICATE_INVALID, "untrusted")
    assert report.cert_issuer == stranger_name
    assert server.requests == []


@pytest.mark.anyio
@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
async def test_certificate_for_another_name_is_a_hostname_mismatch(
    host: str, local_ca: LocalCA, policy: ProbePolicy
) -> None:
    with LocalServer(answer(), server_context(local_ca.issue("other.example"))) as server:
        report = await probe_url(server.url(host), policy)
    assert (report.reason, report.detail) == (ProbeReason.CERTIFICATE_INVALID, "hostname_mismatch")
    assert report.tls_version == "TLSv1.3"


@pytest.mark.anyio
async def test_certificate_expiring_soon_passes_with_a_warning(
    local_ca: LocalCA, policy: ProbePolicy
) -> None:
    soon = local_ca.issue("localhost", not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=10, hours=1))
    with LocalServer(answer(), server_context(soon)) as server:
        report = await probe_url(server.url(), policy)
        quiet = await probe_url(server.url(), ProbePolicy(**{**_kwargs(policy), "cert_warning_days": 7}))
    assert report.passed
    assert report.cert_days_left == 10
    assert report.warnings == ["certificate expires in 10 days (warning threshold 21 days)"]
    assert quiet.passed
    assert quiet.warnings == []


def _kwargs(policy: ProbePolicy) -> dict[str, object]:
    return {
        f: getattr(policy, f)
        for f in ("allow_private_networks", "ca_bundle", "timeout_ms", "cert_warning_days")
    }


# --- connections and answers that fail ----------------------------------------------------------------


@pytest.mark.anyio
async def test_refused_port(policy: ProbePolicy) -> None:
    with refused_port() as port:
        report = await probe_url(f"https://localhost:{port}/", policy)
    assert report.reason is ProbeReason.CONNECTION_REFUSED
    assert not report.reachable
    assert report.resolved_address == "127.0.0.1"


@pytest.mark.anyio
async def test_unanswered_syn_is_a_connect_timeout(local_ca: LocalCA) -> None:
    fast = ProbePolicy(
        allow_private_networks=True, ca_bundle=str(local_ca.ca_file), timeout_ms=200, deadline_ms=400
    )
    with full_backlog_port() as port:
        report = await probe_url(f"https://localhost:{port}/", fast)
    assert report.reason is ProbeReason.CONNECT_TIMEOUT
    assert report.timings_ms.connect is None


@pytest.mark.anyio
async def test_server_that_accepts_and_never_answers_is_a_read_timeout(local_ca: LocalCA) -> None:
    fast = ProbePolicy(
        allow_private_networks=True, ca_bundle=str(local_ca.ca_file), timeout_ms=200, deadline_ms=400
    )
    with LocalServer(never_answer(), None) as server:
        report = await probe_url(server.url(), fast)
    assert report.reason is ProbeReason.READ_TIMEOUT
    assert "TLS handshake" in (report.message or "")
    assert report.timings_ms.connect is not None
    assert report.timings_ms.tls is None
    assert server.connections == 1


@pytest.mark.anyio
async def test_server_trickling_its_status_line_is_a_read_timeout(leaf: CertFiles, local_ca: LocalCA) -> None:
    fast = ProbePolicy(
        allow_private_networks=True, ca_bundle=str(local_ca.ca_file), timeout_ms=200, deadline_ms=500
    )
    with LocalServer(trickle(headers_first=False), server_context(leaf)) as server:
        report = await probe_url(server.url(), fast)
    assert report.reason is ProbeReason.READ_TIMEOUT
    assert not report.reachable
    assert "response headers" in (report.message or "")
    assert report.tls_version is None or report.tls_version == "TLSv1.3"


@pytest.mark.anyio
async def test_server_trickling_its_body_is_too_slow_but_reachable(
    leaf: CertFiles, local_ca: LocalCA
) -> None:
    fast = ProbePolicy(
        allow_private_networks=True, ca_bundle=str(local_ca.ca_file), timeout_ms=200, deadline_ms=500
    )
    with LocalServer(trickle(headers_first=True), server_context(leaf)) as server:
        report = await probe_url(server.url(), fast)
    assert report.reason is ProbeReason.TOO_SLOW
    assert report.reachable
    assert report.status_code == 200
    assert report.tls_version == "TLSv1.3"


@pytest.mark.anyio
async def test_answer_slower_than_the_endpoint_timeout_is_too_slow(
    leaf: CertFiles, local_ca: LocalCA
) -> None:
    tight = ProbePolicy(
        allow_private_networks=True, ca_bundle=str(local_ca.ca_file), timeout_ms=50, deadline_ms=5000
    )
    with LocalServer(answer(200, delay=0.3), server_context(leaf)) as server:
        report = await probe_url(server.url(), tight)
    assert report.reason is ProbeReason.TOO_SLOW
    assert report.reachable
    assert report.status_code == 200
    assert report.timings_ms.total is not None
    assert report.timings_ms.total > 50


@pytest.mark.anyio
async def test_503_is_reachable_but_a_server_error(leaf: CertFiles, policy: ProbePolicy) -> None:
    with LocalServer(answer(503, body=b"down"), server_context(leaf)) as server:
        report = await probe_url(server.url(), policy)
    assert report.reachable
    assert not report.passed
    assert (report.reason, report.status_code) == (ProbeReason.SERVER_ERROR, 503)


@pytest.mark.anyio
async def test_redirect_to_loopback_is_reported_not_followed(
    leaf: CertFiles, tls13: LocalServer, policy: ProbePolicy
) -> None:
    target = tls13.url("127.0.0.1", "/internal")
    with LocalServer(answer(302, headers={"Location": target}), server_context(leaf)) as server:
        report = await probe_url(server.url(), policy)
    assert report.reachable
    assert not report.passed
    assert (report.reason, report.status_code, report.detail) == (ProbeReason.REDIRECT, 302, target)
    assert tls13.connections == 0  # never followed


@pytest.mark.anyio
async def test_body_is_read_up_to_the_cap_only(leaf: CertFiles, local_ca: LocalCA) -> None:
    # An endless body at full speed: reading it all would run into the deadline (too_slow).
    policy = ProbePolicy(allow_private_networks=True, ca_bundle=str(local_ca.ca_file), deadline_ms=3000)
    with LocalServer(endless_body(), server_context(leaf)) as server:
        report = await probe_url(server.url(), policy)
    assert report.passed, report.message


# --- the SSRF guard in a probe --------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/",
        "https://2130706433/",
        "https://0x7f000001/",
        "https://127.1/",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[::ffff:a9fe:a9fe]/",
        "https://[64:ff9b::a9fe:a9fe]/",
        "https://[2002:a9fe:a9fe::]/",
        "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo, client 127.0.0.1
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/",
        "https://100.100.100.200/",
        "https://localhost/",
    ],
)
async def test_guard_refuses_without_connecting(url: str, connects: list[object]) -> None:
    report = await probe_url(url, ProbePolicy())
    assert report.reason is ProbeReason.BLOCKED_ADDRESS, report.message
    assert not report.reachable
    assert connects == []


@pytest.mark.anyio
async def test_dotted_octal_literal_is_refused_as_an_invalid_url(connects: list[object]) -> None:
    # The URL parser refuses leading zeros in a dotted address; the guard would refuse it too
    # (getaddrinfo reads 0177.0.0.1 as 127.0.0.1, see the unit tests).
    with pytest.raises(InvalidSpec) as caught:
        await probe_url("https://0177.0.0.1/", ProbePolicy())
    assert caught.value.errors[0]["field"] == "url"
    spec = WebhookEndpoint(
        name="octal-hook", url="https://hooks.example/", fallback_urls=["https://0177.0.0.1/"]
    )
    with pytest.raises(InvalidSpec) as caught:
        await probe_endpoint(spec, ProbePolicy())
    assert caught.value.errors[0]["field"] == "fallbackUrls.0"
    assert connects == []


@pytest.mark.anyio
async def test_name_with_one_public_and_one_private_address_is_refused(connects: list[object]) -> None:
    async def split_horizon(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.7"]

    report = await probe_url("https://hooks.example/", ProbePolicy(resolver=split_horizon))
    assert report.reason is ProbeReason.BLOCKED_ADDRESS
    assert report.resolved_address == "10.0.0.7"
    assert (
        report.message
        == "not publicly routable: hooks.example resolves to 10.0.0.7, which is in 10.0.0.0/8 (private-use)"
    )
    assert connects == []


@pytest.mark.anyio
async def test_metadata_stays_refused_with_private_networks_allowed(connects: list[object]) -> None:
    report = await probe_url("https://169.254.169.254/", ProbePolicy(allow_private_networks=True))
    assert report.reason is ProbeReason.BLOCKED_ADDRESS
    assert connects == []


@pytest.mark.anyio
async def test_host_is_resolved_once_and_the_checked_address_is_used(
    tls13: LocalServer, policy: ProbePolicy, monkeypatch: pytest.MonkeyPatch, connects: list[object]
) -> None:
    lookups: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    def no_getaddrinfo(*args: object, **kwargs: object) -> object:
        raise AssertionError(f"second lookup: {args}")

    monkeypatch.setattr(socket, "getaddrinfo", no_getaddrinfo)
    report = await probe_url(tls13.url("localhost"), _with(policy, resolver=resolver))
    assert report.passed, report.message
    assert lookups == ["localhost"]
    assert connects == [("127.0.0.1", tls13.port)]
    assert tls13.requests[0].header("Host") == f"localhost:{tls13.port}"  # the name, not the address


@pytest.mark.anyio
async def test_next_checked_address_is_tried_when_one_refuses(
    tls13: LocalServer, policy: ProbePolicy
) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.2", "127.0.0.1"]  # nothing listens on 127.0.0.2

    report = await probe_url(tls13.url("localhost"), _with(policy, resolver=resolver))
    assert report.passed
    assert report.resolved_address == "127.0.0.1"


@pytest.mark.anyio
async def test_unresolvable_name_is_a_dns_failure() -> None:
    async def nxdomain(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    report = await probe_url("https://nowhere.example/", ProbePolicy(resolver=nxdomain))
    assert report.reason is ProbeReason.DNS_FAILURE
    assert not report.reachable


def _with(policy: ProbePolicy, **changes: object) -> ProbePolicy:
    import dataclasses

    return dataclasses.replace(policy, **changes)


# --- credentials never reach the target ---------------------------------------------------------------


@pytest.mark.anyio
async def test_cognigy_api_key_never_reaches_the_probed_url(tls13: LocalServer, local_ca: LocalCA) -> None:
    # The worst case: the Cognigy client's base URL IS the probed host. The tutorial probed through it.
    client = create_cognigy_client(
        API_KEY, base_url=tls13.url("localhost").rstrip("/"), verify=str(local_ca.ca_file)
    )
    try:
        result = await verify_endpoint_reachability(
            tls13.url("localhost", "/hook"),
            client,
            policy=ProbePolicy(allow_private_networks=True, ca_bundle=str(local_ca.ca_file)),
        )
    finally:
        await client.aclose()
    assert result.reachable
    assert result.passed
    (request,) = tls13.requests
    names = {name.lower() for name, _ in request.headers}
    assert names == {"host", "user-agent", "accept", "connection"}
    assert API_KEY not in repr(request.headers)


@pytest.mark.anyio
async def test_spec_headers_and_secrets_are_not_sent_by_the_probe(
    tls13: LocalServer, policy: ProbePolicy
) -> None:
    secret = "s" * 40
    spec = WebhookEndpoint(
        name="orders-hook",
        url=tls13.url("localhost", "/hook"),
        headers={"Authorization": f"Bearer {secret}", "X-Team": "orders"},
        signature_header="X-Cognigy-Signature",
        signature_secret=secret,
    )
    report = await probe_endpoint(spec, policy)
    assert report.passed
    assert secret not in repr(tls13.requests)
    assert secret not in report.model_dump_json()


# --- the tutorial's result and the endpoint report -----------------------------------------------------


@pytest.mark.anyio
async def test_reachability_result_is_filled_truthfully(tls13: LocalServer, policy: ProbePolicy) -> None:
    result = await verify_endpoint_reachability(tls13.url(), None, policy=policy)
    assert isinstance(result, ReachabilityResult)
    assert (result.reachable, result.passed, result.status_code, result.tls_version) == (
        True,
        True,
        200,
        "TLSv1.3",
    )
    assert result.certificate_valid is True
    assert result.error is None
    assert result.latency_ms is not None
    assert result.latency_ms > 0


@pytest.mark.anyio
async def test_reachability_result_for_a_bad_url_is_an_error_not_an_exception() -> None:
    result = await verify_endpoint_reachability("http://plain.example/", object())
    assert (result.reachable, result.reason) == (False, ProbeReason.INVALID_URL)
    assert "https" in (result.error or "")


@pytest.mark.anyio
async def test_reachability_result_never_echoes_url_credentials() -> None:
    result = await verify_endpoint_reachability("https://admin:hunter2pw@hooks.example/x", None)
    assert result.reason is ProbeReason.INVALID_URL
    assert result.url == "https://***@hooks.example/x"
    assert "hunter2pw" not in result.model_dump_json()


@pytest.mark.anyio
async def test_invalid_url_raises_invalid_spec_naming_url() -> None:
    with pytest.raises(InvalidSpec) as caught:
        await probe_url("https://user:pw@hooks.example/")
    assert caught.value.errors[0]["field"] == "url"
    assert "pw" not in str(caught.value)


@pytest.mark.anyio
async def test_endpoint_passes_on_its_url_and_warns_about_a_failing_fallback(
    tls13: LocalServer, leaf: CertFiles, policy: ProbePolicy
) -> None:
    with refused_port() as dead, LocalServer(answer(503), server_context(leaf)) as sick:
        spec = WebhookEndpoint(
            name="orders-hook",
            url=tls13.url(),
            fallback_urls=[f"https://localhost:{dead}/", sick.url()],
            timeout_ms=5000,
        )
        report = await probe_endpoint(spec, policy)
        assert sick.connections == 1
    assert report.passed
    assert report.reason is ProbeReason.OK
    assert [f.reason for f in report.fallbacks] == [ProbeReason.CONNECTION_REFUSED, ProbeReason.SERVER_ERROR]
    assert len(report.warnings) == 2
    assert report.warnings[0].startswith(f"fallback https://localhost:{dead}/ failed: connection_refused")


@pytest.mark.anyio
async def test_endpoint_fails_when_its_url_fails_even_if_a_fallback_passes(
    tls13: LocalServer, policy: ProbePolicy
) -> None:
    with refused_port() as dead:
        spec = WebhookEndpoint(
            name="orders-hook", url=f"https://localhost:{dead}/", fallback_urls=[tls13.url()]
        )
        report = await probe_endpoint(spec, policy)
    assert not report.passed
    assert report.reason is ProbeReason.CONNECTION_REFUSED
    assert report.fallbacks[0].passed


@pytest.mark.anyio
async def test_endpoint_timeout_sets_the_too_slow_bar(leaf: CertFiles, policy: ProbePolicy) -> None:
    with LocalServer(answer(200, delay=1.2), server_context(leaf)) as server:
        spec = WebhookEndpoint(name="slow-hook", url=server.url(), timeout_ms=1000)
        report = await probe_endpoint(spec, policy)
    assert report.reason is ProbeReason.TOO_SLOW
    assert report.primary.status_code == 200


def test_certificate_facts_match_cryptography(local_ca: LocalCA) -> None:
    files = local_ca.issue(
        "localhost", "a.example", not_after=dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
    )
    cert = _leaf_cert(files)
    facts = certificate_facts(cert.public_bytes(Encoding.DER))
    assert facts.subject == cert.subject.rfc4514_string()
    assert facts.issuer == cert.issuer.rfc4514_string()
    assert facts.not_after == cert.not_valid_after_utc
    late = _leaf_cert(
        local_ca.issue("localhost", not_after=dt.datetime(2051, 6, 1, tzinfo=dt.UTC))
    )  # GeneralizedTime
    assert certificate_facts(late.public_bytes(Encoding.DER)).not_after == dt.datetime(
        2051, 6, 1, tzinfo=dt.UTC
    )
    with pytest.raises(ValueError, match=r"malformed|truncated|unsupported"):
        certificate_facts(cert.public_bytes(Encoding.DER)[:40])


@pytest.mark.anyio
async def test_garbage_instead_of_http_is_a_connection_error(leaf: CertFiles, policy: ProbePolicy) -> None:
    with LocalServer(raw(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"), server_context(leaf)) as server:
        report = await probe_url(server.url(), policy)
    assert report.reason is ProbeReason.CONNECTION_ERROR
    assert not report.reachable
    assert "not a valid HTTP/1.1 answer" in (report.message or "")


@pytest.mark.anyio
async def test_body_cut_short_still_counts_the_status(leaf: CertFiles, policy: ProbePolicy) -> None:
    answer_then_hang_up = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a part"
    with LocalServer(raw(answer_then_hang_up), server_context(leaf)) as server:
        report = await probe_url(server.url(), policy)
    assert report.passed
    assert report.status_code == 200
    assert report.warnings == ["the response body was cut short (RemoteProtocolError)"]
