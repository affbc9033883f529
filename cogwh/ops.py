"""What the commands do against a stack: the embedded local stack or a deployed one.

A *stack handle* gives boto3 clients and the template's outputs; everything here works the same on
both, so `cogwh apply --local` and `cogwh apply --stack NAME` run one code path.
"""

from __future__ import annotations

import difflib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from cognigy_webhooks import ops as library_ops
from cognigy_webhooks.dal.records import Store
from cognigy_webhooks.errors import InvalidSpec
from cognigy_webhooks.models import parse_desired_set
from cognigy_webhooks.models.records import AuditEvent, EndpointRecord
from cognigy_webhooks.ops import StackAccess


class StackHandle(Protocol):
    stack_name: str

    @property
    def outputs(self) -> dict[str, str]: ...

    def client(self, service: str) -> Any: ...


class CliError(Exception):
    """A problem the command line reports in one line. ``exit_code``: 2 bad input (the default),
    3 the environment (no stack, no credentials, unreachable), 1 the work failed."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


#: The exit statuses every command uses (the README's table lists them per command).
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_ENVIRONMENT = 0, 1, 2, 3


class StackOutputs(dict[str, str]):
    """A stack's outputs: reading one the stack lacks is a :class:`CliError` (exit 3) naming it, not
    a KeyError (a stack deployed before that output existed, or another app's stack)."""

    def __init__(self, stack_name: str, outputs: dict[str, str]) -> None:
        super().__init__(outputs)
        self.stack_name = stack_name

    def __missing__(self, key: str) -> str:
        raise CliError(
            f"stack {self.stack_name!r} has no {key} output: is it this app's stack "
            "(deployed from this template.yaml, up to date)?",
            exit_code=EXIT_ENVIRONMENT,
        )


def environment_error(exc: BaseException, *, stack_name: str | None = None) -> CliError | None:
    """The one-line :class:`CliError` (exit 3) for an AWS failure that is the environment's: no
    credentials or region, AWS unreachable, a stack that does not exist, access denied. None for
    anything else. The message keeps AWS's error code and message, never a parameter's value."""
    from botocore import exceptions as bx

    from cognigy_webhooks.errors import aws_error_code, describe_aws_error

    which = f"stack {stack_name!r}" if stack_name else "AWS"
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError | bx.CredentialRetrievalError):
        return CliError(
            f"no AWS credentials for {which}: configure them (aws configure, AWS_PROFILE, "
            "or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), or use --local",
            exit_code=EXIT_ENVIRONMENT,
        )
    if isinstance(exc, bx.ProfileNotFound):
        return CliError(f"{exc}: check AWS_PROFILE", exit_code=EXIT_ENVIRONMENT)
    if isinstance(exc, bx.NoRegionError):
        return CliError(
            "no AWS region: pass --region or set AWS_REGION (or aws configure)", exit_code=EXIT_ENVIRONMENT
        )
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ReadTimeoutError):
        url = getattr(exc, "kwargs", {}).get("endpoint_url") or "AWS"
        return CliError(
            f"cannot reach {url} ({type(exc).__name__}): check the network, --region, AWS_ENDPOINT_URL",
            exit_code=EXIT_ENVIRONMENT,
        )
    if isinstance(exc, bx.HTTPClientError):
        return CliError(f"cannot reach AWS ({type(exc).__name__})", exit_code=EXIT_ENVIRONMENT)
    if isinstance(exc, bx.ClientError):
        code = aws_error_code(exc)
        text = describe_aws_error(exc)
        if stack_name and code == "ValidationError" and "does not exist" in text:
            return CliError(
                f"no stack named {stack_name!r} in this account and region: check --stack and --region "
                "(sam deploy creates it)",
                exit_code=EXIT_ENVIRONMENT,
            )
        return CliError(f"AWS refused ({which}): {text}", exit_code=EXIT_ENVIRONMENT)
    return None


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
                mapped = environment_error(exc, stack_name=self.stack_name)
                if mapped is None:
                    raise
                raise mapped from None
            found = {o["OutputKey"]: o["OutputValue"] for o in resp["Stacks"][0].get("Outputs", [])}
            self._outputs = StackOutputs(self.stack_name, found)
        return self._outputs


def load_desired_file(path: Path) -> dict[str, Any]:
    """Read a desired set (YAML or JSON: a list of endpoints or {endpoints: [...], cognigy: {...}})
    and validate it. Every refusal is a :class:`CliError` (exit 2) naming the place at fault: the
    line and column of a syntax error, the endpoint by its name and the field
    (``endpoints[orders-webhook].timeoutMs``), an unknown field with the nearest known one. A
    message never quotes the file's text (it may hold a password)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise CliError(f"{path} is not UTF-8 text (line {line}, byte {exc.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        said = f": {problem}" if problem else ""
        raise CliError(f"{path} is not valid YAML/JSON{where}{said}") from None
    except RecursionError:
        raise CliError(f"{path} nests too deeply") from None
    if isinstance(data, list):
        data = {"endpoints": data}
    if not isinstance(data, dict) or not isinstance(data.get("endpoints"), list):
        hint = ""
        if isinstance(data, dict) and "endpoints" not in data:
            near = difflib.get_close_matches("endpoints", [str(k) for k in data], n=1, cutoff=0.6)
            hint = f" (found {near[0]!r}: did you mean endpoints?)" if near else ""
        raise CliError(f"{path} must hold a list of endpoints or a mapping with 'endpoints'{hint}")
    try:
        parse_desired_set(data)  # the whole mapping: an unknown top-level key is named too
    except InvalidSpec as exc:
        raise CliError(f"{path}: {exc}") from None
    desired: dict[str, Any] = {"endpoints": data["endpoints"]}
    if data.get("cognigy") is not None:  # Cognigy.AI's project, Flow and locale for every endpoint
        desired["cognigy"] = data["cognigy"]
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


def stack_access(stack: StackHandle) -> StackAccess:
    """The library's view of a stack (its outputs and clients), which every operation takes."""
    return StackAccess.from_outputs(stack.client, stack.outputs, stack_name=stack.stack_name)


def apply(
    stack: StackHandle,
    desired: dict[str, Any],
    *,
    prune: bool = False,
    source: str = "cli",
    wait: Callable[[str], dict[str, Any]] | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> ApplyRun:
    """Start the reconcile of ``desired`` (:func:`cognigy_webhooks.ops.start_execution`: its
    secrets stored in Secrets Manager, the set put in the config bucket as a new version, the
    execution named after that version) and wait for it. The set is not checked again here (the
    command line reads files through :func:`load_desired_file`; the reconcile's tests hand bad
    endpoints on purpose, for the reconcile to report each)."""
    begun = library_ops.start_execution(stack_access(stack), desired, prune=prune, source=source, check=False)
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
    """Poll an execution until it ends (Step Functions offers no push to a CLI), handing each new
    history event to ``on_progress`` once (every page of the history, not only the first);
    ``describe_execution``'s answer at the end."""
    from cogwh.follow import history_since

    access = stack_access(stack)
    deadline = time.monotonic() + timeout
    cursor: dict[str, Any] = {}
    while True:
        status = access.executions.describe(arn)
        if on_progress is not None:
            for event in history_since(access, arn, cursor):
                on_progress(event)
        if status.status != "RUNNING":
            return {
                "executionArn": arn,
                "status": status.status,
                "output": status.output,
                "error": status.error,
                "cause": status.cause,
            }
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
    """One row per endpoint: its outcome and the reason that matters (for ``cognigy_rejected`` the
    field Cognigy named, for a probe what it found); then a hint for each endpoint stuck where a
    flag or a parameter is the way on (:func:`hint_for`)."""
    rows = []
    hints = []
    for r in summary.get("results", []):
        latency = r.get("latencyMs")
        rows.append(
            [
                str(r.get("name", "?")),
                str(r.get("outcome", "?")),
                str(r.get("tlsVersion") or "-"),
                f"{latency:.0f} ms" if isinstance(latency, int | float) else "-",
                reason_text(r.get("reason"), r.get("detail")),
            ]
        )
        hint = hint_for(r.get("reason"), r.get("detail"))
        if hint is not None:
            hints.append(f"  {r.get('name', '?')}: {hint}")
    text = table(rows, ["NAME", "OUTCOME", "TLS", "LATENCY", "REASON"])
    return "\n".join([text, "hints:", *hints]) if hints else text


def reason_text(reason: str | None, detail: str | None) -> str:
    """``reason: detail`` when the detail says more than the reason (``cognigy_rejected: url: must
    be reachable``, ``probe_certificate_invalid: untrusted``); the detail alone for an outcome with
    no reason (a note such as a repaired drift); ``-`` when neither."""
    if not reason:
        return detail or "-"
    if not detail or detail == reason or reason.endswith(detail):
        return reason
    return f"{reason}: {detail}"


#: Where a user is stuck on a probe, and the way on: a flag of `cogwh probe`, a local stack's parameter.
_PRIVATE_HINT = (
    "a private or loopback address, which the probe refuses: for a local target, "
    "`cogwh probe URL --allow-private-networks`, and the local stack's AllowPrivateNetworks=true "
    "(`cogwh up` sets it; never on AWS: Cognigy cannot reach a private address either)"
)
_UNTRUSTED_HINT = (
    "the certificate is not signed by a public root: check it with `cogwh probe URL --ca-bundle FILE`; "
    "a local stack trusts a private CA through its ProbeCaBundle parameter (Cognigy itself trusts "
    "public roots only)"
)


def hint_for(reason: str | None, detail: str | None) -> str | None:
    """The next step for a failure a flag or a parameter gets past, else None."""
    if reason == "probe_blocked_address":
        return _PRIVATE_HINT
    if reason == "probe_certificate_invalid" and detail == "untrusted":
        return _UNTRUSTED_HINT
    return None


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
    # it may hold the local gateway's credentials: readable by its owner only
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(json.dumps(doc, indent=2))
    path.chmod(0o600)  # a file left by an earlier run keeps its mode otherwise


def running_local_stack() -> RunningLocalStack:
    """The stack of the state file, while its `cogwh up` runs; a :class:`CliError` (exit 3) when
    there is none, the file is damaged, or it was left by an `up` that has ended (killed)."""
    state = up_state()
    doc = state.doc
    if doc is None:
        raise CliError(
            f"no local stack is running (no {state.path}); start one with `cogwh up`",
            exit_code=EXIT_ENVIRONMENT,
        )
    if state.stale:
        raise CliError(
            f"no local stack is running: {state.path} was left by a `cogwh up` that has ended "
            f"(pid {state.pid}, killed?); start one with `cogwh up`",
            exit_code=EXIT_ENVIRONMENT,
        )
    try:
        return RunningLocalStack(
            doc["stackName"],
            doc["endpointUrl"],
            doc["region"],
            StackOutputs(doc["stackName"], dict(doc["outputs"])),
        )
    except (KeyError, TypeError, ValueError):
        raise CliError(
            f"{state.path} is damaged; stop and restart `cogwh up`", exit_code=EXIT_ENVIRONMENT
        ) from None


# --- the running `cogwh up`: its lock and its state file --------------------------------------------


def lock_file(state: Path) -> Path:
    """The lock a running `cogwh up` holds beside its state file."""
    return state.with_name(f"{state.name}.lock")


class UpLock:
    """Held by a running `cogwh up` for its whole life: an exclusive ``flock`` on
    ``<state file>.lock`` (which holds its pid). The kernel drops the lock when the process ends,
    however it ends (SIGKILL included), so a free lock means exactly "no `cogwh up` of this state
    file is alive", whatever the state file says: a pid reused by another program or a zombie does
    not look alive, and two `up` started at once cannot both win."""

    def __init__(self, state: Path) -> None:
        self.path = lock_file(state)
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock (and write this process's pid in it); False when another process holds it.
        OSError when the folder cannot be written."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if not _flock(fd):
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing drops the lock


def _flock(fd: int) -> bool:
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def up_running(state: Path) -> bool:
    """Whether a `cogwh up` of this state file is alive (its lock is held). Looks without waiting:
    the lock is taken and dropped at once when free."""
    try:
        fd = os.open(lock_file(state), os.O_RDWR)
    except OSError:  # no lock file: no `up` ever ran here (or it cannot be read: none to signal)
        return False
    try:
        return not _flock(fd)
    finally:
        os.close(fd)  # drops it when this look took it


@dataclass(frozen=True)
class UpState:
    """What the state file says and whether its `cogwh up` runs. ``doc`` None: no (readable) file."""

    path: Path
    doc: dict[str, Any] | None
    running: bool
    lock_pid: int | None = None  # what the lock file says (an `up` still starting has no state file)

    @property
    def pid(self) -> int | None:
        pid = (self.doc or {}).get("pid")
        return pid if isinstance(pid, int) and not isinstance(pid, bool) else None

    @property
    def stale(self) -> bool:
        """Left behind by an `up` that ended without removing it (its pid recorded, its lock free).
        A state file without a pid (written by a tool of its own) is taken as it is."""
        return self.doc is not None and self.pid is not None and not self.running

    def describe(self) -> str:
        """``pid N, local stack URL, gateway URL, ...`` as far as the state file says."""
        doc = self.doc or {}
        pid = self.pid if self.pid is not None else self.lock_pid
        parts = [f"pid {pid}" if pid is not None else "pid unknown"]
        for key, label in (
            ("endpointUrl", "local stack"),
            ("gatewayUrl", "gateway"),
            ("managementApiUrl", "management API"),
            ("simulatorUrl", "simulator"),
        ):
            if isinstance(doc.get(key), str):
                parts.append(f"{label} {doc[key]}")
        return ", ".join(parts)


def up_state(path: Path | None = None) -> UpState:
    path = path or state_file()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        doc = None
    except (OSError, ValueError):
        doc = {}  # there, but unreadable: damaged
    if doc is not None and not isinstance(doc, dict):
        doc = {}
    try:
        text = lock_file(path).read_text(encoding="ascii").strip()
        lock_pid = int(text) if text.isdigit() else None
    except (OSError, ValueError):
        lock_pid = None
    return UpState(path, doc, up_running(path), lock_pid)


def endpoint_answers(url: str, *, timeout: float = 2.0) -> bool:
    """Whether anything answers HTTP at ``url`` (any status counts: it is alive)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout):  # noqa: S310 (a local http URL of the state file)
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def add_target_arguments(parser: Any) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--local", action="store_true", help="the local stack started by `cogwh up`")
    group.add_argument("--stack", metavar="NAME", help="a stack deployed with `sam deploy`")
    parser.add_argument("--region", help="AWS region of --stack (default: your AWS configuration)")


def target(args: Any) -> StackHandle:
    if getattr(args, "stack", None):
        return DeployedStack(args.stack, region=args.region)
    return running_local_stack()
