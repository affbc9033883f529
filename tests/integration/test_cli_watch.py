"""`cogwh watch-now` and `cogwh health` against a running local stack (moto in server mode, found
through its state file, as `cogwh up` serves it), the simulator's Cognigy.AI Endpoints beside it, and
real TLS targets on 127.0.0.1 that go down (connection refused) and come back on the same port.

Time is compressed with ``--at`` (the watch judges as if at that time): no clock of the test's own is
moved and nothing sleeps. The commands run in-process (``cogwh.cli.main``); every output is searched
for the simulator's API key and an endpoint's Basic auth password in every form."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cognigy_webhooks import ops as library_ops
from cognigy_webhooks.secrets import secret_forms
from cogwh import ops
from cogwh.cli import main
from cogwh.commands import health, watch_now
from cogwh.demo import DEMO_PROJECT_ID, LocalWorld, local_world
from cogwh.localstack import LocalStack
from cogwh.simulator import SimulatorConfig
from cogwh.targets import SwitchableTarget, server_context
from tests.integration.reconcile.harness import Harness, clean_harness, serve_cli_stack

BLOCK = {"projectId": DEMO_PROJECT_ID}
PASSWORD = "watch-cli-basic-auth-password-never-shown-77"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    from tests.integration.reconcile.harness import BURST, RATE_PER_MINUTE

    with local_world(rate_per_minute=RATE_PER_MINUTE, burst=BURST, cognigy_api="endpoints") as local:
        yield local


@pytest.fixture(scope="module")
def served(world: LocalWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The stack `cogwh up` would serve, with its state file where `--local` looks for it."""
    yield from serve_cli_stack(world, tmp_path_factory.mktemp("cogwh") / "local.json")


@pytest.fixture
def h(served: LocalStack, world: LocalWorld) -> Harness:
    config = world.simulator_state.config
    assert isinstance(config, SimulatorConfig)
    return clean_harness(served, world, config)


@pytest.fixture
def target(world: LocalWorld) -> Iterator[SwitchableTarget]:
    switchable = SwitchableTarget(server_context(world.ca.issue("localhost", "127.0.0.1")))
    yield switchable
    switchable.close()


@pytest.fixture
def fallback(world: LocalWorld) -> Iterator[SwitchableTarget]:
    switchable = SwitchableTarget(server_context(world.ca.issue("localhost", "127.0.0.1")))
    yield switchable
    switchable.close()


def _spec(name: str, target: SwitchableTarget, *fallbacks: SwitchableTarget) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": name,
        "url": target.url(f"/hooks/{name}"),
        "timeoutMs": 3000,
        "basicAuth": {"username": "cognigy", "password": PASSWORD},
    }
    if fallbacks:
        spec["fallbackUrls"] = [f.url(f"/hooks/{name}") for f in fallbacks]
    return spec


def _ours(text: str) -> str:
    """What the command printed: the functions run in this process, and their JSON logs and metrics
    (`cogwh up`'s, not the CLI's) go to the same streams."""
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith('{"'))


def _run(capsys: pytest.CaptureFixture[str], h: Harness, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    h.in_flight.wait_idle()
    out, err = (_ours(text) for text in capsys.readouterr())
    for text in (out, err):
        for secret in (PASSWORD, h.world.api_key):
            assert not any(form in text for form in secret_forms(secret)), "a secret was printed"
    return code, out, err


def _watch(capsys: pytest.CaptureFixture[str], h: Harness, at: datetime, *more: str) -> tuple[int, str, str]:
    return _run(capsys, h, "watch-now", "--local", "--at", at.isoformat(), *more)


def _health(capsys: pytest.CaptureFixture[str], h: Harness) -> dict[str, dict[str, Any]]:
    code, out, _ = _run(capsys, h, "health", "--local", "--json")
    assert code == 0
    return {item["name"]: item for item in json.loads(out)}


def _watch_executions(h: Harness) -> int:
    arn = h.stack.outputs["WatchStateMachineArn"]
    return len(h.stack.client("stepfunctions").list_executions(stateMachineArn=arn)["executions"])


# --- a healthy watch ----------------------------------------------------------------------------------


def test_watch_now_after_an_apply_is_healthy_and_calls_no_cognigy(
    h: Harness, target: SwitchableTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    h.apply([_spec("cli-healthy", target)], cognigy=BLOCK)
    before = len(h.sim.requests)

    code, out, _ = _watch(capsys, h, T0)

    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("watch cli-")
    assert lines[0].endswith("(judging as if at 2026-12-01T09:00:00+00:00)")
    assert lines[1].split() == ["cli-healthy", "healthy"]  # the endpoint, as it was judged
    assert "watched 1: healthy 1, unhealthy 0, deactivated 0" in lines
    assert "no transitions" in lines
    assert lines[-1] == "Cognigy calls 0, writes 1"
    assert len(h.sim.requests) == before  # not even a read

    code, out, _ = _watch(capsys, h, T0 + timedelta(minutes=15), "--json")
    summary = json.loads(out)
    assert code == 0
    assert (summary["watched"], summary["healthy"], summary["cognigyCalls"]) == (1, 1, 0)
    assert summary["results"][0]["name"] == "cli-healthy"
    assert summary["transitions"] == {}
    assert len(h.sim.requests) == before

    [item] = json.loads(_run(capsys, h, "health", "--local", "--json")[1])
    assert {"name", "state", "currentUrl", "certDaysLeft", "consecutiveFailures"} <= set(item)
    assert (item["name"], item["state"], item["consecutiveFailures"]) == ("cli-healthy", "healthy", 0)
    assert item["currentUrl"] == target.url("/hooks/cli-healthy")
    assert isinstance(item["certDaysLeft"], int)
    assert item["certDaysLeft"] > 0
    code, out, _ = _run(capsys, h, "health", "--local")
    assert code == 0
    [row] = [line for line in out.splitlines() if line.startswith("cli-healthy")]
    assert row.split()[1:3] == ["healthy", target.url("/hooks/cli-healthy")]
    for shown in ("TLSv1.3", "ago, ok", f"{item['certDaysLeft']} days"):
        assert shown in row
    assert out.splitlines()[-1] == "1 endpoint(s): healthy 1, unhealthy 0, deactivated 0"


# --- a target that goes down ----------------------------------------------------------------------------


def test_a_target_down_shows_each_transition_in_watch_now_and_in_health(
    h: Harness, target: SwitchableTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    h.apply([_spec("cli-down", target)], cognigy=BLOCK)
    target.down()

    for minutes in (0, 15):  # two failures are a blip
        code, out, _ = _watch(capsys, h, T0 + timedelta(minutes=minutes))
        assert code == 0
        assert "no transitions" in out
    assert _health(capsys, h)["cli-down"]["consecutiveFailures"] == 2

    code, out, _ = _watch(capsys, h, T0 + timedelta(minutes=30))
    assert code == 0
    assert "watched 1: healthy 0, unhealthy 1, deactivated 0" in out
    assert "  cli-down                 unhealthy    Endpoint Unhealthy" in out.splitlines()  # as judged
    [row] = [line for line in out.splitlines() if line.startswith("cli-down")]  # the transitions
    name, rest = row.split(None, 1)
    assert name == "cli-down"
    assert rest.startswith("Endpoint Unhealthy")
    assert "connection_refused" in rest  # the reason the rules gave
    item = _health(capsys, h)["cli-down"]
    assert (item["state"], item["consecutiveFailures"]) == ("unhealthy", 3)

    # a day of failures later: deactivated in Cognigy, the one Cognigy call of the story
    code, out, _ = _watch(capsys, h, T0 + timedelta(hours=25))
    assert code == 0
    assert any(line.startswith("cli-down") and "Endpoint Deactivated" in line for line in out.splitlines())
    assert "Cognigy calls 1, writes" in out
    item = _health(capsys, h)["cli-down"]
    assert (item["state"], item["consecutiveFailures"]) == ("deactivated", 4)
    code, out, _ = _run(capsys, h, "health", "--local")
    [row] = [line for line in out.splitlines() if line.startswith("cli-down")]
    assert row.split()[1] == "deactivated"
    assert "connection_refused" in row
    assert row.split()[-1] == "4"

    # an --at before the last watch is said to change nothing, and changes nothing
    code, out, err = _watch(capsys, h, T0)
    assert code == 0
    assert "note: --at 2026-12-01T09:00:00+00:00 is not after the last watch of 1 endpoint(s)" in err
    assert "no transitions" in out
    assert _health(capsys, h)["cli-down"]["consecutiveFailures"] == 4


def test_a_failover_shows_the_fallback_as_the_current_url(
    h: Harness,
    target: SwitchableTarget,
    fallback: SwitchableTarget,
    capsys: pytest.CaptureFixture[str],
) -> None:
    h.apply([_spec("cli-failover", target, fallback)], cognigy=BLOCK)
    target.down()

    code, out, _ = _watch(capsys, h, T0, "--endpoint", "cli-failover")

    assert code == 0
    [row] = [line for line in out.splitlines() if line.startswith("cli-failover") and "Failed Over" in line]
    assert "Endpoint Failed Over" in row
    assert "Cognigy calls 1" in out  # the URL switched in Cognigy
    item = _health(capsys, h)["cli-failover"]
    assert item["currentUrl"] == fallback.url("/hooks/cli-failover")
    assert (item["failedOver"], item["state"]) == (True, "healthy")
    code, out, _ = _run(capsys, h, "health", "--local")
    [row] = [line for line in out.splitlines() if line.startswith("cli-failover")]
    assert f"{fallback.url('/hooks/cli-failover')} [failed over]" in row


# --- bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "said"),
    [
        ("yesterday", "ISO 8601"),
        ("2026-12-01T09:00:00", "UTC offset"),  # no offset: which zone?
        ("2026-12-01", "UTC offset"),
        ("1999-12-31T23:59:59Z", "from 2000-01-01"),
        ("9999-12-31T23:59:59Z", "before 2200-01-01"),
    ],
)
def test_a_bad_at_is_exit_2_naming_at(
    h: Harness, at: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _watch_executions(h)
    with pytest.raises(SystemExit) as exited:
        main(["watch-now", "--local", "--at", at])
    _, err = capsys.readouterr()
    assert exited.value.code == 2
    [line] = [line for line in err.splitlines() if not line.startswith(("usage:", " "))]
    assert line.startswith("cogwh watch-now: error: argument --at: "), line
    assert said in line
    assert _watch_executions(h) == before


def test_an_unknown_or_malformed_endpoint_is_exit_2_naming_it(
    h: Harness, target: SwitchableTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    h.apply([_spec("cli-known", target)], cognigy=BLOCK)
    before = _watch_executions(h)

    code, out, err = _run(
        capsys, h, "watch-now", "--local", "--endpoint", "cli-known", "--endpoint", "cli-nowhere"
    )

    assert code == 2
    assert out == ""
    assert err.strip() == (
        "cogwh watch-now: --endpoint: no endpoint named 'cli-nowhere' is recorded "
        "(see `cogwh health` for the names)"
    )
    with pytest.raises(SystemExit) as exited:
        main(["watch-now", "--local", "--endpoint", "x"])
    assert exited.value.code == 2
    assert "argument --endpoint: not an endpoint name" in capsys.readouterr().err
    assert _watch_executions(h) == before  # nothing started


def test_a_stack_without_the_watch_is_exit_3(
    h: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    older = {k: v for k, v in h.stack.outputs.items() if k != "WatchStateMachineArn"}
    state = tmp_path / "older.json"
    ops.write_state(
        state,
        stack_name=h.stack.stack_name,
        endpoint_url=h.stack.endpoint_url,
        region=h.stack.region,
        outputs=older,
    )
    monkeypatch.setenv(ops.STATE_FILE_ENV, str(state))

    code, _, err = _run(capsys, h, "watch-now", "--local")

    assert code == 3
    assert "has no watch state machine (deployed before the watch): deploy it again" in err


# --- not waiting, and Ctrl-C --------------------------------------------------------------------------


def test_no_wait_prints_the_watch_and_ctrl_c_leaves_it_running(
    h: Harness, target: SwitchableTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    h.apply([_spec("cli-held", target)], cognigy=BLOCK)

    code, out, _ = _run(capsys, h, "watch-now", "--local", "--no-wait", "--json", "--at", T0.isoformat())
    started = json.loads(out)
    assert code == 0
    assert started["watchId"].startswith("cli-")
    assert started["at"] == "2026-12-01T09:00:00Z"
    assert h.stack.wait_execution(started["executionArn"])["status"] == "SUCCEEDED"
    h.in_flight.wait_idle()

    # Given a watch held in its probe step, When Ctrl-C comes while waiting
    release = threading.Event()
    dispatch = h.stack.dispatch

    def held(function: str, *args: Any, **kwargs: Any) -> Any:
        if "ProbeFunction" in function:
            release.wait(60)
        return dispatch(function, *args, **kwargs)

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    h.stack.dispatch = held  # type: ignore[method-assign]
    try:
        args = watch_now_args("--local", "--at", (T0 + timedelta(minutes=15)).isoformat())
        code = watch_now.run(args, sleep=interrupt)
    finally:
        release.set()
        h.stack.dispatch = dispatch  # type: ignore[method-assign]
    out, err = (_ours(text) for text in capsys.readouterr())

    # Then the command ends with 130, naming the watch, which goes on to its end
    assert code == 130
    watch_id = out.splitlines()[0].split()[1]
    assert f"stopped waiting; watch {watch_id} goes on." in err
    assert "cogwh health --local" in err
    assert f"GET /watches/{watch_id}" in err
    arn = h.stack.outputs["WatchStateMachineArn"].replace(":stateMachine:", ":execution:") + f":{watch_id}"
    assert h.stack.wait_execution(arn)["status"] == "SUCCEEDED"
    h.in_flight.wait_idle()


def test_while_the_watch_runs_its_map_run_s_progress_is_shown_on_stderr(
    h: Harness, target: SwitchableTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a watch whose one child is held in its probe step (its events are in no history: EXPRESS)
    h.apply([_spec("cli-progress", target)], cognigy=BLOCK)
    release = threading.Event()
    dispatch = h.stack.dispatch
    shown: list[dict[str, Any]] = []

    def held(function: str, *args: Any, **kwargs: Any) -> Any:
        if "ProbeFunction" in function:
            release.wait(60)
        return dispatch(function, *args, **kwargs)

    def progress(counts: dict[str, Any]) -> None:
        shown.append(counts)
        watch_now._show_progress(counts)
        if counts.get("running"):
            release.set()  # seen running: let the child go on

    h.stack.dispatch = held  # type: ignore[method-assign]
    try:
        access = ops.stack_access(ops.target(watch_now_args("--local")))
        started = library_ops.start_watch(access, at=T0, names=["cli-progress"], source="cli")
        view = watch_now.follow_watch(access, started, on_result=watch_now._show, on_progress=progress)
    finally:
        release.set()
        h.stack.dispatch = dispatch  # type: ignore[method-assign]
    h.in_flight.wait_idle()
    out, err = (_ours(text) for text in capsys.readouterr())

    # Then its map run's counts were shown while it ran, and each endpoint's judgement at its end
    assert view.status == "SUCCEEDED"
    assert {"total": 1, "running": 1} in [{k: c.get(k) for k in ("total", "running")} for c in shown]
    assert "  judged 0 of 1 (0 failed, 1 running)" in err.splitlines()
    assert out.split() == ["cli-progress", "healthy"]


def watch_now_args(*argv: str) -> Any:
    from cogwh import cli

    return cli.build_parser().parse_args(["watch-now", *argv])


# --- the table's pieces ---------------------------------------------------------------------------------


def test_ages_are_whole_units_and_a_clock_ahead_is_now() -> None:
    assert [health.age(timedelta(seconds=s)) for s in (-5, 0, 42, 61, 7200, 3 * 86_400 + 5)] == [
        "now",
        "now",
        "42s",
        "1m",
        "2h",
        "3d",
    ]


def test_a_watch_whose_execution_fails_is_exit_1_saying_why(
    h: Harness, target: SwitchableTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a watch whose first step fails as a Lambda crash would (no Retry or Catch takes it)
    h.apply([_spec("cli-crashed", target)], cognigy=BLOCK)
    dispatch = h.stack.dispatch

    def crashing(function: str, body: Any, headers: Any, response_headers: dict[str, Any]) -> Any:
        event = json.loads(body) if body else {}
        if "WatchFunction" in function and event.get("step") == "list":
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": "ListingCrashed", "errorMessage": "crashed"}).encode()
        return dispatch(function, body, headers, response_headers)

    h.stack.dispatch = crashing  # type: ignore[method-assign]
    try:
        code, out, err = _watch(capsys, h, T0)
        json_code, json_out, _ = _watch(capsys, h, T0, "--json")
    finally:
        h.stack.dispatch = dispatch  # type: ignore[method-assign]

    # Then exit 1, the watch's status and error said; --json prints the watch's view
    assert code == 1
    watch_id = out.splitlines()[0].split()[1]
    assert f"cogwh watch-now: watch {watch_id} FAILED: ListingCrashed" in err
    assert json_code == 1
    view = json.loads(json_out)
    assert (view["status"], view["error"], view["summary"]) == ("FAILED", "ListingCrashed", None)
