"""`cogwh demo`: the main job on the embedded local stack, end to end, with no AWS and no Docker.

Starts the local stack (template.yaml + the real ASL on moto), the Cognigy simulator over TLS and
local HTTPS targets (TLS 1.3, TLS 1.2, a TLS 1.1-only legacy server, one that is down), applies
examples/endpoints.yaml through the real state machine, applies it again (everything unchanged),
prints the audit log, ends with the watch scene (:mod:`cogwh.demo_watch`: a target goes down, is
deactivated in Cognigy and reactivated once back), and exits 0 only when every outcome is the
expected one.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
import ssl
import string
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from cogwh import ops
from cogwh.certs import LocalCA
from cogwh.targets import closed_port, serve_https, server_context

ROOT = Path(__file__).resolve().parents[1]
API_KEY_SECRET_NAME = "cogwh-local/cognigy-api-key"
#: The Cognigy.AI project the local simulator knows (the endpoints dialect's desired sets name it).
DEMO_PROJECT_ID = "64b7f0c2a1d3e5f708192a3b"

# What the demo must see, per endpoint of examples/endpoints.yaml: first apply, then re-apply.
EXPECTED_FIRST = {
    "orders-webhook": ("created", None),
    "billing-webhook": ("created", None),
    "legacy-crm": ("failed", "probe_tls_version_unsupported"),
    "offline-analytics": ("failed", "probe_connection_refused"),
    "reserved-header-hook": ("failed", "cognigy_rejected"),
}
EXPECTED_SECOND = {
    **EXPECTED_FIRST,
    "orders-webhook": ("unchanged", None),
    "billing-webhook": ("unchanged", None),
}


@dataclass(frozen=True)
class CognigyChoice:
    """Which Cognigy the local stack talks to: the dialect (``api``), and either the simulator
    (``url`` None) or another Cognigy-compatible server at ``url`` with the API key read from an
    environment variable (``cogwh up/demo --cognigy-url URL --cognigy-api-key-env VAR
    [--cognigy-ca-bundle FILE] [--cognigy-project ID]``). The key never shows in a repr."""

    api: str = "endpoints"
    url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    ca_bundle: str | None = None
    project_id: str = DEMO_PROJECT_ID

    @classmethod
    def from_args(cls, args: Any) -> CognigyChoice:
        """From the parsed flags; :class:`cogwh.ops.CliError` (exit 2) naming the flag at fault."""
        import os

        from cognigy_webhooks.urls import url_problem

        api = getattr(args, "cognigy_api", "endpoints")
        url = getattr(args, "cognigy_url", None)
        key_env = getattr(args, "cognigy_api_key_env", None)
        bundle = getattr(args, "cognigy_ca_bundle", None)
        project = getattr(args, "cognigy_project", None) or DEMO_PROJECT_ID
        if url is None:
            if key_env or bundle:
                raise ops.CliError("--cognigy-api-key-env and --cognigy-ca-bundle go with --cognigy-url")
            return cls(api=api, project_id=project)
        problem = url_problem(url, plain_http="loopback", query=False)
        if problem is not None:
            raise ops.CliError(f"--cognigy-url {problem}")
        if not key_env:
            raise ops.CliError(
                "--cognigy-url needs --cognigy-api-key-env VAR (the variable holding the API key)"
            )
        key = os.environ.get(key_env, "")
        if not key:
            raise ops.CliError(f"--cognigy-api-key-env: the variable {key_env} is not set or empty")
        if bundle is not None and not Path(bundle).is_file():
            raise ops.CliError(f"--cognigy-ca-bundle: {bundle} is not a readable file")
        return cls(api=api, url=url.rstrip("/"), api_key=key, ca_bundle=bundle, project_id=project)

    def parameters(self) -> dict[str, str]:
        """The template parameters this choice overrides."""
        params = {"CognigyApi": self.api}
        if self.url is not None:
            params.update(CognigyBaseUrl=self.url, CognigyEndpointUrl=self.url)
            params["CognigyCaBundle"] = self.ca_bundle or ""
        return params


def add_cognigy_arguments(parser: Any) -> None:
    """The flags of :class:`CognigyChoice` (``cogwh up`` and ``cogwh demo``)."""
    parser.add_argument(
        "--cognigy-api",
        choices=("endpoints", "tutorial"),
        default="endpoints",
        help="the Cognigy API to speak: endpoints (Cognigy.AI's webhook Endpoints, default) or tutorial",
    )
    parser.add_argument(
        "--cognigy-url", metavar="URL", help="another Cognigy-compatible server instead of the simulator"
    )
    parser.add_argument(
        "--cognigy-api-key-env", metavar="VAR", help="the environment variable holding its API key"
    )
    parser.add_argument("--cognigy-ca-bundle", metavar="FILE", help="a CA bundle (PEM) to trust for it")
    parser.add_argument(
        "--cognigy-project",
        metavar="ID",
        help=f"the Cognigy project of the endpoints dialect (default: the simulator's {DEMO_PROJECT_ID})",
    )


@dataclass
class Verdict:
    case: str
    expected: str
    got: str

    @property
    def ok(self) -> bool:
        return self.expected == self.got


@dataclass
class LocalWorld:
    """Everything the local stack needs around it: CA, Cognigy simulator, targets."""

    ca: LocalCA
    simulator_url: str
    api_key: str
    ports: dict[str, int]
    simulator_state: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    cognigy_api: str = "tutorial"  # the dialect the stack speaks (CognigyApi)

    def stack_parameters(self) -> dict[str, str]:
        return {
            "CognigyApi": self.cognigy_api,
            "CognigyBaseUrl": self.simulator_url,
            "CognigyEndpointUrl": self.simulator_url,  # the simulator plays the Endpoint service too
            "CognigyApiKeySecretArn": API_KEY_SECRET_NAME,
            "AllowPrivateNetworks": "true",
            "ProbeCaBundle": str(self.ca.ca_file),
            "CognigyCaBundle": str(self.ca.ca_file),
        }


@contextlib.contextmanager
def local_world(
    *, rate_per_minute: float = 600, burst: int = 20, cognigy_api: str = "tutorial"
) -> Iterator[LocalWorld]:
    """CA, simulator (TLS; it knows the project :data:`DEMO_PROJECT_ID` and delivers trusting the CA)
    and the four demo targets, all on 127.0.0.1."""
    from cogwh.servers import serve_in_thread
    from cogwh.simulator import SimulatorConfig, create_simulator_app

    ca = LocalCA()
    api_key = "demo-" + secrets.token_urlsafe(24)
    leaf = ca.issue("localhost", "127.0.0.1")
    app = create_simulator_app(
        SimulatorConfig(
            api_keys=(api_key,),
            rate_per_minute=rate_per_minute,
            burst=burst,
            project_ids=(DEMO_PROJECT_ID,),
            delivery_ca_bundle=str(ca.ca_file),  # its Endpoint service delivers to local TLS servers
        )
    )
    with contextlib.ExitStack() as stack:
        served = stack.enter_context(serve_in_thread(app, certfile=leaf.cert, keyfile=leaf.key))
        v = ssl.TLSVersion
        ports = {
            "PORT_TLS13": stack.enter_context(serve_https(server_context(leaf, minimum=v.TLSv1_3))),
            "PORT_TLS12": stack.enter_context(serve_https(server_context(leaf, maximum=v.TLSv1_2))),
            "PORT_TLS11": stack.enter_context(
                serve_https(server_context(leaf, minimum=v.TLSv1, maximum=v.TLSv1_1))
            ),
            "PORT_DOWN": closed_port(),
        }
        try:
            yield LocalWorld(
                ca,
                served.base_url,
                api_key,
                ports,
                simulator_state=getattr(app.state, "sim", None),
                cognigy_api=cognigy_api,
            )
        finally:
            ca.close()


def render_desired(path: Path, values: dict[str, str]) -> dict[str, Any]:
    """examples/endpoints.yaml with its ${...} placeholders filled, validated."""
    text = string.Template(path.read_text(encoding="utf-8")).substitute(values)
    tmp = yaml.safe_load(text)
    doc = tmp if isinstance(tmp, dict) else {"endpoints": tmp}
    from cognigy_webhooks.models import parse_desired_set

    parse_desired_set(doc)
    return doc


def progress_printer(out: TextIO) -> Callable[[dict[str, Any]], None]:
    """One line per endpoint step (from the execution history, read by
    :func:`cognigy_webhooks.ops.step_of`: a failed probe is shown failed, never as ``ProbePassed``)."""
    from cognigy_webhooks.ops import step_of

    def show(event: dict[str, Any]) -> None:
        step = step_of(event)
        if step is not None:
            print(step.line(), file=out)

    return show


def check(
    summary: dict[str, Any] | None, expected: dict[str, tuple[str, str | None]], label: str
) -> list[Verdict]:
    got = {r["name"]: r for r in (summary or {}).get("results", [])}
    verdicts = []
    for name, (outcome, reason) in expected.items():
        r = got.get(name, {})
        want = outcome if reason is None else f"{outcome} ({reason})"
        have = (
            str(r.get("outcome", "missing")) if reason is None else f"{r.get('outcome')} ({r.get('reason')})"
        )
        verdicts.append(Verdict(f"{label}: {name}", want, have))
    return verdicts


def quiet_functions() -> None:
    """The functions' own JSON logs and EMF metrics would drown the demo's tables: keep errors only
    (the demo shows each rejection in its verdict table instead)."""
    from cognigy_webhooks.observability import logger, metrics

    logger.setLevel("ERROR")
    # Not POWERTOOLS_METRICS_DISABLED: disabled, Powertools never clears its set and prints it anyway
    # once a metric holds 100 values. Flushing clears without printing instead.
    provider = metrics.provider
    provider.flush_metrics = lambda raise_on_empty_metrics=False: provider.clear_metrics()  # type: ignore[method-assign]


def run_demo(
    out: TextIO = sys.stdout,
    *,
    time_factor: float = 1.0,
    verbose: bool = False,
    choice: CognigyChoice | None = None,
) -> int:
    """The demo of ``choice``'s dialect: Cognigy.AI's Endpoints with the round trip
    (:mod:`cogwh.demo_endpoints`), or the tutorial's signed deliveries (below)."""
    choice = choice or CognigyChoice()
    if choice.api == "endpoints":
        from cogwh.demo_endpoints import run_endpoints_demo

        return run_endpoints_demo(out, time_factor=time_factor, verbose=verbose, choice=choice)
    return run_tutorial_demo(out, time_factor=time_factor, verbose=verbose, choice=choice)


def run_tutorial_demo(
    out: TextIO = sys.stdout,
    *,
    time_factor: float = 1.0,
    verbose: bool = False,
    choice: CognigyChoice | None = None,
) -> int:
    from cogwh.demo_watch import CognigyReader, watch_scene
    from cogwh.localstack import LocalStack

    choice = choice or CognigyChoice(api="tutorial")
    if not verbose:
        quiet_functions()
    print("cogwh demo: the main job on the embedded local stack (moto; no AWS, no Docker)\n", file=out)
    with local_world() as world:
        print(f"Cognigy simulator  {world.simulator_url} (TLS)", file=out)
        for key, port in world.ports.items():
            print(f"target {key:<11} https://127.0.0.1:{port}", file=out)
        demo_secrets = {
            "orders-webhook": secrets.token_urlsafe(40),
            "billing-webhook": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
        }
        desired = render_desired(
            ROOT / "examples" / "endpoints.yaml",
            {
                **{k: str(v) for k, v in world.ports.items()},
                "DEMO_SIGNING_SECRET": demo_secrets["orders-webhook"],
                "DEMO_BILLING_SECRET": demo_secrets["billing-webhook"],
            },
        )
        parameters = {**world.stack_parameters(), **choice.parameters()}
        with LocalStack(ROOT, parameters=parameters, time_factor=time_factor) as stack:
            stack.client("secretsmanager").create_secret(
                Name=API_KEY_SECRET_NAME, SecretString=choice.api_key or world.api_key
            )
            applied = apply_twice(
                stack, desired, "examples/endpoints.yaml", EXPECTED_FIRST, EXPECTED_SECOND, out
            )
            if applied is None:
                return 1
            verdicts = applied
            verdicts += delivery_checks(stack, demo_secrets, out)
            verdicts += watch_scene(
                stack,
                leaf=world.ca.issue("localhost", "127.0.0.1"),
                reader=CognigyReader.of(
                    stack,
                    dialect="tutorial",
                    api_key=choice.api_key or world.api_key,
                    ca_file=choice.ca_bundle or world.ca.ca_file,
                ),
                cognigy_block=None,
                simulator=world.simulator_state if choice.url is None else None,
                out=out,
            )
        return print_verdicts(verdicts, out)


def apply_twice(
    stack: Any,
    desired: dict[str, Any],
    label: str,
    first: dict[str, tuple[str, str | None]],
    second: dict[str, tuple[str, str | None]],
    out: TextIO,
) -> list[Verdict] | None:
    """Apply ``desired`` through the real state machine, then again (nothing changed), showing the
    progress, the outcomes and the audit log; the verdicts against ``first`` and ``second``. None
    when an execution did not succeed (said on ``out``)."""
    verdicts: list[Verdict] = []
    for round_no, expected in ((1, first), (2, second)):
        title = f"Apply {label}" if round_no == 1 else "Apply it again (nothing changed)"
        print(f"\n== {title}", file=out)
        result = ops.apply(stack, desired, on_progress=progress_printer(out))
        if result.status != "SUCCEEDED":
            print(f"execution {result.status}: {result.error} {result.cause}", file=out)
            return None
        print("\n" + ops.summary_table(result.summary or {}), file=out)
        verdicts += check(result.summary, expected, f"apply {round_no}")
    print("\n== Audit log", file=out)
    events = sorted((e for name in first for e in ops.audit(stack, name)), key=lambda e: e.timestamp)
    print(ops.audit_table(events), file=out)
    return verdicts


def delivery_checks(stack: Any, secrets_by_name: dict[str, str], out: TextIO) -> list[Verdict]:
    """Deliver through the local gateway (the template's API routes over HTTP on 127.0.0.1) as
    Cognigy would: good deliveries, forgeries, replays, a duplicate burst, an oversized body, a loop."""
    from cogwh.deliveries import DeliveryTarget, run_delivery_checks
    from cogwh.gateway import serve_gateway

    env = stack.environment("ReceiveFunction")  # its own bounds, as the template resolved them
    with serve_gateway(stack) as served:
        print(f"\n== Deliveries through the local gateway {served.base_url}/deliveries/<name>", file=out)
        checks = run_delivery_checks(
            served.base_url,
            DeliveryTarget("orders-webhook", secrets_by_name["orders-webhook"]),
            DeliveryTarget(
                "billing-webhook",
                secrets_by_name["billing-webhook"],
                scheme="standard",
                payload_format="XML",
            ),
            max_body_bytes=int(env["MAX_BODY_BYTES"]),
            loop_max_per_window=int(env["LOOP_MAX_PER_WINDOW"]),
            loop_max_hops=int(env["LOOP_MAX_HOPS"]),
        )
    return [Verdict(f"delivery: {c.case}", str(c.expected_status), str(c.got_status)) for c in checks]


def print_verdicts(verdicts: list[Verdict], out: TextIO) -> int:
    print("\n== Verdicts", file=out)
    rows = [[v.case, v.expected, v.got, "ok" if v.ok else "MISMATCH"] for v in verdicts]
    print(ops.table(rows, ["CASE", "EXPECTED", "GOT", ""]), file=out)
    bad = [v for v in verdicts if not v.ok]
    print(f"\n{len(verdicts) - len(bad)}/{len(verdicts)} as expected", file=out)
    return 0 if not bad else 1
