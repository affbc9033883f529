"""A webhook of the test's own: a tiny Starlette app served over real TLS on 127.0.0.1 (uvicorn), that
records every request it gets (path, headers as sent, raw body) and answers what the test sets.

``running_receiver(local_ca)`` yields a :class:`WebhookReceiver`; ``receiver.url("/hook")`` is an https
URL for ``localhost`` (the certificate's name). ``receiver.hold()`` makes it wait, before answering,
until ``receiver.release()``: how a test shows that the simulator answered an input before delivering.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cogwh.certs import LocalCA
from cogwh.servers import serve_in_thread


@dataclass(frozen=True)
class Received:
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    @property
    def header_names(self) -> set[str]:
        return {k.lower() for k, _ in self.headers}


class WebhookReceiver:
    def __init__(self) -> None:
        self.base_url = ""
        self.status = 202
        self.answer_headers: dict[str, str] = {}
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._gate: threading.Event | None = None
        self.arrived = threading.Event()
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST", "PUT"])])

    def url(self, path: str = "/hook") -> str:
        return self.base_url + path

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def reset(self, status: int = 202, headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self._received = []
            self.status = status
            self.answer_headers = dict(headers or {})
            self._gate = None
            self.arrived.clear()

    def hold(self) -> None:
        """Keep every request waiting (after it is recorded) until :meth:`release`."""
        self._gate = threading.Event()

    def release(self) -> None:
        if self._gate is not None:
            self._gate.set()

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]]
        with self._lock:
            self._received.append(Received(request.url.path, raw, body))
        self.arrived.set()
        gate = self._gate
        if gate is not None:
            await anyio.to_thread.run_sync(gate.wait, 30)
        return Response(b'{"ok":true}', status_code=self.status, headers=self.answer_headers)


@contextlib.contextmanager
def running_receiver(local_ca: LocalCA) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    leaf = local_ca.issue("localhost", "127.0.0.1")
    with serve_in_thread(receiver.app, certfile=leaf.cert, keyfile=leaf.key, url_host="localhost") as served:
        receiver.base_url = served.base_url
        try:
            yield receiver
        finally:
            receiver.release()
