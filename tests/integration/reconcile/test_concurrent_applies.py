"""Two executions applying the same endpoints at once (a CLI apply racing the deploy-triggered one)
against a Cognigy that stores duplicate names: exactly one webhook per name (issue 8, item 5).

The simulator answers every API request 150 ms late, so both executions look each name up before
either creates it: without a per-name claim both would create. This module's local stack runs the
state machine's retry intervals at a fifth of their length (not instantly): the execution that finds
a name claimed waits its backoff while the holder finishes, as on AWS, and then finds its record."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from cogwh.demo import API_KEY_SECRET_NAME, ROOT, LocalWorld
from cogwh.localstack import LocalStack
from tests.integration.reconcile.harness import Applied, Harness, in_flight, stack_parameters

NAMES = ["race-one", "race-two", "race-three"]


@pytest.fixture(scope="module")
def stack(world: LocalWorld) -> Iterator[LocalStack]:
    with LocalStack(ROOT, parameters=stack_parameters(world), time_factor=0.2) as local:
        local.client("secretsmanager").create_secret(Name=API_KEY_SECRET_NAME, SecretString=world.api_key)
        yield local
        in_flight(local).wait_idle()


def test_two_executions_at_once_make_exactly_one_webhook_per_name(h: Harness) -> None:
    # Given a Cognigy that accepts duplicate names (as the real service may) and answers slowly
    h.sim.set_config({"allow_duplicate_names": True})
    h.sim.set_faults({"slow_ms": 150})
    desired = [h.endpoint(name) for name in NAMES]

    # When the same set is applied twice at once (a CLI apply and a deploy-triggered one)
    with ThreadPoolExecutor(2) as pool:
        runs: list[Applied] = list(
            pool.map(lambda source: h.apply(desired, source=source), ["cli", "deploy"])
        )

    # Then Cognigy holds exactly one webhook per name, each created once
    for name in NAMES:
        webhooks = h.sim.webhooks_named(name)
        assert len(webhooks) == 1, (name, webhooks)
        assert h.sim.creates_by_name[name] == 1
        # one execution created it; the other found it claimed, retried, and found the record
        outcomes = sorted(run.result(name)["outcome"] for run in runs)
        assert outcomes == ["created", "unchanged"], (name, outcomes)
        assert {run.result(name)["webhookId"] for run in runs} == {webhooks[0]["id"]}
        record = h.record(name)
        assert record is not None
        assert record.webhook_id == webhooks[0]["id"]
    claimed = [f for run in runs for f in run.task_failures() if f["error"] == "EndpointClaimed"]
    assert claimed  # the race did happen: the claim held one execution back
    # and a clean re-apply finds nothing to remove or create
    again = h.apply(desired)
    assert again.summary["unchanged"] == NAMES
    assert [len(h.sim.webhooks_named(name)) for name in NAMES] == [1, 1, 1]
