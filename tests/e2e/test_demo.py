"""`make demo`, run whole (the local stack, the simulator, the targets, the gateway), with Step
Functions waits instant: it exits 0 with every verdict as expected. It shows the round trip (say ->
Cognigy -> receiver -> bus), a stale Basic auth password (401), a retried output (200) and an echoing
consumer stopped by the loop guard (508), and ends with the watch scene (:mod:`cogwh.demo_watch`): a
target goes down, is marked unhealthy, deactivated in Cognigy a (compressed) day later, and
reactivated once it is back. The tutorial's demo: test_demo_tutorial.py; another Cognigy server:
test_demo_other_server.py; the demo's flags refused: here."""

from __future__ import annotations

import io
import os
from unittest import mock

import pytest

from cogwh import cli
from cogwh.demo import run_demo
from tests.e2e.demo_checks import verdicts, watch_scene


def test_the_default_demo_registers_cognigy_ai_endpoints_and_runs_the_round_trip() -> None:
    out = io.StringIO()
    assert run_demo(out, time_factor=0, verbose=True) == 0
    text = out.getvalue()
    ok, total = verdicts(text)
    assert ok == total == 19
    for case in (
        "round trip: Cognigy's output, valid Basic auth",
        "delivery: a stale Basic auth password",
        "delivery: the same output again (a retry)",
        "loop: a consumer echoing outputs back as inputs",
    ):
        assert case in text
    assert "508 after 5 echoes" in text
    watch_scene(text, "active")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cognigy-url", "https://cognigy.example.com"], "--cognigy-api-key-env"),
        (["--cognigy-url", "ftp://x", "--cognigy-api-key-env", "K"], "--cognigy-url"),
        (["--cognigy-api-key-env", "K"], "go with --cognigy-url"),
        (["--cognigy-url", "https://c.example.com", "--cognigy-api-key-env", "UNSET_VAR_XYZ"], "not set"),
        (
            [
                "--cognigy-url",
                "https://c.example.com",
                "--cognigy-api-key-env",
                "K",
                "--cognigy-ca-bundle",
                "/nope",
            ],
            "--cognigy-ca-bundle",
        ),
    ],
)
def test_bad_cognigy_flags_are_named_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with mock.patch.dict(os.environ, {"K": "a-key"}):
        assert cli.main(["demo", *argv]) == 2
    said = capsys.readouterr().err
    assert message in said
    assert "Traceback" not in said
