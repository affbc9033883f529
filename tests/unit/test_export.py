"""cognigy_webhooks.export without I/O: how one endpoint Cognigy answered becomes a desired-set entry
(and what apply would refuse in it), the YAML that reads back exactly, and the read retries."""

from __future__ import annotations

import random
from typing import Any

import pytest
import yaml

from cognigy_webhooks.backoff import Backoff
from cognigy_webhooks.cognigy import CognigyEndpoint
from cognigy_webhooks.errors import CognigyAuthError, CognigyThrottled, CognigyUnavailable, InvalidInput
from cognigy_webhooks.export import (
    PASSWORD_ARN_PLACEHOLDER,
    URL_PLACEHOLDER,
    Export,
    _again,
    check_project_id,
    exported_endpoint,
    printable,
)
from cognigy_webhooks.models import parse_desired_set

PROJECT = "65a1b2c3d4e5f60718293a4b"
FLOW = "3f2b7c1e-9a4d-4e8b-b6a1-0c2d3e4f5a6b"


def remote(
    name: str = "orders-hook", url: str | None = "https://hooks.example.test/orders", **extra: Any
) -> CognigyEndpoint:
    settings: dict[str, Any] = {} if url is None else {"webhookUrl": url}
    settings.update(extra.pop("settings", {}))
    body = {
        "_id": "65a1b2c3d4e5f60718293a4f",
        "name": name,
        "channel": "webhook",
        "flowId": "",
        "localeId": "",
        "active": True,
        "URLToken": "T" * 64,
        "settings": settings,
        **extra,
    }
    return CognigyEndpoint.model_validate(body)


def test_an_endpoint_becomes_the_spec_apply_takes() -> None:
    ep = exported_endpoint(remote(settings={"basicAuthUser": "cognigy"}, flowId=FLOW, active=False), PROJECT)

    assert ep.spec == {
        "name": "orders-hook",
        "url": "https://hooks.example.test/orders",
        "isActive": False,
        "basicAuth": {"username": "cognigy", "passwordArn": PASSWORD_ARN_PLACEHOLDER},
        "cognigy": {"flowId": FLOW},
    }
    assert ep.problems == ()
    assert ep.placeholders == 1


def test_empty_flow_and_locale_and_no_basic_auth_are_left_out_with_a_note() -> None:
    ep = exported_endpoint(remote(), PROJECT)

    assert ep.spec == {"name": "orders-hook", "url": "https://hooks.example.test/orders", "isActive": True}
    assert ep.problems == ()
    assert any("no Basic auth" in note for note in ep.notes)


@pytest.mark.parametrize(
    ("endpoint", "field", "wording"),
    [
        (remote(url="http://hooks.example.test/orders"), "url", "https"),
        (remote(url="ftp://hooks.example.test/orders"), "url", "https"),
        (remote(url="https://hooks.example.test/a b"), "url", "whitespace"),
        (remote(url="https://hooks.example.test/x#frag"), "url", "fragment"),
        (remote(url=None), "url", "no settings.webhookUrl"),
        (remote(name="a"), "name", ""),
        (remote(name="Orders Webhook!"), "name", ""),
        (remote(name="x" * 150), "name", ""),
        (remote(settings={"basicAuthUser": "user:with-colon"}), "basicAuth.username", ""),
        (remote(localeId="en-US"), "cognigy.localeId", ""),
    ],
)
def test_what_apply_would_refuse_is_exported_with_what_to_fix(
    endpoint: CognigyEndpoint, field: str, wording: str
) -> None:
    ep = exported_endpoint(endpoint, PROJECT)

    assert ep.spec["name"] == endpoint.name  # still exported
    assert [p for p in ep.problems if p.startswith(f"{field}: ")], ep.problems
    assert any(wording in p for p in ep.problems)
    text = Export(PROJECT, (ep,)).to_yaml()
    assert f"# FIX {field}: " in text


def test_a_missing_url_is_a_placeholder_said_once() -> None:
    ep = exported_endpoint(remote(url=None), PROJECT)

    assert ep.spec["url"] == URL_PLACEHOLDER
    assert [p for p in ep.problems if p.startswith("url: ")] == [
        "url: Cognigy holds no settings.webhookUrl for this endpoint: fill in where it delivers"
    ]
    assert ep.placeholders == 1


def test_user_info_in_a_url_is_left_out_of_the_file() -> None:
    ep = exported_endpoint(remote(url="https://bob:hunter2-in-the-url@hooks.example.test/orders"), PROJECT)

    assert ep.spec["url"] == "https://hooks.example.test/orders"
    assert "hunter2" not in Export(PROJECT, (ep,)).to_yaml()
    assert any("user-info" in p and "basicAuth" in p for p in ep.problems)


def test_a_password_without_a_user_is_flagged() -> None:
    ep = exported_endpoint(remote(settings={"basicAuthPassword": "pw-" * 12}), PROJECT)

    assert "basicAuth" not in ep.spec
    assert any(p.startswith("basicAuth: ") for p in ep.problems)


@pytest.mark.parametrize(
    "name",
    [
        "line\nbreak # and: a comment",
        "yes",
        "null",
        "- item",
        "key: value",
        "'quoted'",
        '"double"',
        "tab\there",
        "bidi\u202eevil",
        "\u2028separator",
        "#hash",
        "&anchor *alias !tag",
        "é ü 漢字",
    ],
)
def test_the_yaml_reads_back_as_the_desired_set_whatever_cognigy_holds(name: str) -> None:
    ep = exported_endpoint(remote(name=name, url=f"https://hooks.example.test/{name}"), PROJECT)
    export = Export(PROJECT, (ep, exported_endpoint(remote(name="plain-hook"), PROJECT)))

    text = export.to_yaml()

    assert yaml.safe_load(text) == export.desired_set()
    for line in text.splitlines():  # no comment line was broken by what Cognigy holds
        assert line.isprintable() or line == ""
        if line.lstrip().startswith("#"):
            assert "\n" not in line


def test_printable_escapes_what_a_terminal_would_act_on() -> None:
    assert printable("ok name") == "ok name"
    assert printable("a\x1b[31mred\n") == "a\\u001b[31mred\\u000a"
    assert printable("bidi\u202e") == "bidi\\u202e"


def test_a_filled_in_export_is_a_valid_desired_set() -> None:
    export = Export(
        PROJECT,
        (
            exported_endpoint(remote(settings={"basicAuthUser": "cognigy"}), PROJECT),
            exported_endpoint(remote(name="flow-hook", flowId=FLOW), PROJECT),
        ),
    )
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:pw"

    parsed = parse_desired_set(yaml.safe_load(export.to_yaml().replace(PASSWORD_ARN_PLACEHOLDER, arn)))

    assert [e.name for e in parsed.endpoints] == ["orders-hook", "flow-hook"]
    assert parsed.endpoints[0].basic_auth is not None
    assert parsed.endpoints[0].basic_auth.password_arn == arn
    assert all(e.cognigy is not None and e.cognigy.project_id == PROJECT for e in parsed.endpoints)
    assert parsed.endpoints[1].cognigy is not None
    assert parsed.endpoints[1].cognigy.flow_id == FLOW


def test_an_empty_project_exports_an_empty_set() -> None:
    text = Export(PROJECT, ()).to_yaml()

    assert yaml.safe_load(text) == {"cognigy": {"projectId": PROJECT}, "endpoints": []}
    assert parse_desired_set(yaml.safe_load(text)).endpoints == []


@pytest.mark.parametrize("project", ["", "a/b", "x" * 65, "../etc", "id with space", "ok\n"])
def test_a_project_id_apply_would_refuse_is_refused_first(project: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_project_id(project)
    assert caught.value.errors[0]["field"] == "projectId"


# --- the read retries ------------------------------------------------------------------------------


class Script:
    """A read that fails as scripted, then answers."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "answer"


def backoff(waits: list[float], attempts: int = 4) -> Backoff:
    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    return Backoff(max_attempts=attempts, base_delay=0.5, max_delay=30.0, sleep=sleep, rng=random.Random(1))


@pytest.mark.anyio
async def test_a_throttled_read_waits_its_retry_after_then_reads_again() -> None:
    waits: list[float] = []
    read = Script(CognigyThrottled("slow down", retry_after=7.0), CognigyUnavailable("503", status_code=503))

    assert await _again(read, backoff(waits)) == "answer"

    assert read.calls == 3
    assert waits[0] == 7.0
    assert 0.0 <= waits[1] <= 1.0  # full jitter after the 2nd failure: at most 0.5 * 2


@pytest.mark.anyio
async def test_a_retry_after_beyond_the_longest_wait_is_not_waited_out() -> None:
    waits: list[float] = []
    read = Script(CognigyThrottled("slow down", retry_after=300.0))

    with pytest.raises(CognigyThrottled):
        await _again(read, backoff(waits))
    assert waits == []


@pytest.mark.anyio
async def test_reads_give_up_after_the_attempts_and_never_retry_a_refusal() -> None:
    waits: list[float] = []
    failing = Script(*[CognigyUnavailable("503", status_code=503) for _ in range(4)])
    with pytest.raises(CognigyUnavailable):
        await _again(failing, backoff(waits, attempts=4))
    assert failing.calls == 4

    refused = Script(CognigyAuthError("bad key", status_code=401))
    with pytest.raises(CognigyAuthError):
        await _again(refused, backoff(waits))
    assert refused.calls == 1
