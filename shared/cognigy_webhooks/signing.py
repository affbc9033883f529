"""Webhook signatures: Cognigy's header and Standard Webhooks. Standard library only.

The receiver's cold start imports this module, so it must never pull in pydantic or httpx.

Two schemes:

* **Cognigy** (the tutorial's): header value ``<unix seconds>,<base64 of HMAC-SHA256(secret, raw body)>``.
  The timestamp is *not* signed, so it only bounds how old a captured body may be when the
  attacker also keeps its signature; pair it with a replay ledger keyed on what is signed, the body
  (its digest: the signature itself would change with the secret, so a retry across a rotation
  would pass as new).
* **Standard Webhooks** (https://www.standardwebhooks.com): headers ``webhook-id``,
  ``webhook-timestamp`` and ``webhook-signature`` (a space-separated list of ``v1,<base64>``),
  signed content ``f"{id}.{timestamp}.".encode() + body``, secrets ``whsec_<base64>``. The
  timestamp and the id are bound into the signature.

The verifiers never raise, whatever they are given: they return a :class:`Verification` that says
whether the delivery is authentic and, when not, why (:class:`Refusal`). Signatures are decoded
strictly (standard alphabet, correct padding, canonical form, 32 bytes) so that one signature has
exactly one spelling: a replay ledger keyed on ``Verification.signature`` cannot be dodged by
re-encoding it. Bytes are compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "MAX_HEADER_LENGTH",
    "MAX_STANDARD_SIGNATURE_HEADER_LENGTH",
    "STANDARD_ID_HEADER",
    "STANDARD_SIGNATURE_HEADER",
    "STANDARD_TIMESTAMP_HEADER",
    "Refusal",
    "Verification",
    "sign_standard_webhook",
    "sign_webhook_payload",
    "verify_cognigy_signature",
    "verify_standard_webhook",
    "verify_webhook_signature",
]

DEFAULT_TOLERANCE_SECONDS = 300
#: Longest Cognigy signature header looked at (a real one is about 55 characters).
MAX_HEADER_LENGTH = 256
#: Longest ``webhook-signature`` looked at (room for many rotated signatures).
MAX_STANDARD_SIGNATURE_HEADER_LENGTH = 4096
#: Longest ``webhook-id`` accepted.
MAX_MESSAGE_ID_LENGTH = 256
#: Most secrets tried for one delivery (rotation needs two or three).
MAX_SECRETS = 16

STANDARD_ID_HEADER = "webhook-id"
STANDARD_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"
STANDARD_SECRET_PREFIX = "whsec_"
_STANDARD_LIMITS = {  # each header Standard Webhooks needs, with the longest value looked at
    STANDARD_ID_HEADER: MAX_MESSAGE_ID_LENGTH,
    STANDARD_TIMESTAMP_HEADER: 32,
    STANDARD_SIGNATURE_HEADER: MAX_STANDARD_SIGNATURE_HEADER_LENGTH,
}

_DIGEST_SIZE = hashlib.sha256().digest_size  # 32
_TIMESTAMP_RE = re.compile(r"[0-9]{1,15}")  # ASCII digits only: int() would take "+1", "1_0", Arabic digits
_B64_RE = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_MESSAGE_ID_RE = re.compile(r"[\x21-\x7e]+")  # visible ASCII
_OWS = " \t"


class Refusal(enum.StrEnum):
    """Why a delivery was refused (``OK`` when it was not)."""

    OK = "ok"
    MISSING = "missing"  # no signature header (or a required Standard Webhooks header is absent)
    MALFORMED = "malformed"  # the header (or an argument) is not in the expected form
    BAD_ENCODING = "bad_encoding"  # the signature is not strict, canonical base64 of 32 bytes
    STALE = "stale"  # the timestamp is older than the tolerance
    FUTURE = "future"  # the timestamp is further in the future than the tolerance
    MISMATCH = "mismatch"  # no secret produces this signature
    NO_SECRET = "no_secret"  # no usable secret was given: nothing can be verified


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of a verification. Holds no secret, so its ``repr`` is safe to log.

    ``secret_index`` is the position of the secret that matched (0 = current, 1 = previous...).
    ``signature`` is the base64 signature as received (the matching one for Standard Webhooks),
    a stable key for a replay ledger. ``message_id`` is ``webhook-id`` (Standard Webhooks only).
    A Verification is truthy only when ``ok``.
    """

    ok: bool
    reason: Refusal
    timestamp: int | None = None
    secret_index: int | None = None
    signature: str | None = None
    message_id: str | None = None

    def __bool__(self) -> bool:
        return self.ok


# --- small total helpers (never raise) ------------------------------------------------------------


def _as_bytes(value: object) -> bytes | None:
    """The raw body as bytes; text is taken as UTF-8. None when it cannot be a body."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        try:
            return bytes(value)
        except (TypeError, ValueError, BufferError):
            return None
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates
            return None
    return None


def _as_text(value: object, limit: int) -> str | None:
    """A header value as text (bytes are decoded as ASCII), or None when absent, non-ASCII or too
    long. The length is checked before anything else touches the value."""
    if isinstance(value, bytes | bytearray):
        if len(value) > limit:
            return None
        try:
            return bytes(value).decode("ascii")
        except UnicodeDecodeError:
            return None
    if isinstance(value, str):
        if len(value) > limit or not value.isascii():
            return None
        return value
    return None


def _read_header(value: object, limit: int) -> str | Refusal:
    """One header value, trimmed: the text, or MISSING (absent/blank) or MALFORMED (not text, not
    ASCII, longer than ``limit``: checked before anything else touches it)."""
    if value is None:
        return Refusal.MISSING
    text = _as_text(value, limit)
    if text is None:
        return Refusal.MALFORMED
    text = text.strip(_OWS)
    return text or Refusal.MISSING


def _parse_timestamp(text: str) -> int | None:
    text = text.strip(_OWS)
    return int(text) if _TIMESTAMP_RE.fullmatch(text) else None


def _decode_signature(text: str) -> bytes | None:
    """Strict base64: standard alphabet, correct padding, canonical spelling, exactly 32 bytes."""
    if len(text) % 4 or not _B64_RE.fullmatch(text):
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != _DIGEST_SIZE or base64.b64encode(raw).decode("ascii") != text:
        return None  # wrong length, or a non-canonical spelling (non-zero padding bits)
    return raw


def _secret_key(secret: object, *, standard: bool) -> bytes | None:
    """The HMAC key of one secret, or None when it is unusable (empty, wrong type, bad whsec_)."""
    key: bytes | None
    if isinstance(secret, str):
        if standard and secret.startswith(STANDARD_SECRET_PREFIX):
            key = _decode_whsec(secret[len(STANDARD_SECRET_PREFIX) :])
        else:
            key = _as_bytes(secret)
    elif isinstance(secret, bytes | bytearray | memoryview):
        key = _as_bytes(secret)
        if standard and key is not None and key.startswith(STANDARD_SECRET_PREFIX.encode()):
            try:
                key = _decode_whsec(key[len(STANDARD_SECRET_PREFIX) :].decode("ascii"))
            except UnicodeDecodeError:
                key = None
    else:
        key = None
    return key or None  # an empty key would let anyone sign


def _decode_whsec(text: str) -> bytes | None:
    if not text.isascii() or len(text) % 4 or not _B64_RE.fullmatch(text):
        return None
    try:
        return base64.b64decode(text, validate=True) or None
    except (binascii.Error, ValueError):
        return None


def _secret_keys(secrets: object, *, standard: bool) -> list[tuple[int, bytes]]:
    """(index, key) for every usable secret. A lone str/bytes is one secret, not a list of letters."""
    if isinstance(secrets, str | bytes | bytearray | memoryview):
        items: list[object] = [secrets]
    elif isinstance(secrets, Iterable) and not isinstance(secrets, Mapping):
        items = []
        try:
            for item in secrets:
                items.append(item)
                if len(items) >= MAX_SECRETS:
                    break
        except Exception:  # a hostile iterable; whatever was read is all there is
            items = []
    else:
        items = []
    keys = []
    for index, item in enumerate(items):
        key = _secret_key(item, standard=standard)
        if key is not None:
            keys.append((index, key))
    return keys


def _number(value: object) -> float | None:
    """A real number as a float (an int too large for a float becomes +/-inf), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _clock(now: object) -> float:
    current = _number(now)
    return current if current is not None and math.isfinite(current) else time.time()


def _tolerance(value: object) -> float:
    """A non-negative tolerance. Anything that is not a number >= 0 (NaN, text, None) becomes 0:
    the window closes rather than opens. ``math.inf`` disables the check, as asked."""
    tolerance = _number(value)
    return tolerance if tolerance is not None and tolerance >= 0 else 0.0


def _window(timestamp: int, tolerance_seconds: object, now: object) -> Refusal | None:
    current = _clock(now)
    tolerance = _tolerance(tolerance_seconds)
    if current - timestamp > tolerance:
        return Refusal.STALE
    if timestamp - current > tolerance:
        return Refusal.FUTURE
    return None


def _refuse(reason: Refusal, **fields: Any) -> Verification:
    return Verification(ok=False, reason=reason, **fields)


# --- Cognigy's scheme ------------------------------------------------------------------------------


def _hmac_b64(key: bytes, content: bytes) -> str:
    return base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode("ascii")


def sign_webhook_payload(payload: bytes, secret: str | bytes, timestamp: int | None = None) -> str:
    """The Cognigy signature header value: ``<unix seconds>,<base64 HMAC-SHA256(secret, payload)>``.

    Raises ``TypeError``/``ValueError`` on an unusable argument (this is the sending side: a
    mistake here is a bug to surface). The messages never contain the secret.
    """
    body = _as_bytes(payload)
    if body is None:
        raise TypeError("payload must be bytes")
    key = _secret_key(secret, standard=False)
    if key is None:
        raise ValueError("secret must be a non-empty str or bytes")
    if timestamp is None:
        timestamp = int(time.time())
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError("timestamp must be a non-negative integer (unix seconds)")
    return f"{timestamp},{_hmac_b64(key, body)}"


def verify_cognigy_signature(
    payload: bytes,
    header_value: str | None,
    secrets: Sequence[str | bytes],
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> Verification:
    """Verify Cognigy's signature header against each secret (current first, then previous ones).

    Order of checks: missing -> malformed -> bad_encoding -> no_secret -> stale/future -> mismatch.
    Never raises.
    """
    text = _read_header(header_value, MAX_HEADER_LENGTH)
    if isinstance(text, Refusal):
        return _refuse(text)
    stamp_text, comma, signature = text.partition(",")
    timestamp = _parse_timestamp(stamp_text)
    signature = signature.strip(_OWS)
    if not comma or timestamp is None or not signature:
        return _refuse(Refusal.MALFORMED)
    received = _decode_signature(signature)
    if received is None:
        return _refuse(Refusal.BAD_ENCODING, timestamp=timestamp, signature=signature)
    body = _as_bytes(payload)
    if body is None:
        return _refuse(Refusal.MALFORMED, timestamp=timestamp, signature=signature)
    keys = _secret_keys(secrets, standard=False)
    if not keys:
        return _refuse(Refusal.NO_SECRET, timestamp=timestamp, signature=signature)
    late = _window(timestamp, tolerance_seconds, now)
    if late is not None:
        return _refuse(late, timestamp=timestamp, signature=signature)
    for index, key in keys:
        expected = hmac.new(key, body, hashlib.sha256).digest()
        if hmac.compare_digest(expected, received):
            return Verification(
                ok=True, reason=Refusal.OK, timestamp=timestamp, secret_index=index, signature=signature
            )
    return _refuse(Refusal.MISMATCH, timestamp=timestamp, signature=signature)


def verify_webhook_signature(
    payload: bytes,
    signature_header: str,
    secret: str | bytes,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """The tutorial's verifier: True when ``signature_header`` is a fresh, valid signature of
    ``payload`` under ``secret``. Never raises; see :func:`verify_cognigy_signature` for why."""
    return verify_cognigy_signature(
        payload, signature_header, [secret], tolerance_seconds=tolerance_seconds
    ).ok


# --- Standard Webhooks ------------------------------------------------------------------------------


def sign_standard_webhook(msg_id: str, timestamp: int, payload: bytes, secret: str | bytes) -> str:
    """One ``webhook-signature`` entry: ``v1,<base64 HMAC-SHA256(key, f"{id}.{timestamp}." + body)>``.

    ``secret`` is ``whsec_<base64>`` (the key is the decoded part) or, without the prefix, the key
    itself as UTF-8. Raises ``TypeError``/``ValueError`` on an unusable argument (never echoing
    the secret).
    """
    if (
        not isinstance(msg_id, str)
        or not _MESSAGE_ID_RE.fullmatch(msg_id)
        or len(msg_id) > MAX_MESSAGE_ID_LENGTH
    ):
        raise ValueError("msg_id must be 1-256 visible ASCII characters")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError("timestamp must be a non-negative integer (unix seconds)")
    body = _as_bytes(payload)
    if body is None:
        raise TypeError("payload must be bytes")
    key = _secret_key(secret, standard=True)
    if key is None:
        raise ValueError("secret must be whsec_<base64> or a non-empty str or bytes")
    return "v1," + _hmac_b64(key, f"{msg_id}.{timestamp}.".encode("ascii") + body)


def _header_values(headers: object, wanted: tuple[str, ...]) -> dict[str, list[str | bytes]] | None:
    """Every value of each wanted header (names compared case-insensitively), from a Mapping, a
    multi-valued mapping (``multi_items()``: httpx, Starlette) or a list of (name, value) pairs
    (text or bytes, as in ASGI's raw headers). None when ``headers`` is none of those."""
    found: dict[str, list[str | bytes]] = {name: [] for name in wanted}
    try:
        if isinstance(headers, Mapping):
            multi = getattr(headers, "multi_items", None)
            pairs: Iterable[Any] = multi() if callable(multi) else headers.items()
        elif isinstance(headers, Iterable) and not isinstance(headers, str | bytes | bytearray):
            pairs = headers
        else:
            return None
        for count, pair in enumerate(pairs):
            if count >= 1000:
                return None  # not a real request's headers
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                return None
            name, value = pair
            if isinstance(name, bytes | bytearray):
                name = bytes(name).decode("latin-1")
            if not isinstance(name, str) or not isinstance(value, str | bytes | bytearray):
                continue
            lowered = name.strip(_OWS).lower()
            if lowered in found:
                found[lowered].append(bytes(value) if isinstance(value, bytearray) else value)
    except Exception:  # a hostile mapping: refuse rather than raise
        return None
    return found


def verify_standard_webhook(
    payload: bytes,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    secrets: Sequence[str | bytes],
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> Verification:
    """Verify a Standard Webhooks delivery. Any ``v1`` entry of ``webhook-signature`` that matches
    any secret passes; entries of other versions are ignored. A header given twice is refused
    (``malformed``) when ``headers`` can show it (a list of pairs, or a mapping with
    ``multi_items()``). Never raises."""
    if headers is None:
        return _refuse(Refusal.MISSING)
    found = _header_values(headers, tuple(_STANDARD_LIMITS))
    if found is None or any(len(values) > 1 for values in found.values()):
        return _refuse(Refusal.MALFORMED)  # not headers at all, or one of ours given twice
    texts: dict[str, str] = {}
    for name, limit in _STANDARD_LIMITS.items():
        text = _read_header(found[name][0] if found[name] else None, limit)
        if isinstance(text, Refusal):
            return _refuse(text)
        texts[name] = text
    msg_id = texts[STANDARD_ID_HEADER]
    timestamp = _parse_timestamp(texts[STANDARD_TIMESTAMP_HEADER])
    if not _MESSAGE_ID_RE.fullmatch(msg_id) or timestamp is None:
        return _refuse(Refusal.MALFORMED)

    candidates: list[tuple[str, bytes]] = []
    badly_encoded = False
    for entry in texts[STANDARD_SIGNATURE_HEADER].split():
        version, comma, value = entry.partition(",")
        if not comma or version != "v1":
            continue  # another scheme (v1a: asymmetric...) or noise
        decoded = _decode_signature(value)
        if decoded is None:
            badly_encoded = True
        else:
            candidates.append((value, decoded))
    if not candidates:
        reason = Refusal.BAD_ENCODING if badly_encoded else Refusal.MALFORMED
        return _refuse(reason, timestamp=timestamp, message_id=msg_id)
    body = _as_bytes(payload)
    if body is None:
        return _refuse(Refusal.MALFORMED, timestamp=timestamp, message_id=msg_id)
    keys = _secret_keys(secrets, standard=True)
    if not keys:
        return _refuse(Refusal.NO_SECRET, timestamp=timestamp, message_id=msg_id)
    late = _window(timestamp, tolerance_seconds, now)
    if late is not None:
        return _refuse(late, timestamp=timestamp, message_id=msg_id)
    content = f"{msg_id}.{timestamp}.".encode("ascii") + body
    for index, key in keys:
        expected = hmac.new(key, content, hashlib.sha256).digest()
        for value, received in candidates:
            if hmac.compare_digest(expected, received):
                return Verification(
                    ok=True,
                    reason=Refusal.OK,
                    timestamp=timestamp,
                    secret_index=index,
                    signature=value,
                    message_id=msg_id,
                )
    return _refuse(Refusal.MISMATCH, timestamp=timestamp, message_id=msg_id)
