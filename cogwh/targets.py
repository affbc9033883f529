"""Local HTTPS target servers for the demo: real TLS on 127.0.0.1 with a chosen protocol range
(a healthy TLS 1.3 server, a TLS 1.2-only one, a legacy TLS 1.1-only one), a port that is down, and
a :class:`SwitchableTarget` (the watch scene's: up, down, or answering a chosen status, on one port)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cogwh.certs import CertFiles


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 1 << 20))
        body = b'{"ok":true}'
        self.send_response(getattr(self.server, "status", 200))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_HEAD = _answer

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext, port: int = 0) -> None:
        self.context = context
        self.status = 200
        super().__init__(("127.0.0.1", port), _Handler)

    def get_request(self) -> tuple[socket.socket, object]:
        sock, addr = super().get_request()
        sock.settimeout(10)
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: object, client_address: object) -> None:  # failed handshakes are expected
        return


def server_context(
    cert: CertFiles,
    *,
    minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if minimum < ssl.TLSVersion.TLSv1_2:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 refuses TLS < 1.2 above security level 0
    with warnings.catch_warnings():  # a legacy TLS 1.0/1.1 server is the point of the demo's legacy target
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = minimum
        ctx.maximum_version = maximum
    ctx.load_cert_chain(str(cert.cert), str(cert.key))
    return ctx


@contextlib.contextmanager
def serve_https(context: ssl.SSLContext) -> Iterator[int]:
    """Serve a tiny 200-answering HTTPS app on 127.0.0.1; yields the port."""
    server = _TLSServer(context)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SwitchableTarget:
    """An HTTPS target on one fixed port of 127.0.0.1 that can go :meth:`down` (nothing listens:
    connection refused), come back :meth:`up`, or :meth:`answer` another status (410 Gone, a 503).
    Thread-safe; :meth:`close` stops it for good."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        self._lock = threading.Lock()
        self._server: _TLSServer | None = None
        self._thread: threading.Thread | None = None
        self._status = 200
        self._start(0)
        assert self._server is not None
        self.port: int = self._server.server_address[1]

    def url(self, path: str = "/", host: str = "localhost") -> str:
        return f"https://{host}:{self.port}{path}"

    def _start(self, port: int) -> None:
        server = _TLSServer(self._context, port)
        server.status = self._status
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        self._server, self._thread = server, thread

    @property
    def is_up(self) -> bool:
        return self._server is not None

    def up(self, status: int = 200, *, context: ssl.SSLContext | None = None) -> None:
        """Listen again (on the same port) answering ``status``; ``context`` shows another
        certificate from now on (a renewed, an expired one)."""
        if context is not None:
            self.down()
        with self._lock:
            self._status = status
            if context is not None:
                self._context = context
            if self._server is None:
                self._start(self.port)
            else:
                self._server.status = status

    def answer(self, status: int) -> None:
        self.up(status)

    def down(self) -> None:
        """Stop listening: a probe meets connection refused."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def close(self) -> None:
        self.down()
