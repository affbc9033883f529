"""``cogwh simulator``: serve the Cognigy REST API simulator (uvicorn; TLS when given a certificate)."""

from __future__ import annotations

import argparse
import os
import socket
import ssl
import sys
from pathlib import Path
from typing import Any

KEYS_ENV = "COGWH_SIMULATOR_API_KEYS"

DESCRIPTION = """\
Serve a simulator of Cognigy's REST API for webhooks: POST/GET /api/v2/webhooks and
GET/PATCH/DELETE /api/v2/webhooks/{id}, with X-API-Key auth (401), read-only keys (403 on writes),
the schema's 422 field errors, 409 on a duplicate name, a token bucket per key (429 + Retry-After)
and injectable faults. Admin routes, no key needed: GET/POST /_admin/faults (change faults live),
GET /_admin/requests (what was received, keys as fingerprints only), POST /_admin/reset.
"""

EPILOG = f"""\
API keys: --api-key and --read-only-key may be repeated. Keys given on a command line are visible
to other local users; ${KEYS_ENV} (comma-separated read-write keys) keeps them out of the
process list. The simulator prints its URL once it listens (use --port 0 for a free port).

exit status: 0 stopped, 2 bad input, 3 cannot listen (the port is taken).

example:
  cogwh simulator --port 8443 --api-key demo-key --read-only-key ro-key \\
      --tls-cert leaf.pem --tls-key leaf.key --rate-per-minute 600 --burst 10 --fault-5xx 0.05
"""


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be a fraction from 0 to 1")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError("must be a port number from 0 to 65535 (0 = any free port)")
    return int(text)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a positive number")
    return value


def _int_at_least(low: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}")
        return value

    return parse


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulator",
        help="serve a Cognigy REST API simulator (auth, rate limits, 422s, fault injection)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    net = parser.add_argument_group("listening")
    net.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    net.add_argument(
        "--port", type=_port, default=0, help="port to listen on; 0 picks a free one (default: 0)"
    )
    net.add_argument(
        "--tls-cert", type=Path, metavar="FILE", help="PEM certificate (chain) to serve TLS with"
    )
    net.add_argument("--tls-key", type=Path, metavar="FILE", help="PEM private key of --tls-cert")
    net.add_argument(
        "--delivery-ca-bundle",
        type=Path,
        metavar="FILE",
        help="PEM CA bundle the Endpoint service trusts when it delivers outputs to an endpoint's "
        "settings.webhookUrl (default: the public roots)",
    )
    keys = parser.add_argument_group("API keys")
    keys.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        help="a key with webhooks:read and webhooks:write (repeatable)",
    )
    keys.add_argument(
        "--read-only-key",
        action="append",
        default=[],
        metavar="KEY",
        help="a key with webhooks:read only: writes get 403 (repeatable)",
    )
    limits = parser.add_argument_group("rate limit (one token bucket per key)")
    limits.add_argument(
        "--rate-per-minute",
        type=_positive_float,
        default=60.0,
        metavar="N",
        help="tokens added per minute (default: %(default)g)",
    )
    limits.add_argument(
        "--burst",
        type=_int_at_least(1),
        default=10,
        metavar="B",
        help="most tokens a bucket holds; an empty bucket answers 429 + Retry-After (default: %(default)s)",
    )
    faults = parser.add_argument_group("fault injection (also live via POST /_admin/faults)")
    faults.add_argument(
        "--fault-5xx", type=_fraction, default=0.0, metavar="F", help="fraction of requests answered 5xx"
    )
    faults.add_argument(
        "--status-5xx",
        type=_int_at_least(500),
        default=503,
        metavar="CODE",
        help="the status of injected 5xx answers, 500-599 (default: %(default)s)",
    )
    faults.add_argument(
        "--fault-429",
        type=_fraction,
        default=0.0,
        metavar="F",
        help="fraction of requests answered 429 with Retry-After",
    )
    faults.add_argument(
        "--retry-after-http-date",
        action="store_true",
        help="send Retry-After as an HTTP-date instead of seconds",
    )
    faults.add_argument(
        "--fault-drop",
        type=_fraction,
        default=0.0,
        metavar="F",
        help="fraction of requests whose connection is closed with no response",
    )
    faults.add_argument(
        "--drop-after-create",
        action="store_true",
        help="create each webhook, then drop the connection (a lost create response)",
    )
    faults.add_argument(
        "--slow-ms", type=_int_at_least(0), default=0, metavar="MS", help="delay every API answer by MS ms"
    )
    faults.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="seed of the random fault draws and ids (default: %(default)s)",
    )
    parser.add_argument(
        "--allow-duplicate-names",
        action="store_true",
        help="store a second webhook with a taken name instead of answering 409",
    )
    parser.set_defaults(run=run, parser=parser)


def _check_tls(parser: argparse.ArgumentParser, cert: Path | None, key: Path | None) -> None:
    if (cert is None) != (key is None):
        parser.error("--tls-cert and --tls-key go together")
    if cert is None or key is None:
        return
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not path.is_file():
            parser.error(f"{flag}: no such file: {path}")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        parser.error(f"cannot load the TLS certificate and key: {exc.strerror or exc}")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from cogwh.simulator import Faults, SimulatorConfig, create_simulator_app

    parser: argparse.ArgumentParser = args.parser
    _check_tls(parser, args.tls_cert, args.tls_key)
    bundle = args.delivery_ca_bundle
    if bundle is not None:
        try:
            ssl.create_default_context(cafile=str(bundle))
        except (ssl.SSLError, OSError) as exc:
            parser.error(
                f"--delivery-ca-bundle: cannot load {bundle}: {getattr(exc, 'strerror', None) or exc}"
            )
    env_keys = [k.strip() for k in os.environ.get(KEYS_ENV, "").split(",") if k.strip()]
    api_keys = tuple(dict.fromkeys([*args.api_key, *env_keys]))
    if not api_keys and not args.read_only_key:
        parser.error(f"give at least one --api-key (or --read-only-key, or ${KEYS_ENV})")
    if args.status_5xx > 599:
        parser.error("--status-5xx must be from 500 to 599")
    try:
        config = SimulatorConfig(
            api_keys=api_keys,
            read_only_keys=tuple(dict.fromkeys(args.read_only_key)),
            rate_per_minute=args.rate_per_minute,
            burst=args.burst,
            faults=Faults(
                fault_5xx=args.fault_5xx,
                status_5xx=args.status_5xx,
                fault_429=args.fault_429,
                retry_after_http_date=args.retry_after_http_date,
                fault_drop=args.fault_drop,
                drop_after_create=args.drop_after_create,
                slow_ms=args.slow_ms,
            ),
            seed=args.seed,
            allow_duplicate_names=args.allow_duplicate_names,
            delivery_ca_bundle=str(bundle) if bundle is not None else None,
        )
    except ValueError as exc:  # pydantic's ValidationError is a ValueError too
        parser.error(_first_error(exc))

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP (a
    # proto of 0 leaves Nagle on, and each answer then waits ~40 ms for a delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        sock.close()
        print(
            f"cogwh simulator: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 3  # the environment (the port is taken), as for every command
    sock.listen(512)
    port = sock.getsockname()[1]
    scheme = "https" if args.tls_cert else "http"
    host = f"[{args.host}]" if family == socket.AF_INET6 else args.host
    print(
        f"cogwh simulator listening on {scheme}://{host}:{port} "
        f"({len(config.api_keys)} read-write key(s), {len(config.read_only_keys)} read-only; "
        f"{config.rate_per_minute:g} requests/min per key, burst {config.burst})",
        flush=True,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_simulator_app(config),
            ssl_certfile=str(args.tls_cert) if args.tls_cert else None,
            ssl_keyfile=str(args.tls_key) if args.tls_key else None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
    )
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0


def _first_error(exc: ValueError) -> str:
    """One line for a config error: a plain ValueError's text, or pydantic's first error."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    first = errors(include_input=False, include_url=False)[0]
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {message}" if where else message
