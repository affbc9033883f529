"""Error text a Cognigy-compatible server sends back never carries a secret the request carried.

The server here is hostile in the way real APIs are careless: its error messages and field errors quote
what it was sent, in the forms requests carry credentials (as is, URL-encoded, base64, and the
``user:password`` pair a Basic ``Authorization`` header encodes). The client must scrub every secret of
the request (the API key, the signature secret, every header value that is not public, Basic auth) in
every form, before the text reaches an exception, a log, an audit item or a tutorial result.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cognigy_webhooks import CognigyClient, WebhookEndpoint, process_registration_jobs
from cognigy_webhooks.errors import CognigyRejected, CognigyUnavailable
from cognigy_webhooks.tutorial import _failed
from cogwh.certs import LocalCA
from cogwh.servers import serve_in_thread

pytestmark = pytest.mark.anyio

API_KEY = "ck_echo_" + "k3y" * 8
SIGNATURE_SECRET = "sig-echo-secret-" + "s" * 24
PASSWORD = "pw-Echo-9f8e7d6c"
BASIC = "Basic " + base64.b64encode(f"cognigy:{PASSWORD}".encode()).decode()
HEADERS = {
    "X-Functions-Key": "fk-0a1b2c3d4e5f",
    "Ocp-Apim-Subscription-Key": "apim/9z8y+7x6w",  # URL-encoding changes it
    "Authorization": BASIC,
    "X-Team": "commerce-team",  # declared public: may be quoted
}


def _forms(value: str) -> set[str]:
    """The forms the hunt looks for (written independently of the library's own list)."""
    out = {value, quote(value, safe=""), quote_plus(value), base64.b64encode(value.encode()).decode()}
    if value.startswith("Basic "):
        pair = base64.b64decode(value[6:]).decode()
        out |= {value[6:], pair, pair.split(":", 1)[1]}
    return out


SECRETS = {
    "API key": API_KEY,
    "signature secret": SIGNATURE_SECRET,
    **{f"header {k}": v for k, v in HEADERS.items() if k != "X-Team"},
}


def _echoes(request: Request, body: dict[str, Any]) -> list[str]:
    said = [f"api key {request.headers.get('x-api-key')} is not allowed here"]
    said.append(f"signature secret {body.get('signatureSecret')!r} is weak")
    for name, value in (body.get("headers") or {}).items():
        said.append(
            f"header {name}={value} / {quote(value, safe='')} / {base64.b64encode(value.encode()).decode()}"
        )
        if value.startswith("Basic "):
            said.append(f"user {base64.b64decode(value[6:]).decode()} unknown")
    return said


def _app() -> Starlette:
    async def collection(request: Request) -> JSONResponse:
        if request.method == "GET":
            return JSONResponse({"items": [], "nextCursor": None})
        body = json.loads(await request.body())
        said = _echoes(request, body)
        return JSONResponse(
            {"message": " | ".join(said), "fieldErrors": [{"field": s, "message": s} for s in said]},
            status_code=422,
        )

    async def item(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        return JSONResponse({"message": " | ".join(_echoes(request, body))}, status_code=500)

    return Starlette(
        routes=[
            Route("/api/v2/webhooks", collection, methods=["GET", "POST"]),
            Route("/api/v2/webhooks/{id}", item, methods=["PATCH"]),
        ]
    )


@pytest.fixture
def echo_server(local_ca: LocalCA) -> Iterator[tuple[str, str]]:
    leaf = local_ca.issue("localhost", "127.0.0.1")
    with serve_in_thread(_app(), certfile=leaf.cert, keyfile=leaf.key, url_host="localhost") as served:
        yield served.base_url, str(local_ca.ca_file)


def _endpoint() -> WebhookEndpoint:
    return WebhookEndpoint.model_validate(
        {
            "name": "echoed-hook",
            "url": "https://hooks.example.com/cognigy",
            "headers": HEADERS,
            "publicHeaders": ["X-Team"],
            "signatureHeader": "X-Cognigy-Signature",
            "signatureSecret": SIGNATURE_SECRET,
        }
    )


def _assert_clean(text: str) -> None:
    for label, value in SECRETS.items():
        for form in _forms(value):
            assert form not in text, f"the {label} leaks as {form!r}"


async def test_create_rejection_text_is_scrubbed_of_every_secret_in_every_form(
    echo_server: tuple[str, str],
) -> None:
    base_url, ca = echo_server
    async with CognigyClient(API_KEY, base_url, verify=ca) as client:
        with pytest.raises(CognigyRejected) as caught:
            await client.create_webhook(_endpoint())

    text = str(caught.value) + repr(caught.value) + json.dumps(caught.value.field_errors)
    assert "is weak" in text
    assert "commerce-team" in text
    _assert_clean(text)


async def test_update_failure_text_is_scrubbed_of_every_secret_in_every_form(
    echo_server: tuple[str, str],
) -> None:
    base_url, ca = echo_server
    async with CognigyClient(API_KEY, base_url, verify=ca) as client:
        with pytest.raises(CognigyUnavailable) as caught:
            await client.update_webhook("wh_1", _endpoint())

    assert "unknown" in str(caught.value)
    _assert_clean(str(caught.value) + repr(caught.value))


async def test_the_tutorial_flows_failure_text_is_scrubbed(echo_server: tuple[str, str]) -> None:
    base_url, ca = echo_server

    (result,) = await process_registration_jobs([_endpoint()], API_KEY, base_url=base_url, verify=ca)

    assert result.status == "failed"
    assert result.error_type == "CognigyRejected"
    text = result.model_dump_json()
    assert "is weak" in text
    _assert_clean(text)


def test_the_tutorial_result_scrubs_an_unexpected_errors_text_too() -> None:
    # whatever raised, the result's text is scrubbed of the key and of the endpoint's secrets
    leaked = RuntimeError(f"boom {API_KEY} {BASIC} {quote(HEADERS['Ocp-Apim-Subscription-Key'], safe='')}")

    result = _failed("echoed-hook", leaked, [API_KEY, *HEADERS.values()])

    assert result.error_message is not None
    assert result.error_message.startswith("boom")
    _assert_clean(result.model_dump_json())
