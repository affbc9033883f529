"""`make demo` and `cogwh demo --cognigy-api tutorial`, run whole (the local stack, the simulator, the
targets, the gateway), with Step Functions waits instant: both exit 0 with every verdict as expected.

The endpoints dialect's demo shows the round trip (say -> Cognigy -> receiver -> bus), a stale Basic
auth password (401), a retried output (200) and an echoing consumer stopped by the loop guard (508).
Both dialects end with the watch scene (:mod:`cogwh.demo_watch`): a target goes down, is marked
unhealthy, deactivated in Cognigy a (compressed) day later, and reactivated once it is back.
``--cognigy-url`` points the stack at another Cognigy-compatible server (here a second simulator,
with its own key read from an environment variable and its own CA)."""

from __future__ import annotations

import io
import os
import re
from unittest import mock

import pytest

from cogwh import cli
from cogwh.demo import DEMO_PROJECT_ID, CognigyChoice, run_demo
from tests.support.simulator import RunningSimulator

WATCH_VERDICTS = (
    "watch: a healthy watch makes no Cognigy call",
    "watch: 3 failed watches -> Endpoint Unhealthy (audit + bus event)",
    "watch: failing for 24 h -> deactivated in Cognigy",
    "watch: back up -> recovered and reactivated",
    "watch: the next apply keeps it as it is (unchanged, no Cognigy write)",
)


def _verdicts(text: str) -> tuple[int, int]:
    found = re.search(r"(\d+)/(\d+) as expected", text)
    assert found is not None, text[-2000:]
    return int(found.group(1)), int(found.group(2))


def _watch_scene(text: str, flag: str) -> list[str]:
    """The scene's watch lines (one per watch, in order), after checking its verdicts are there."""
    for case in WATCH_VERDICTS:
        assert re.search(rf"^{re.escape(case)}\s.*\sok$", text, re.MULTILINE), case
    scene = text.split("== The watch:", 1)[1].split("== Verdicts", 1)[0]
    lines = [line for line in scene.splitlines() if line.startswith("  t+")]
    assert len(lines) == 8, scene
    # the story, as each watch's line tells it: the compressed clock, the target, Cognigy's flag
    assert [line.split()[0] for line in lines] == [
        "t+00:00",
        "t+00:15",
        "t+00:30",
        "t+00:45",
        "t+24:45",
        "t+25:00",
        "t+25:15",
        "t+25:30",
    ]
    assert "-> Endpoint Unhealthy: 3 consecutive failed watches" in lines[3]
    assert "-> Endpoint Deactivated: failing for" in lines[4]
    assert f"1 Cognigy call, {flag}: false" in lines[4]
    assert "-> Endpoint Recovered: 3 consecutive healthy watches; reactivated" in lines[7]
    assert f"1 Cognigy call, {flag}: true" in lines[7]
    return lines


def test_the_default_demo_registers_cognigy_ai_endpoints_and_runs_the_round_trip() -> None:
    out = io.StringIO()
    assert run_demo(out, time_factor=0, verbose=True) == 0
    text = out.getvalue()
    ok, total = _verdicts(text)
    assert ok == total == 19
    for case in (
        "round trip: Cognigy's output, valid Basic auth",
        "delivery: a stale Basic auth password",
        "delivery: the same output again (a retry)",
        "loop: a consumer echoing outputs back as inputs",
    ):
        assert case in text
    assert "508 after 5 echoes" in text
    _watch_scene(text, "active")


def test_the_tutorial_demo_keeps_its_signed_deliveries() -> None:
    out = io.StringIO()
    assert run_demo(out, time_factor=0, verbose=True, choice=CognigyChoice(api="tutorial")) == 0
    text = out.getvalue()
    ok, total = _verdicts(text)
    assert ok == total == 27
    _watch_scene(text, "isActive")


def test_the_demo_can_use_another_cognigy_server(simulator: RunningSimulator) -> None:
    simulator.configure(project_ids=(DEMO_PROJECT_ID,))
    args = cli.build_parser().parse_args(
        [
            "demo",
            "--cognigy-url",
            simulator.base_url,
            "--cognigy-api-key-env",
            "DEMO_TEST_COGNIGY_KEY",
            "--cognigy-ca-bundle",
            str(simulator.ca_file),
        ]
    )
    with mock.patch.dict(os.environ, {"DEMO_TEST_COGNIGY_KEY": simulator.api_key}):
        choice = CognigyChoice.from_args(args)
    assert simulator.api_key not in repr(choice)
    out = io.StringIO()
    assert run_demo(out, time_factor=0, verbose=True, choice=choice) == 0
    text = out.getvalue()
    ok, total = _verdicts(text)
    assert (
        ok == total == 16
    )  # the applies, the receiver's checks, the watch; the round trip needs the simulator
    assert simulator.state.count(method="POST") >= 2  # the stack talked to this server
    _watch_scene(text, "active")
    # the watch deactivated and reactivated the endpoint on this server: its two writes
    patches = [r for r in simulator.state.requests if r["method"] == "PATCH"]
    assert len(patches) == 2, patches


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
