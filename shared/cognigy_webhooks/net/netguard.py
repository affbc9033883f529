"""SSRF guard: resolve a host once and refuse any address that is not publicly routable.

The verdict comes from explicit network lists (below), not from ``ipaddress``'s ``is_private`` /
``is_global`` flags, which differ between Python patch releases and miss several of these ranges.
IPv6 forms that carry an IPv4 address (IPv4-mapped, IPv4-compatible, SIIT, NAT64, 6to4, Teredo) are
judged by the IPv4 address they lead to. Outside those, IPv6 is only accepted inside global unicast
(2000::/3).

Literal hosts in odd forms (``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1``) are whatever
``getaddrinfo`` makes of them: the guard judges the resolved address, never the spelling.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPAddress = IPv4Address | IPv6Address

# An injectable resolver: (host, port) -> the addresses it names, as strings. Tests stub it; the
# default asks getaddrinfo once.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


@dataclass(frozen=True, slots=True)
class BlockedNetwork:
    network: IPv4Network | IPv6Network
    label: str
    # True for loopback and private-use ranges: ``allow_private_networks`` lets these through.
    private: bool = False


def _nets(*rows: tuple[str, str] | tuple[str, str, bool]) -> tuple[BlockedNetwork, ...]:
    out = []
    for row in rows:
        cidr, label, *rest = row
        out.append(BlockedNetwork(ipaddress.ip_network(cidr), label, bool(rest and rest[0])))
    return tuple(out)


# First match wins: the more specific (and never-allowed) entries come first.
BLOCKED_IPV4: tuple[BlockedNetwork, ...] = _nets(
    ("169.254.169.254/32", "cloud metadata service (AWS, GCP, Azure, OCI)"),
    ("169.254.170.2/32", "ECS task metadata service"),
    ("100.100.100.200/32", "cloud metadata service (Alibaba Cloud)"),
    ("0.0.0.0/8", "unspecified / this network"),
    ("10.0.0.0/8", "private-use", True),
    ("100.64.0.0/10", "shared address space (CGNAT)"),
    ("127.0.0.0/8", "loopback", True),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private-use", True),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("192.88.99.0/24", "6to4 relay anycast (deprecated)"),
    ("192.168.0.0/16", "private-use", True),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "limited broadcast"),
    ("240.0.0.0/4", "reserved"),
)

# Checked before any embedded IPv4 is looked at.
_IPV6_FIRST: tuple[BlockedNetwork, ...] = _nets(
    ("::/128", "unspecified"),
    ("::1/128", "loopback", True),
    ("fd00:ec2::/32", "cloud metadata services (AWS IMDS, DNS, NTP over IPv6)"),
    ("64:ff9b:1::/48", "local-use NAT64"),
)
BLOCKED_IPV6: tuple[BlockedNetwork, ...] = (
    *_IPV6_FIRST,
    *_nets(
        ("100::/64", "discard-only"),
        ("2001:2::/48", "benchmarking"),
        ("2001:10::/28", "ORCHID (deprecated)"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "SRv6 SIDs"),
        ("fc00::/7", "unique local (ULA)", True),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local (deprecated)"),
        ("ff00::/8", "multicast"),
    ),
)
GLOBAL_UNICAST_V6 = IPv6Network("2000::/3")

_MAPPED = IPv6Network("::ffff:0:0/96")
_SIIT = IPv6Network("::ffff:0:0:0/96")
_COMPAT = IPv6Network("::/96")
_NAT64 = IPv6Network("64:ff9b::/96")
_6TO4 = IPv6Network("2002::/16")
_TEREDO = IPv6Network("2001::/32")
_LOW32 = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an address is refused."""

    address: str
    network: str
    label: str
    via: str | None = None  # e.g. "IPv4-mapped 127.0.0.1" when an embedded IPv4 decided

    def __str__(self) -> str:
        via = f" ({self.via})" if self.via else ""
        return f"{self.address}{via} is in {self.network} ({self.label})"

    def explain(self, host: str) -> str:
        """Why ``host`` is refused, in one sentence."""
        try:
            parse_address(host)
        except ValueError:
            via = f" ({self.via})" if self.via else ""
            return f"{host} resolves to {self.address}{via}, which is in {self.network} ({self.label})"
        return str(self)


def embedded_ipv4(addr: IPv6Address) -> list[tuple[str, IPv4Address]]:
    """The IPv4 addresses an IPv6 address leads to, with the name of the form that carries them."""
    value = int(addr)
    if addr in _MAPPED:
        return [("IPv4-mapped", IPv4Address(value & _LOW32))]
    if addr in _SIIT:
        return [("IPv4-translated", IPv4Address(value & _LOW32))]
    if addr in _COMPAT:
        return [("IPv4-compatible", IPv4Address(value & _LOW32))]
    if addr in _NAT64:
        return [("NAT64", IPv4Address(value & _LOW32))]
    if addr in _6TO4:
        return [("6to4", IPv4Address((value >> 80) & _LOW32))]
    if addr in _TEREDO:
        # Teredo: the server's IPv4 in bits 32-63, the client's IPv4 XOR-ed in the last 32 bits.
        return [
            ("Teredo server", IPv4Address((value >> 64) & _LOW32)),
            ("Teredo client", IPv4Address(~value & _LOW32)),
        ]
    return []


def _match(
    addr: IPAddress, table: Sequence[BlockedNetwork], allow_private: bool
) -> BlockedNetwork | bool | None:
    """The blocking entry, ``False`` when an allowed private entry matched, ``None`` when none did."""
    for entry in table:
        if addr in entry.network:
            return False if entry.private and allow_private else entry
    return None


def _refusal(shown: str, entry: BlockedNetwork, via: str | None = None) -> Refusal:
    return Refusal(shown, str(entry.network), entry.label, via)


def _check_ipv4(addr: IPv4Address, allow_private: bool, shown: str, via: str | None) -> Refusal | None:
    entry = _match(addr, BLOCKED_IPV4, allow_private)
    return _refusal(shown, entry, via) if isinstance(entry, BlockedNetwork) else None


def parse_address(address: str | IPAddress) -> IPAddress:
    """An address as getaddrinfo returns it (an IPv6 zone such as ``%eth0`` is dropped)."""
    if isinstance(address, IPv4Address | IPv6Address):
        return address.__class__(int(address))  # drops any scope id
    return ipaddress.ip_address(address.split("%", 1)[0])


def check_address(address: str | IPAddress, *, allow_private_networks: bool = False) -> Refusal | None:
    """``None`` when the address may be probed, else the :class:`Refusal` naming the blocked range.

    ``allow_private_networks`` lets loopback and private-use ranges (RFC 1918, IPv6 ULA) through;
    cloud metadata addresses, link-local, CGNAT and every other range stay refused."""
    shown = str(address)
    addr = parse_address(address)
    if isinstance(addr, IPv4Address):
        return _check_ipv4(addr, allow_private_networks, shown, None)
    first = _match(addr, _IPV6_FIRST, allow_private_networks)
    if first is False:
        return None
    if isinstance(first, BlockedNetwork):
        return _refusal(shown, first)
    embedded = embedded_ipv4(addr)
    if embedded:
        for form, v4 in embedded:
            refusal = _check_ipv4(v4, allow_private_networks, shown, f"{form} {v4}")
            if refusal is not None:
                return refusal
        return None
    entry = _match(addr, BLOCKED_IPV6, allow_private_networks)
    if entry is False:
        return None
    if isinstance(entry, BlockedNetwork):
        return _refusal(shown, entry)
    if addr not in GLOBAL_UNICAST_V6:
        return Refusal(shown, "outside 2000::/3", "reserved (not global unicast)")
    return None


def check_addresses(addresses: Sequence[str], *, allow_private_networks: bool = False) -> Refusal | None:
    """The first refusal among ``addresses`` (ANY blocked address refuses the whole host)."""
    for address in addresses:
        refusal = check_address(address, allow_private_networks=allow_private_networks)
        if refusal is not None:
            return refusal
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    """One getaddrinfo call (in the loop's executor); canonical IP literals skip it altogether.
    ``host`` is ASCII (an IDNA name is encoded before it gets here)."""
    try:
        return [str(parse_address(host))]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def resolve(host: str, port: int, resolver: Resolver | None = None) -> list[str]:
    """Resolve ``host`` once; the addresses in the resolver's order, without repeats.

    Raises :class:`socket.gaierror` when the name does not resolve (or resolves to nothing)."""
    found = await (resolver or system_resolver)(host, port)
    out: list[str] = []
    for address in found:
        normal = str(parse_address(address))
        if normal not in out:
            out.append(normal)
    if not out:
        raise socket.gaierror(socket.EAI_NONAME, f"{host} resolved to no address")
    return out
