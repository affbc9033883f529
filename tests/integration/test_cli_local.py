"""The command line against one `cogwh up` (in-process, for the module; its default gateway port, as
the README's commands use it): examples/local.yaml applies as written; `--json` is camelCase; `cogwh
listen` tails the round trip `cogwh say` starts; `cogwh sign --send` and its printed curl for standard
input deliver; a second `cogwh up` is refused naming the first; an untrusted certificate is shown with
the way on; a closed pipe ends with 141."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cognigy_webhooks.dal.schema import to_item
from cognigy_webhooks.dal.secretsmanager import put_secret
from cognigy_webhooks.models import WebhookEndpoint
from cognigy_webhooks.models.records import EndpointRecord
from cogwh import cli, ops
from cogwh.certs import LocalCA
from cogwh.cli import main
from cogwh.commands import listen, up
from tests.support.tls_servers import LocalServer, answer, server_context

ROOT = Path(__file__).resolve().parents[2]
COGWH = Path(sys.executable).with_name("cogwh")
EXAMPLE = "examples/local.yaml"
CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")


@dataclass
class Local:
    state: Path
    doc: dict[str, Any]
    applied: int
    applied_output: str

    @property
    def gateway(self) -> str:
        return str(self.doc["gatewayUrl"])

    def stack(self) -> ops.RunningLocalStack:
        return ops.running_local_stack()


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    if not _port_free(up.GATEWAY_PORT):
        pytest.skip(f"port {up.GATEWAY_PORT} is taken (a `cogwh up` of yours?): the example needs it")
    state = tmp_path_factory.mktemp("cogwh") / "local.json"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ops.STATE_FILE_ENV, str(state))
        mp.chdir(ROOT)
        args = cli.build_parser().parse_args(["up"])
        ready, stop = threading.Event(), threading.Event()
        ended: list[BaseException] = []

        def serve() -> None:
            try:
                up.run(args, ready=ready, stop=stop)
            except BaseException as exc:
                ended.append(exc)
            finally:
                ready.set()  # also when it failed: the fixture says why

        thread = threading.Thread(target=serve, name="cogwh-up", daemon=True)
        thread.start()
        ready.wait()
        try:
            assert not ended, ended
            out = io.StringIO()
            with contextlib.redirect_stdout(out):  # exactly the README's command
                code = main(["apply", EXAMPLE, "--local"])
            yield Local(state, json.loads(state.read_text()), code, out.getvalue())
        finally:
            stop.set()
            thread.join(timeout=60)
    assert not state.exists()  # a stopped `up` removes its state file


def _keys(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield where, key
            if key not in ("headers",):  # header names are the user's, not ours
                yield from _keys(item, f"{where}.{key}")
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item, where)


def test_the_local_example_applies_as_written(local: Local) -> None:
    assert local.applied == 0, local.applied_output
    table = local.applied_output.rsplit("NAME ", 1)[1]  # the outcome table comes last
    rows = {line.split()[0]: line.split()[1] for line in table.splitlines() if len(line.split()) > 1}
    assert rows.get("bot-outputs") in ("created", "unchanged"), local.applied_output
    assert rows.get("handover-outputs") in ("created", "unchanged"), local.applied_output
    assert local.doc["pid"] == os.getpid()
    assert local.gateway == f"https://localhost:{up.GATEWAY_PORT}"


def test_every_json_is_camelcase(local: Local, capsys: pytest.CaptureFixture[str]) -> None:
    outputs = {}
    for argv in (
        ["status", "--local", "--json"],
        ["audit", "bot-outputs", "--local", "--json"],
        [
            "probe",
            f"{local.gateway}/deliveries/bot-outputs",
            "--allow-private-networks",
            "--ca-bundle",
            local.doc["caFile"],
            "--json",
        ],
    ):
        code = main(argv)
        outputs[argv[0]] = json.loads(capsys.readouterr().out)
        assert code == 0, argv
    assert {r["name"] for r in outputs["status"]} >= {"bot-outputs", "handover-outputs"}
    assert outputs["audit"]
    assert outputs["probe"]["tlsVersion"] == "TLSv1.3"
    for command, doc in outputs.items():
        bad = [f"{where}.{key}" for where, key in _keys(doc) if not CAMEL.match(key)]
        assert bad == [], (command, bad)


@contextlib.contextmanager
def listening(argv: list[str]) -> Iterator[list[int]]:
    """`cogwh listen` in a thread (short polls) from when its rule and queue exist until it ends by
    itself (--max-events) within the block, or is stopped when the block ends (a failed test)."""
    ready, stop = threading.Event(), threading.Event()
    codes: list[int] = []
    args = cli.build_parser().parse_args(["listen", "--local", *argv])

    def run() -> None:
        try:
            codes.append(listen.run(args, ready=ready, stop=stop, wait_seconds=1))
        finally:
            ready.set()

    thread = threading.Thread(target=run, name="cogwh-listen", daemon=True)
    thread.start()
    ready.wait()
    try:
        yield codes
        thread.join(timeout=60)  # it ends by itself once it saw --max-events deliveries
        assert not thread.is_alive()
    finally:
        stop.set()
        thread.join(timeout=60)


def _ours(out: str) -> list[str]:
    """stdout without the functions' own JSON logs and metrics (the stack runs in this process)."""
    return [line for line in out.splitlines() if not line.startswith(('{"level"', '{"_aws"'))]


def _no_listener_left(local: Local) -> None:
    stack = local.stack()
    rules = stack.client("events").list_rules(EventBusName=stack.outputs["DeliveryBusName"])["Rules"]
    assert [r["Name"] for r in rules if r["Name"].startswith("cogwh-listen")] == []
    assert stack.client("sqs").list_queues(QueueNamePrefix="cogwh-listen").get("QueueUrls", []) == []


def test_listen_tails_the_round_trip_say_starts(
    local: Local, local_ca: LocalCA, capsys: pytest.CaptureFixture[str]
) -> None:
    session = f"s-{uuid.uuid4().hex[:8]}"
    with LocalServer(answer(200), server_context(local_ca.issue("localhost"))) as consumer:
        forward = ["--forward-to", consumer.url(path="/hook"), "--ca-bundle", str(local_ca.ca_file)]
        with listening(["--json", "--endpoint", "bot-outputs", "--max-events", "1", *forward]) as codes:
            said = main(
                ["say", "bot-outputs", "--user", "u-1", "--session", session, "--text", "hi", "--local"]
            )
    assert (said, codes) == (0, [0])
    out, err = capsys.readouterr()
    (detail,) = [json.loads(line) for line in _ours(out) if line.startswith("{")]
    assert (detail["endpoint"], detail["userId"], detail["sessionId"]) == ("bot-outputs", "u-1", session)
    assert detail["deliveryId"]
    assert "listening for deliveries on bus" in err
    assert f"-> {consumer.url(path='/hook')} HTTP 200" in err
    ((method, target, kind),) = [(r.method, r.target, r.header("content-type")) for r in consumer.requests]
    assert (method, target, kind) == ("POST", "/hook", "application/json")
    _no_listener_left(local)


def _signed_endpoint(local: Local, name: str, secret: str) -> None:
    """An endpoint recorded as the register step records a signed one (the endpoints dialect cannot
    register signatures; the receiver takes any record it finds)."""
    stack = local.stack()
    arn = put_secret(stack.client("secretsmanager"), f"cognigy-webhooks/test/{name}/signature", secret)
    spec = WebhookEndpoint.model_validate(
        {
            "name": name,
            "url": f"https://hooks.example.test/{name}",
            "signatureHeader": "X-Cognigy-Signature",
            "signatureSecretArn": arn,
        }
    )
    record = EndpointRecord(name=name, spec=spec.public_view(), status="registered")  # type: ignore[arg-type]
    stack.client("dynamodb").put_item(
        TableName=stack.outputs["EndpointsTableName"],
        Item=to_item(record.model_dump(mode="json", by_alias=True)),
    )


def test_sign_sends_and_its_curl_for_standard_input_delivers(
    local: Local,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"signed-{uuid.uuid4().hex[:6]}"
    secret = "sign-send-secret-" + uuid.uuid4().hex + uuid.uuid4().hex
    _signed_endpoint(local, name, secret)
    monkeypatch.setenv("SIGNING_SECRET", secret)
    monkeypatch.setenv("OTHER_SECRET", "another-secret-of-the-right-length-" + uuid.uuid4().hex)
    url = f"{local.gateway}/deliveries/{name}"
    body = tmp_path / "delivery.json"
    body.write_text(json.dumps({"userId": "u-2", "sessionId": "s-file", "text": "from a file"}))
    expected = 2 if shutil.which("curl") else 1
    printed: list[str] = []  # everything the commands (listen's thread too) printed, in order

    def read() -> list[str]:
        lines = _ours(capsys.readouterr().out)
        printed.extend(lines)
        return lines

    with listening(["--endpoint", name, "--max-events", str(expected)]) as codes:
        # --send: the answer's status and body; exit 0 on 2xx, 1 otherwise
        assert main(["sign", "--secret-env", "SIGNING_SECRET", "--url", url, "--send", str(body)]) == 0
        answered = [line for line in read() if line.startswith("HTTP ")]
        assert answered == ["HTTP 202 Accepted"]
        assert main(["sign", "--secret-env", "OTHER_SECRET", "--url", url, "--send", str(body)]) == 1
        answered = [line for line in read() if line.startswith("HTTP ")]
        assert answered == ["HTTP 401 Unauthorized"]

        # standard input: the printed curl carries the body itself
        stdin_body = json.dumps({"userId": "u-3", "sessionId": "s-stdin", "text": 'it\'s "quoted" $HOME'})
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin_body.encode())))
        assert main(["sign", "--secret-env", "SIGNING_SECRET", "--url", url, "-"]) == 0
        command = read()[-1]
        assert command.startswith("printf '%s' ")
        assert "--cacert" in command  # the local gateway's CA, from the state file
        assert secret not in command
        if shutil.which("curl"):
            sent = subprocess.run(
                ["bash", "-c", command], capture_output=True, text=True, timeout=60, check=True
            )
            assert "deliveryId" in sent.stdout, sent
    assert codes == [0]
    read()
    lines = [line for line in printed if line.startswith(name)]
    assert len(lines) == expected
    assert 'sessionId="s-file"' in lines[0]
    assert 'text="from a file"' in lines[0]
    if expected == 2:
        assert 'sessionId="s-stdin"' in lines[1]
    _no_listener_left(local)


def test_a_second_up_is_refused_naming_the_first(local: Local, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["up"]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"a local stack is already running for {local.state}: pid {os.getpid()}" in err
    assert f"local stack {local.doc['endpointUrl']}" in err
    assert "its local stack answers" in err
    assert "cogwh down" in err
    assert local.state.exists()  # the first one's state is untouched


def test_an_untrusted_certificate_is_shown_with_the_way_on(
    local: Local, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other_ca = LocalCA()  # not the CA the local stack trusts
    try:
        with LocalServer(answer(200), server_context(other_ca.issue("localhost", "127.0.0.1"))) as server:
            desired = tmp_path / "untrusted.yaml"
            desired.write_text(
                f"cognigy: {{projectId: {local.doc['cognigyProjectId']}}}\n"
                f"endpoints:\n  - {{name: private-ca-hook, url: '{server.url(path='/hook')}'}}\n"
            )
            code = main(["apply", str(desired), "--local"])
    finally:
        other_ca.close()
    out = capsys.readouterr().out
    assert code == 1
    row = [line for line in out.splitlines() if line.startswith("private-ca-hook ")][-1]  # the outcome
    assert "probe_certificate_invalid: untrusted" in row
    hints = out.split("\nhints:\n", 1)[1]
    assert "private-ca-hook: the certificate is not signed by a public root" in hints
    assert "--ca-bundle" in hints


def test_a_closed_pipe_ends_quietly(local: Local) -> None:
    proc = subprocess.Popen(
        [str(COGWH), "status", "--local", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, ops.STATE_FILE_ENV: str(local.state)},
    )
    assert proc.stdout is not None
    proc.stdout.close()  # `| head -c 0`: the reader is gone before the command writes
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (141, b"")
