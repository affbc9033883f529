"""cogwh up: serve the local stack (moto server mode) and the Cognigy simulator until interrupted."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "up",
        help="serve the local stack and the Cognigy simulator until Ctrl-C",
        description="Run template.yaml on moto in server mode with the Cognigy simulator (TLS) beside it. "
        "Writes the state file (.cogwh/local.json, or $COGWH_STATE) that `--local` commands read.",
    )
    p.add_argument(
        "--time-factor", type=float, default=1.0, help="scale Step Functions waits (1 = real time)"
    )
    from cogwh.demo import add_cognigy_arguments

    add_cognigy_arguments(p)
    p.set_defaults(run=run)


def _gateway_tls(world: Any, api: str) -> dict[str, Any]:
    if api != "endpoints":
        return {}
    leaf = world.ca.issue("localhost", "127.0.0.1")
    return {"certfile": leaf.cert, "keyfile": leaf.key, "url_host": "localhost"}


def run(
    args: argparse.Namespace, *, ready: threading.Event | None = None, stop: threading.Event | None = None
) -> int:
    from cogwh import ops
    from cogwh.demo import API_KEY_SECRET_NAME, ROOT, CognigyChoice, local_world
    from cogwh.localstack import LocalStack

    try:
        choice = CognigyChoice.from_args(args)
    except ops.CliError as exc:
        print(f"cogwh up: {exc}")
        return exc.exit_code

    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():  # stop cleanly on SIGTERM too
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    path = ops.state_file()
    from cogwh.gateway import serve_gateway

    with (
        local_world(cognigy_api=choice.api) as world,
        LocalStack(
            ROOT,
            parameters={**world.stack_parameters(), **choice.parameters()},
            time_factor=args.time_factor,
            server=True,
        ) as stack,
        # a Cognigy.AI webhookUrl must be https: for that dialect the gateway serves TLS (the local CA)
        serve_gateway(stack, **_gateway_tls(world, choice.api)) as gateway,
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
                "simulatorUrl": world.simulator_url,
                "cognigyApi": choice.api,
                "cognigyUrl": choice.url or world.simulator_url,
                "cognigyProjectId": choice.project_id,
                "gatewayUrl": gateway.base_url,
                "caFile": str(world.ca.ca_file),
                "targets": world.ports,
            },
        )
        print(f"local stack  {stack.endpoint_url}  (state file {path})")
        print(f"simulator    {world.simulator_url}  (Endpoint service too: <url>/<URLToken>)")
        if choice.url is not None:
            print(f"cognigy      {choice.url}  ({choice.api} dialect; the simulator is not used)")
        else:
            print(f"cognigy      the simulator, {choice.api} dialect (project {choice.project_id})")
        print(
            f"deliveries   {gateway.base_url}/deliveries/<endpoint name>  (the template's API, local gateway)"
        )
        for key, port in world.ports.items():
            print(f"target       {key:<11} https://localhost:{port}")
        print("Ctrl-C to stop.", flush=True)
        if ready is not None:
            ready.set()
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            path.unlink(missing_ok=True)
    return 0
