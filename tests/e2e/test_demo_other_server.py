"""`cogwh demo --cognigy-url ...`: the demo against another Cognigy-compatible server (a second
simulator, its own key read from an environment variable and its own CA), run whole (a file of its
own, so the demos run on different test workers)."""

from __future__ import annotations

import io
import os
from unittest import mock

from cogwh import cli
from cogwh.demo import DEMO_PROJECT_ID, CognigyChoice, run_demo
from tests.e2e.demo_checks import verdicts, watch_scene
from tests.support.simulator import RunningSimulator


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
    ok, total = verdicts(text)
    assert (
        ok == total == 16
    )  # the applies, the receiver's checks, the watch; the round trip needs the simulator
    assert simulator.state.count(method="POST") >= 2  # the stack talked to this server
    watch_scene(text, "active")
    # the watch deactivated and reactivated the endpoint on this server: its two writes
    patches = [r for r in simulator.state.requests if r["method"] == "PATCH"]
    assert len(patches) == 2, patches
