"""Signing and verification: the tutorial's Cognigy header and Standard Webhooks."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import subprocess
import sys
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import Headers

from cognigy_webhooks.signing import (
    MAX_HEADER_LENGTH,
    Refusal,
    Verification,
    sign_standard_webhook,
    sign_webhook_payload,
    verify_cognigy_signature,
    verify_standard_webhook,
    verify_webhook_signature,
)

NOW = 1_700_000_000
SECRET = "cognigy-signing-secret-0123456789abcdef"
OLD_SECRET = "previous-signing-secret-fedcba9876543210"

payloads = st.binary(max_size=2048)
secrets_ = st.one_of(
    st.binary(min_size=1, max_size=64),
    st.text(min_size=1, max_size=64).filter(lambda s: not s.startswith("whsec_")),
)
timestamps = st.integers(min_value=0, max_value=2**40)
anything = st.one_of(
    st.none(),
    st.text(max_size=300),
    st.binary(max_size=300),
    st.integers(),
    st.floats(allow_nan=True),
    st.booleans(),
    st.lists(st.one_of(st.none(), st.text(max_size=50), st.binary(max_size=50), st.integers()), max_size=4),
    st.dictionaries(
        st.text(max_size=20), st.one_of(st.text(max_size=80), st.binary(max_size=80)), max_size=4
    ),
    st.tuples(st.text(max_size=20), st.text(max_size=20)),
)


def b64_hmac(key: bytes, content: bytes) -> str:
    return base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def header_with(timestamp: int, signature: str) -> str:
    return f"{timestamp},{signature}"


# --- Cognigy's scheme: properties ----------------------------------------------------------------


@given(payload=payloads, secret=secrets_, timestamp=timestamps)
def test_every_signed_payload_verifies(payload: bytes, secret: str | bytes, timestamp: int) -> None:
    header = sign_webhook_payload(payload, secret, timestamp)

    result = verify_cognigy_signature(payload, header, [secret], now=timestamp)

    assert result.ok
    assert result
    assert result.reason is Refusal.OK
    assert result.timestamp == timestamp
    assert result.secret_index == 0
    assert result.signature == header.split(",", 1)[1]


@given(payload=payloads, secret=secrets_, timestamp=timestamps)
def test_the_header_is_the_tutorials_format(payload: bytes, secret: str | bytes, timestamp: int) -> None:
    key = secret.encode() if isinstance(secret, str) else secret

    assert sign_webhook_payload(payload, secret, timestamp) == f"{timestamp},{b64_hmac(key, payload)}"


@given(payload=payloads, other=payloads, timestamp=timestamps)
def test_any_change_to_the_body_fails(payload: bytes, other: bytes, timestamp: int) -> None:
    if other == payload:
        other = payload + b"\x00"
    header = sign_webhook_payload(payload, SECRET, timestamp)

    result = verify_cognigy_signature(other, header, [SECRET], now=timestamp)

    assert not result.ok
    assert result.reason is Refusal.MISMATCH


@given(payload=payloads, timestamp=timestamps, index=st.integers(min_value=0), flip=st.integers(1, 255))
def test_any_change_to_the_signature_bytes_fails(
    payload: bytes, timestamp: int, index: int, flip: int
) -> None:
    header = sign_webhook_payload(payload, SECRET, timestamp)
    raw = bytearray(base64.b64decode(header.split(",", 1)[1]))
    raw[index % len(raw)] ^= flip
    forged = header_with(timestamp, base64.b64encode(bytes(raw)).decode())

    result = verify_cognigy_signature(payload, forged, [SECRET], now=timestamp)

    assert result.reason is Refusal.MISMATCH


@given(payload=payloads, timestamp=timestamps, data=st.data())
def test_any_edit_of_the_header_text_fails(payload: bytes, timestamp: int, data: st.DataObject) -> None:
    header = sign_webhook_payload(payload, SECRET, timestamp)
    signature = header.split(",", 1)[1]
    position = data.draw(st.integers(0, len(signature) - 1))
    replacement = data.draw(st.characters(codec="ascii").filter(lambda ch: ch != signature[position]))
    edited = signature[:position] + replacement + signature[position + 1 :]

    result = verify_cognigy_signature(payload, header_with(timestamp, edited), [SECRET], now=timestamp)

    assert not result.ok
    assert result.reason in {Refusal.MISMATCH, Refusal.BAD_ENCODING, Refusal.MALFORMED, Refusal.MISSING}


@given(payload=payloads, timestamp=st.integers(0, 2**40), shift=st.integers(301, 2**30), late=st.booleans())
def test_a_timestamp_moved_out_of_the_window_fails(
    payload: bytes, timestamp: int, shift: int, late: bool
) -> None:
    signature = sign_webhook_payload(payload, SECRET, timestamp).split(",", 1)[1]
    moved = timestamp - shift if late else timestamp + shift
    if moved < 0:
        moved = timestamp + shift
        late = False

    result = verify_cognigy_signature(payload, header_with(moved, signature), [SECRET], now=timestamp)

    assert result.reason is (Refusal.FUTURE if not late else Refusal.STALE)


def test_cognigy_timestamp_is_not_signed_so_only_the_window_bounds_it() -> None:
    # The tutorial's scheme does not bind the timestamp: a captured signature can be re-stamped
    # within the window. This is why the receiver keys its replay ledger on `signature`.
    signature = sign_webhook_payload(b"{}", SECRET, NOW).split(",", 1)[1]

    result = verify_cognigy_signature(b"{}", header_with(NOW + 200, signature), [SECRET], now=NOW)

    assert result.ok
    assert result.signature == signature


@given(
    payload=anything,
    header=anything,
    secrets=anything,
    tolerance=anything,
    now=anything,
)
def test_no_input_raises_cognigy(
    payload: object, header: object, secrets: object, tolerance: object, now: object
) -> None:
    result = verify_cognigy_signature(payload, header, secrets, tolerance_seconds=tolerance, now=now)  # type: ignore[arg-type]

    assert isinstance(result, Verification)
    assert isinstance(result.reason, Refusal)
    assert verify_webhook_signature(payload, header, secrets, tolerance) in {True, False}  # type: ignore[arg-type]


@given(header=st.text(max_size=400), payload=payloads)
def test_random_text_headers_never_verify(header: str, payload: bytes) -> None:
    result = verify_cognigy_signature(payload, header, [SECRET], now=NOW)

    assert not result.ok
    assert result.reason is not Refusal.OK


# --- Cognigy's scheme: cases ----------------------------------------------------------------------


def test_rotation_current_and_previous_secret() -> None:
    header = sign_webhook_payload(b"body", OLD_SECRET, NOW)

    rotated = verify_cognigy_signature(b"body", header, [SECRET, OLD_SECRET], now=NOW)
    dropped = verify_cognigy_signature(b"body", header, [SECRET], now=NOW)

    assert rotated.ok
    assert rotated.secret_index == 1
    assert dropped.reason is Refusal.MISMATCH
    assert dropped.secret_index is None


def test_unusable_secrets_are_skipped_and_keep_their_index() -> None:
    header = sign_webhook_payload(b"body", SECRET, NOW)

    result = verify_cognigy_signature(b"body", header, ["", None, SECRET], now=NOW)  # type: ignore[list-item]

    assert result.ok
    assert result.secret_index == 2


def test_a_lone_secret_string_is_one_secret_not_a_list_of_letters() -> None:
    one_letter = sign_webhook_payload(b"body", "s", NOW)

    assert verify_cognigy_signature(b"body", one_letter, SECRET, now=NOW).reason is Refusal.MISMATCH
    header = sign_webhook_payload(b"body", SECRET, NOW)
    assert verify_cognigy_signature(b"body", header, SECRET, now=NOW).ok


@pytest.mark.parametrize("secrets", [[], [""], [b""], [None], None, {"current": SECRET}, 42])
def test_no_usable_secret_is_reported(secrets: object) -> None:
    header = sign_webhook_payload(b"body", SECRET, NOW)

    result = verify_cognigy_signature(b"body", header, secrets, now=NOW)  # type: ignore[arg-type]

    assert result.reason is Refusal.NO_SECRET


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (0, Refusal.OK),
        (300, Refusal.OK),  # exactly at the edge, both ways
        (-300, Refusal.OK),
        (301, Refusal.STALE),  # now is later than the timestamp: too old
        (-301, Refusal.FUTURE),  # now is earlier than the timestamp: too new
        (10**9, Refusal.STALE),
        (-(10**9), Refusal.FUTURE),
    ],
)
def test_tolerance_in_both_directions(offset: int, expected: Refusal) -> None:
    header = sign_webhook_payload(b"body", SECRET, NOW)

    result = verify_cognigy_signature(b"body", header, [SECRET], now=NOW + offset)

    assert result.reason is expected


def test_tolerance_is_configurable_and_garbage_tolerance_closes_the_window() -> None:
    header = sign_webhook_payload(b"body", SECRET, NOW)

    assert verify_cognigy_signature(b"body", header, [SECRET], tolerance_seconds=60, now=NOW + 61).reason is (
        Refusal.STALE
    )
    assert verify_cognigy_signature(b"body", header, [SECRET], tolerance_seconds=60, now=NOW + 60).ok
    for garbage in (float("nan"), -1, "300", None):
        result = verify_cognigy_signature(b"body", header, [SECRET], tolerance_seconds=garbage, now=NOW + 1)  # type: ignore[arg-type]
        assert result.reason is Refusal.STALE


def _good_signature() -> str:
    return sign_webhook_payload(b"body", SECRET, NOW).split(",", 1)[1]


def _non_canonical(signature: str) -> str:
    # 32 bytes = 43 base64 characters and one '='; the last character carries 2 unused bits.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(signature[42])
    return signature[:42] + alphabet[last ^ 0b01] + "="


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda s: s.rstrip("="), id="padding-missing"),
        pytest.param(lambda s: s + "=", id="padding-extra"),
        pytest.param(lambda s: s[:10] + "\n" + s[10:], id="newline-inside"),
        pytest.param(lambda s: s[:10] + " " + s[10:], id="space-inside"),
        pytest.param(lambda s: s.replace("=", "A"), id="no-padding-wrong-length"),
        pytest.param(lambda s: "=" + s[1:], id="padding-first"),
        pytest.param(lambda s: s[:20] + "*" + s[21:], id="non-alphabet"),
        pytest.param(lambda s: s.replace("+", "-").replace("/", "_") + "-_", id="url-safe-alphabet"),
        pytest.param(_non_canonical, id="non-canonical-padding-bits"),
        pytest.param(lambda s: base64.b64encode(base64.b64decode(s)[:16]).decode(), id="16-bytes"),
        pytest.param(lambda s: base64.b64encode(base64.b64decode(s) * 2).decode(), id="64-bytes"),
        pytest.param(lambda s: s + s, id="two-signatures-glued"),
    ],
)
def test_strict_base64(mangle: object) -> None:
    signature = _good_signature()
    bad = mangle(signature)  # type: ignore[operator]
    assert bad != signature

    result = verify_cognigy_signature(b"body", header_with(NOW, bad), [SECRET], now=NOW)

    assert result.reason is Refusal.BAD_ENCODING, bad


def test_non_canonical_spelling_decodes_to_the_same_bytes_but_is_refused() -> None:
    # The point of canonical-only: one signature, one spelling, so a replay ledger cannot be dodged.
    signature = _good_signature()
    variant = _non_canonical(signature)

    assert base64.b64decode(variant) == base64.b64decode(signature)
    assert verify_cognigy_signature(b"body", header_with(NOW, variant), [SECRET], now=NOW).reason is (
        Refusal.BAD_ENCODING
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, Refusal.MISSING),
        ("", Refusal.MISSING),
        ("   ", Refusal.MISSING),
        (b"", Refusal.MISSING),
        ("1700000000", Refusal.MALFORMED),
        ("1700000000,", Refusal.MALFORMED),
        (",abc", Refusal.MALFORMED),
        ("+1700000000,SIG", Refusal.MALFORMED),
        ("-5,SIG", Refusal.MALFORMED),
        ("1_700_000_000,SIG", Refusal.MALFORMED),
        ("\u0661\u0667\u0660\u0660,SIG", Refusal.MALFORMED),  # Arabic-Indic digits
        ("1700000000.5,SIG", Refusal.MALFORMED),
        ("1700000000,SIG\u00e9", Refusal.MALFORMED),  # non-ASCII
        ("x" * (MAX_HEADER_LENGTH + 1), Refusal.MALFORMED),
        ("1700000000," + "A" * 10_000_000, Refusal.MALFORMED),  # huge: capped before any work
        (12345, Refusal.MALFORMED),
    ],
)
def test_header_shapes(header: object, expected: Refusal) -> None:
    result = verify_cognigy_signature(b"body", header, [SECRET], now=NOW)  # type: ignore[arg-type]

    assert result.reason is expected


def test_header_as_bytes_and_surrounding_spaces_are_accepted() -> None:
    header = sign_webhook_payload(b"body", SECRET, NOW)
    stamp, signature = header.split(",", 1)

    assert verify_cognigy_signature(b"body", header.encode(), [SECRET], now=NOW).ok  # type: ignore[arg-type]
    assert verify_cognigy_signature(b"body", f" {stamp} , {signature} ", [SECRET], now=NOW).ok


def test_payload_kinds() -> None:
    header = sign_webhook_payload(b'{"a": "\xc3\xa9"}', SECRET, NOW)

    assert verify_cognigy_signature(bytearray(b'{"a": "\xc3\xa9"}'), header, [SECRET], now=NOW).ok  # type: ignore[arg-type]
    assert verify_cognigy_signature(memoryview(b'{"a": "\xc3\xa9"}'), header, [SECRET], now=NOW).ok  # type: ignore[arg-type]
    assert verify_cognigy_signature('{"a": "é"}', header, [SECRET], now=NOW).ok  # type: ignore[arg-type]
    assert verify_cognigy_signature(None, header, [SECRET], now=NOW).reason is Refusal.MALFORMED  # type: ignore[arg-type]
    assert verify_cognigy_signature("\ud800", header, [SECRET], now=NOW).reason is Refusal.MALFORMED  # type: ignore[arg-type]


def test_a_huge_body_verifies() -> None:
    body = b"x" * (8 * 1024 * 1024)
    header = sign_webhook_payload(body, SECRET, NOW)

    assert verify_cognigy_signature(body, header, [SECRET], now=NOW).ok
    assert not verify_cognigy_signature(body + b"y", header, [SECRET], now=NOW).ok


def test_tutorial_verifier_uses_the_real_clock() -> None:
    fresh = sign_webhook_payload(b"body", SECRET)
    stale = sign_webhook_payload(b"body", SECRET, timestamp=1_000)

    assert verify_webhook_signature(b"body", fresh, SECRET) is True
    assert verify_webhook_signature(b"body", fresh, OLD_SECRET) is False
    assert verify_webhook_signature(b"body", stale, SECRET) is False
    assert verify_webhook_signature(b"body", stale, SECRET, tolerance_seconds=10**12) is True
    assert verify_webhook_signature(b"body", "garbage", SECRET) is False
    assert verify_webhook_signature(b"body", fresh, None) is False  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("secret", "timestamp"),
    [("", NOW), (b"", NOW), (None, NOW), (SECRET, -1), (SECRET, 1.5), (SECRET, True)],
)
def test_signing_refuses_unusable_arguments_without_echoing_them(secret: object, timestamp: object) -> None:
    with pytest.raises((TypeError, ValueError)) as caught:
        sign_webhook_payload(b"body", secret, timestamp)  # type: ignore[arg-type]

    assert SECRET not in str(caught.value)


def test_verification_is_frozen_holds_no_secret_and_is_truthy_only_when_ok() -> None:
    header = sign_webhook_payload(b"body", SECRET, NOW)
    good = verify_cognigy_signature(b"body", header, [SECRET], now=NOW)
    bad = verify_cognigy_signature(b"other", header, [SECRET], now=NOW)

    for result in (good, bad):
        assert SECRET not in repr(result)
        assert SECRET not in str(result)
        assert all(SECRET not in str(value) for value in dataclasses.astuple(result))
    with pytest.raises(dataclasses.FrozenInstanceError):
        good.ok = False  # type: ignore[misc]
    assert bool(good) is True
    assert bool(bad) is False
    assert Refusal.STALE == "stale"
    assert Refusal("mismatch") is Refusal.MISMATCH


# --- Standard Webhooks -----------------------------------------------------------------------------

# The reference vector of the Standard Webhooks test suite (also svix's TestWebhookSign).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_PAYLOAD = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

STD_SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
STD_OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()

msg_ids = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64)


def std_headers(msg_id: str, timestamp: int, signature: str) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def test_standard_webhooks_reference_vector() -> None:
    assert sign_standard_webhook(SPEC_ID, SPEC_TIMESTAMP, SPEC_PAYLOAD, SPEC_SECRET) == SPEC_SIGNATURE

    result = verify_standard_webhook(
        SPEC_PAYLOAD, std_headers(SPEC_ID, SPEC_TIMESTAMP, SPEC_SIGNATURE), [SPEC_SECRET], now=SPEC_TIMESTAMP
    )

    assert result.ok
    assert result.message_id == SPEC_ID
    assert result.signature == SPEC_SIGNATURE[3:]


@given(msg_id=msg_ids, timestamp=timestamps, payload=payloads, key=st.binary(min_size=1, max_size=64))
def test_standard_known_answer_computed_independently(
    msg_id: str, timestamp: int, payload: bytes, key: bytes
) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    expected = "v1," + b64_hmac(key, f"{msg_id}.{timestamp}.".encode() + payload)

    signature = sign_standard_webhook(msg_id, timestamp, payload, secret)
    result = verify_standard_webhook(
        payload, std_headers(msg_id, timestamp, expected), [secret], now=timestamp
    )

    assert signature == expected
    assert result.ok
    assert result.timestamp == timestamp
    assert result.secret_index == 0


def test_a_secret_without_the_prefix_is_its_utf8_bytes() -> None:
    raw_secret = "plain-secret-with-no-prefix-\u00e9"
    expected = "v1," + b64_hmac(raw_secret.encode("utf-8"), f"msg_1.{NOW}.".encode() + b"{}")

    assert sign_standard_webhook("msg_1", NOW, b"{}", raw_secret) == expected
    assert sign_standard_webhook("msg_1", NOW, b"{}", raw_secret.encode()) == expected
    assert verify_standard_webhook(b"{}", std_headers("msg_1", NOW, expected), [raw_secret], now=NOW).ok


@given(
    msg_id=msg_ids,
    timestamp=st.integers(1000, 2**40),
    payload=payloads,
    field=st.sampled_from(["id", "timestamp", "body"]),
    delta=st.integers(1, 300),
)
def test_standard_any_change_to_id_timestamp_or_body_fails(
    msg_id: str, timestamp: int, payload: bytes, field: str, delta: int
) -> None:
    signature = sign_standard_webhook(msg_id, timestamp, payload, STD_SECRET)
    headers = std_headers(msg_id, timestamp, signature)
    if field == "id":
        headers["webhook-id"] = msg_id + "x"
    elif field == "timestamp":  # within the window: bound into the signature, so it still fails
        headers["webhook-timestamp"] = str(timestamp - delta)
    else:
        payload = payload + b"x"

    result = verify_standard_webhook(payload, headers, [STD_SECRET], now=timestamp)

    assert result.reason is Refusal.MISMATCH


@given(payload=payloads, index=st.integers(0, 31), flip=st.integers(1, 255))
def test_standard_any_change_to_the_signature_fails(payload: bytes, index: int, flip: int) -> None:
    signature = sign_standard_webhook("msg_1", NOW, payload, STD_SECRET)
    raw = bytearray(base64.b64decode(signature[3:]))
    raw[index] ^= flip
    forged = "v1," + base64.b64encode(bytes(raw)).decode()

    result = verify_standard_webhook(payload, std_headers("msg_1", NOW, forged), [STD_SECRET], now=NOW)

    assert result.reason is Refusal.MISMATCH


@given(payload=anything, headers=anything, secrets=anything, tolerance=anything, now=anything)
def test_no_input_raises_standard(
    payload: object, headers: object, secrets: object, tolerance: object, now: object
) -> None:
    result = verify_standard_webhook(payload, headers, secrets, tolerance_seconds=tolerance, now=now)  # type: ignore[arg-type]

    assert isinstance(result, Verification)
    assert not result.ok


@given(
    msg_id=anything,
    stamp=anything,
    signature=st.one_of(anything, st.lists(st.text(max_size=60), max_size=5).map(" ".join)),
)
def test_no_header_value_raises_standard(msg_id: object, stamp: object, signature: object) -> None:
    headers = {"webhook-id": msg_id, "webhook-timestamp": stamp, "webhook-signature": signature}

    result = verify_standard_webhook(b"{}", headers, [STD_SECRET], now=NOW)  # type: ignore[arg-type]

    assert isinstance(result, Verification)
    assert not result.ok


def test_standard_any_matching_entry_passes_and_unknown_versions_are_ignored() -> None:
    good = sign_standard_webhook("msg_1", NOW, b"{}", STD_SECRET)
    other = sign_standard_webhook("msg_1", NOW, b"{}", STD_OLD_SECRET)
    header = f"v1a,{good[3:]} v2,xyz {other} {good} garbage"

    result = verify_standard_webhook(b"{}", std_headers("msg_1", NOW, header), [STD_SECRET], now=NOW)
    only_unknown = verify_standard_webhook(
        b"{}", std_headers("msg_1", NOW, f"v1a,{good[3:]} v2,{good[3:]}"), [STD_SECRET], now=NOW
    )
    only_bad = verify_standard_webhook(
        b"{}", std_headers("msg_1", NOW, "v1,abc v1,@@@@"), [STD_SECRET], now=NOW
    )

    assert result.ok
    assert result.signature == good[3:]
    assert only_unknown.reason is Refusal.MALFORMED
    assert only_bad.reason is Refusal.BAD_ENCODING


def test_standard_rotation() -> None:
    signature = sign_standard_webhook("msg_1", NOW, b"{}", STD_OLD_SECRET)
    headers = std_headers("msg_1", NOW, signature)

    assert verify_standard_webhook(b"{}", headers, [STD_SECRET, STD_OLD_SECRET], now=NOW).secret_index == 1
    assert verify_standard_webhook(b"{}", headers, [STD_SECRET], now=NOW).reason is Refusal.MISMATCH


@pytest.mark.parametrize(
    ("offset", "expected"),
    [(300, Refusal.OK), (-300, Refusal.OK), (301, Refusal.STALE), (-301, Refusal.FUTURE)],
)
def test_standard_tolerance_in_both_directions(offset: int, expected: Refusal) -> None:
    headers = std_headers("msg_1", NOW, sign_standard_webhook("msg_1", NOW, b"{}", STD_SECRET))

    assert verify_standard_webhook(b"{}", headers, [STD_SECRET], now=NOW + offset).reason is expected


def test_standard_header_names_are_case_insensitive_in_every_form() -> None:
    signature = sign_standard_webhook("msg_1", NOW, b"{}", STD_SECRET)
    pairs = [("Webhook-Id", "msg_1"), ("WEBHOOK-TIMESTAMP", str(NOW)), ("Webhook-Signature", signature)]
    raw = [(name.lower().encode(), value.encode()) for name, value in pairs]  # ASGI's raw headers

    for headers in (dict(pairs), pairs, raw, Headers(raw=raw)):
        assert verify_standard_webhook(b"{}", headers, [STD_SECRET], now=NOW).ok, headers  # type: ignore[arg-type]


def test_standard_a_header_given_twice_is_refused() -> None:
    signature = sign_standard_webhook("msg_1", NOW, b"{}", STD_SECRET)
    pairs = [("webhook-id", "msg_1"), ("webhook-timestamp", str(NOW)), ("webhook-signature", signature)]
    doubled = [*pairs, ("Webhook-Timestamp", str(NOW - 10))]
    raw = [(name.encode(), value.encode()) for name, value in doubled]

    as_pairs = verify_standard_webhook(b"{}", doubled, [STD_SECRET], now=NOW)
    as_dict = verify_standard_webhook(b"{}", dict(doubled), [STD_SECRET], now=NOW)  # two keys, two cases
    as_starlette = verify_standard_webhook(b"{}", Headers(raw=raw), [STD_SECRET], now=NOW)

    assert as_pairs.reason is Refusal.MALFORMED
    assert as_dict.reason is Refusal.MALFORMED
    assert as_starlette.reason is Refusal.MALFORMED


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"webhook-timestamp": str(NOW), "webhook-signature": "v1,x"}, Refusal.MISSING),
        ({"webhook-id": "msg_1", "webhook-signature": "v1,x"}, Refusal.MISSING),
        ({"webhook-id": "msg_1", "webhook-timestamp": str(NOW)}, Refusal.MISSING),
        ({"webhook-id": " ", "webhook-timestamp": str(NOW), "webhook-signature": "v1,x"}, Refusal.MISSING),
        ({}, Refusal.MISSING),
        (None, Refusal.MISSING),
        (
            {"webhook-id": "msg 1", "webhook-timestamp": str(NOW), "webhook-signature": "v1,x"},
            Refusal.MALFORMED,
        ),
        (
            {"webhook-id": "m\u00e9", "webhook-timestamp": str(NOW), "webhook-signature": "v1,x"},
            Refusal.MALFORMED,
        ),
        (
            {"webhook-id": "m" * 257, "webhook-timestamp": str(NOW), "webhook-signature": "v1,x"},
            Refusal.MALFORMED,
        ),
        (
            {"webhook-id": "msg_1", "webhook-timestamp": "soon", "webhook-signature": "v1,x"},
            Refusal.MALFORMED,
        ),
        (
            {"webhook-id": "msg_1", "webhook-timestamp": str(NOW), "webhook-signature": "v1," + "A" * 5000},
            Refusal.MALFORMED,
        ),
        ("webhook-id: msg_1", Refusal.MALFORMED),
        ([("webhook-id",)], Refusal.MALFORMED),
    ],
)
def test_standard_header_shapes(headers: object, expected: Refusal) -> None:
    result = verify_standard_webhook(b"{}", headers, [STD_SECRET], now=NOW)  # type: ignore[arg-type]

    assert result.reason is expected


@pytest.mark.parametrize(
    "secrets", [[], ["whsec_"], ["whsec_not base64!"], ["whsec_abc"], [b"whsec_\xff\xff"], [None], ""]
)
def test_standard_unusable_secrets(secrets: object) -> None:
    headers = std_headers("msg_1", NOW, sign_standard_webhook("msg_1", NOW, b"{}", STD_SECRET))

    assert verify_standard_webhook(b"{}", headers, secrets, now=NOW).reason is Refusal.NO_SECRET  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("msg_id", "timestamp", "secret"),
    [
        ("", NOW, STD_SECRET),
        ("a b", NOW, STD_SECRET),
        ("msg", -1, STD_SECRET),
        ("msg", NOW, "whsec_!!"),
        ("msg", NOW, ""),
    ],
)
def test_standard_signing_refuses_unusable_arguments(msg_id: str, timestamp: int, secret: str) -> None:
    with pytest.raises(ValueError, match="must be") as caught:
        sign_standard_webhook(msg_id, timestamp, b"{}", secret)

    assert STD_SECRET not in str(caught.value)


# --- import cost -----------------------------------------------------------------------------------


def test_importing_signing_pulls_in_neither_pydantic_nor_httpx() -> None:
    code = "import cognigy_webhooks.signing, sys; print('pydantic' in sys.modules, 'httpx' in sys.modules)"

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)

    assert out.stdout.split() == ["False", "False"]


def test_numbers_too_large_for_a_float_do_not_raise() -> None:
    header = sign_webhook_payload(b"body", SECRET, NOW)
    huge = 10**400

    assert verify_cognigy_signature(b"body", header, [SECRET], tolerance_seconds=huge, now=NOW + 10**9).ok
    # a negative tolerance closes the window: only the exact second passes
    assert verify_cognigy_signature(b"body", header, [SECRET], tolerance_seconds=-huge, now=NOW).ok
    late = verify_cognigy_signature(b"body", header, [SECRET], tolerance_seconds=-huge, now=NOW + 1)
    assert late.reason is Refusal.STALE
    fresh = sign_webhook_payload(b"body", SECRET)
    assert verify_cognigy_signature(b"body", fresh, [SECRET], now=huge).ok  # unusable clock -> real clock
    headers = std_headers("msg_1", NOW, sign_standard_webhook("msg_1", NOW, b"{}", STD_SECRET))
    assert verify_standard_webhook(b"{}", headers, [STD_SECRET], tolerance_seconds=huge, now=-huge).ok


def test_secrets_read_before_a_failing_iterable_broke_are_still_used() -> None:
    # a rotation source that yields the current secret, then fails: what it gave is not thrown away
    body = b'{"ok": true}'
    secret = "current-secret-" + "c" * 24
    header = sign_webhook_payload(body, secret)

    def versions() -> Iterator[str]:
        yield secret
        raise RuntimeError("the previous version could not be read")

    assert verify_cognigy_signature(body, header, versions()).ok
