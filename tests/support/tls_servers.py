"""Real servers on 127.0.0.1 for the probe's tests: each runs its own asyncio loop in a
background thread, speaks raw HTTP/1.1 over a TLS context the test chooses, and records what it
received. Behaviours: answer (any status, headers, optional delay), never answer, trickle the headers
or the body, plus a TCP listener whose backlog is full (connect timeout)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import warnings
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from cogwh.certs import CertFiles

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "LocalServer"], Awaitable[None]]


def server_context(
    cert: CertFiles,
    *,
    minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
) -> ssl.SSLContext:
    """A server context limited to [minimum, maximum]. Versions below TLS 1.2 need OpenSSL's
    security level 0 (and are deprecated in Python: the warning is silenced here on purpose)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert.cert), str(cert.key))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if minimum < ssl.TLSVersion.TLSv1_2:
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = minimum
        context.maximum_version = maximum
    return context


@dataclass
class Request:
    method: str
    target: str
    headers: list[tuple[str, str]]

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


@dataclass
class LocalServer:
    handler: Handler
    ssl_context: ssl.SSLContext | None
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _stopping: asyncio.Event | None = None
    _thread: threading.Thread | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def url(self, host: str = "localhost", path: str = "/") -> str:
        return f"https://{host}:{self.port}{path}"

    @property
    def stopping(self) -> asyncio.Event:
        assert self._stopping is not None
        return self._stopping

    async def _serve(self, started: threading.Event) -> None:
        self._stopping = asyncio.Event()

        async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            self._writers.add(writer)
            try:
                await self.handler(reader, writer, self)
            except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
                pass  # the client went away, or the server is stopping
            finally:
                self._writers.discard(writer)
                self._tasks.discard(task)
                writer.close()

        server = await asyncio.start_server(
            on_connection, self.host, self.port, ssl=self.ssl_context, backlog=512
        )
        async with server:
            self.port = server.sockets[0].getsockname()[1]
            started.set()
            await self._stopping.wait()
            server.close()
            # End every connection by closing its transport (cancelling the handler tasks would make
            # asyncio's stream callback log them): handlers see EOF or the stop event and return.
            for writer in list(self._writers):
                writer.transport.abort()
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=5)

    def start(self) -> LocalServer:
        started = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            self._loop.run_until_complete(self._serve(started))

        self._thread = threading.Thread(target=run, name="test-tls-server", daemon=True)
        self._thread.start()
        if not started.wait(timeout=10):
            raise RuntimeError("test server did not start")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return
        loop.call_soon_threadsafe(self.stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
        loop.close()
        self._loop = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- behaviours -------------------------------------------------------------------------------------


async def read_request(reader: asyncio.StreamReader, server: LocalServer) -> Request:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    request = Request(method, target, headers)
    server.requests.append(request)
    return request


def answer(
    status: int = 200,
    *,
    body: bytes = b"ok",
    headers: dict[str, str] | None = None,
    delay: float = 0.0,
) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: LocalServer) -> None:
        await read_request(reader, server)
        if delay:
            await asyncio.sleep(delay)  # the behaviour under test: a slow server
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n".encode()
            + body
        )
        await writer.drain()

    return handle


def never_answer() -> Handler:
    """Accepts the connection, reads whatever comes, never writes a byte."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: LocalServer) -> None:
        while await reader.read(4096):
            pass
        await server.stopping.wait()

    return handle


def trickle(*, headers_first: bool, interval: float = 0.02) -> Handler:
    """Sends one byte every ``interval`` seconds, for ever: the status line itself
    (``headers_first=False``) or a body announced as 1 MB after complete headers."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: LocalServer) -> None:
        await read_request(reader, server)
        if headers_first:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
            await writer.drain()
        else:
            for byte in b"HTTP/1.1 200 OK\r\n":
                if server.stopping.is_set() or writer.is_closing():
                    return
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(interval)
        while not server.stopping.is_set() and not writer.is_closing():
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(interval)

    return handle


def raw(payload: bytes) -> Handler:
    """Answers any request with exactly these bytes, then hangs up."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: LocalServer) -> None:
        await read_request(reader, server)
        writer.write(payload)
        await writer.drain()

    return handle


def endless_body() -> Handler:
    """A 200 whose body never ends, sent as fast as the client reads it."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: LocalServer) -> None:
        await read_request(reader, server)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
        chunk = b"x" * 65536
        while not server.stopping.is_set() and not writer.is_closing():
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0)

    return handle


@contextlib.contextmanager
def full_backlog_port() -> Iterator[int]:
    """A port whose accept queue is full: a further SYN gets no answer, so connecting times out."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers: list[socket.socket] = []
    try:
        for _ in range(8):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A port nothing listens on (bound, never listening, so no one else takes it meanwhile)."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    try:
        yield holder.getsockname()[1]
    finally:
        holder.close()
