"""Standard Webhooks: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<b64>`` (a list),
signed content ``id.timestamp.body``, ``whsec_`` secrets. It binds the id and the timestamp into the
signature, which the tutorial's scheme does not."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence

from cognigy_webhooks.headers import wanted_values
from cognigy_webhooks.signing.common import (
    _MESSAGE_ID_RE,
    _STANDARD_LIMITS,
    DEFAULT_TOLERANCE_SECONDS,
    MAX_MESSAGE_ID_LENGTH,
    STANDARD_ID_HEADER,
    STANDARD_SIGNATURE_HEADER,
    STANDARD_TIMESTAMP_HEADER,
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
    """Every value of each wanted header; None when ``headers`` is not a real request's headers."""
    return wanted_values(headers, wanted, strict=True)


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
