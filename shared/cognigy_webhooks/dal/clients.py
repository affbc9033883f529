"""boto3 clients made on first use, once (the receiver's: no client is made at import).

boto3 itself is imported here at module import, where Lambda gives the cold start its full CPU, not on
the first delivery.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import boto3

__all__ = ["LazyClients"]


class LazyClients:
    """boto3 clients made on first use, once, thread-safely (handlers run on threads locally).
    ``factory(service) -> client`` (default: one boto3 session's ``client``)."""

    def __init__(self, factory: Callable[[str], Any] | None = None) -> None:
        self._factory = factory
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is not None:
            return client
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                factory = self._factory
                if factory is None:
                    session = boto3.session.Session()
                    factory = self._factory = lambda name: session.client(name)  # type: ignore[call-overload]
                client = factory(service)
                self._clients[service] = client
        return client
