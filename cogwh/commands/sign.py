"""``cogwh sign``: the headers (and a curl command) for a signed test delivery of a file.

    cogwh sign --secret-env VAR [--scheme cognigy|standard] [--header NAME] [--url URL] FILE

The secret is read from the environment variable VAR (never from the command line, where shell
history and process lists would keep it) and is never printed. The signature is valid for the
receiver's tolerance (300 s by default) from now, or from ``--timestamp``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from cognigy_webhooks.signing import sign_standard_webhook, sign_webhook_payload

DEFAULT_HEADER = "X-Cognigy-Signature"
URL_PLACEHOLDER = "https://YOUR-API.execute-api.REGION.amazonaws.com/v1/deliveries/ENDPOINT-NAME"


class SignError(Exception):
    """A problem with the command's input, reported in one line (exit status 2)."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sign",
        help="print the headers and a curl command for a signed test delivery of FILE",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("file", metavar="FILE", help="the delivery body to sign ('-' reads standard input)")
    parser.add_argument(
        "--secret-env",
        required=True,
        metavar="VAR",
        help="environment variable that holds the signing secret",
    )
    parser.add_argument(
        "--scheme",
        choices=("cognigy", "standard"),
        default="cognigy",
        help="cognigy: one header '<unix seconds>,<base64 HMAC-SHA256>' (default); "
        "standard: the Standard Webhooks headers",
    )
    parser.add_argument(
        "--header",
        default=DEFAULT_HEADER,
        help=f"signature header name, cognigy scheme (default {DEFAULT_HEADER})",
    )
    parser.add_argument("--url", help="the receiver's URL, for the curl command")
    parser.add_argument(
        "--content-type", help="Content-Type (default from the file: .xml -> application/xml)"
    )
    parser.add_argument("--timestamp", type=int, help="unix seconds to sign with (default: now)")
    parser.set_defaults(run=run)


def signed_headers(
    body: bytes,
    secret: str,
    *,
    scheme: str = "cognigy",
    header: str = DEFAULT_HEADER,
    content_type: str = "application/json",
    timestamp: int | None = None,
    message_id: str | None = None,
) -> list[tuple[str, str]]:
    """The headers a signed delivery of ``body`` carries (Content-Type first)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    headers = [("Content-Type", content_type)]
    try:
        if scheme == "standard":
            msg_id = message_id or f"msg_{uuid.uuid4().hex}"
            headers += [
                ("webhook-id", msg_id),
                ("webhook-timestamp", str(stamp)),
                ("webhook-signature", sign_standard_webhook(msg_id, stamp, body, secret)),
            ]
        else:
            headers.append((header, sign_webhook_payload(body, secret, stamp)))
    except (TypeError, ValueError) as exc:  # the signing functions' messages never hold the secret
        raise SignError(f"cannot sign: {exc}") from None
    return headers


def _read_body(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise SignError(f"cannot read {path}: no such file") from None
    except IsADirectoryError:
        raise SignError(f"cannot read {path}: it is a directory") from None
    except OSError as exc:
        raise SignError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None


def _secret(var: str) -> str:
    value = os.environ.get(var)
    if value is None:
        raise SignError(f"environment variable {var} is not set (it must hold the signing secret)")
    if not value.strip():
        raise SignError(f"environment variable {var} is empty (it must hold the signing secret)")
    return value


def _header_name(value: str) -> str:
    if not value or any(c in value for c in " \t\r\n:") or not value.isascii():
        raise SignError(f"--header {value!r} is not a valid header name")
    return value


def run(args: argparse.Namespace) -> int:
    try:
        secret = _secret(args.secret_env)
        header = _header_name(args.header)
        body = _read_body(args.file)
        if args.timestamp is not None and args.timestamp < 0:
            raise SignError("--timestamp must be unix seconds (0 or more)")
        content_type = args.content_type or (
            "application/xml" if str(args.file).lower().endswith(".xml") else "application/json"
        )
        headers = signed_headers(
            body,
            secret,
            scheme=args.scheme,
            header=header,
            content_type=content_type,
            timestamp=args.timestamp,
        )
    except SignError as exc:
        print(f"cogwh sign: error: {exc}", file=sys.stderr)
        return 2
    for name, value in headers:
        print(f"{name}: {value}")
    print()
    url = args.url or URL_PLACEHOLDER
    data = "@-" if args.file == "-" else f"@{args.file}"
    parts = ["curl", "-sS", "-X", "POST", url]
    for name, value in headers:
        parts += ["-H", f"{name}: {value}"]
    parts += ["--data-binary", data]
    print(" ".join(shlex.quote(p) for p in parts))
    if args.url is None:
        print("# pass --url with your receiver's URL (see `cogwh up` or the ReceiveApiUrl stack output)")
    return 0
