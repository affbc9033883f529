"""The reconcile's functions print their metrics through the real ASL on the local stack: the plan and
register functions count every Cognigy call (a 429, a refused key), the probe function its latency and
result by reason, each document with the stack's own dimension, none with a secret."""

from __future__ import annotations

import dataclasses
import secrets

import pytest

from cogwh.simulator import SimulatorConfig
from tests.integration.reconcile.harness import Harness
from tests.support.emf import dimensions, documents, metric_names, total


def test_a_throttled_reconcile_counts_its_cognigy_calls_and_its_probes(
    h: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    h.sim.set_faults({"script": ["pass", "429"], "retry_after_s": 1})
    capsys.readouterr()

    applied = h.apply([h.endpoint("metered-hook"), h.endpoint("dead-hook", port="PORT_DOWN")])

    out = capsys.readouterr().out
    docs = documents(out)
    assert applied.result("metered-hook")["outcome"] == "created"
    # every request the functions made to Cognigy, counted once (the CLI's own calls are not theirs)
    assert total(docs, "CognigyCalls") == h.sim.count()
    assert total(docs, "CognigyThrottles") == h.sim.count(status=429) == 1
    assert total(docs, "CognigyAuthFailures") == 0
    assert total(docs, "ProbeResult", Reason="ok") == 1
    assert total(docs, "ProbeResult", Reason="connection_refused") == 1
    assert len([v for d in docs if "ProbeLatency" in metric_names(d) for v in d["ProbeLatency"]]) >= 1
    assert {dimensions(d)["stack"] for d in docs} == {h.stack.stack_name}
    assert h.world.api_key not in out


def test_a_refused_api_key_is_counted_as_an_auth_failure(
    h: Harness, simulator_config: SimulatorConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    h.sim.reset(dataclasses.replace(simulator_config, api_keys=("ck_rotated_" + secrets.token_urlsafe(16),)))
    capsys.readouterr()

    applied = h.apply([h.endpoint("keyed-hook")])

    out = capsys.readouterr().out
    docs = documents(out)
    assert applied.run.status == "FAILED"
    refused = h.sim.count(status=401)
    assert refused >= 1
    assert total(docs, "CognigyAuthFailures") == refused
    assert total(docs, "CognigyCalls") == h.sim.count()
    assert h.world.api_key not in out
