"""statemachine/reconcile_distributed.asl.json (not wired into template.yaml yet) on the local stack,
against the real Probe, Register and Summarize functions, the Cognigy simulator and real HTTPS targets.

The plan's S3 write is not built yet: the test plays it (:func:`planned`): the real Plan function
plans the desired set, the test writes the items to the config bucket and hands the state machine
the plan's output with ``itemsRef`` in place of the items; the execution then starts at the
Distributed Map. What summarize will do is played too (:func:`summary_of`): the manifest and the
result files are read and given to the library's ``summarize``.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from typing import Any

import pytest

from cognigy_webhooks.dal.desired_sets import DesiredSetStore
from cognigy_webhooks.reconcile import summarize
from cogwh.demo import ROOT
from cogwh.localstack import LocalStack, asl
from cogwh.simulator import SimulatorConfig
from tests.integration.reconcile.harness import Harness

DISTRIBUTED = ROOT / "statemachine" / "reconcile_distributed.asl.json"
ROLE = "arn:aws:iam::123456789012:role/reconcile-distributed"
CHILD_STATES = {"Route", "Probe", "ProbePassed", "Register", "RecordProbeFailure", "RecordFailure"}


@pytest.fixture(scope="module")
def machine(stack: LocalStack) -> str:
    """The distributed reconcile, substituted and checked as the local stack does for the template's
    state machines, starting at its map (the test plays the plan)."""
    where = "ReconcileDistributed"
    text = asl.substitute(
        DISTRIBUTED.read_text(encoding="utf-8"),
        {
            "PlanFunctionArn": stack.attribute("PlanFunction", "Arn"),
            "ProbeFunctionArn": stack.attribute("ProbeFunction", "Arn"),
            "RegisterFunctionArn": stack.attribute("RegisterFunction", "Arn"),
            "SummarizeFunctionArn": stack.attribute("SummarizeFunction", "Arn"),
            "ThrottleRounds": 5,
            "ToleratedFailurePercentage": 5,
        },
        where,
    )
    definition = asl.parse(text, where)
    asl.check(definition, where)
    definition["StartAt"] = "ApplyEach"
    response = stack.client("stepfunctions").create_state_machine(
        name=f"{stack.stack_name}-reconcile-distributed", definition=json.dumps(definition), roleArn=ROLE
    )
    return str(response["stateMachineArn"])


def planned(h: Harness, machine: str, endpoints: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """What the plan step will return: the real plan, its items written to the config bucket."""
    s3 = h.stack.client("s3")
    bucket = h.stack.outputs["ConfigBucketName"]
    store = DesiredSetStore(s3, bucket)
    version = store.put({"endpoints": endpoints})
    plan = h.stack.invoke(
        "PlanFunction",
        {
            "input": {
                "desiredRef": {"bucket": bucket, "key": store.KEY, "versionId": version},
                "source": "cli",
            },
            "executionId": machine.replace(":stateMachine:", ":execution:") + f":{name}",
        },
    )
    items = plan.pop("items")
    key = f"reconcile/{name}/items.json"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(items).encode())
    plan["itemsRef"] = {
        "bucket": bucket,
        "key": key,
        "resultsPrefix": f"reconcile/{name}/results",
        "count": len(items),
        "concurrency": 1,
    }
    return dict(plan)


def run(h: Harness, machine: str, endpoints: list[dict[str, Any]], name: str) -> tuple[dict[str, Any], str]:
    arn = h.stack.start_execution(machine, planned(h, machine, endpoints, name), name=name)
    described = h.stack.wait_execution(arn, timeout=120)
    h.in_flight.wait_idle()
    return described, arn


def summary_of(h: Harness, details: dict[str, str], invalid: list[dict[str, Any]], arn: str) -> Any:
    """What the summarize step will do: the manifest, each result file, the library's summarize."""
    s3 = h.stack.client("s3")

    def read(key: str) -> Any:
        return json.loads(s3.get_object(Bucket=details["Bucket"], Key=key)["Body"].read())

    manifest = read(details["Key"])
    files = {s: [e for f in listed for e in read(f["Key"])] for s, listed in manifest["ResultFiles"].items()}
    assert files["FAILED"] == []  # every endpoint's failure is caught and recorded inside its child
    results = [json.loads(entry["Output"]) for entry in files["SUCCEEDED"]]
    return summarize(results, invalid, execution_id=arn, source="cli")


def test_the_distributed_reconcile_applies_each_endpoint_in_a_child(h: Harness, machine: str) -> None:
    # Given two healthy endpoints and one whose target is down
    endpoints = [h.endpoint("dmap-one"), h.endpoint("dmap-two", port="PORT_TLS12")]
    endpoints.append(h.endpoint("dmap-down", port="PORT_DOWN"))

    # When the distributed reconcile applies them
    described, arn = run(h, machine, endpoints, "dmap-apply")

    # Then it succeeds, its own history without one event of any endpoint
    assert described["status"] == "SUCCEEDED", (described.get("error"), described.get("cause"))
    history = h.stack.execution_history(arn)
    entered = {e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e}
    assert entered == {"ApplyEach", "Summarize"}
    assert not entered & CHILD_STATES
    # and summarize was handed where the results are
    [exited] = [e for e in history if e["type"] == "MapStateExited"]
    applied = json.loads(exited["stateExitedEventDetails"]["output"])["applied"]
    assert applied["ResultWriterDetails"]["Key"].startswith("reconcile/dmap-apply/results/")
    [scheduled] = [e for e in history if e["type"] == "LambdaFunctionScheduled"]
    handed = json.loads(scheduled["lambdaFunctionScheduledEventDetails"]["input"])
    assert handed["resultWriterDetails"] == applied["ResultWriterDetails"]

    # and the result files say what each endpoint's child did
    summary = summary_of(h, applied["ResultWriterDetails"], [], arn)
    assert summary.counts == {"created": 2, "updated": 0, "unchanged": 0, "deleted": 0, "failed": 1}
    assert sorted(summary.created) == ["dmap-one", "dmap-two"]
    assert [f["name"] for f in summary.failed] == ["dmap-down"]
    # as do Cognigy and the records
    assert len(h.sim.webhooks_named("dmap-one")) == len(h.sim.webhooks_named("dmap-two")) == 1
    assert h.sim.webhooks_named("dmap-down") == []
    for name in ("dmap-one", "dmap-two"):
        record = h.record(name)
        assert record is not None
        assert record.status == "registered"
        assert record.last_execution_id == arn


def test_a_refused_api_key_stops_the_distributed_reconcile(
    h: Harness, machine: str, simulator_config: SimulatorConfig
) -> None:
    # Given Cognigy no longer accepting the key
    h.sim.reset(dataclasses.replace(simulator_config, api_keys=("ck_rotated_" + secrets.token_urlsafe(16),)))

    # When two new endpoints are applied, one child at a time
    described, arn = run(h, machine, [h.endpoint("dmap-key-one"), h.endpoint("dmap-key-two")], "dmap-key")

    # Then the first refusal fails the map run past its tolerance, and no other child asks Cognigy
    assert described["status"] == "FAILED"
    assert described["error"] == "States.ExceedToleratedFailureThreshold"
    assert h.sim.count(status=401) == 1
    assert h.cognigy_writes() == 0
    sfn = h.stack.client("stepfunctions")
    [listed] = sfn.list_map_runs(executionArn=arn)["mapRuns"]
    counts = sfn.describe_map_run(mapRunArn=listed["mapRunArn"])["itemCounts"]
    assert (counts["failed"], counts["succeeded"]) == (1, 0)
    assert h.world.api_key not in json.dumps(described, default=str)
