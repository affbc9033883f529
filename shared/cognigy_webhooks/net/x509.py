"""The few facts a probe reports about a server's certificate (subject, issuer, not-after), read from the
DER it sent with a small, total reader of the X.509 structure (standard library only: no cryptography
package for three fields)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from datetime import UTC, datetime

__all__ = ["CertificateFacts", "certificate_facts"]


# (The standard library decodes a certificate only after verification succeeded; we need the facts of
# invalid ones too, and the layer carries no ASN.1 library.)

_NAME_KEYS = {
    "2.5.4.3": "CN",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "STREET",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "0.9.2342.19200300.100.1.1": "UID",
    "0.9.2342.19200300.100.1.25": "DC",
}
# UTF8String, PrintableString, T61String, IA5String, UniversalString, BMPString
_STRING_CODECS = {
    0x0C: "utf-8",
    0x13: "latin-1",
    0x14: "latin-1",
    0x16: "latin-1",
    0x1C: "utf-32-be",
    0x1E: "utf-16-be",
}


@dataclasses.dataclass(frozen=True)
class CertificateFacts:
    subject: str
    issuer: str
    not_after: datetime


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at ``pos``."""
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 4:
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def _elements(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    pos = start
    while pos < end:
        tag, inner, stop = _tlv(data, pos)
        yield tag, inner, stop
        pos = stop


def _oid(raw: bytes) -> str:
    arcs, value = [], 0
    for byte in raw[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = raw[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(arc) for arc in head + arcs)


def _escape_dn(value: str) -> str:
    """RFC 4514 section 2.4."""
    for char in '\\"+,;<>':
        value = value.replace(char, "\\" + char)
    value = value.replace("\0", "\\00")
    if value[:1] in ("#", " "):
        value = "\\" + value
    if value.endswith(" "):
        value = value[:-1] + "\\ "
    return value


def _name(data: bytes, start: int, end: int) -> str:
    """A Name as an RFC 4514 string (last RDN first, as ``openssl``/``cryptography`` show it)."""
    rdns = []
    for _, set_start, set_end in _elements(data, start, end):
        parts = []
        for _, atv_start, atv_end in _elements(data, set_start, set_end):
            (_, oid_s, oid_e), (vtag, val_s, val_e) = list(_elements(data, atv_start, atv_end))[:2]
            oid = _oid(data[oid_s:oid_e])
            codec = _STRING_CODECS.get(vtag, "latin-1")
            text = data[val_s:val_e].decode(codec, errors="replace")
            parts.append(f"{_NAME_KEYS.get(oid, oid)}={_escape_dn(text)}")
        rdns.append("+".join(parts))
    return ",".join(reversed(rdns))


def _time(tag: int, raw: bytes) -> datetime:
    """UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ), as RFC 5280 requires them."""
    text = raw.decode("ascii")
    if tag == 0x17:
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    if len(text) < 15 or text[14] != "Z" or not text[:14].isdigit():
        raise ValueError(f"unsupported certificate time {raw!r}")
    y, mo, d, h, mi, s = (int(text[i:j]) for i, j in ((0, 4), (4, 6), (6, 8), (8, 10), (10, 12), (12, 14)))
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC)


@functools.lru_cache(maxsize=256)  # re-probing an endpoint meets the same certificate again
def certificate_facts(der: bytes) -> CertificateFacts:
    """Subject, issuer and not-after of a DER certificate. Raises ValueError when it is malformed."""
    try:
        _, cert_start, cert_end = _tlv(der, 0)
        _, tbs_start, tbs_end = next(_elements(der, cert_start, cert_end))
        fields = list(_elements(der, tbs_start, tbs_end))
        if fields and fields[0][0] == 0xA0:  # [0] EXPLICIT version
            fields = fields[1:]
        # serialNumber, signature, issuer, validity, subject
        _, issuer, validity, subject = fields[1], fields[2], fields[3], fields[4]
        times = list(_elements(der, validity[1], validity[2]))
        not_after_tag, na_start, na_end = times[1]
        return CertificateFacts(
            subject=_name(der, subject[1], subject[2]),
            issuer=_name(der, issuer[1], issuer[2]),
            not_after=_time(not_after_tag, der[na_start:na_end]),
        )
    except (IndexError, StopIteration, UnicodeDecodeError) as exc:
        raise ValueError(f"malformed certificate ({exc})") from None
