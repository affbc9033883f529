"""`cogwh demo`: the main job on the embedded local stack, end to end, with no AWS and no Docker.

Starts the local stack (template.yaml + the real ASL on moto), the Cognigy simulator over TLS and
local HTTPS targets (TLS 1.3, TLS 1.2, a TLS 1.1-only legacy server, one that is down), applies
examples/endpoints.yaml through the real state machine, applies it again (everything unchanged),
prints the audit log, and exits 0 only when every outcome is the expected one.
"""

from __future__ import annotations

import contextlib
import json
import os
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

    def stack_parameters(self) -> dict[str, str]:
        return {
            "CognigyBaseUrl": self.simulator_url,
            "CognigyApiKeySecretArn": API_KEY_SECRET_NAME,
            "AllowPrivateNetworks": "true",
            "ProbeCaBundle": str(self.ca.ca_file),
            "CognigyCaBundle": str(self.ca.ca_file),
        }


@contextlib.contextmanager
def local_world(*, rate_per_minute: float = 600, burst: int = 20) -> Iterator[LocalWorld]:
    """CA, simulator (TLS) and the four demo targets, all on 127.0.0.1."""
    from cogwh.servers import serve_in_thread
    from cogwh.simulator import SimulatorConfig, create_simulator_app

    ca = LocalCA()
    api_key = "demo-" + secrets.token_urlsafe(24)
    leaf = ca.issue("localhost", "127.0.0.1")
    app = create_simulator_app(
        SimulatorConfig(api_keys=(api_key,), rate_per_minute=rate_per_minute, burst=burst)
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
                ca, served.base_url, api_key, ports, simulator_state=getattr(app.state, "sim", None)
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
    """One line per state an endpoint enters (from the execution history)."""

    def show(event: dict[str, Any]) -> None:
        details = event.get("stateEnteredEventDetails")
        if not details or details.get("name") in ("Plan", "ApplyEach", "Summarize"):
            return
        try:
            name = json.loads(details.get("input") or "{}").get("endpoint", {}).get("name", "?")
        except ValueError:
            name = "?"
        print(f"  {name:<22} -> {details['name']}", file=out)

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
    """The functions' own JSON logs and EMF metrics would drown the demo's tables: keep warnings only."""
    from cognigy_webhooks.observability import logger

    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    logger.setLevel("WARNING")


def run_demo(out: TextIO = sys.stdout, *, time_factor: float = 1.0, verbose: bool = False) -> int:
    from cogwh.localstack import LocalStack

    if not verbose:
        quiet_functions()
    print("cogwh demo: the main job on the embedded local stack (moto; no AWS, no Docker)\n", file=out)
    with local_world() as world:
        print(f"Cognigy simulator  {world.simulator_url} (TLS)", file=out)
        for key, port in world.ports.items():
            print(f"target {key:<11} https://127.0.0.1:{port}", file=out)
        desired = render_desired(
            ROOT / "examples" / "endpoints.yaml",
            {**{k: str(v) for k, v in world.ports.items()}, "DEMO_SIGNING_SECRET": secrets.token_urlsafe(40)},
        )
        with LocalStack(ROOT, parameters=world.stack_parameters(), time_factor=time_factor) as stack:
            stack.client("secretsmanager").create_secret(Name=API_KEY_SECRET_NAME, SecretString=world.api_key)
            verdicts: list[Verdict] = []
            for round_no, expected in ((1, EXPECTED_FIRST), (2, EXPECTED_SECOND)):
                title = (
                    "Apply examples/endpoints.yaml" if round_no == 1 else "Apply it again (nothing changed)"
                )
                print(f"\n== {title}", file=out)
                result = ops.apply(stack, desired, on_progress=progress_printer(out))
                if result.status != "SUCCEEDED":
                    print(f"execution {result.status}: {result.error} {result.cause}", file=out)
                    return 1
                print("\n" + ops.summary_table(result.summary or {}), file=out)
                verdicts += check(result.summary, expected, f"apply {round_no}")
            print("\n== Audit log", file=out)
            events = [e for name in EXPECTED_FIRST for e in ops.audit(stack, name)]
            events.sort(key=lambda e: e.timestamp)
            print(ops.audit_table(events), file=out)
            verdicts += extra_checks(stack, world, out)
        return print_verdicts(verdicts, out)


def extra_checks(stack: Any, world: LocalWorld, out: TextIO) -> list[Verdict]:
    """Hook for later stages of the demo (deliveries); none yet."""
    return []


def print_verdicts(verdicts: list[Verdict], out: TextIO) -> int:
    print("\n== Verdicts", file=out)
    rows = [[v.case, v.expected, v.got, "ok" if v.ok else "MISMATCH"] for v in verdicts]
    print(ops.table(rows, ["CASE", "EXPECTED", "GOT", ""]), file=out)
    bad = [v for v in verdicts if not v.ok]
    print(f"\n{len(verdicts) - len(bad)}/{len(verdicts)} as expected", file=out)
    return 0 if not bad else 1
