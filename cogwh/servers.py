"""Serve an ASGI app with uvicorn on a real socket in a background thread (tests, demo, benchmarks)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn


@dataclass(frozen=True)
class Served:
    host: str
    port: int
    scheme: str

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


@contextlib.contextmanager
def serve_in_thread(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    certfile: str | Path | None = None,
    keyfile: str | Path | None = None,
    url_host: str | None = None,
    log_level: str = "warning",
) -> Iterator[Served]:
    """Bind first (so the port is known and ready before the thread starts), then serve until exit.
    ``url_host`` names the host in ``base_url`` (e.g. ``localhost`` to match a certificate)."""
    # IPPROTO_TCP explicitly: asyncio only disables Nagle (40 ms delayed-ACK stalls) on a socket that says TCP
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    config = uvicorn.Config(
        app,
        log_level=log_level,
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
        lifespan="off",
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    started = threading.Event()

    def run() -> None:
        server.run(sockets=[sock])

    thread = threading.Thread(target=run, name=f"uvicorn:{sock.getsockname()[1]}", daemon=True)
    # uvicorn sets `started` on the server once it serves; wait on it directly, never sleep.
    original_startup = server.startup

    async def startup(sockets: Any = None) -> None:
        await original_startup(sockets=sockets)
        started.set()

    server.startup = startup
    # uvicorn polls should_exit every 0.1 s; wake its loop at once instead (tests start many servers)
    stopping: dict[str, Any] = {}

    async def main_loop() -> None:
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        stopping["wake"] = lambda: loop.call_soon_threadsafe(wake.set)
        counter = 0
        while not await server.on_tick(counter):
            counter = (counter + 1) % 864_000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), 0.1)

    server.main_loop = main_loop
    thread.start()
    if not started.wait(timeout=30):
        raise RuntimeError("uvicorn did not start within 30 s")
    try:
        yield Served(url_host or host, sock.getsockname()[1], "https" if certfile else "http")
    finally:
        server.should_exit = True
        wake = stopping.get("wake")
        if wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                wake()
        thread.join(timeout=10)
        sock.close()
