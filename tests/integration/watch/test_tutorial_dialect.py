"""The watch in the tutorial's dialect (``/api/v2/webhooks``, ``CognigyApi=tutorial``): the same state
machine and rules, Cognigy told through that API's PATCH (``isActive``, ``url``, the fallbacks with
the primary among them while failed over), the signature secret kept."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cogwh.demo import LocalWorld
from cogwh.localstack import LocalStack
from cogwh.simulator import SimulatorConfig
from cogwh.targets import SwitchableTarget
from tests.integration.reconcile.harness import Harness, roomy_world, serve_stack, simulator_config_of
from tests.integration.watch.conftest import Watches


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    yield from roomy_world("tutorial")


@pytest.fixture(scope="module")
def simulator_config(world: LocalWorld) -> SimulatorConfig:
    return simulator_config_of(world)


@pytest.fixture(scope="module")
def stack(world: LocalWorld) -> Iterator[LocalStack]:
    yield from serve_stack(world)


def _webhook(h: Harness, name: str) -> dict[str, Any]:
    (webhook,) = h.sim.webhooks_named(name)
    return webhook


def test_the_tutorial_s_webhook_fails_over_is_deactivated_and_comes_back_with_its_secret(
    h: Harness, watches: Watches, target: SwitchableTarget, fallback: SwitchableTarget
) -> None:
    secret = "tutorial-signing-secret-0123456789abcdef"
    primary_url, fallback_url = target.url("/t"), fallback.url("/t")
    spec = {
        "name": "tut-hook",
        "url": primary_url,
        "fallbackUrls": [fallback_url],
        "signatureSecret": secret,
        "signatureHeader": "X-Cognigy-Signature",
    }
    first = h.apply([spec]).result("tut-hook")
    assert first["outcome"] == "created", first
    webhook_id = _webhook(h, "tut-hook")["id"]
    digest = h.sim.secret_digest(webhook_id)

    target.down()
    assert watches.run()["transitions"] == {"Endpoint Failed Over": 1}
    webhook = _webhook(h, "tut-hook")
    assert webhook["url"] == fallback_url
    assert webhook["fallbackUrls"] == [primary_url]
    assert webhook["isActive"] is True

    fallback.answer(410)  # the fallback now says Gone too; the primary still down
    target.up(410)
    assert watches.run()["transitions"] == {"Endpoint Deactivated": 1}
    assert _webhook(h, "tut-hook")["isActive"] is False

    target.up()
    fallback.up()
    for _ in range(3):
        last = watches.run()
    # reactivated at the primary: recovered, and back from the fallback it stood on (one PATCH)
    assert last["transitions"] == {"Endpoint Recovered": 1, "Endpoint Failed Back": 1}
    assert last["cognigyCalls"] == 1
    webhook = _webhook(h, "tut-hook")
    assert webhook["isActive"] is True
    assert webhook["url"] == primary_url  # reactivated at the primary
    assert h.sim.secret_digest(webhook_id) == digest  # every PATCH carried the same secret
    assert h.apply([spec]).result("tut-hook")["outcome"] == "unchanged"
