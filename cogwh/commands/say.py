"""``cogwh say NAME --user U --session S (--text T | --data JSON) (--local | --stack NAME)``: send user
input into the bot through the endpoint NAME (the way back, :func:`cognigy_webhooks.cognigy.say`).

The endpoint's record (EndpointsTable) names the Secrets Manager secret of its URLToken
(``urlTokenArn``, written when the endpoints dialect registered it); the token is read from there and
never printed. The Endpoint service is the stack's ``CognigyEndpointUrl`` output, or
``--endpoint-url``. One POST, never retried (a second send would run the flow twice).

Exit status: 0 sent (any 2xx), 1 Cognigy refused or failed (the message says whether the input may
have been taken), 2 bad input (flags, unknown endpoint, no URLToken recorded), 3 the environment (the
stack, DynamoDB or Secrets Manager cannot be read).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from cogwh import ops
from cogwh.commands import pem_file

EXAMPLE = """\
examples:
  cogwh say orders-webhook --user u-1 --session s-1 --text "where is my order?" --local
  cogwh say orders-webhook --user u-1 --session s-1 --data '{"orderId": 42}' --stack prod --json

exit status: 0 sent, 1 Cognigy refused or failed, 2 bad input, 3 environment (stack, AWS).
"""

#: The library's field names as this command's flags, for messages.
_FLAGS = {
    "userId": "--user",
    "sessionId": "--session",
    "text": "--text",
    "data": "--data",
    "endpointUrl": "--endpoint-url",
    "verify": "--ca-bundle",
}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "say",
        help="send user input into the bot through an endpoint (Cognigy's Endpoint service)",
        description=(
            "Send one user input to the webhook endpoint NAME: POST <CognigyEndpointUrl>/<URLToken> with "
            "{userId, sessionId, text?, data?}. Cognigy runs the endpoint's flow and delivers its outputs "
            "to the endpoint's webhook. The URLToken comes from Secrets Manager and is never shown. "
            "Never retried."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", metavar="NAME", help="the endpoint's name (as in the desired set)")
    p.add_argument("--user", required=True, metavar="U", help="userId (1 to 256 characters)")
    p.add_argument("--session", required=True, metavar="S", help="sessionId (1 to 256 characters)")
    p.add_argument("--text", metavar="T", help="the user's text (at most 10,000 characters)")
    p.add_argument("--data", metavar="JSON", help="a JSON object sent as the input's data")
    p.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="the Endpoint service (default: the stack's CognigyEndpointUrl output)",
    )
    p.add_argument(
        "--ca-bundle",
        metavar="FILE",
        type=pem_file,
        help="trust the CAs in this PEM file (a local Endpoint service; --local uses the local CA)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    ops.add_target_arguments(p)
    p.set_defaults(run=run)


def _data(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ops.CliError(f"--data is not valid JSON (line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise ops.CliError("--data nests too deeply") from None
    if not isinstance(value, dict):
        raise ops.CliError("--data must be a JSON object, e.g. '{\"orderId\": 42}'")
    return value


def _invalid(exc: Any) -> ops.CliError:
    errors = getattr(exc, "errors", None) or []
    parts = [f"{_FLAGS.get(e['field'], e['field'])}: {e['message']}" for e in errors]
    return ops.CliError("; ".join(parts) or str(exc))


def _local_ca_file() -> str | None:
    """The local CA the running `cogwh up` wrote in its state file (what its simulator serves with)."""
    try:
        doc = json.loads(ops.state_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ca = doc.get("caFile") if isinstance(doc, dict) else None
    return ca if isinstance(ca, str) and Path(ca).is_file() else None


def _url_token(stack: ops.StackHandle, name: str) -> str:
    from cognigy_webhooks.dal.secretsmanager import SecretResolver
    from cognigy_webhooks.errors import StoreError

    try:
        store = ops._store(stack)
    except KeyError as exc:
        raise ops.CliError(
            f"the stack has no {exc.args[0]} output: is it this app's stack?", exit_code=3
        ) from None
    try:
        record = store.get_record(name)
    except StoreError as exc:
        raise ops.CliError(f"cannot read the record of {name!r}: {exc}", exit_code=3) from None
    where = f"stack {stack.stack_name!r}"
    if record is None:
        raise ops.CliError(f"no endpoint named {name!r} is recorded in {where} (see `cogwh status`)")
    if not record.url_token_arn:
        raise ops.CliError(
            f"endpoint {name!r} has no URLToken recorded: apply it with the endpoints dialect first "
            "(CognigyApi=endpoints, `cogwh apply`)"
        )
    try:
        value = SecretResolver(max_age=0, client=stack.client("secretsmanager")).get(record.url_token_arn)
    except StoreError as exc:
        raise ops.CliError(f"cannot read the URLToken of {name!r}: {exc}", exit_code=3) from None
    return _token_of(value)


def _token_of(value: str) -> str:
    """The secret's value: the token itself, or a JSON object holding it as ``URLToken``."""
    text = value.strip()
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            return text
        if isinstance(doc, dict):
            found = doc.get("URLToken", doc.get("urlToken"))
            return found if isinstance(found, str) else text
    return text


def _send(args: argparse.Namespace) -> dict[str, Any]:
    from cognigy_webhooks.cognigy.say import say, say_body
    from cognigy_webhooks.errors import InvalidInput

    data = _data(args.data)
    try:  # the input is checked before any AWS call
        say_body(user_id=args.user, session_id=args.session, text=args.text, data=data)
    except InvalidInput as exc:
        raise _invalid(exc) from None
    stack = ops.target(args)
    try:
        outputs = stack.outputs
    except ops.CliError:
        raise
    except Exception as exc:  # botocore: no credentials, no network, ...
        raise ops.environment_error(exc) or ops.CliError(
            f"cannot read the stack's outputs: {type(exc).__name__}", exit_code=3
        ) from None
    endpoint_url = args.endpoint_url or outputs.get("CognigyEndpointUrl")
    if not endpoint_url:
        raise ops.CliError(
            "the stack has no CognigyEndpointUrl output (deployed before it existed): "
            "pass --endpoint-url or redeploy",
            exit_code=3,
        )
    try:
        token = _url_token(stack, args.name)
    except ops.CliError:
        raise
    except Exception as exc:  # botocore outside the library's wrapping (credentials, endpoint)
        raise ops.environment_error(exc) or ops.CliError(
            f"cannot reach AWS: {type(exc).__name__}", exit_code=3
        ) from None
    ca = args.ca_bundle or (_local_ca_file() if args.local else None)
    try:
        result = asyncio.run(
            say(
                endpoint_url,
                token,
                user_id=args.user,
                session_id=args.session,
                text=args.text,
                data=data,
                verify=ca or True,
            )
        )
    except InvalidInput as exc:
        if any(e.get("field") == "urlToken" for e in exc.errors):
            raise ops.CliError(
                f"the URLToken stored for {args.name!r} is not a URLToken: re-apply the endpoint",
                exit_code=3,
            ) from None
        raise _invalid(exc) from None
    return {"endpoint": args.name, **result.to_json()}


def run(args: argparse.Namespace) -> int:
    from cognigy_webhooks.errors import CognigyError, CognigyThrottled, CognigyUnavailable

    try:
        outcome = _send(args)
    except ops.CliError as exc:
        print(f"cogwh say: {exc}", file=sys.stderr)
        return exc.exit_code
    except CognigyError as exc:
        hint = ""
        if isinstance(exc, CognigyUnavailable):
            hint = (
                " (not retried: the input may have reached the bot)"
                if exc.maybe_applied
                else " (not sent: try again)"
            )
        elif isinstance(exc, CognigyThrottled) and exc.retry_after is not None:
            hint = f" (try again in {exc.retry_after:g} s)"
        print(f"cogwh say: {exc}{hint}", file=sys.stderr)
        return 1
    if args.json:  # a closed pipe ends quietly: cogwh.cli.main
        print(json.dumps(outcome, indent=2, ensure_ascii=False))
    else:
        print(
            f"sent to {outcome['endpoint']} (userId {outcome['userId']}, "
            f"sessionId {outcome['sessionId']}): HTTP {outcome['statusCode']}; "
            "the outputs go to the endpoint's webhook"
        )
    return 0
