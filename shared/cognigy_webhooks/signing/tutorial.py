"""The tutorial's scheme: ``X-Cognigy-Signature: <unix seconds>,<base64 HMAC-SHA256(secret, raw body)>``.

It signs the body alone, not the timestamp: a replay with a fresh timestamp verifies, so a receiver
keys its replay ledger on the body (see :mod:`cognigy_webhooks.receiving.auth`)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

from cognigy_webhooks.signing.common import (
    _OWS,
    DEFAULT_TOLERANCE_SECONDS,
    MAX_HEADER_LENGTH,
    Refusal,
    Verification,
    _as_bytes,
    _decode_signature,
    _hmac_b64,
    _parse_timestamp,
    _read_header,
    _refuse,
    _secret_key,
    _secret_keys,
    _window,
)


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
