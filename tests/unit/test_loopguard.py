"""Loop-prevention headers: deterministic, idempotent, never duplicated; read back without raising."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import Headers

from cognigy_webhooks import inject_loop_prevention_headers
from cognigy_webhooks.errors import InvalidSpec
from cognigy_webhooks.loopguard import (
    LOOP_HOP_HEADER,
    LOOP_ID_HEADER,
    LOOP_ORIGIN,
    LOOP_ORIGIN_HEADER,
    LoopInfo,
    loop_id_for,
    read_loop_headers,
)
from cognigy_webhooks.models import WebhookEndpoint, parse_endpoint

SECRET = "s" * 40


def endpoint(**overrides: object) -> WebhookEndpoint:
    spec: dict[str, object] = {"name": "orders-bot", "url": "https://hooks.example.com/cognigy"}
    spec.update(overrides)
    return parse_endpoint(spec)


def test_headers_are_derived_from_the_name() -> None:
    result = inject_loop_prevention_headers(endpoint())

    assert result.headers == {
        LOOP_ORIGIN_HEADER: "cognigy-webhooks",
        LOOP_ID_HEADER: hashlib.sha256(b"orders-bot").hexdigest()[:16],
        LOOP_HOP_HEADER: "1",
    }
    assert LOOP_ORIGIN_HEADER == "X-Cogwh-Origin"
    assert LOOP_ID_HEADER == "X-Cogwh-Loop-Id"
    assert LOOP_HOP_HEADER == "X-Cogwh-Hop"


def test_the_same_spec_hashes_the_same_on_every_run() -> None:
    # The tutorial stamped a fresh uuid each run: every spec looked changed to drift detection.
    first = inject_loop_prevention_headers(endpoint(headers={"X-Team": "ops"}))
    second = inject_loop_prevention_headers(endpoint(headers={"X-Team": "ops"}))

    assert first.spec_hash() == second.spec_hash()
    assert first.to_api_payload() == second.to_api_payload()


def test_different_endpoints_get_different_loop_ids() -> None:
    a = inject_loop_prevention_headers(endpoint(name="orders-bot"))
    b = inject_loop_prevention_headers(endpoint(name="billing-bot"))

    assert a.headers[LOOP_ID_HEADER] != b.headers[LOOP_ID_HEADER]
    assert a.spec_hash() != b.spec_hash()


def test_idempotent() -> None:
    once = inject_loop_prevention_headers(endpoint(headers={"X-Team": "ops"}))
    twice = inject_loop_prevention_headers(once)

    assert twice == once
    assert twice.spec_hash() == once.spec_hash()
    assert list(twice.headers) == list(once.headers)


def test_returns_a_copy_and_keeps_everything_else() -> None:
    original = endpoint(
        headers={"X-Team": "ops"},
        fallbackUrls=["https://backup.example.com/cognigy"],
        signatureHeader="X-Cognigy-Signature",
        signatureSecret=SECRET,
        timeoutMs=2500,
        retryPolicy={"maxRetries": 5, "retryIntervalMs": 2000},
    )
    before = original.model_dump()

    result = inject_loop_prevention_headers(original)

    assert result is not original
    assert original.model_dump() == before
    assert LOOP_ORIGIN_HEADER not in original.headers
    assert result.headers["X-Team"] == "ops"
    assert result.fallback_urls == original.fallback_urls
    assert result.timeout_ms == 2500
    assert result.retry_policy == original.retry_policy
    assert result.signature_secret is not None
    assert result.signature_secret.get_secret_value() == SECRET
    assert result.to_api_payload()["signatureSecret"] == SECRET


@pytest.mark.parametrize("name", ["x-cogwh-origin", "X-COGWH-ORIGIN", "X-Cogwh-Origin"])
def test_a_user_header_of_the_same_name_is_replaced_not_duplicated(name: str) -> None:
    original = endpoint(headers={name: "someone-else", "x-cogwh-hop": "7", "X-Team": "ops"})

    result = inject_loop_prevention_headers(original)

    lowered = [header.lower() for header in result.headers]
    assert len(lowered) == len(set(lowered))
    assert sorted(lowered) == sorted(["x-cogwh-origin", "x-cogwh-loop-id", "x-cogwh-hop", "x-team"])
    assert result.headers[LOOP_ORIGIN_HEADER] == LOOP_ORIGIN
    assert result.headers[LOOP_HOP_HEADER] == "1"
    assert (
        result.spec_hash() == inject_loop_prevention_headers(endpoint(headers={"X-Team": "ops"})).spec_hash()
    )


def test_the_header_limit_still_holds_on_the_copy() -> None:
    crowded = endpoint(headers={f"X-H{i}": "v" for i in range(49)})

    with pytest.raises(InvalidSpec) as caught:
        inject_loop_prevention_headers(crowded)

    assert caught.value.errors[0]["field"] == "headers"


def test_a_secret_stays_out_of_the_error_of_the_copy() -> None:
    crowded = endpoint(
        headers={f"X-H{i}": "v" for i in range(49)}, signatureHeader="X-Sig", signatureSecret=SECRET
    )

    with pytest.raises(InvalidSpec) as caught:
        inject_loop_prevention_headers(crowded)

    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)


# --- reading them back --------------------------------------------------------------------------


def test_read_back_what_was_injected_in_every_header_form() -> None:
    sent = inject_loop_prevention_headers(endpoint()).headers
    pairs = [(name.lower(), value) for name, value in sent.items()]
    raw = [(name.encode(), value.encode()) for name, value in pairs]

    for headers in (sent, pairs, raw, Headers(raw=raw), httpx.Headers(sent)):
        info = read_loop_headers(headers)
        assert info == LoopInfo(origin=LOOP_ORIGIN, loop_id=loop_id_for("orders-bot"), hop=1)
        assert info.from_us
        assert info.matches("orders-bot")
        assert not info.matches("billing-bot")


def test_names_are_case_insensitive_and_absent_headers_read_as_none() -> None:
    info = read_loop_headers({"X-COGWH-HOP": " 3 ", "content-type": "application/json"})

    assert info == LoopInfo(origin=None, loop_id=None, hop=3)
    assert not info.from_us


@pytest.mark.parametrize("hop", ["", "-1", "+1", "1.0", "one", "\u0661", "9999999", "1 2", "0x1", "1_0"])
def test_a_bad_hop_reads_as_none(hop: str) -> None:
    assert read_loop_headers({LOOP_HOP_HEADER: hop}).hop is None


@pytest.mark.parametrize("value", ["", "   ", "caf\u00e9", "a b", "x" * 129, "a\x00b", b"\xff\xfe", 42, None])
def test_unusable_values_read_as_none(value: object) -> None:
    assert read_loop_headers({LOOP_ORIGIN_HEADER: value}).origin is None  # type: ignore[arg-type]


class Hostile(dict[str, str]):
    def items(self):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")


anything = st.recursive(
    st.one_of(st.none(), st.text(max_size=40), st.binary(max_size=40), st.integers(), st.floats()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.one_of(st.text(max_size=20), st.binary(max_size=20)), inner, max_size=4),
    ),
    max_leaves=10,
)


@given(headers=anything)
def test_garbage_never_raises(headers: object) -> None:
    info = read_loop_headers(headers)  # type: ignore[arg-type]

    assert isinstance(info, LoopInfo)


@given(
    origin=st.text(max_size=200),
    loop_id=st.binary(max_size=200),
    hop=st.text(max_size=20),
)
def test_random_values_never_raise_and_only_clean_ones_survive(origin: str, loop_id: bytes, hop: str) -> None:
    pairs: list[tuple[str, object]] = [
        (LOOP_ORIGIN_HEADER, origin),
        (LOOP_ID_HEADER, loop_id),
        (LOOP_HOP_HEADER, hop),
    ]
    info = read_loop_headers(pairs)  # type: ignore[arg-type]

    for value in (info.origin, info.loop_id):
        assert value is None or (value.isascii() and value.isprintable() and " " not in value)
    assert info.hop is None or info.hop >= 0


def test_a_hostile_mapping_reads_as_nothing() -> None:
    assert read_loop_headers(Hostile({LOOP_ORIGIN_HEADER: LOOP_ORIGIN})) == LoopInfo(None, None, None)


def test_importing_loopguard_pulls_in_neither_pydantic_nor_httpx() -> None:
    code = "import cognigy_webhooks.loopguard, sys; print('pydantic' in sys.modules, 'httpx' in sys.modules)"

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)

    assert out.stdout.split() == ["False", "False"]
