"""Loop-prevention headers, both sets: the tutorial's (a headers dict in, a dict out) and the project's
marks on an endpoint. Deterministic, idempotent, never duplicated; the marks read back without raising."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import uuid

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import Headers

from cognigy_webhooks import inject_loop_prevention_headers, with_loop_marks
from cognigy_webhooks.errors import InvalidSpec
from cognigy_webhooks.loopguard import (
    CORRELATION_ID_HEADER,
    LOOP_HOP_HEADER,
    LOOP_ID_HEADER,
    LOOP_ORIGIN,
    LOOP_ORIGIN_HEADER,
    PREVENT_LOOP_HEADER,
    REQUEST_ID_HEADER,
    SOURCE_HEADER,
    TUTORIAL_HEADERS,
    LoopInfo,
    loop_id_for,
    read_loop_headers,
)
from cognigy_webhooks.models import WebhookEndpoint, parse_endpoint
from cognigy_webhooks.secrets import BUILTIN_PUBLIC_HEADERS

SECRET = "s" * 40


def endpoint(**overrides: object) -> WebhookEndpoint:
    spec: dict[str, object] = {"name": "orders-bot", "url": "https://hooks.example.com/cognigy"}
    spec.update(overrides)
    return parse_endpoint(spec)


def test_marks_are_derived_from_the_name() -> None:
    result = with_loop_marks(endpoint())

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
    first = with_loop_marks(endpoint(headers={"X-Team": "ops"}))
    second = with_loop_marks(endpoint(headers={"X-Team": "ops"}))

    assert first.spec_hash() == second.spec_hash()
    assert first.to_api_payload() == second.to_api_payload()


def test_different_endpoints_get_different_loop_ids() -> None:
    a = with_loop_marks(endpoint(name="orders-bot"))
    b = with_loop_marks(endpoint(name="billing-bot"))

    assert a.headers[LOOP_ID_HEADER] != b.headers[LOOP_ID_HEADER]
    assert a.spec_hash() != b.spec_hash()


def test_idempotent() -> None:
    once = with_loop_marks(endpoint(headers={"X-Team": "ops"}))
    twice = with_loop_marks(once)

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

    result = with_loop_marks(original)

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

    result = with_loop_marks(original)

    lowered = [header.lower() for header in result.headers]
    assert len(lowered) == len(set(lowered))
    assert sorted(lowered) == sorted(["x-cogwh-origin", "x-cogwh-loop-id", "x-cogwh-hop", "x-team"])
    assert result.headers[LOOP_ORIGIN_HEADER] == LOOP_ORIGIN
    assert result.headers[LOOP_HOP_HEADER] == "1"
    assert result.spec_hash() == with_loop_marks(endpoint(headers={"X-Team": "ops"})).spec_hash()


def test_the_header_limit_still_holds_on_the_copy() -> None:
    crowded = endpoint(headers={f"X-H{i}": "v" for i in range(49)})

    with pytest.raises(InvalidSpec) as caught:
        with_loop_marks(crowded)

    assert caught.value.errors[0]["field"] == "headers"


def test_a_secret_stays_out_of_the_error_of_the_copy() -> None:
    crowded = endpoint(
        headers={f"X-H{i}": "v" for i in range(49)}, signatureHeader="X-Sig", signatureSecret=SECRET
    )

    with pytest.raises(InvalidSpec) as caught:
        with_loop_marks(crowded)

    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)


# --- the tutorial's headers: a dict in, a dict out ----------------------------------------------------


def test_the_tutorials_four_headers_are_added_to_a_new_dict() -> None:
    given = {"Content-Type": "application/json", "X-Bot-Id": "order-bot"}
    before = dict(given)

    result = inject_loop_prevention_headers(given)

    assert type(result) is dict
    assert result is not given
    assert given == before  # the input is never changed
    assert list(result) == [
        "Content-Type",
        "X-Bot-Id",
        "X-Cognigy-Webhook-Source",
        "X-Request-Id",
        "X-Correlation-Id",
        "Prevent-Loop",
    ]
    assert result["Content-Type"] == "application/json"
    assert result["X-Bot-Id"] == "order-bot"
    assert result["X-Cognigy-Webhook-Source"] == "bot-integration"
    assert result["Prevent-Loop"] == "true"
    assert tuple(TUTORIAL_HEADERS) == (
        SOURCE_HEADER,
        REQUEST_ID_HEADER,
        CORRELATION_ID_HEADER,
        PREVENT_LOOP_HEADER,
    )
    request_id = uuid.UUID(result["X-Request-Id"])
    correlation_id = uuid.UUID(result["X-Correlation-Id"])
    assert request_id.version == correlation_id.version == 5
    assert request_id != correlation_id


def test_an_empty_dict_gets_the_four_headers() -> None:
    result = inject_loop_prevention_headers({})

    assert [name.lower() for name in result] == [name.lower() for name in TUTORIAL_HEADERS]


def test_the_ids_are_the_same_on_every_run() -> None:
    # The tutorial stamped fresh uuids: every spec built with them looked changed on every run.
    code = (
        "from cognigy_webhooks import inject_loop_prevention_headers as f;"
        "print(f({'X-Bot-Id': 'order-bot'}, public_headers=['X-Bot-Id']))"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        ).stdout
        for _ in range(2)
    }

    assert len(runs) == 1
    assert inject_loop_prevention_headers({"X-Bot-Id": "a"}) == inject_loop_prevention_headers(
        {"X-Bot-Id": "a"}
    )


def test_a_spec_built_with_them_hashes_the_same_on_every_run() -> None:
    def build() -> WebhookEndpoint:
        return WebhookEndpoint(
            name="order-status",
            url="https://hooks.example.com/order-status",
            headers=inject_loop_prevention_headers({"X-Bot-Id": "order-bot"}),
        )

    assert build().spec_hash() == build().spec_hash()
    assert with_loop_marks(build()).spec_hash() == with_loop_marks(build()).spec_hash()


def test_idempotent_applying_twice_equals_once() -> None:
    once = inject_loop_prevention_headers({"X-Bot-Id": "order-bot", "Accept": "application/json"})
    twice = inject_loop_prevention_headers(once)

    assert twice == once
    assert list(twice) == list(once)


@pytest.mark.parametrize(
    "given",
    [
        {"x-request-id": "caller-chosen", "prevent-loop": "false"},
        {"X-REQUEST-ID": "caller-chosen", "X-Cognigy-Webhook-Source": "someone-else"},
        {"X-Correlation-Id": "1", "X-Request-Id": "2", "PREVENT-LOOP": "no", "x-cognigy-webhook-source": "x"},
    ],
)
def test_a_header_of_the_tutorials_given_in_any_case_is_replaced_not_duplicated(
    given: dict[str, str],
) -> None:
    result = inject_loop_prevention_headers({"X-Bot-Id": "order-bot", **given})

    lowered = [name.lower() for name in result]
    assert len(lowered) == len(set(lowered))
    assert result == inject_loop_prevention_headers({"X-Bot-Id": "order-bot"})


def test_different_headers_get_different_ids_and_case_of_names_does_not_matter() -> None:
    a = inject_loop_prevention_headers({"X-Bot-Id": "order-bot"}, public_headers=["X-Bot-Id"])
    b = inject_loop_prevention_headers({"X-Bot-Id": "billing-bot"}, public_headers=["X-Bot-Id"])
    c = inject_loop_prevention_headers({"x-bot-id": "order-bot"}, public_headers=["x-bot-id"])
    d = inject_loop_prevention_headers({"X-Team": "ops"})

    assert a[REQUEST_ID_HEADER] != b[REQUEST_ID_HEADER]
    assert a[CORRELATION_ID_HEADER] != b[CORRELATION_ID_HEADER]
    assert a[REQUEST_ID_HEADER] == c[REQUEST_ID_HEADER]
    assert a[REQUEST_ID_HEADER] != d[REQUEST_ID_HEADER]


def test_a_secret_header_value_never_feeds_the_ids() -> None:
    # Every header value is a secret unless declared public (cognigy_webhooks.secrets): an id sent to
    # third parties must not be a hash a guessed password could be tested against.
    one = inject_loop_prevention_headers({"Authorization": "Bearer tok-" + "a" * 30, "X-Bot-Id": "order-bot"})
    two = inject_loop_prevention_headers({"Authorization": "Bearer tok-" + "b" * 30, "X-Bot-Id": "order-bot"})
    ref = inject_loop_prevention_headers(
        {"Authorization": "{{resolve:secretsmanager:arn:aws:secretsmanager:eu-central-1:1:secret:x}}"}
    )
    other_ref = inject_loop_prevention_headers(
        {"Authorization": "{{resolve:secretsmanager:arn:aws:secretsmanager:eu-central-1:1:secret:y}}"}
    )

    assert one[REQUEST_ID_HEADER] == two[REQUEST_ID_HEADER]
    assert one[CORRELATION_ID_HEADER] == two[CORRELATION_ID_HEADER]
    assert ref[REQUEST_ID_HEADER] != other_ref[REQUEST_ID_HEADER]  # a reference names, it does not reveal


@pytest.mark.parametrize(
    ("given", "field"),
    [
        (None, "headers"),
        ("X-Bot-Id: order-bot", "headers"),
        ([("X-Bot-Id", "order-bot")], "headers"),
        ({"X-Bot-Id": 7}, "headers.X-Bot-Id"),
        ({"X-Bot-Id": None}, "headers.X-Bot-Id"),
        ({7: "seven"}, "headers"),
        ({"": "empty"}, "headers"),
        ({"X-Team": "a", "x-team": "b"}, "headers.x-team"),
    ],
)
def test_bad_input_is_a_typed_error_naming_the_field(given: object, field: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        inject_loop_prevention_headers(given)  # type: ignore[arg-type]

    assert caught.value.errors[0]["field"] == field


def test_a_value_is_never_echoed_in_an_error() -> None:
    with pytest.raises(InvalidSpec) as caught:
        inject_loop_prevention_headers({"X-Team": "a", "x-team": SECRET})

    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value.errors)


def test_an_endpoint_given_to_the_tutorials_function_says_which_function_takes_one() -> None:
    with pytest.raises(InvalidSpec, match="with_loop_marks"):
        inject_loop_prevention_headers(endpoint())  # type: ignore[arg-type]


def test_public_headers_must_be_a_list_of_names() -> None:
    with pytest.raises(InvalidSpec) as caught:
        inject_loop_prevention_headers({"X-Bot-Id": "a"}, public_headers="X-Bot-Id")

    assert caught.value.errors[0]["field"] == "public_headers"


def test_the_tutorials_headers_and_the_marks_live_side_by_side() -> None:
    spec = endpoint(headers=inject_loop_prevention_headers({"X-Bot-Id": "order-bot"}))

    marked = with_loop_marks(spec)

    assert {k: v for k, v in marked.headers.items() if not k.startswith("X-Cogwh-")} == spec.headers
    assert marked.headers[LOOP_ORIGIN_HEADER] == LOOP_ORIGIN
    assert with_loop_marks(marked) == marked
    assert inject_loop_prevention_headers(marked.headers) == marked.headers  # the marks do not move the ids


def test_every_header_either_function_adds_is_public_by_construction() -> None:
    added = set(inject_loop_prevention_headers({})) | {LOOP_ORIGIN_HEADER, LOOP_ID_HEADER, LOOP_HOP_HEADER}

    assert {name.lower() for name in added} <= BUILTIN_PUBLIC_HEADERS


# --- reading them back --------------------------------------------------------------------------


def test_read_back_what_was_injected_in_every_header_form() -> None:
    sent = with_loop_marks(endpoint()).headers
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
