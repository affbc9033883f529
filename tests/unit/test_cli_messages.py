"""What the command line says when a user is stuck: a desired file's errors name the line and column,
the endpoint by its name and the near field; the outcome table shows the reason that matters and the
way on; `cogwh up --parameter` names an unknown key and the close ones; the lock of a running
`cogwh up`; `cogwh listen`'s line and `cogwh sign`'s curl for standard input. No AWS here."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cognigy_webhooks.errors import CognigyRejected, InvalidSpec
from cognigy_webhooks.models import parse_desired_set
from cognigy_webhooks.models.spec import DesiredSet, _model_in, field_aliases
from cognigy_webhooks.reconcile.recording import rejection_detail
from cognigy_webhooks.reconcile.task import RegisterResult
from cogwh import ops
from cogwh.commands import listen, sign, up

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a-password-that-must-never-show-in-a-message"


def load(tmp_path: Path, text: str | bytes) -> str:
    """The one-line message load_desired_file refuses ``text`` with (exit 2)."""
    path = tmp_path / "desired.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ops.CliError) as refused:
        ops.load_desired_file(path)
    assert refused.value.exit_code == 2
    message = str(refused.value)
    assert "\n" not in message
    assert PASSWORD not in message
    return message


# --- the desired file --------------------------------------------------------------------------------


def test_invalid_yaml_names_line_and_column_and_never_quotes_the_file(tmp_path: Path) -> None:
    text = f"endpoints:\n  - name: orders-webhook\n    basicAuth: {{username: u, password: '{PASSWORD}\n"
    message = load(tmp_path, text)
    assert "is not valid YAML/JSON at line 4, column 1" in message, message
    message = load(tmp_path, '{"endpoints": [\n  {"name": "a",, "url": "x"}]}')
    assert "line 2, column" in message, message


def test_a_file_that_is_not_utf8_says_where(tmp_path: Path) -> None:
    message = load(tmp_path, b"endpoints:\n  - name: caf\xe9\n")
    assert "is not UTF-8 text (line 2" in message


def test_an_endpoints_error_points_at_its_name(tmp_path: Path) -> None:
    text = (
        "endpoints:\n"
        "  - {name: first-webhook, url: 'https://a.example/x'}\n"
        "  - {name: orders-webhook, url: 'https://a.example/y', timeoutMs: 5}\n"
    )
    message = load(tmp_path, text)
    assert message.endswith(
        "desired.yaml: endpoints[orders-webhook].timeoutMs: Input should be greater than or equal to 1000"
    )
    # the API's shape keeps the plain path and names the endpoint beside it
    with pytest.raises(InvalidSpec) as refused:
        parse_desired_set({"endpoints": [{"name": "orders-webhook", "url": "http://a.example"}]})
    assert refused.value.errors == [
        {"field": "endpoints.0.url", "message": "must use the https scheme", "endpoint": "orders-webhook"}
    ]


def test_an_item_without_a_usable_name_keeps_its_index(tmp_path: Path) -> None:
    message = load(tmp_path, "endpoints:\n  - {url: 'https://a.example/x'}\n")
    assert "endpoints.0.name: Field required" in message


def test_a_repeated_name_points_at_the_second_one(tmp_path: Path) -> None:
    text = (
        "endpoints:\n"
        "  - {name: orders-webhook, url: 'https://a.example/x'}\n"
        "  - {name: orders-webhook, url: 'https://a.example/y'}\n"
    )
    message = load(tmp_path, text)
    assert "endpoints[orders-webhook].name: is declared twice (the endpoints at positions 1 and 2" in message


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            "endpoints:\n  - {name: orders-webhook, url: 'https://a.example/x', timeoutMS: 5000}\n",
            "endpoints[orders-webhook].timeoutMS: is not a known field: did you mean timeoutMs?",
        ),
        (
            "endpoints:\n  - {name: orders-webhook, url: 'https://a.example/x',\n"
            "     retryPolicy: {maxRetrys: 2}}\n",
            "endpoints[orders-webhook].retryPolicy.maxRetrys: is not a known field: did you mean maxRetries?",
        ),
        ("endpoint:\n  - {name: a}\n", "(found 'endpoint': did you mean endpoints?)"),
        ("endpoints: []\nprune: true\n", "prune: is not a known field"),
    ],
)
def test_an_unknown_field_suggests_the_near_one(tmp_path: Path, text: str, said: str) -> None:
    assert said in load(tmp_path, text)


def test_a_bad_cognigy_block_is_said_once_not_for_every_endpoint(tmp_path: Path) -> None:
    endpoints = "".join(f"  - {{name: hook-{i}, url: 'https://a.example/{i}'}}\n" for i in range(5))
    message = load(tmp_path, "cognigy: {projectID: p1}\nendpoints:\n" + endpoints)
    assert message.endswith("desired.yaml: cognigy.projectID: is not a known field: did you mean projectId?")


def _model_paths() -> list[tuple[tuple[str | int, ...], type[Any]]]:
    """Every model the desired set holds, with the path that reaches it (a list item as index 0)."""
    found: list[tuple[tuple[str | int, ...], type[Any]]] = []
    todo: list[tuple[tuple[str | int, ...], Any]] = [((), DesiredSet)]
    while todo:
        path, model = todo.pop()
        found.append((path, model))
        for name, info in model.model_fields.items():
            annotation = info.annotation
            step: tuple[str | int, ...] = (info.alias or name,)
            inner = _model_in(annotation)
            if inner is None:
                args = getattr(annotation, "__args__", ())
                if getattr(annotation, "__origin__", None) is list and args and _model_in(args[0]):
                    inner, step = _model_in(args[0]), (*step, 0)
            if inner is not None:
                todo.append(((*path, *step), inner))
    return found


def _nest(path: tuple[str | int, ...], leaf: dict[str, Any]) -> Any:
    doc: Any = leaf
    for part in reversed(path):
        if isinstance(part, int):
            doc = [{"name": "orders-webhook", "url": "https://a.example/x", **doc}]
        else:
            doc = {part: doc}
    return doc


def test_every_field_of_every_model_the_desired_set_uses_is_suggested() -> None:
    paths = _model_paths()
    assert {m.__name__ for _, m in paths} >= {
        "DesiredSet",
        "WebhookEndpoint",
        "RetryPolicy",
        "BasicAuth",
        "CognigyTarget",
    }
    for path, model in paths:
        aliases = field_aliases(DesiredSet, path)
        assert aliases == [f.alias or n for n, f in model.model_fields.items()], path
        for alias in aliases:
            typo = alias[:-1] + alias[-1].swapcase()
            with pytest.raises(InvalidSpec) as refused:
                parse_desired_set(_nest(path, {typo: 1}))
            said = [e for e in refused.value.errors if e["field"].endswith(typo)]
            assert said, (path, typo, refused.value.errors)
            assert said[0]["message"] == f"is not a known field: did you mean {alias}?"
            if "endpoints" in path:
                assert f"endpoints[orders-webhook].{'.'.join(map(str, path[2:]))}" in str(refused.value)


# --- the outcome table -------------------------------------------------------------------------------


def result(**fields: Any) -> dict[str, Any]:
    """A result as the state machine's summary carries it (the register task's own model)."""
    return RegisterResult.model_validate(fields).model_dump(mode="json", by_alias=True, exclude_none=True)


def test_the_table_shows_the_field_cognigy_named_and_the_way_on() -> None:
    rejected = CognigyRejected(
        "422", status_code=422, field_errors=[{"field": "url", "message": "must be reachable"}]
    )
    summary = {
        "results": [
            result(
                name="crm", outcome="failed", reason="cognigy_rejected", detail=rejection_detail(rejected)
            ),
            result(name="internal", outcome="failed", reason="probe_blocked_address", detail="loopback"),
            result(
                name="private-ca", outcome="failed", reason="probe_certificate_invalid", detail="untrusted"
            ),
            result(
                name="down", outcome="failed", reason="probe_connection_refused", detail="connection_refused"
            ),
            result(name="orders", outcome="created", tlsVersion="TLSv1.3", latencyMs=12.0),
        ]
    }
    text = ops.summary_table(summary)
    rows = {line.split()[0]: line for line in text.splitlines()}
    assert rows["crm"].rstrip().endswith("cognigy_rejected: url: must be reachable")
    assert rows["internal"].rstrip().endswith("probe_blocked_address: loopback")
    assert rows["down"].rstrip().endswith("probe_connection_refused")  # the detail says nothing more
    assert rows["orders"].split()[1:4] == ["created", "TLSv1.3", "12"]
    hints = text.split("\nhints:\n", 1)[1]
    assert "internal: a private or loopback address" in hints
    assert "--allow-private-networks" in hints
    assert "AllowPrivateNetworks" in hints
    assert "private-ca: the certificate is not signed by a public root" in hints
    assert "--ca-bundle" in hints
    assert "ProbeCaBundle" in hints
    assert "crm:" not in hints
    assert "down:" not in hints


def test_the_probe_command_hints_at_the_flag_for_a_blocked_address(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from cogwh.cli import main

    assert main(["probe", "https://127.0.0.1:9/"]) == 1  # refused before any connection
    out = capsys.readouterr().out
    assert "hint" in out
    assert "add --allow-private-networks for a local target" in out


# --- cogwh up --parameter ----------------------------------------------------------------------------


def test_an_unknown_parameter_is_named_with_the_close_ones() -> None:
    template = ROOT / "template.yaml"
    assert up.parameter_overrides([("LoopMaxPerWindow", "50")], template) == {"LoopMaxPerWindow": "50"}
    with pytest.raises(ops.CliError) as refused:
        up.parameter_overrides([("LoopMaxPerWindw", "50")], template)
    assert refused.value.exit_code == 2
    assert str(refused.value).startswith("--parameter LoopMaxPerWindw: template.yaml declares no such")
    assert "did you mean LoopMaxPerWindow" in str(refused.value)
    with pytest.raises(ops.CliError) as refused:
        up.parameter_overrides([("Zzz", "1")], template)
    assert "the template's: AlarmTopicArn, AllowPrivateNetworks, AuditRetentionDays" in str(refused.value)
    with pytest.raises(ops.CliError) as refused:
        up.parameter_overrides([("CognigyApi", "tutorial")], template)
    assert "use --cognigy-api" in str(refused.value)


# --- the lock of a running `cogwh up` ----------------------------------------------------------------


def test_the_lock_says_whether_an_up_runs_and_a_dead_pid_is_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "local.json"
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead_pid = int(ended.stdout)
    ops.write_state(
        state,
        stack_name="s",
        endpoint_url="http://127.0.0.1:9",
        region="r",
        outputs={},
        extra={"pid": dead_pid},
    )
    assert not ops.up_running(state)
    assert ops.up_state(state).stale
    monkeypatch.setenv(ops.STATE_FILE_ENV, str(state))
    with pytest.raises(ops.CliError) as refused:
        ops.running_local_stack()
    assert refused.value.exit_code == 3
    assert f"left by a `cogwh up` that has ended (pid {dead_pid}, killed?)" in str(refused.value)

    lock = ops.UpLock(state)
    assert lock.acquire()
    try:
        assert ops.up_running(state)  # seen from another open file, as another process sees it
        assert not ops.UpLock(state).acquire()
        assert ops.up_state(state).lock_pid == os.getpid()
    finally:
        lock.release()
    assert not ops.up_running(state)


# --- cogwh listen and cogwh sign ---------------------------------------------------------------------


def test_a_listen_line_quotes_what_the_sender_chose() -> None:
    detail = {"endpoint": "bot-outputs", "deliveryId": "d-1", "userId": "u\x1b[31m", "text": 'say "hi"'}
    assert listen.line(detail) == r'bot-outputs  d-1  userId="u\u001b[31m"  text="say \"hi\""'


@pytest.mark.parametrize(
    "body", [b'{"text":"it\'s \\"quoted\\" $HOME `x`"}', b"\x00\xffbinary", b"no newline"]
)
def test_the_curl_for_standard_input_carries_the_exact_body(body: bytes) -> None:
    command = sign.curl_command("https://x.example/d/a", [("Content-Type", "application/json")], "-", body)
    feeder, curl = command.split(" | curl ", 1)
    assert shlex.split(curl)[-2:] == ["--data-binary", "@-"]
    fed = subprocess.run(["bash", "-c", feeder], capture_output=True, check=True).stdout  # what curl reads
    assert fed == body
