"""Probe throughput against local TLS servers, next to a floor measured in the same run.

Starts ``--servers`` TLS 1.3 servers on 127.0.0.1 (in a child process, so that they do not share the
client's interpreter lock), then

* runs ``--probes`` probes (``probe_url`` with ``allow_private_networks``, the servers' CA as the
  bundle) at ``--concurrency`` concurrent probes, round robin over the servers;
* measures the floor: the same number of bare TLS handshakes (the same verifying TLS 1.2+ context,
  hostname checked) plus one ``GET`` each with the standard library (``asyncio`` streams, or threads
  with ``--floor threads``) at the same concurrency.

Prints both rates and ratio = floor_per_s / probes_per_s (1.0 = the probe costs nothing beyond the
handshake and the request). The last line is one JSON object.

    .venv/bin/python bench/probe_throughput.py [--probes 200] [--concurrency 20] [--servers 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import ssl
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cognigy_webhooks.net.probe import ProbePolicy, client_ssl_context, probe_url
from cogwh.certs import LocalCA

REQUEST = (
    b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: floor\r\nAccept: */*\r\nConnection: close\r\n\r\n"
)


def _serve(cert: str, key: str, count: int, ports: Any, stop: Any) -> None:
    """Child process: ``count`` TLS servers on one event loop; answers every GET with 200."""

    async def main() -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                await writer.drain()
            except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
                pass
            finally:
                writer.close()

        servers = [
            await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context, backlog=1024)
            for _ in range(count)
        ]
        for server in servers:
            ports.put(server.sockets[0].getsockname()[1])
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, stop.wait)
        for server in servers:
            server.close()

    asyncio.run(main())


async def run_probes(
    urls: list[str], probes: int, concurrency: int, policy: ProbePolicy
) -> tuple[float, int]:
    gate = asyncio.Semaphore(concurrency)
    passed = 0

    async def one(i: int) -> None:
        nonlocal passed
        async with gate:
            report = await probe_url(urls[i % len(urls)], policy)
        passed += report.passed

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(probes)))
    return time.perf_counter() - started, passed


async def floor_asyncio(
    ports: list[int], probes: int, concurrency: int, context: ssl.SSLContext, host: str
) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", ports[i % len(ports)], ssl=context, server_hostname=host
            )
            writer.write(REQUEST)
            await writer.drain()
            answer = await reader.read()
            writer.close()
            assert answer.startswith(b"HTTP/1.1 200")

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(probes)))
    return time.perf_counter() - started


def floor_threads(
    ports: list[int], probes: int, concurrency: int, context: ssl.SSLContext, host: str
) -> float:
    import socket

    def one(i: int) -> None:
        with (
            socket.create_connection(("127.0.0.1", ports[i % len(ports)])) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            tls.sendall(REQUEST)
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200")

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(probes)))
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--servers", type=int, default=4)
    parser.add_argument("--floor", choices=["asyncio", "threads"], default="asyncio")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="host in the probed URLs and the floor's server name (localhost adds a lookup per probe)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds; the best of each is kept")
    args = parser.parse_args(argv)

    ca = LocalCA()
    leaf = ca.issue("localhost", "127.0.0.1")
    spawn = multiprocessing.get_context("spawn")
    ports_q, stop = spawn.Queue(), spawn.Event()
    child = spawn.Process(target=_serve, args=(str(leaf.cert), str(leaf.key), args.servers, ports_q, stop))
    child.start()
    try:
        ports = [ports_q.get(timeout=30) for _ in range(args.servers)]
        urls = [f"https://{args.host}:{port}/" for port in ports]
        policy = ProbePolicy(allow_private_networks=True, ca_bundle=str(ca.ca_file), timeout_ms=10_000)
        context = client_ssl_context(str(ca.ca_file))  # the same verifying TLS 1.2+ context

        # warm up both paths (imports, first handshakes), then alternate measured rounds
        asyncio.run(run_probes(urls, args.concurrency, args.concurrency, policy))
        asyncio.run(floor_asyncio(ports, args.concurrency, args.concurrency, context, args.host))
        probe_times: list[float] = []
        floor_times: list[float] = []
        probe_cpu: list[float] = []
        floor_cpu: list[float] = []

        def probe_round() -> bool:
            cpu = time.process_time()
            wall, passed = asyncio.run(run_probes(urls, args.probes, args.concurrency, policy))
            probe_cpu.append(time.process_time() - cpu)
            probe_times.append(wall)
            return passed == args.probes

        def floor_round() -> None:
            cpu = time.process_time()
            if args.floor == "threads":
                floor_times.append(floor_threads(ports, args.probes, args.concurrency, context, args.host))
            else:
                floor_times.append(
                    asyncio.run(floor_asyncio(ports, args.probes, args.concurrency, context, args.host))
                )
            floor_cpu.append(time.process_time() - cpu)

        for round_no in range(args.rounds):  # alternate which goes first, keep the best of each
            if round_no % 2:
                floor_round()
            if not probe_round():
                print("a probe did not pass", file=sys.stderr)
                return 1
            if not round_no % 2:
                floor_round()
    finally:
        stop.set()
        child.join(timeout=10)
        ca.close()

    probes_per_s = args.probes / min(probe_times)
    floor_per_s = args.probes / min(floor_times)
    ratio = floor_per_s / probes_per_s
    # client CPU per probe: less sensitive than wall time to other load on the machine
    probe_cpu_ms = min(probe_cpu) / args.probes * 1000
    floor_cpu_ms = min(floor_cpu) / args.probes * 1000
    print(f"servers              {args.servers} (TLS 1.3, child process)")
    print(f"probes               {args.probes} at concurrency {args.concurrency}, best of {args.rounds}")
    print(f"probe_url            {probes_per_s:8.1f} probes/s  (rounds: {_fmt(probe_times)})")
    print(f"floor ({args.floor:7s})    {floor_per_s:8.1f} per s     (rounds: {_fmt(floor_times)})")
    print(f"ratio                {ratio:8.3f}  (target <= 1.5)")
    print(f"client cpu per probe {probe_cpu_ms:8.3f} ms probe, {floor_cpu_ms:.3f} ms floor")
    print(
        json.dumps(
            {
                "probes": args.probes,
                "concurrency": args.concurrency,
                "servers": args.servers,
                "floor": args.floor,
                "probes_per_s": round(probes_per_s, 1),
                "floor_per_s": round(floor_per_s, 1),
                "ratio": round(ratio, 3),
                "probe_cpu_ms": round(probe_cpu_ms, 3),
                "floor_cpu_ms": round(floor_cpu_ms, 3),
                "cpu_ratio": round(probe_cpu_ms / floor_cpu_ms, 3),
            }
        )
    )
    return 0


def _fmt(times: list[float]) -> str:
    return ", ".join(f"{t:.2f} s" for t in times)


if __name__ == "__main__":
    sys.exit(main())
