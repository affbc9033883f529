"""A monitoring platform for the audit sync tests: a real HTTPS server on 127.0.0.1 (a LocalCA
certificate) that records every request it gets and answers from a script.

Script entries are consumed one per request: an HTTP status (with optional headers), or ``HOLD`` (the
request waits until :meth:`MonitoringPlatform.release` - for running out of time). Without a script it
answers 200. :meth:`wait_for_events` waits on a condition variable, never by sleeping.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cogwh.certs import LocalCA
from cogwh.servers import serve_in_thread

HOLD = "hold"
#: What every audit event on the wire carries (camelCase WebhookAuditLog).
WIRE_FIELDS = frozenset(
    {
        "eventId",
        "webhookId",
        "action",
        "timestamp",
        "latencyMs",
        "successRate",
        "tlsVersion",
        "statusCode",
        "endpointUrl",
    }
)


@dataclass
class Received:
    headers: list[tuple[str, str]]
    raw_body: str
    status: int

    @property
    def body(self) -> dict[str, Any]:
        parsed = json.loads(self.raw_body)
        assert isinstance(parsed, dict)
        return parsed

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name.lower()]

    def text(self) -> str:
        """Everything the platform got in this request (headers and body), for secret checks."""
        return "\n".join(f"{k}: {v}" for k, v in self.headers) + "\n" + self.raw_body


@dataclass
class MonitoringPlatform:
    script: list[int | str | tuple[int, dict[str, str]]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    _released: threading.Event = field(default_factory=threading.Event)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    async def ingest(self, request: Request) -> Response:
        raw = (await request.body()).decode("utf-8")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        with self._changed:
            step = self.script.pop(0) if self.script else 200
        if step == HOLD:
            await anyio.to_thread.run_sync(self._released.wait, 30.0)
            step = 200
        status, extra = step if isinstance(step, tuple) else (int(step), {})
        with self._changed:
            self.received.append(Received(headers, raw, status))
            self._changed.notify_all()
        payload = {"accepted": len(json.loads(raw)["events"])} if status < 300 else {"error": "refused"}
        return JSONResponse(payload, status_code=status, headers=extra)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/ingest", self.ingest, methods=["POST"])])

    def reset(self, *script: int | str | tuple[int, dict[str, str]]) -> None:
        with self._changed:
            self.script[:] = list(script)
            self.received.clear()
            self._released.clear()

    def release(self) -> None:
        self._released.set()

    @property
    def accepted(self) -> list[dict[str, Any]]:
        """Every event of every request answered 2xx, in arrival order."""
        with self._changed:
            requests = [r for r in self.received if 200 <= r.status < 300]
        return [event for r in requests for event in r.body["events"]]

    def wait_for_events(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until ``count`` events were accepted (woken by each request), then return them all."""
        with self._changed:
            self._changed.wait_for(lambda: len(self._accepted_unlocked()) >= count, timeout=timeout)
        return self.accepted

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> int:
        """Wait until ``count`` requests were answered (a held one included); returns how many were."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.received) >= count, timeout=timeout)
            return len(self.received)

    def _accepted_unlocked(self) -> list[dict[str, Any]]:
        return [e for r in self.received if 200 <= r.status < 300 for e in json.loads(r.raw_body)["events"]]

    def everything_received(self) -> str:
        with self._changed:
            return "\n\n".join(r.text() for r in self.received)


@contextlib.contextmanager
def serve_platform(ca: LocalCA) -> Iterator[tuple[MonitoringPlatform, str]]:
    """The platform over HTTPS on 127.0.0.1 with a certificate from ``ca``; yields (platform, ingest URL)."""
    platform = MonitoringPlatform()
    leaf = ca.issue("localhost", "127.0.0.1")
    with serve_in_thread(
        platform.app(), certfile=leaf.cert, keyfile=leaf.key, url_host="localhost"
    ) as served:
        try:
            yield platform, f"{served.base_url}/ingest"
        finally:
            platform.release()
