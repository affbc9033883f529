"""`cogwh plan`, `cogwh apply` (plan first, asking before deletions, progress, Ctrl-C), `cogwh
executions`, `cogwh watch` and `cogwh stop` against a running local stack (moto in server mode, as
`cogwh up` serves it, found through its state file), the tutorial dialect's simulator beside it.

The commands run in-process (``cogwh.cli.main``), their stdin fed by the test: a pipe (no terminal)
or a stand-in terminal answering the prompt. Ctrl-C is the KeyboardInterrupt Python raises on SIGINT,
raised where the follower shows a step."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cognigy_webhooks.secrets import secret_forms
from cogwh import ops
from cogwh.cli import main
from cogwh.demo import LocalWorld, local_world
from cogwh.localstack import LocalStack
from cogwh.simulator import SimulatorConfig
from tests.integration.reconcile.harness import (
    BURST,
    RATE_PER_MINUTE,
    Harness,
    clean_harness,
    serve_cli_stack,
)

SECRET = "cli-signature-secret-never-printed-0123456789"
HEADER_VALUE = "Bearer cli-header-token-never-printed-42"


@pytest.fixture(scope="module")
def cli_world() -> Iterator[LocalWorld]:
    with local_world(rate_per_minute=RATE_PER_MINUTE, burst=BURST) as local:
        yield local


@pytest.fixture(scope="module")
def served(cli_world: LocalWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The stack `cogwh up` would serve, with its state file where `--local` looks for it."""
    yield from serve_cli_stack(cli_world, tmp_path_factory.mktemp("cogwh") / "local.json")


@pytest.fixture
def h(served: LocalStack, cli_world: LocalWorld) -> Harness:
    config = cli_world.simulator_state.config
    assert isinstance(config, SimulatorConfig)
    return clean_harness(served, cli_world, config)


class Terminal(io.StringIO):
    """stdin as a terminal with the answers typed in advance."""

    def isatty(self) -> bool:
        return True


def _file(tmp_path: Path, h: Harness, *endpoints: dict[str, Any]) -> Path:
    path = tmp_path / "endpoints.yaml"
    path.write_text(yaml.safe_dump({"endpoints": list(endpoints)}), encoding="utf-8")
    return path


def _signed(h: Harness, name: str, *, header: str = HEADER_VALUE, port: str = "PORT_TLS13") -> dict[str, Any]:
    return h.endpoint(
        name,
        port=port,
        signatureHeader="X-Cognigy-Signature",
        signatureSecret=SECRET,
        headers={"Authorization": header},
    )


def _run(capsys: pytest.CaptureFixture[str], h: Harness, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    h.in_flight.wait_idle()
    out, err = capsys.readouterr()
    # the functions run in this process: their JSON logs and metrics (`cogwh up`'s, not the CLI's) go
    out = "".join(line for line in out.splitlines(keepends=True) if not line.startswith('{"'))
    for text in (out, err):
        for secret in (SECRET, HEADER_VALUE):
            assert not any(form in text for form in secret_forms(secret)), "a secret was printed"
    return code, out, err


def _executions(h: Harness) -> int:
    arn = h.stack.outputs["ReconcileStateMachineArn"]
    return len(h.stack.client("stepfunctions").list_executions(stateMachineArn=arn)["executions"])


def test_plan_then_apply_shows_the_plan_each_step_and_the_table(
    h: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    path = _file(tmp_path, h, _signed(h, "cli-orders"), h.endpoint("cli-legacy", port="PORT_TLS11"))
    before = _executions(h)

    code, out, _ = _run(capsys, h, "plan", str(path), "--local")
    assert code == 0
    assert "cli-orders  create" in out
    assert "to Secrets Manager: signatureSecret, headers.Authorization" in out
    assert _executions(h) == before  # a plan starts nothing

    code, out, _ = _run(capsys, h, "apply", str(path), "--local")
    assert code == 1  # the legacy endpoint's probe fails
    lines = out.splitlines()
    assert any("cli-orders" in line and "probe passed" in line for line in lines)
    assert any(
        "cli-legacy" in line and "probe failed" in line and "tls_version_unsupported" in line
        for line in lines
    )
    assert "ProbePassed" not in out  # a choice state is never shown as a step
    assert any(line.split()[:2] == ["cli-orders", "created"] for line in lines)  # the result, as it happens
    assert "created 1" in out
    assert out.index("probe passed") < out.rindex("OUTCOME")  # steps first, then the table

    # the plan of the same file: what the apply then does (secrets compared, never shown)
    code, out, _ = _run(capsys, h, "plan", str(path), "--local", "--json")
    plan = json.loads(out)
    assert {e["name"]: e["action"] for e in plan["entries"]} == {
        "cli-orders": "unchanged",
        "cli-legacy": "create",
    }
    rotated = _file(tmp_path, h, _signed(h, "cli-orders", header="Bearer another-token-value-99"))
    code, out, _ = _run(capsys, h, "plan", str(rotated), "--local", "--json")
    assert [(e["action"], e["changes"]) for e in json.loads(out)["entries"]] == [
        ("update", ["secret values"])
    ]
    code, out, _ = _run(capsys, h, "apply", str(rotated), "--local", "--json")
    assert code == 0
    assert json.loads(out)["summary"]["updated"] == ["cli-orders"]


def test_prune_asks_first_and_never_deletes_without_a_terminal(
    h: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    both = _file(tmp_path, h, h.endpoint("cli-keep"), h.endpoint("cli-drop"))
    assert _run(capsys, h, "apply", str(both), "--local")[0] == 0
    only = _file(tmp_path, h, h.endpoint("cli-keep"))
    before = _executions(h)

    # no terminal, no --yes: refused, nothing started
    code, out, err = _run(capsys, h, "apply", str(only), "--prune", "--local")
    assert code == 2
    assert "add --yes" in err
    assert "cli-drop  delete" in out  # the plan was shown
    assert _executions(h) == before
    # --dry-run is the plan
    code, out, _ = _run(capsys, h, "apply", str(only), "--prune", "--dry-run", "--local")
    assert (code, _executions(h)) == (0, before)
    assert "delete 1" in out
    # a terminal that says no: nothing applied
    monkeypatch.setattr("sys.stdin", Terminal("n\n"))
    code, _, err = _run(capsys, h, "apply", str(only), "--prune", "--local")
    assert (code, _executions(h)) == (1, before)
    assert "Delete 1 endpoint(s) (cli-drop)" in err
    assert "nothing applied" in err
    assert h.record("cli-drop") is not None
    # a terminal that says yes: deleted
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    code, out, _ = _run(capsys, h, "apply", str(only), "--prune", "--local")
    assert code == 0
    assert "deleted 1" in out
    assert h.record("cli-drop") is None
    # and --yes asks nothing (nothing left to delete: no question either way)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert _run(capsys, h, "apply", str(only), "--prune", "--yes", "--local")[0] == 0


def test_ctrl_c_leaves_the_execution_running_and_says_how_to_follow_or_stop_it(
    h: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    path = _file(tmp_path, h, h.endpoint("cli-interrupted"))

    def interrupt(step: Any) -> None:
        raise KeyboardInterrupt  # what Python raises on SIGINT

    monkeypatch.setattr("cogwh.commands.apply._show", interrupt)
    code, out, err = _run(capsys, h, "apply", str(path), "--local")

    assert code == 130
    execution_id = out.split("execution ", 1)[1].split()[0]
    assert f"execution {execution_id} goes on" in err
    assert f"cogwh watch {execution_id} --local" in err
    assert f"cogwh stop {execution_id} --local" in err
    # the execution went on: watch follows it to its end, executions lists it
    code, out, _ = _run(capsys, h, "watch", execution_id, "--local")
    assert code == 0
    assert "created 1" in out
    code, out, _ = _run(capsys, h, "executions", "--local")
    assert execution_id in out
    assert "SUCCEEDED" in out
    code, out, _ = _run(capsys, h, "executions", "--local", "--json")
    assert json.loads(out)["items"][0]["executionId"] == execution_id
    # stop: it had ended (1); an unknown id is bad input (2)
    code, out, _ = _run(capsys, h, "stop", execution_id, "--local")
    assert code == 1
    assert "already ended (SUCCEEDED)" in out
    assert _run(capsys, h, "stop", "no-such-execution", "--local")[0] == 2
    assert _run(capsys, h, "watch", "not an id", "--local")[0] == 2


def test_json_prints_the_summary_also_when_the_execution_failed(
    h: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    config = h.world.simulator_state.config
    h.sim.reset(dataclasses.replace(config, api_keys=("a-key-that-is-not-ours",)))  # the key is revoked
    try:
        code, out, _ = _run(
            capsys, h, "apply", str(_file(tmp_path, h, h.endpoint("cli-refused"))), "--local", "--json"
        )
    finally:
        h.sim.reset(config)

    assert code == 1
    view = json.loads(out)  # nothing streamed: the one JSON document
    assert view["status"] == "FAILED"
    assert view["error"] == "CognigyAuthError"
    assert "Traceback" not in (view["cause"] or "")
    assert set(view["summary"]["counts"]) == {"created", "updated", "unchanged", "deleted", "failed"}


def test_environment_and_bad_input_exit_codes(
    h: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nothing.yaml"
    assert _run(capsys, h, "plan", str(missing), "--local")[0] == 2
    refused = tmp_path / "refused.yaml"
    refused.write_text(yaml.safe_dump({"endpoints": [{"name": "cli-bad", "url": "http://x.example.com"}]}))
    code, _, err = _run(capsys, h, "apply", str(refused), "--local")
    assert code == 2
    assert "url" in err
    monkeypatch.setenv(ops.STATE_FILE_ENV, str(tmp_path / "no-state.json"))
    for argv in (["executions", "--local"], ["watch", "x", "--local"], ["stop", "x", "--local"]):
        code, _, err = _run(capsys, h, *argv)
        assert code == 3, argv
        assert "cogwh up" in err
