"""What the simulator accepts in a webhook's ``headers``: exactly what the tutorial's flow sends, and
nothing the delivery contract refuses. Over real TLS sockets (raw httpx), plus the validator itself
against generated headers."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cognigy_webhooks import WebhookEndpoint, inject_loop_prevention_headers
from cognigy_webhooks.errors import InvalidSpec
from cognigy_webhooks.loopguard import TUTORIAL_HEADERS
from cognigy_webhooks.models import FORBIDDEN_HEADERS
from cogwh.simulator import WEBHOOKS_PATH, validate_webhook
from tests.support.simulator import RunningSimulator

SECRET_VALUE = "hdr-secret-" + "v" * 30


def body(headers: Any, name: str = "orders-hook", **extra: Any) -> dict[str, Any]:
    return {"name": name, "url": "https://hooks.example.test/orders", "headers": headers, **extra}


@pytest.fixture
def http(simulator: RunningSimulator) -> Iterator[httpx.Client]:
    ctx = ssl.create_default_context(cafile=str(simulator.ca_file))
    with httpx.Client(
        base_url=simulator.base_url, verify=ctx, headers={"X-API-Key": simulator.api_key}
    ) as client:
        yield client


def _case(name: str, style: str) -> str:
    return {"as-is": name, "lower": name.lower(), "upper": name.upper()}[style]


@pytest.mark.parametrize("style", ["as-is", "lower", "upper"])
def test_the_tutorials_headers_are_accepted_and_stored_as_sent(
    http: httpx.Client, simulator: RunningSimulator, style: str
) -> None:
    # Given the headers the tutorial's flow builds (in any letter case a reader may type them)
    sent = {_case(k, style): v for k, v in inject_loop_prevention_headers({"X-Bot-Id": "order-bot"}).items()}

    # When they are registered, then changed with PATCH
    created = http.post(WEBHOOKS_PATH, json=body(sent))
    patched = http.patch(
        f"{WEBHOOKS_PATH}/{created.json().get('id')}", json={"headers": {**sent, "X-Team": "ops"}}
    )

    # Then both are accepted and Cognigy holds them exactly as sent
    assert created.status_code == 201, created.text
    assert patched.status_code == 200, patched.text
    [stored] = simulator.state.webhooks.values()
    assert stored["headers"] == {**sent, "X-Team": "ops"}


@pytest.mark.parametrize("name", [*sorted(FORBIDDEN_HEADERS), "Transfer-Encoding", "CONNECTION"])
def test_hop_by_hop_and_framing_headers_are_still_refused(http: httpx.Client, name: str) -> None:
    response = http.post(WEBHOOKS_PATH, json=body({**inject_loop_prevention_headers({}), name: "x"}))

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["fieldErrors"]] == [f"headers.{name}"]


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"X-Team": f"ops\r\nX-Injected: {SECRET_VALUE}"}, "headers.X-Team"),
        ({"X-Team": "ops\nmore"}, "headers.X-Team"),
        ({"X-Team": "ops\rmore"}, "headers.X-Team"),
        ({"X-Team": "ops\x00"}, "headers.X-Team"),
        ({"X Team": "ops"}, "headers.X Team"),
        ({"X-Team:": "ops"}, "headers.X-Team:"),
        ({"": "ops"}, "headers."),
        ({"X-Team": "a", "x-team": "b"}, "headers.x-team"),
        ({"X-Team": 7}, "headers.X-Team"),
        ({"X-Team": "v" * 8193}, "headers.X-Team"),
        ({f"X-H{i}": "v" for i in range(51)}, "headers"),
        (["X-Team", "ops"], "headers"),
        ({"X-Cognigy-Route": "internal"}, "headers.X-Cognigy-Route"),
        ({"x-cognigy-webhook-source-2": "x"}, "headers.x-cognigy-webhook-source-2"),
    ],
)
def test_what_the_contract_refuses_is_refused_naming_the_header_never_the_value(
    http: httpx.Client, simulator: RunningSimulator, headers: Any, field: str
) -> None:
    response = http.post(WEBHOOKS_PATH, json=body(headers))

    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["fieldErrors"]]
    assert SECRET_VALUE not in response.text
    assert simulator.state.webhooks == {}


@pytest.mark.parametrize("name", ["Connection", "X Sig", "Content-Length"])
def test_a_signature_header_that_cannot_be_a_header_is_refused(http: httpx.Client, name: str) -> None:
    response = http.post(WEBHOOKS_PATH, json=body({}, signatureHeader=name, signatureSecret="s" * 40))

    assert response.status_code == 422
    assert "signatureHeader" in [e["field"] for e in response.json()["fieldErrors"]]


_token = st.text(
    alphabet=st.sampled_from("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    min_size=1,
    max_size=30,
)
_value = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n\x00"), max_size=60)


@settings(max_examples=200, deadline=None)
@given(user=st.dictionaries(_token, _value, max_size=8))
def test_whatever_the_models_accept_through_the_tutorials_function_the_simulator_accepts(
    user: dict[str, str],
) -> None:
    # Given user headers the tutorial's function and the library's models accept
    try:
        headers = inject_loop_prevention_headers(user)
        WebhookEndpoint(name="orders-hook", url="https://hooks.example.test/orders", headers=headers)
    except (InvalidSpec, ValueError):
        return
    if any(k.lower().startswith("x-cognigy-") and k not in TUTORIAL_HEADERS for k in headers):
        return  # a reserved name of the user's own: the one server-side rule the models leave open

    # Then the simulator's schema accepts them too
    assert validate_webhook(body(headers), partial=False) == []
