"""LazyClients without a lock: racing first uses all get the one client that is kept."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from cognigy_webhooks.dal.clients import LazyClients


def test_racing_first_uses_all_get_the_client_that_is_kept() -> None:
    # Given a factory that holds every caller inside it until all of them are there (a real race)
    racers = 8
    inside = threading.Barrier(racers, timeout=10)
    made: list[object] = []

    def factory(service: str) -> object:
        inside.wait()
        client = object()
        made.append(client)
        return client

    clients = LazyClients(factory)

    # When they all ask for the same service at once
    with ThreadPoolExecutor(racers) as pool:
        got = list(pool.map(lambda _: clients.get("dynamodb"), range(racers)))

    # Then each made one, and every caller got the same, kept one
    assert len(made) == racers
    assert len({id(c) for c in got}) == 1
    assert clients.get("dynamodb") is got[0]
    assert got[0] in made


def test_a_kept_client_is_not_made_again() -> None:
    calls: list[str] = []
    clients = LazyClients(lambda service: calls.append(service) or object())
    first = clients.get("events")
    assert clients.get("events") is first
    assert calls == ["events"]
