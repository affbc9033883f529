"""What the commands do against a stack: the embedded local stack or a deployed one.

A *stack handle* gives boto3 clients and the template's outputs; everything here works the same on
both, so `cogwh apply --local` and `cogwh apply --stack NAME` run one code path.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from cognigy_webhooks import ops as library_ops
from cognigy_webhooks.dal.desired_sets import DesiredSetStore
from cognigy_webhooks.dal.executions import Executions
from cognigy_webhooks.dal.records import Store
from cognigy_webhooks.errors import InvalidSpec
from cognigy_webhooks.models import parse_desired_set
from cognigy_webhooks.models.records import AuditEvent, EndpointRecord


class StackHandle(Protocol):
    stack_name: str

    @property
    def outputs(self) -> dict[str, str]: ...

    def client(self, service: str) -> Any: ...


class CliError(Exception):
    """A problem the command line reports in one line (exit status 2 unless said otherwise)."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class DeployedStack:
    """A stack deployed with `sam deploy`: its outputs read from CloudFormation."""

    stack_name: str
    region: str | None = None
    _outputs: dict[str, str] = field(default_factory=dict)
    _session: Any = None

    def client(self, service: str) -> Any:
        if self._session is None:
            import boto3

            self._session = boto3.session.Session(region_name=self.region)
        return self._session.client(service)

    @property
    def outputs(self) -> dict[str, str]:
        if not self._outputs:
            try:
                resp = self.client("cloudformation").describe_stacks(StackName=self.stack_name)
            except Exception as exc:
                raise CliError(f"cannot read stack {self.stack_name!r}: {exc}") from None
            for out in resp["Stacks"][0].get("Outputs", []):
                self._outputs[out["OutputKey"]] = out["OutputValue"]
        return self._outputs


def load_desired_file(path: Path) -> dict[str, Any]:
    """Read a desired set (YAML or JSON: a list of endpoints or {endpoints: [...]}) and validate it,
    naming the field at fault."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise CliError(f"{path} is not valid YAML/JSON{where}") from None
    if isinstance(data, list):
        data = {"endpoints": data}
    if not isinstance(data, dict) or not isinstance(data.get("endpoints"), list):
        raise CliError(f"{path} must hold a list of endpoints or a mapping with 'endpoints'")
    desired: dict[str, Any] = {"endpoints": data["endpoints"]}
    if data.get("cognigy") is not None:  # Cognigy.AI's project, Flow and locale for every endpoint
        desired["cognigy"] = data["cognigy"]
    try:
        parse_desired_set(desired)
    except InvalidSpec as exc:
        raise CliError(f"{path}: {exc}") from None
    return desired


def store_secrets(stack: StackHandle, desired: dict[str, Any]) -> dict[str, Any]:
    """Move every plain secret of the desired set into Secrets Manager (signature secrets, Basic auth
    passwords, and every header value not declared in ``publicHeaders``); the set keeps only ARNs and
    ``{{resolve:secretsmanager:ARN}}`` references. What counts as secret is decided by
    :mod:`cognigy_webhooks.secrets`; the storing is :func:`cognigy_webhooks.ops.store_secrets`."""
    return library_ops.store_secrets(
        lambda: stack.client("secretsmanager"), stack_name=stack.stack_name, desired=desired
    )


@dataclass
class ApplyRun:
    execution_arn: str
    started: bool
    status: str
    summary: dict[str, Any] | None
    error: str | None = None
    cause: str | None = None


def apply(
    stack: StackHandle,
    desired: dict[str, Any],
    *,
    prune: bool = False,
    source: str = "cli",
    wait: Callable[[str], dict[str, Any]] | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> ApplyRun:
    """Store secrets, put the desired set in the config bucket (a new version), start the reconcile
    execution named after that version, and wait for it."""
    safe = store_secrets(stack, desired)
    outputs = stack.outputs
    begun = library_ops.start_reconcile(
        DesiredSetStore(stack.client("s3"), outputs["ConfigBucketName"]),
        Executions(stack.client("stepfunctions"), outputs["ReconcileStateMachineArn"]),
        source=source,
        prune=prune,
        desired=safe,
    )
    if begun is None:  # cannot happen: a desired set was just stored
        raise CliError("the desired set was stored but cannot be found", exit_code=1)
    arn, started = begun.execution_arn, begun.started
    result = (wait or (lambda a: wait_execution(stack, a, on_progress=on_progress)))(arn)
    summary = json.loads(result["output"]) if result.get("output") else None
    return ApplyRun(
        execution_arn=arn,
        started=started,
        status=result["status"],
        summary=summary,
        error=result.get("error"),
        cause=result.get("cause"),
    )


def wait_execution(
    stack: StackHandle,
    arn: str,
    *,
    timeout: float = 900.0,
    poll: float = 0.1,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Poll an execution until it ends (Step Functions offers no push to a CLI); report progress."""
    sfn = stack.client("stepfunctions")
    deadline = time.monotonic() + timeout
    seen = 0
    while True:
        desc = sfn.describe_execution(executionArn=arn)
        if on_progress is not None:
            events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
            for event in events[seen:]:
                on_progress(event)
            seen = len(events)
        if desc["status"] != "RUNNING":
            return dict(desc)
        if time.monotonic() > deadline:
            raise CliError(f"execution {arn} still running after {timeout:.0f} s", exit_code=1)
        time.sleep(poll)


def records(stack: StackHandle) -> list[EndpointRecord]:
    return _store(stack).list_records()


def audit(stack: StackHandle, name: str, limit: int = 50) -> list[AuditEvent]:
    return _store(stack).audit_for(name, limit=limit)


def _store(stack: StackHandle) -> Store:
    outputs = stack.outputs
    return Store(
        stack.client("dynamodb"),
        endpoints_table=outputs["EndpointsTableName"],
        audit_table=outputs["AuditTableName"],
    )


# --- tables for people ------------------------------------------------------------------------------


def table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    line = "  ".join(h.ljust(widths[i]) for i, h in enumerate(headers))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(row)) for row in rows]
    return "\n".join([line, sep, *body])


def summary_table(summary: dict[str, Any]) -> str:
    rows = []
    for r in summary.get("results", []):
        latency = r.get("latencyMs")
        rows.append(
            [
                str(r.get("name", "?")),
                str(r.get("outcome", "?")),
                str(r.get("tlsVersion") or "-"),
                f"{latency:.0f} ms" if isinstance(latency, int | float) else "-",
                str(r.get("reason") or "-"),
            ]
        )
    return table(rows, ["NAME", "OUTCOME", "TLS", "LATENCY", "REASON"])


def records_table(items: list[EndpointRecord]) -> str:
    rows = []
    for rec in items:
        probe = rec.last_probe
        rows.append(
            [
                rec.name,
                rec.status,
                rec.last_outcome or "-",
                rec.webhook_id or "-",
                (probe.tls_version or "-") if probe else "-",
                str(probe.cert_days_left) if probe and probe.cert_days_left is not None else "-",
                rec.last_reason or "-",
            ]
        )
    return table(rows, ["NAME", "STATUS", "LAST", "WEBHOOK ID", "TLS", "CERT DAYS", "REASON"])


def audit_table(events: list[AuditEvent]) -> str:
    rows = [
        [
            e.timestamp.strftime("%Y-%m-%d %H:%M:%S"),
            e.name,
            e.action,
            e.outcome,
            e.reason or "-",
            e.tls_version or "-",
            str(e.status_code or "-"),
            e.source or "-",
        ]
        for e in events
    ]
    return table(rows, ["TIME", "NAME", "ACTION", "OUTCOME", "REASON", "TLS", "STATUS", "SOURCE"])


# --- the stack a command talks to ---------------------------------------------------------------------

STATE_FILE_ENV = "COGWH_STATE"
DEFAULT_STATE_FILE = Path(".cogwh") / "local.json"


@dataclass
class RunningLocalStack:
    """The local stack that `cogwh up` serves (moto server mode), found through its state file."""

    stack_name: str
    endpoint_url: str
    region: str
    _outputs: dict[str, str]

    @property
    def outputs(self) -> dict[str, str]:
        return self._outputs

    def client(self, service: str) -> Any:
        import boto3

        client: Any = boto3.client
        return client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # moto's fake credentials
        )


def state_file() -> Path:
    import os

    return Path(os.environ.get(STATE_FILE_ENV) or DEFAULT_STATE_FILE)


def write_state(
    path: Path,
    *,
    stack_name: str,
    endpoint_url: str,
    region: str,
    outputs: dict[str, str],
    extra: dict[str, Any] | None = None,
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "stackName": stack_name,
        "endpointUrl": endpoint_url,
        "region": region,
        "outputs": outputs,
        **(extra or {}),
    }
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")


def running_local_stack() -> RunningLocalStack:
    path = state_file()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(f"no local stack is running (no {path}); start one with `cogwh up`") from None
    except ValueError:
        raise CliError(f"{path} is damaged; stop and restart `cogwh up`") from None
    return RunningLocalStack(doc["stackName"], doc["endpointUrl"], doc["region"], doc["outputs"])


def add_target_arguments(parser: Any) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--local", action="store_true", help="the local stack started by `cogwh up`")
    group.add_argument("--stack", metavar="NAME", help="a stack deployed with `sam deploy`")
    parser.add_argument("--region", help="AWS region of --stack (default: your AWS configuration)")


def target(args: Any) -> StackHandle:
    if getattr(args, "stack", None):
        return DeployedStack(args.stack, region=args.region)
    return running_local_stack()
