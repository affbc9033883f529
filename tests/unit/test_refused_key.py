"""A Cognigy API key refused (401) within one reconcile execution is not tried again by that
execution's next endpoints (cognigy_webhooks.reconcile.session.with_rotated_key), unless rotated."""

from __future__ import annotations

import asyncio

import pytest

from cognigy_webhooks.errors import CognigyAuthError
from cognigy_webhooks.reconcile import session
from cognigy_webhooks.reconcile.session import REFUSED_KEY_SECONDS, with_rotated_key


class Cognigy:
    """Accepts only ``accepted``; counts the requests each key made."""

    def __init__(self, accepted: str) -> None:
        self.accepted = accepted
        self.requests: list[str] = []

    async def run(self, key: str) -> str:
        self.requests.append(key)
        if key != self.accepted:
            raise CognigyAuthError("HTTP 401: the API key is not valid", status_code=401)
        return "done"


@pytest.fixture(autouse=True)
def _forget() -> None:
    session._refused.clear()


def test_a_refused_key_is_asked_once_per_execution_and_again_once_rotated() -> None:
    now = [100.0]
    secret = ["revoked-key"]
    cognigy = Cognigy(accepted="good-key")

    def attempt(scope: str) -> None:
        asyncio.run(with_rotated_key(lambda force: secret[0], cognigy.run, scope=scope, clock=lambda: now[0]))

    # the first endpoint asks Cognigy and is refused; the execution's next ones do not ask again
    for _ in range(5):
        with pytest.raises(CognigyAuthError):
            attempt("exec-1")
    assert cognigy.requests == ["revoked-key"]
    # another execution asks again (once)
    with pytest.raises(CognigyAuthError):
        attempt("exec-2")
    assert cognigy.requests == ["revoked-key", "revoked-key"]
    # once the key is rotated in the secret, the same execution asks with the new one
    secret[0] = "good-key"
    attempt("exec-1")
    assert cognigy.requests[-1] == "good-key"
    # and the memory ends after REFUSED_KEY_SECONDS
    secret[0] = "revoked-key"
    now[0] += REFUSED_KEY_SECONDS + 1
    with pytest.raises(CognigyAuthError):
        attempt("exec-1")
    assert cognigy.requests.count("revoked-key") == 3
    # never the key itself in what is remembered
    assert "revoked-key" not in repr(session._refused)


def test_without_a_scope_every_call_asks() -> None:
    cognigy = Cognigy(accepted="good-key")
    for _ in range(3):
        with pytest.raises(CognigyAuthError):
            asyncio.run(with_rotated_key(lambda force: "revoked-key", cognigy.run))
    assert cognigy.requests == ["revoked-key"] * 3
