"""boto3 clients made on first use (the receiver's: no client is made at import).

boto3 itself is imported here at module import, where Lambda gives the cold start its full CPU, not on
the first delivery.

No lock: each client is made from a session of its own (boto3 sessions are not thread-safe; clients
are), and when two first uses race, both clients work and the first one stored is kept for good. On
Lambda one process runs one invocation at a time, so the race only happens where invocations share a
process (the local stack).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3

__all__ = ["LazyClients"]


def _own_session_client(service: str) -> Any:
    return boto3.session.Session().client(service)  # type: ignore[call-overload]


class LazyClients:
    """boto3 clients made on first use and then kept. ``factory(service) -> client`` (default: a
    client from a session of its own)."""

    def __init__(self, factory: Callable[[str], Any] | None = None) -> None:
        self._factory = factory or _own_session_client
        self._clients: dict[str, Any] = {}

    def get(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            client = self._clients.setdefault(service, self._factory(service))
        return client
