"""The SSRF guard: explicit blocked ranges, IPv4 embedded in IPv6, literal spellings judged on the
resolved address, and the allow_private_networks switch."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from cognigy_webhooks.net.netguard import (
    BLOCKED_IPV4,
    BLOCKED_IPV6,
    check_address,
    check_addresses,
    embedded_ipv4,
    resolve,
)


def _teredo(server: str, client: str) -> str:
    """A Teredo address (2001::/32): server IPv4 in bits 32-63, client IPv4 XOR-ed in the last 32."""
    value = (
        (0x20010000 << 96)
        | (int(ipaddress.IPv4Address(server)) << 64)
        | (0x8000 << 48)
        | (0x63BF << 32)
        | (~int(ipaddress.IPv4Address(client)) & 0xFFFFFFFF)
    )
    return str(ipaddress.IPv6Address(value))


BLOCKED = [
    # IPv4
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("10.1.2.3", "private-use"),
    ("172.16.0.1", "private-use"),
    ("172.31.255.255", "private-use"),
    ("192.168.1.1", "private-use"),
    ("169.254.169.254", "cloud metadata service (AWS, GCP, Azure, OCI)"),
    ("169.254.170.2", "ECS task metadata service"),
    ("100.100.100.200", "cloud metadata service (Alibaba Cloud)"),
    ("169.254.1.1", "link-local"),
    ("100.64.0.1", "shared address space (CGNAT)"),
    ("100.127.255.254", "shared address space (CGNAT)"),
    ("0.0.0.0", "unspecified / this network"),
    ("0.1.2.3", "unspecified / this network"),
    ("192.0.0.8", "IETF protocol assignments"),
    ("192.0.2.10", "documentation (TEST-NET-1)"),
    ("198.51.100.7", "documentation (TEST-NET-2)"),
    ("203.0.113.9", "documentation (TEST-NET-3)"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.254", "benchmarking"),
    ("192.88.99.1", "6to4 relay anycast (deprecated)"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "limited broadcast"),
    # IPv6
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("fc00::1", "unique local (ULA)"),
    ("fd12:3456:789a::1", "unique local (ULA)"),
    ("fd00:ec2::254", "cloud metadata services (AWS IMDS, DNS, NTP over IPv6)"),
    ("fec0::1", "site-local (deprecated)"),
    ("ff02::1", "multicast"),
    ("100::1", "discard-only"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("2001:2::1", "benchmarking"),
    ("2001:10::1", "ORCHID (deprecated)"),
    ("5f00::1", "SRv6 SIDs"),
    ("4000::1", "reserved (not global unicast)"),
    ("64:ff9b:1::a00:1", "local-use NAT64"),
    # IPv4 embedded in IPv6: judged by the IPv4 they lead to
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:7f00:1", "loopback"),
    ("::ffff:169.254.169.254", "cloud metadata service (AWS, GCP, Azure, OCI)"),
    ("::ffff:0:10.0.0.1", "private-use"),  # IPv4-translated (SIIT)
    ("::127.0.0.1", "loopback"),  # IPv4-compatible (deprecated)
    ("::10.0.0.1", "private-use"),
    ("64:ff9b::127.0.0.1", "loopback"),  # NAT64
    ("64:ff9b::a9fe:a9fe", "cloud metadata service (AWS, GCP, Azure, OCI)"),
    ("64:ff9b::100.64.0.1", "shared address space (CGNAT)"),
    ("2002:7f00:1::", "loopback"),  # 6to4
    ("2002:a9fe:a9fe::1", "cloud metadata service (AWS, GCP, Azure, OCI)"),
    ("2002:c0a8:0101::1", "private-use"),
    (_teredo("65.54.227.120", "127.0.0.1"), "loopback"),  # Teredo client, XOR-ed
    (_teredo("65.54.227.120", "169.254.169.254"), "cloud metadata service (AWS, GCP, Azure, OCI)"),
    (_teredo("10.0.0.1", "8.8.8.8"), "private-use"),  # Teredo server
]

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "100.63.255.255",  # just below CGNAT
    "100.128.0.0",  # just above CGNAT
    "172.15.255.255",
    "172.32.0.0",
    "198.17.255.255",
    "198.20.0.0",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "::ffff:8.8.8.8",
    "64:ff9b::8.8.8.8",
    "2002:808:808::1",
    _teredo("65.54.227.120", "8.8.4.4"),
]


@pytest.mark.parametrize(("address", "label"), BLOCKED)
def test_blocked_address_is_refused_with_its_range(address: str, label: str) -> None:
    refusal = check_address(address)
    assert refusal is not None, address
    assert refusal.label == label
    assert refusal.address == address
    assert address in str(refusal)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_address_passes(address: str) -> None:
    assert check_address(address) is None


@pytest.mark.parametrize("entry", BLOCKED_IPV4 + BLOCKED_IPV6, ids=lambda e: str(e.network))
def test_every_listed_network_is_refused_at_both_ends(entry: object) -> None:
    network = entry.network  # type: ignore[attr-defined]
    for address in (network.network_address, network[-1]):
        refusal = check_address(str(address))
        assert refusal is not None, address


def test_ranges_python_calls_global_are_still_refused() -> None:
    # NAT64 and 6to4 prefixes are globally routable as such; what they lead to is not.
    for address in ("64:ff9b::a9fe:a9fe", "2002:7f00:1::", "64:ff9b::7f00:1"):
        assert check_address(address) is not None


def test_embedded_ipv4_reads_each_form() -> None:
    def v4(address: str) -> list[tuple[str, str]]:
        return [(form, str(ip)) for form, ip in embedded_ipv4(ipaddress.IPv6Address(address))]

    assert v4("::ffff:1.2.3.4") == [("IPv4-mapped", "1.2.3.4")]
    assert v4("::ffff:0:1.2.3.4") == [("IPv4-translated", "1.2.3.4")]
    assert v4("::1.2.3.4") == [("IPv4-compatible", "1.2.3.4")]
    assert v4("64:ff9b::1.2.3.4") == [("NAT64", "1.2.3.4")]
    assert v4("2002:102:304::") == [("6to4", "1.2.3.4")]
    assert v4(_teredo("5.6.7.8", "1.2.3.4")) == [("Teredo server", "5.6.7.8"), ("Teredo client", "1.2.3.4")]
    assert v4("2606:4700::1") == []


def test_a_documented_teredo_example_decodes() -> None:
    # RFC 4380's example form: server 65.54.227.120, client 192.0.2.45 (XOR-ed as 3fff:fdd2).
    forms = embedded_ipv4(ipaddress.IPv6Address("2001:0:4136:e378:8000:63bf:3fff:fdd2"))
    assert [str(ip) for _, ip in forms] == ["65.54.227.120", "192.0.2.45"]
    assert check_address("2001:0:4136:e378:8000:63bf:3fff:fdd2").label == "documentation (TEST-NET-1)"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "::1",
        "10.0.0.1",
        "172.20.0.1",
        "192.168.0.10",
        "fd12::1",
        "::ffff:127.0.0.1",
        "2002:7f00:1::",
    ],
)
def test_allow_private_networks_lets_loopback_and_private_use_through(address: str) -> None:
    assert check_address(address) is not None
    assert check_address(address, allow_private_networks=True) is None


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "fd00:ec2::254",
        "100.100.100.200",
        "169.254.1.1",
        "100.64.0.1",
        "0.0.0.0",
        "::",
        "224.0.0.1",
        "fe80::1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::1",
    ],
)
def test_allow_private_networks_never_opens_metadata_or_link_local(address: str) -> None:
    assert check_address(address, allow_private_networks=True) is not None


def test_any_blocked_address_refuses_the_whole_host() -> None:
    refusal = check_addresses(["93.184.216.34", "10.0.0.7"])
    assert refusal is not None
    assert refusal.address == "10.0.0.7"
    assert check_addresses(["93.184.216.34", "2606:4700::6810:85e5"]) is None


def test_explain_names_the_host_and_what_it_resolved_to() -> None:
    refusal = check_address("10.0.0.7")
    assert refusal is not None
    assert refusal.explain("internal.example") == (
        "internal.example resolves to 10.0.0.7, which is in 10.0.0.0/8 (private-use)"
    )
    assert refusal.explain("10.0.0.7") == "10.0.0.7 is in 10.0.0.0/8 (private-use)"


# --- resolution: literal spellings are judged on what getaddrinfo makes of them ----------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("host", "expected", "label"),
    [
        ("127.0.0.1", "127.0.0.1", "loopback"),
        ("2130706433", "127.0.0.1", "loopback"),  # integer
        ("0x7f000001", "127.0.0.1", "loopback"),  # hex
        ("0177.0.0.1", "127.0.0.1", "loopback"),  # octal
        ("127.1", "127.0.0.1", "loopback"),  # short form
        ("0x7f.1", "127.0.0.1", "loopback"),
        ("2852039166", "169.254.169.254", "cloud metadata service (AWS, GCP, Azure, OCI)"),
        ("0xa9fea9fe", "169.254.169.254", "cloud metadata service (AWS, GCP, Azure, OCI)"),
        ("0251.0376.0251.0376", "169.254.169.254", "cloud metadata service (AWS, GCP, Azure, OCI)"),
        ("10.1", "10.0.0.1", "private-use"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1", "loopback"),
        ("0:0:0:0:0:ffff:a9fe:a9fe", "::ffff:a9fe:a9fe", "cloud metadata service (AWS, GCP, Azure, OCI)"),
    ],
)
async def test_literal_spellings_resolve_and_are_refused(host: str, expected: str, label: str) -> None:
    addresses = await resolve(host, 443)
    assert addresses == [str(ipaddress.ip_address(expected))]
    refusal = check_addresses(addresses)
    assert refusal is not None
    assert refusal.label == label


@pytest.mark.anyio
async def test_resolve_uses_the_given_resolver_once_and_dedupes() -> None:
    calls: list[tuple[str, int]] = []

    async def stub(host: str, port: int) -> list[str]:
        calls.append((host, port))
        return ["93.184.216.34", "93.184.216.34", "fe80::1%eth0", "2606:4700::1"]

    assert await resolve("hooks.example", 8443, stub) == ["93.184.216.34", "fe80::1", "2606:4700::1"]
    assert calls == [("hooks.example", 8443)]


@pytest.mark.anyio
async def test_resolving_to_nothing_is_a_resolution_failure() -> None:
    async def nothing(host: str, port: int) -> list[str]:
        return []

    with pytest.raises(socket.gaierror):
        await resolve("void.example", 443, nothing)
