"""``cogwh export --project ID (--local | --stack NAME) [--output FILE]``: write a desired set of the
webhook Endpoints a Cognigy.AI project already holds (:mod:`cognigy_webhooks.export`), secrets left as
references to fill in, so a user starts from what exists.

Where Cognigy is: the stack's outputs ``CognigyBaseUrl``, ``CognigyApiPrefix`` and
``CognigyApiKeySecretArn`` (the API key is read from Secrets Manager with the stack's own client and
never printed). ``--local`` is the stack `cogwh up` serves, whose Cognigy is the simulator over TLS
with the local CA (its path is in the state file, ``caFile``; trusted only when the stack's
``CognigyBaseUrl`` is the state's ``simulatorUrl``, else the public roots: `cogwh up --cognigy-url`);
``--ca-bundle FILE`` overrides the CA for either target.

Only reads are sent to Cognigy (the listing pages and one read per endpoint), paced by the command
itself (``--requests-per-minute``, 120 by default in bursts of 20; the stack's Lambdas keep their
own budget) and repeated after a 429 or a 5xx as :func:`~cognigy_webhooks.export.export_project`
says.

Output: the YAML (``--json``: JSON, which ``cogwh apply`` reads too) on stdout or in ``--output FILE``
(written whole or not at all; an existing file only with ``--force``). What ``cogwh apply`` would
refuse in an endpoint is written above it as a ``# FIX`` comment and listed on stderr; the export
itself still succeeds.

Exit status: 0 exported (with or without endpoints to fix), 1 Cognigy refused or failed (401, 403,
429 past the retries, 5xx), 2 bad input (the project id, unknown project: Cognigy's 404, an output
file that exists, an unreadable --ca-bundle), 3 environment (no stack, outputs missing, the API key
secret unreadable, Cognigy unreachable).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import ssl
import sys
import tempfile
from pathlib import Path
from typing import Any

from cogwh import ops
from cogwh.commands import pem_file

EXAMPLE = """\
examples:
  cogwh export --project 65a1b2c3d4e5f60718293a4b --local --output endpoints.yaml
  cogwh export --project 65a1b2c3d4e5f60718293a4b --stack prod > endpoints.yaml

Then fill in each "<fill in: ...>", fix what each "# FIX" comment names, and apply it:
  cogwh apply endpoints.yaml --local

exit status: 0 exported, 1 Cognigy refused or failed, 2 bad input (unknown project included),
3 environment (stack, AWS, Cognigy unreachable).
"""

#: The stack outputs an export needs (template.yaml has them).
OUTPUTS = ("CognigyBaseUrl", "CognigyApiPrefix", "CognigyApiKeySecretArn")
#: The export's own pace (Cognigy's shared SaaS limit is 1000 requests per 5 minutes per IP).
DEFAULT_REQUESTS_PER_MINUTE = 120.0
BURST = 20


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 100_000:  # NaN fails too
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of requests per minute above 0")
    return value


def register(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="write a desired set of the webhook endpoints a Cognigy.AI project already holds",
        description=(
            "List every webhook Endpoint of the Cognigy.AI project ID, read each one and write a desired "
            "set `cogwh apply` takes: name, url, isActive, cognigy {flowId, localeId}, basicAuth {username, "
            "passwordArn to fill in}. Secrets are never exported. Endpoints apply would refuse (plain http, "
            "a shared name, ...) are still written, with a '# FIX' comment, and listed on stderr."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--project", required=True, metavar="ID", help="the Cognigy.AI project id (projectId)")
    p.add_argument("--output", "-o", type=Path, metavar="FILE", help="write here instead of stdout")
    p.add_argument("--force", action="store_true", help="replace --output FILE when it exists")
    p.add_argument(
        "--ca-bundle",
        metavar="FILE",
        type=pem_file,
        help="trust the CAs in this PEM file for Cognigy's API (--local uses the local CA)",
    )
    p.add_argument(
        "--requests-per-minute",
        type=_rate,
        default=DEFAULT_REQUESTS_PER_MINUTE,
        metavar="N",
        help=f"pace the reads sent to Cognigy (default {DEFAULT_REQUESTS_PER_MINUTE:g}, bursts of {BURST})",
    )
    p.add_argument("--json", action="store_true", help="write JSON instead of YAML (no comments)")
    ops.add_target_arguments(p)
    p.set_defaults(run=run)


def _local_ca_file(outputs: dict[str, str]) -> str | None:
    """The local CA the running `cogwh up` wrote in its state file (``caFile``), when the stack's
    Cognigy is its simulator: not when `cogwh up --cognigy-url` pointed the stack at another server
    (the state's ``simulatorUrl`` is then not the stack's ``CognigyBaseUrl``; that server's own CA,
    if private, is ``--ca-bundle``'s)."""
    try:
        doc = json.loads(ops.state_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict):
        return None
    simulator = doc.get("simulatorUrl")
    if isinstance(simulator, str) and simulator.rstrip("/") != outputs["CognigyBaseUrl"].rstrip("/"):
        return None
    ca = doc.get("caFile")
    return ca if isinstance(ca, str) and Path(ca).is_file() else None


def _outputs(stack: ops.StackHandle) -> dict[str, str]:
    try:
        outputs = stack.outputs
    except ops.CliError as exc:
        raise ops.CliError(str(exc), exit_code=3) from None
    except Exception as exc:  # botocore: no credentials, no network, ...
        raise ops.environment_error(exc) or ops.CliError(
            f"cannot read the stack's outputs: {type(exc).__name__}", exit_code=3
        ) from None
    missing = [name for name in OUTPUTS if not outputs.get(name)]
    if missing:
        raise ops.CliError(
            f"stack {stack.stack_name!r} has no {', '.join(missing)} output "
            "(deployed before `cogwh export` existed, or not this app's stack): redeploy it",
            exit_code=3,
        )
    return outputs


def _api_key(stack: ops.StackHandle, secret_id: str) -> str:
    from cognigy_webhooks.dal.secretsmanager import SecretResolver
    from cognigy_webhooks.errors import StoreError

    try:
        return SecretResolver(max_age=0, client=stack.client("secretsmanager")).get(secret_id)
    except StoreError as exc:
        raise ops.CliError(f"cannot read the Cognigy API key: {exc}", exit_code=3) from None
    except Exception as exc:  # botocore outside the resolver's wrapping (credentials, endpoint)
        raise ops.environment_error(exc) or ops.CliError(
            f"cannot reach Secrets Manager: {type(exc).__name__}", exit_code=3
        ) from None


def _client(args: argparse.Namespace, outputs: dict[str, str], api_key: str) -> Any:
    from cognigy_webhooks.cognigy import CognigyEndpointsClient
    from cognigy_webhooks.ratelimit import TokenBucket

    ca = args.ca_bundle or (_local_ca_file(outputs) if args.local else None)
    prefix = outputs["CognigyApiPrefix"]
    try:
        return CognigyEndpointsClient(
            api_key,
            outputs["CognigyBaseUrl"],
            prefix="" if prefix == "/" else prefix,
            verify=ca or True,
            limiter=TokenBucket(args.requests_per_minute, BURST),
        )
    except (ssl.SSLError, OSError):
        if args.ca_bundle:
            raise ops.CliError(f"--ca-bundle {args.ca_bundle!r} holds no usable PEM certificate") from None
        raise ops.CliError(f"the local CA {ca!r} holds no usable PEM certificate", exit_code=3) from None
    except ValueError as exc:  # the stack's base URL or prefix, or the key's format (never echoed)
        raise ops.CliError(f"the stack's Cognigy settings are not usable: {exc}", exit_code=3) from None


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty() and (done == total or done % 25 == 0):
        print(f"read {done}/{total} endpoints", file=sys.stderr, flush=True)


def _collect(args: argparse.Namespace) -> Any:
    from cognigy_webhooks.errors import InvalidInput
    from cognigy_webhooks.export import check_project_id, export_project

    try:
        check_project_id(args.project)
    except InvalidInput as exc:
        raise ops.CliError(f"--project: {exc.errors[0]['message']}") from None
    if args.output is not None and args.output.exists() and not args.force:
        raise ops.CliError(f"{args.output} exists: pass --force to replace it")
    try:
        stack = ops.target(args)
    except ops.CliError as exc:
        raise ops.CliError(str(exc), exit_code=3) from None
    outputs = _outputs(stack)
    if outputs.get("CognigyApi") == "tutorial":
        print(
            f"cogwh export: note: stack {stack.stack_name!r} speaks the tutorial API (CognigyApi=tutorial); "
            "the file is for the endpoints dialect",
            file=sys.stderr,
        )
    client = _client(args, outputs, _api_key(stack, outputs["CognigyApiKeySecretArn"]))

    async def work() -> Any:
        async with client:
            return await export_project(client, args.project, on_read=_progress)

    return asyncio.run(work())


def _write(path: Path, text: str) -> None:
    """``text`` into ``path`` whole or not at all (a temporary file beside it, then renamed)."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ops.CliError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ops.CliError(f"cannot write {path}: {exc.strerror}") from None


def _report(export: Any, where: str) -> None:
    from cognigy_webhooks.export import printable

    count = len(export.endpoints)
    print(
        f"exported {count} webhook endpoint{'' if count == 1 else 's'} of project {export.project_id} "
        f"to {where}",
        file=sys.stderr,
    )
    for endpoint in export.to_fix:
        for problem in endpoint.problems:
            print(
                f"  to fix: {printable(endpoint.name)} ({endpoint.id}): {printable(problem)}", file=sys.stderr
            )
    if export.vanished:
        print(f"  left out {len(export.vanished)} endpoint(s) deleted while exporting", file=sys.stderr)
    if export.placeholders:
        print(
            f'  fill in {export.placeholders} "<fill in: ...>" value(s) before `cogwh apply`', file=sys.stderr
        )


def run(args: argparse.Namespace) -> int:
    from cognigy_webhooks.errors import CognigyError, CognigyNotFound, CognigyThrottled, CognigyUnavailable

    try:
        export = _collect(args)
        try:
            text = export.to_json() if args.json else export.to_yaml()
        except ValueError as exc:  # the YAML would not read back as the desired set: write nothing
            raise ops.CliError(f"cannot write the desired set: {exc}", exit_code=1) from None
        if args.output is not None:
            _write(args.output, text)
    except ops.CliError as exc:
        print(f"cogwh export: {exc}", file=sys.stderr)
        return exc.exit_code
    except CognigyNotFound as exc:
        print(f"cogwh export: {exc}: check --project (and the stack's CognigyApiPrefix)", file=sys.stderr)
        return 2
    except CognigyUnavailable as exc:
        if exc.status_code is None:  # no answer at all: network, TLS, timeout
            print(
                f"cogwh export: cannot reach Cognigy: {exc} (check CognigyBaseUrl, the network, --ca-bundle)",
                file=sys.stderr,
            )
            return 3
        print(f"cogwh export: {exc} (nothing was changed: try again)", file=sys.stderr)
        return 1
    except CognigyError as exc:
        hint = ""
        if isinstance(exc, CognigyThrottled) and exc.retry_after is not None:
            hint = f" (try again in {exc.retry_after:g} s)"
        print(f"cogwh export: Cognigy refused: {exc}{hint}", file=sys.stderr)
        return 1
    if args.output is None:  # a closed pipe ends quietly: cogwh.cli.main
        sys.stdout.write(text)
        sys.stdout.flush()
    _report(export, str(args.output) if args.output is not None else "stdout")
    return 0
