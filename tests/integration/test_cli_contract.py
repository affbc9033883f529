"""The contract every `cogwh` command keeps (enumerated from cogwh.cli.COMMANDS, so a command added
later is held to it too): bad and missing arguments are exit 2 with one line naming the problem; the
environment (no credentials, AWS unreachable, no such stack) is exit 3 with a message; never a
traceback; `--version`; a closed pipe ends quietly with 141 as git and gh do; an unexpected error is
one line and a hint to rerun with --debug. AWS is moto (a stack that does not exist) or nothing at
all (no credentials, a closed port)."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cogwh import cli
from cogwh.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[2]
COGWH = Path(sys.executable).with_name("cogwh")
BAD = "\x01not-a-value"
SECRET = "contract-test-secret-" + "s" * 32


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


PARSERS = subcommands()


def refusal(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    """Exit status, stdout and the one error line of a refused command (argparse's or the command's)."""
    try:
        code = main(argv)
    except SystemExit as exited:
        code = int(exited.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, (argv, err)
    errors = [line for line in err.splitlines() if not line.startswith(("usage:", " "))]
    assert len(errors) == 1, (argv, err)
    return code, out, errors[0]


def test_every_command_of_the_cli_is_checked_here() -> None:
    assert set(PARSERS) == set(COMMANDS)
    assert {"up", "down", "listen", "sign", "status", "apply"} <= set(PARSERS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_unknown_flag_is_exit_2_naming_it(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, line = refusal(capsys, [command, "--no-such-flag-zz"])
    assert code == 2
    assert line.startswith((f"cogwh {command}: error: ", "cogwh: error: unrecognized arguments")), line
    required = _required(PARSERS[command])
    assert "--no-such-flag-zz" in line or any(name in line for name in required), line


def _required(parser: argparse.ArgumentParser) -> list[str]:
    """How argparse names each required argument (positional metavar/dest, or option strings)."""
    names = []
    for action in parser._actions:
        if action.required:
            names.append(
                action.option_strings[0] if action.option_strings else str(action.metavar or action.dest)
            )
    for group in parser._mutually_exclusive_groups:
        if group.required:
            names.extend(a.option_strings[0] for a in group._group_actions)
    return names


@pytest.mark.parametrize("command", sorted(c for c in COMMANDS if _required(PARSERS[c])))
def test_missing_arguments_are_exit_2_naming_them(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, line = refusal(capsys, [command])
    assert code == 2
    assert out == ""
    assert "required" in line
    assert any(name in line for name in _required(PARSERS[command])), line


def _typed_options() -> list[tuple[str, str]]:
    cases = []
    for command, parser in sorted(PARSERS.items()):
        for action in parser._actions:
            takes_value = action.option_strings and action.nargs is None and action.const is None
            typed = action.choices is not None or action.type not in (None, str, Path)
            if takes_value and typed and not isinstance(action, argparse._HelpAction):
                cases.append((command, action.option_strings[-1]))
    return cases


@pytest.mark.parametrize(("command", "option"), _typed_options())
def test_a_bad_value_is_exit_2_naming_the_option(
    command: str, option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # the trailing unknown flag keeps a command from running if the option took the value
    code, out, line = refusal(capsys, [command, option, BAD, "--no-such-flag-zz"])
    assert code == 2
    assert out == ""
    assert f"argument {option}" in line or option in line, line


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("COGWH_STATE", str(tmp_path / "no-stack.json"))
    monkeypatch.setenv("SHORT_SECRET", "too-short")
    monkeypatch.setenv("GOOD_SECRET", SECRET)
    body = tmp_path / "body.json"
    body.write_text('{"text": "hi"}')
    broken = tmp_path / "broken.yaml"
    broken.write_text("endpoints:\n  - name: orders-webhook\n    url: [unclosed\n")
    typo = tmp_path / "typo.yaml"
    typo.write_text("endpoints:\n  - {name: orders-webhook, url: 'https://a.example/x', timeoutMS: 5000}\n")
    return {
        "BODY": str(body),
        "BROKEN": str(broken),
        "TYPO": str(typo),
        "MISSING": str(tmp_path / "nope.yaml"),
    }


#: Bad input each command checks itself (after argparse): (argv, what the one line must say).
BAD_INPUT = [
    (["apply", "MISSING", "--local"], "cannot read"),
    (["apply", "BROKEN", "--local"], "at line 4, column 1"),
    (["apply", "TYPO", "--local"], "endpoints[orders-webhook].timeoutMS: is not a known field: did you mean"),
    (["plan", "TYPO", "--local"], "did you mean timeoutMs?"),
    (["audit", "orders-webhook", "--limit", "0", "--local"], "--limit"),
    (["probe", "http://hooks.example/x"], "https"),
    (["sign", "--secret-env", "SHORT_SECRET", "BODY"], "must be at least 32 bytes"),
    (["sign", "--secret-env", "GOOD_SECRET", "--send", "BODY"], "--send needs --url"),
    (["sign", "--secret-env", "GOOD_SECRET", "--url", "ftp://x.example/", "BODY"], "--url"),
    (
        ["say", "x", "--user", "u", "--session", "s", "--data", "[1]", "--local"],
        "--data must be a JSON object",
    ),
    (["listen", "--local", "--forward-to", "ftp://x.example/"], "--forward-to"),
    (["up", "--parameter", "LoopMaxPerWindw=5"], "did you mean LoopMaxPerWindow"),
    (["up", "--parameter", "AllowPrivateNetworks=maybe"], "AllowPrivateNetworks"),
    (["up", "--parameter", "CognigyApi=tutorial"], "use --cognigy-api"),
    (["up", "--parameter", "novalue"], "is not KEY=VALUE"),
    (["demo", "--time-factor", "-1"], "--time-factor"),
    (["export", "--project", "p", "--local", "--output", "BODY"], "exists"),
    (["watch-now", "--local", "--at", "2026-12-01T09:00:00"], "argument --at: must be an ISO 8601 date-time"),
    (["watch-now", "--local", "--at", "9999-01-01T00:00:00Z"], "argument --at: must be from 2000-01-01"),
    (["watch-now", "--local", "--endpoint", "a b!"], "argument --endpoint: not an endpoint name"),
]


@pytest.mark.parametrize(
    ("argv", "said"), BAD_INPUT, ids=[" ".join(a[:2]) + f"-{i}" for i, (a, _) in enumerate(BAD_INPUT)]
)
def test_bad_input_is_exit_2_with_one_line_naming_it(
    argv: list[str], said: str, files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    if argv[0] not in COMMANDS:
        pytest.skip(f"no {argv[0]} command")
    code, out, line = refusal(capsys, [files.get(a, a) for a in argv])
    assert code == 2, line
    assert said in line, line
    assert SECRET not in out + line


def test_no_local_stack_is_exit_3(files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["status", "--local"],
        ["down"],
        ["listen", "--local"],
        ["audit", "x", "--local"],
        ["watch-now", "--local"],
        ["health", "--local"],
    ):
        code, _, line = refusal(capsys, argv)
        assert code == 3, (argv, line)
        assert "no local stack is running" in line or "no `cogwh up` is running" in line, line


# --- the environment: exit 3 for every command that takes --stack -------------------------------------

#: A well-formed invocation of each command with --stack (the rest of a new command's positionals: "x").
WELL_FORMED = {
    "status": [],
    "audit": ["orders-webhook"],
    "apply": ["FILE"],
    "plan": ["FILE"],
    "say": ["orders-webhook", "--user", "u", "--session", "s", "--text", "hi"],
    "export": ["--project", "64b7f0c2a1d3e5f708192a3b"],
    "listen": [],
    "executions": [],
    "watch": ["cli-0123456789abcdef"],
    "stop": ["cli-0123456789abcdef"],
    "watch-now": [],
    "health": [],
}


def stack_commands() -> list[str]:
    return sorted(c for c, p in PARSERS.items() if "--stack" in p._option_string_actions)


def stack_argv(command: str, file: str) -> list[str]:
    parser = PARSERS[command]
    if command in WELL_FORMED:
        rest = [file if a == "FILE" else a for a in WELL_FORMED[command]]
    else:
        rest = ["x" for a in parser._actions if not a.option_strings and a.required]
    return [command, *rest, "--stack", "no-such-stack", "--region", "us-east-1"]


@pytest.fixture
def desired_file(tmp_path: Path) -> str:
    path = tmp_path / "desired.yaml"
    path.write_text("endpoints:\n  - {name: orders-webhook, url: 'https://hooks.example/x'}\n")
    return str(path)


def _no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ENDPOINT_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _expect_environment(command: str, code: int, line: str) -> None:
    if command in WELL_FORMED:
        assert code == 3, line
    else:  # a command added later, called with placeholder arguments: bad input or environment
        assert code in (2, 3), line


@pytest.mark.parametrize("command", stack_commands())
def test_no_credentials_is_exit_3(
    command: str,
    desired_file: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _no_aws(monkeypatch, tmp_path)
    code, _, line = refusal(capsys, stack_argv(command, desired_file))
    _expect_environment(command, code, line)
    if code == 3:
        assert "credentials" in line, line


@pytest.mark.parametrize("command", stack_commands())
def test_an_unreachable_aws_is_exit_3(
    command: str,
    desired_file: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _no_aws(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret-key")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    code, _, line = refusal(capsys, stack_argv(command, desired_file))
    _expect_environment(command, code, line)
    if code == 3:
        assert "cannot reach" in line, line


@pytest.mark.parametrize("command", stack_commands())
def test_a_stack_that_does_not_exist_is_exit_3(
    command: str,
    desired_file: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from moto import mock_aws

    _no_aws(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        code, _, line = refusal(capsys, stack_argv(command, desired_file))
    _expect_environment(command, code, line)
    if code == 3:
        assert "no stack named 'no-such-stack'" in line, line


def test_a_taken_port_is_exit_3(files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        for argv in (["simulator", "--api-key", "k", "--port", port], ["up", "--gateway-port", port]):
            code, _, line = refusal(capsys, argv)
            assert code == 3, (argv, line)
            assert port in line, line


# --- version, closed pipes, the last resort ----------------------------------------------------------


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"cogwh {version('cognigy-webhooks')}\n"


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["sign", "--help"], ["sign", "--secret-env", "GOOD_SECRET", "BODY"]],
    ids=["help", "sign-help", "sign"],
)
def test_a_closed_pipe_ends_quietly_with_141(argv: list[str], files: dict[str, str]) -> None:
    import os

    env = {**os.environ, "GOOD_SECRET": SECRET}
    proc = subprocess.Popen(
        [str(COGWH), *[files.get(a, a) for a in argv]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before the command writes: as `| head -c 0` would
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (141, b"")


def test_an_unexpected_error_is_one_line_and_a_hint_then_the_traceback_with_debug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cogwh.commands import status

    def broken(args: Any) -> int:
        raise RuntimeError(f"a message that may hold anything {SECRET}")

    monkeypatch.setattr(status, "run", broken)
    code, out, line = refusal(capsys, ["status", "--local"])
    assert code == 1
    assert line == (
        "cogwh status: unexpected error (RuntimeError); rerun with --debug for the traceback and report it"
    )
    assert SECRET not in out + line
    for argv in (["--debug", "status", "--local"], ["status", "--local", "--debug"]):
        with pytest.raises(RuntimeError):
            main(argv)
