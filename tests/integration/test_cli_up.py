"""`cogwh up` and `cogwh down` as a user runs them, in processes of their own: a state file left by a
killed `up` (its pid gone, its lock free) is said and replaced; `--parameter` overrides a template
parameter; `cogwh down` stops the `up` it names and waits until the state file is gone; with none
running, `down` is exit 3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cogwh import ops
from cogwh.cli import main

COGWH = Path(sys.executable).with_name("cogwh")


def _dead_pid() -> int:
    """The pid of a process that has ended (what a killed `up` leaves in its state file)."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True
    )
    return int(done.stdout)


def test_a_stale_state_file_is_replaced_and_down_stops_the_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "local.json"
    monkeypatch.setenv(ops.STATE_FILE_ENV, str(state))
    # Given the state file of an `up` that was killed: its pid is gone and nothing holds its lock
    dead = _dead_pid()
    ops.write_state(
        state,
        stack_name="cogwh-local",
        endpoint_url="http://127.0.0.1:1",
        region="us-east-1",
        outputs={},
        extra={"pid": dead},
    )
    ops.lock_file(state).write_text(str(dead))
    assert main(["status", "--local"]) == 3
    assert f"left by a `cogwh up` that has ended (pid {dead}, killed?)" in capsys.readouterr().err

    # When `cogwh up` starts (another gateway port: the example's is another test's)
    up = subprocess.Popen(
        [
            str(COGWH),
            "up",
            "--gateway-port",
            "0",
            "--time-factor",
            "0",
            "--parameter",
            "CognigyApiPrefix=/api/v9",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, ops.STATE_FILE_ENV: str(state)},
    )
    try:
        assert up.stdout is not None
        assert up.stderr is not None
        announced = []
        for line in up.stdout:  # its announcement ends with how to stop it
            announced.append(line)
            if "to stop" in line:
                break
        assert announced, up.stderr.read()
        assert "to stop" in announced[-1], (announced, up.stderr.read() if up.poll() else "")
        # Then it said what it replaced, and its state file is its own
        doc = json.loads(state.read_text())
        assert doc["pid"] == up.pid
        assert doc["outputs"]["CognigyApiPrefix"] == "/api/v9"
        assert "parameter    CognigyApiPrefix=/api/v9\n" in announced
        assert main(["status", "--local"]) == 0

        # And `cogwh down` stops it, waiting until it is gone
        assert main(["down"]) == 0
        assert f"(pid {up.pid})" in capsys.readouterr().out
        assert not state.exists()
        assert not ops.up_running(state)
        assert up.wait(timeout=60) == 0
        err = up.stderr.read()
        assert f"{state} was left by a `cogwh up` that has ended (pid {dead}; killed?): replacing it" in err
        assert "Traceback" not in err
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()

    # With none running, `down` says so
    assert main(["down"]) == 3
    assert "no `cogwh up` is running" in capsys.readouterr().err
