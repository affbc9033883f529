"""``cogwh sign``: the headers (and a curl command) for a signed test delivery of a file, or the
delivery itself sent (``--send``).

    cogwh sign --secret-env VAR [--scheme cognigy|standard] [--header NAME] [--url URL] [--send] FILE

The secret is read from the environment variable VAR (never from the command line, where shell
history and process lists would keep it) and is never printed. It must be one ``cogwh apply`` would
take (the spec's ``Secret`` rule, :data:`cognigy_webhooks.models.spec.Secret`: at least 32 bytes), so
a test delivery is never signed with a secret no endpoint can hold. The signature is valid for the
receiver's tolerance (300 s by default) from now, or from ``--timestamp``.

The printed curl command sends exactly the signed bytes: ``--data-binary @FILE`` for a file; for
standard input (``-``), which curl cannot read again, the body itself, piped in by ``printf`` (UTF-8
text) or ``base64 -d`` (anything else).

``--send`` POSTs the delivery to ``--url`` and prints the answer's status line and body. The local
gateway's certificate (``cogwh up``) is trusted through the state file's CA when the URL is that
gateway's; ``--ca-bundle FILE`` trusts another private CA.

Exit status: 0 printed (or, with ``--send``, answered 2xx); 1 answered otherwise; 2 bad input;
3 the URL cannot be reached (connection, TLS).
"""

from __future__ import annotations

import argparse
import base64
import os
import shlex
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from cognigy_webhooks.signing import sign_standard_webhook, sign_webhook_payload
from cogwh.commands import pem_file

DEFAULT_HEADER = "X-Cognigy-Signature"
URL_PLACEHOLDER = "https://YOUR-API.execute-api.REGION.amazonaws.com/v1/deliveries/ENDPOINT-NAME"


EXAMPLE = """\
examples:
  cogwh sign --secret-env SIGNING_SECRET --url https://localhost:18443/deliveries/orders-webhook body.json
  echo '{"text":"hi"}' | cogwh sign --secret-env SIGNING_SECRET --url URL -   # the curl carries the body
  cogwh sign --secret-env SIGNING_SECRET --url URL --send body.json           # POST it, print the answer

exit status: 0 printed (--send: answered 2xx), 1 answered otherwise, 2 bad input, 3 URL unreachable.
"""


class SignError(Exception):
    """A problem with the command's input, reported in one line (exit status 2)."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sign",
        help="print the headers and a curl command for a signed test delivery of FILE",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    parser.add_argument("--url", help="the receiver's URL, for the curl command (and --send)")
    parser.add_argument(
        "--send", action="store_true", help="POST the signed delivery to --url and print the answer"
    )
    parser.add_argument(
        "--ca-bundle",
        metavar="FILE",
        type=pem_file,
        help="trust the CAs in this PEM file for --url (default: the public roots; the local "
        "gateway's CA for the gateway of `cogwh up`)",
    )
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
    from pydantic import TypeAdapter, ValidationError

    from cognigy_webhooks.models.spec import Secret

    value = os.environ.get(var)
    if value is None:
        raise SignError(f"environment variable {var} is not set (it must hold the signing secret)")
    if not value.strip():
        raise SignError(f"environment variable {var} is empty (it must hold the signing secret)")
    try:  # the spec's own rule: a secret `cogwh apply` refuses is refused here too
        TypeAdapter(Secret).validate_python(value)
    except ValidationError as exc:
        reason = exc.errors(include_input=False, include_url=False)[0]["msg"].removeprefix("Value error, ")
        raise SignError(
            f"the secret in {var} {reason} (`cogwh apply` refuses it as signatureSecret too)"
        ) from None
    return value


def _header_name(value: str) -> str:
    if not value or any(c in value for c in " \t\r\n:") or not value.isascii():
        raise SignError(f"--header {value!r} is not a valid header name")
    return value


def _url(args: argparse.Namespace) -> str | None:
    from cognigy_webhooks.urls import url_problem

    if args.url is None:
        if args.send:
            raise SignError("--send needs --url (the receiver to POST the delivery to)")
        return None
    problem = url_problem(args.url, plain_http="loopback")  # http only to a local gateway
    if problem is not None:
        raise SignError(f"--url {problem}")
    return str(args.url)


def _local_gateway_ca(url: str) -> str | None:
    """The state file's CA when ``url`` is the running `cogwh up`'s gateway."""
    from cogwh import ops

    doc = ops.up_state().doc or {}
    gateway, ca = doc.get("gatewayUrl"), doc.get("caFile")
    if isinstance(gateway, str) and isinstance(ca, str) and url.startswith(gateway.rstrip("/") + "/"):
        return ca if Path(ca).is_file() else None
    return None


def curl_command(
    url: str, headers: list[tuple[str, str]], file: str, body: bytes, *, ca_bundle: str | None = None
) -> str:
    """A shell command that sends exactly ``body`` with ``headers``: from the file, or (standard
    input cannot be read twice) the body itself piped into curl."""
    parts = ["curl", "-sS", "-X", "POST", url]
    if ca_bundle:
        parts += ["--cacert", ca_bundle]
    for name, value in headers:
        parts += ["-H", f"{name}: {value}"]
    if file != "-":
        return " ".join(shlex.quote(p) for p in [*parts, "--data-binary", f"@{file}"])
    curl = " ".join(shlex.quote(p) for p in [*parts, "--data-binary", "@-"])
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and "\x00" not in text:
        return f"printf '%s' {shlex.quote(text)} | {curl}"
    return f"printf '%s' {shlex.quote(base64.b64encode(body).decode())} | base64 -d | {curl}"


def send(
    url: str, headers: list[tuple[str, str]], body: bytes, *, ca_bundle: str | None
) -> tuple[int, str, bytes]:
    """POST the delivery; (status, reason phrase, body). SendError when there is no answer."""
    import httpx

    from cognigy_webhooks.net.tls import client_ssl_context

    try:
        verify: Any = client_ssl_context(ca_bundle) if url.startswith("https:") else False
        with httpx.Client(verify=verify, timeout=30.0, follow_redirects=False) as client:
            resp = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        cause = exc.__cause__ or exc.__context__
        text = str(cause or exc) or type(exc).__name__
        hint = ""
        if "CERTIFICATE_VERIFY_FAILED" in text:
            hint = ": the certificate is not trusted: pass --ca-bundle FILE (a private CA)"
        raise SendError(f"cannot reach {url} ({type(exc).__name__}{hint})") from None
    return resp.status_code, resp.reason_phrase, resp.content


class SendError(Exception):
    """``--send`` got no answer (connection refused, TLS, timeout): exit 3."""


def run(args: argparse.Namespace) -> int:
    try:
        secret = _secret(args.secret_env)
        header = _header_name(args.header)
        url = _url(args)
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
    ca = args.ca_bundle or (_local_gateway_ca(url) if url else None)
    if args.send and url is not None:
        try:
            status, reason, answer = send(url, headers, body, ca_bundle=ca)
        except SendError as exc:
            print(f"cogwh sign: {exc}", file=sys.stderr)
            return 3
        print(f"HTTP {status} {reason}".rstrip())
        text = answer.decode("utf-8", errors="replace")
        if text:
            print(text)
        return 0 if 200 <= status < 300 else 1
    for name, value in headers:
        print(f"{name}: {value}")
    print()
    print(curl_command(url or URL_PLACEHOLDER, headers, args.file, body, ca_bundle=ca))
    if url is None:
        print("# pass --url with your receiver's URL (see `cogwh up` or the ReceiveApiUrl stack output)")
    return 0
