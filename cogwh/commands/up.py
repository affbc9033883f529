"""cogwh up: serve the local stack (moto server mode) and the Cognigy simulator until interrupted.

One `up` per state file (``.cogwh/local.json``, or ``$COGWH_STATE``): a running `up` holds the lock
beside it (:class:`cogwh.ops.UpLock`) for its whole life, and a second `up` is refused (exit 3)
naming the first (pid and URLs from the state file; whether its local stack answers). A state file
left by an `up` that ended without removing it (killed: its lock is free) is said and replaced.
The state file records the `up`'s ``pid``; it is removed when the `up` has stopped (Ctrl-C,
SIGTERM, `cogwh down`), the lock dropped last, so `cogwh down` knows the `up` has finished.

The local gateway (the template's API, Cognigy's deliveries) listens on a fixed port,
:data:`GATEWAY_PORT` unless ``--gateway-port`` says otherwise (0: any free port), so a desired set
can name it as written (examples/local.yaml). ``--parameter KEY=VALUE`` (repeatable) overrides a
template parameter as ``sam deploy --parameter-overrides`` does: a key the template does not
declare, or a value its constraints refuse, is exit 2 before anything starts.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from cogwh import ops

#: The local gateway's port unless --gateway-port says otherwise (below the ephemeral range).
GATEWAY_PORT = 18443

#: Parameters `up` sets from its own flags: overriding them with --parameter would break its wiring.
OWN_PARAMETERS = {
    "CognigyApi": "--cognigy-api",
    "CognigyBaseUrl": "--cognigy-url",
    "CognigyEndpointUrl": "--cognigy-url",
    "CognigyCaBundle": "--cognigy-ca-bundle",
    "CognigyApiKeySecretArn": "--cognigy-api-key-env (up stores the key itself)",
}

EXAMPLE = f"""\
examples:
  cogwh up                                   # Ctrl-C (or `cogwh down`) stops it
  cogwh up --parameter LoopMaxPerWindow=50 --parameter AuditRetentionDays=7
  COGWH_STATE=.cogwh/second.json cogwh up --gateway-port 0   # a second stack beside the first

The local gateway listens on https://localhost:{GATEWAY_PORT} (the endpoints dialect; http for
--cognigy-api tutorial), so examples/local.yaml applies as written:
  cogwh apply examples/local.yaml --local

exit status: 0 stopped, 2 bad input (flags, --parameter), 3 environment (another `cogwh up` runs
for this state file, the gateway port is taken, the state folder cannot be written).
"""


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key.strip(), value


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError("must be a port number from 0 to 65535 (0 = any free port)")
    return int(text)


def _time_factor(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):  # NaN fails too
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of 0 or more")
    return value


def register(sub: Any) -> None:
    p = sub.add_parser(
        "up",
        help="serve the local stack and the Cognigy simulator until Ctrl-C (or `cogwh down`)",
        description="Run template.yaml on moto in server mode with the Cognigy simulator (TLS) beside it. "
        "Writes the state file (.cogwh/local.json, or $COGWH_STATE) that `--local` commands read; "
        "refuses to start over a running `up`.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--time-factor", type=_time_factor, default=1.0, help="scale Step Functions waits (1 = real time)"
    )
    p.add_argument(
        "--parameter",
        action="append",
        type=_key_value,
        default=[],
        metavar="KEY=VALUE",
        help="override a template parameter (repeatable), as sam deploy --parameter-overrides does",
    )
    p.add_argument(
        "--gateway-port",
        type=_port,
        default=GATEWAY_PORT,
        metavar="N",
        help=f"the local gateway's port (default {GATEWAY_PORT}; 0 = any free port)",
    )
    from cogwh.demo import add_cognigy_arguments

    add_cognigy_arguments(p)
    p.set_defaults(run=run)


def _gateway_tls(world: Any, api: str) -> dict[str, Any]:
    if api != "endpoints":
        return {}
    leaf = world.ca.issue("localhost", "127.0.0.1")
    return {"certfile": leaf.cert, "keyfile": leaf.key, "url_host": "localhost"}


def parameter_overrides(pairs: list[tuple[str, str]], template: Path) -> dict[str, str]:
    """``--parameter`` pairs as overrides, each key declared by ``template`` (else exit 2 naming it
    and the close ones) and not one `up` sets from its own flags. The last of a repeated key wins."""
    from cogwh.localstack.errors import LocalStackError
    from cogwh.localstack.template import load_template_file

    if not pairs:
        return {}
    try:
        declared = sorted((load_template_file(template).get("Parameters") or {}).keys())
    except LocalStackError as exc:
        raise ops.CliError(str(exc), exit_code=ops.EXIT_ENVIRONMENT) from None
    overrides: dict[str, str] = {}
    for key, value in pairs:
        if key in OWN_PARAMETERS:
            raise ops.CliError(f"--parameter {key}: set by `cogwh up` itself; use {OWN_PARAMETERS[key]}")
        if key not in declared:
            close = difflib.get_close_matches(key, declared, n=3, cutoff=0.5)
            close += [d for d in declared if d.lower() == key.lower() and d not in close]
            listed = (
                f"did you mean {' or '.join(close)}?" if close else f"the template's: {', '.join(declared)}"
            )
            raise ops.CliError(f"--parameter {key}: template.yaml declares no such parameter ({listed})")
        overrides[key] = value
    return overrides


def _check_parameters(template: Path, parameters: dict[str, str]) -> None:
    """The template's own constraints on the final values (AllowedValues, patterns, numbers): exit 2
    naming the parameter, before anything starts. A NoEcho value is never shown."""
    from cogwh.localstack.errors import LocalStackError
    from cogwh.localstack.template import load_template_file, resolve_parameters

    try:
        resolve_parameters(load_template_file(template).get("Parameters") or {}, parameters)
    except LocalStackError as exc:
        raise ops.CliError(f"--parameter {str(exc).removeprefix('Parameters.')}") from None


def _check_port(port: int) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise ops.CliError(
                f"the gateway port {port} is taken ({exc.strerror}): another `cogwh up` (with another "
                "COGWH_STATE)? pass --gateway-port N, or 0 for any free port",
                exit_code=ops.EXIT_ENVIRONMENT,
            ) from None


def refuse_if_running(path: Path) -> None:
    """Exit 3 naming the running `up` of this state file."""
    state = ops.up_state(path)
    url = (state.doc or {}).get("endpointUrl")
    answering = isinstance(url, str) and ops.endpoint_answers(url)
    how = "its local stack answers" if answering else "its local stack does not answer yet (starting?)"
    raise ops.CliError(
        f"a local stack is already running for {path}: {state.describe()}; {how}. Stop it with "
        "`cogwh down`, or start a second one with COGWH_STATE=<another file> and --gateway-port 0",
        exit_code=ops.EXIT_ENVIRONMENT,
    )


def _replace_stale(path: Path) -> None:
    """This `up` holds the lock: a state file still there was left by one that ended."""
    state = ops.up_state(path)
    if state.doc is None:
        return
    pid = f"pid {state.pid}" if state.pid is not None else "no pid recorded"
    print(
        f"cogwh up: {path} was left by a `cogwh up` that has ended ({pid}; killed?): replacing it",
        file=sys.stderr,
    )
    path.unlink(missing_ok=True)


def run(
    args: argparse.Namespace, *, ready: threading.Event | None = None, stop: threading.Event | None = None
) -> int:
    from cogwh.demo import API_KEY_SECRET_NAME, ROOT, CognigyChoice

    choice = CognigyChoice.from_args(args)
    template = ROOT / "template.yaml"
    overrides = parameter_overrides(args.parameter, template)
    if overrides:  # the values against the template's constraints, before anything starts
        _check_parameters(
            template, {"CognigyApiKeySecretArn": API_KEY_SECRET_NAME, **choice.parameters(), **overrides}
        )
    path = ops.state_file()
    lock = ops.UpLock(path)
    try:
        locked = lock.acquire()
    except OSError as exc:
        raise ops.CliError(
            f"cannot write beside {path}: {exc.strerror}", exit_code=ops.EXIT_ENVIRONMENT
        ) from None
    if not locked:
        refuse_if_running(path)
    try:
        _replace_stale(path)
        _check_port(args.gateway_port)
        return _serve(args, choice, overrides, path, ready=ready, stop=stop)
    finally:
        lock.release()  # last: `cogwh down` waits for it


def _serve(
    args: argparse.Namespace,
    choice: Any,
    overrides: dict[str, str],
    path: Path,
    *,
    ready: threading.Event | None,
    stop: threading.Event | None,
) -> int:
    from cogwh.demo import API_KEY_SECRET_NAME, ROOT, local_world
    from cogwh.gateway import serve_gateway
    from cogwh.localstack import LocalStack

    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():  # stop cleanly on SIGTERM too
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with local_world(cognigy_api=choice.api) as world:
        parameters = {**world.stack_parameters(), **choice.parameters(), **overrides}
        with (
            LocalStack(ROOT, parameters=parameters, time_factor=args.time_factor, server=True) as stack,
            # a Cognigy.AI webhookUrl must be https: for that dialect the gateway serves TLS (the local CA)
            serve_gateway(stack, port=args.gateway_port, **_gateway_tls(world, choice.api)) as gateway,
        ):
            stack.client("secretsmanager").create_secret(
                Name=API_KEY_SECRET_NAME, SecretString=choice.api_key or world.api_key
            )
            ops.write_state(
                path,
                stack_name=stack.stack_name,
                endpoint_url=stack.endpoint_url,
                region=stack.region,
                outputs=stack.outputs,
                extra={
                    "pid": os.getpid(),
                    "simulatorUrl": world.simulator_url,
                    "cognigyApi": choice.api,
                    "cognigyUrl": choice.url or world.simulator_url,
                    "cognigyProjectId": choice.project_id,
                    "gatewayUrl": gateway.base_url,
                    **gateway.state_fields(stack.outputs),  # managementApiUrl, credentials
                    "caFile": str(world.ca.ca_file),
                    "targets": world.ports,
                },
            )
            try:
                _announce(stack, world, choice, gateway, path, overrides)
                if ready is not None:
                    ready.set()
                with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: stop
                    stop.wait()
            finally:
                _remove_own(path)
    return 0


def _announce(
    stack: Any, world: Any, choice: Any, gateway: Any, path: Path, overrides: dict[str, str]
) -> None:
    print(f"local stack  {stack.endpoint_url}  (state file {path}, pid {os.getpid()})")
    print(f"simulator    {world.simulator_url}  (Endpoint service too: <url>/<URLToken>)")
    if choice.url is not None:
        print(f"cognigy      {choice.url}  ({choice.api} dialect; the simulator is not used)")
    else:
        print(f"cognigy      the simulator, {choice.api} dialect (project {choice.project_id})")
    print(f"deliveries   {gateway.base_url}/deliveries/<endpoint name>  (the template's API, local gateway)")
    for key, port in world.ports.items():
        print(f"target       {key:<11} https://localhost:{port}")
    for key, value in overrides.items():
        print(f"parameter    {key}={value}")
    print("Ctrl-C or `cogwh down` to stop.", flush=True)


def _remove_own(path: Path) -> None:
    """Remove the state file if it is still this process's (never one another `up` wrote)."""
    state = ops.up_state(path)
    if state.pid == os.getpid():
        path.unlink(missing_ok=True)
