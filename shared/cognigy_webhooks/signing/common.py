"""What both signature schemes share: the verdict (:class:`Verification`, :class:`Refusal`), limits,
and small total helpers that never raise on any input (garbage, non-ASCII, empty, huge)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import enum
import hashlib
import hmac
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

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
        # a hostile iterable: whatever was read before it failed is all there is
        with contextlib.suppress(Exception):
            for item in secrets:
                items.append(item)
                if len(items) >= MAX_SECRETS:
                    break
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


def _hmac_b64(key: bytes, content: bytes) -> str:
    return base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode("ascii")
