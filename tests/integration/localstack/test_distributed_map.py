"""Distributed Map on the local stack (moto 5.2.5 and cogwh/localstack/distributed.py): what runs, what
the local stack adds, and what it cannot show. Each test creates a tiny state machine of its own in
the stack's moto; the children's Task is the fixture's in-process ``ItemFunction``.

Facts these tests pin (issue 13, item 1):
1. An ``ItemReader`` over an S3 JSON array runs one child per item, STANDARD or EXPRESS children,
   on the in-process Lambda handlers; ``InputType: JSONL`` and ``ItemBatcher`` are refused by moto's
   parser at create.
2. ``ResultWriter`` writes ``manifest.json`` and ``SUCCEEDED_0.json``/``FAILED_0.json`` (JSON arrays
   of child results) under ``<Prefix>/<map run id>/``, its Parameters' paths read from the Map's
   input; a Task after the map reads them.
3. ``MaxConcurrency`` bounds the children running at once. With no tolerance, one failing child
   fails the map (``States.ExceedToleratedFailureThreshold``; moto alone swallowed it); within
   ``ToleratedFailurePercentage``/``Count`` it is reported (FAILED_0.json, DescribeMapRun's counts);
   past it no child starts. A Catch inside the child turns a failure into a result.
4. The parent's history has the same 8 events for 5 items or 40 (the reconcile's: 18 at 50 or 3,000
   endpoints, bench/reconcile.py). STANDARD children are
   executions of their own (ListExecutions(mapRunArn=...), DescribeExecution, GetExecutionHistory:
   what the local stack adds); EXPRESS children are listed nowhere, as on AWS.
5. Waits inside children are scaled like any other; stopping the parent stops its children.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cogwh.localstack import LocalStack
from tests.integration.localstack.helpers import FIXTURES, module_of

PROJECT = FIXTURES / "distributed"
ROLE = "arn:aws:iam::123456789012:role/fixture"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(PROJECT, stack_name="dmapfix") as local:
        yield local


@pytest.fixture
def item_fn(stack: LocalStack) -> Iterator[Any]:
    """The children's handler module, its counters reset."""
    module = module_of(stack, "ItemFunction")
    module.reset()
    yield module
    module.reset()


class Maps:
    """Builds and runs tiny Distributed Map state machines in the stack's moto."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.sfn = stack.client("stepfunctions")
        self.s3 = stack.client("s3")
        self.bucket = stack.outputs["DataBucketName"]
        self.item_arn = stack.attribute("ItemFunction", "Arn")
        self.read_arn = stack.attribute("ReadResultsFunction", "Arn")

    def put_items(self, items: list[Any]) -> str:
        key = f"items/{uuid.uuid4().hex}.json"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=json.dumps(items).encode())
        return key

    def map_state(
        self,
        *,
        execution_type: str = "STANDARD",
        child: dict[str, Any] | None = None,
        writer: bool = True,
        reader: dict[str, Any] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        processor = child or {
            "StartAt": "Work",
            "States": {"Work": {"Type": "Task", "Resource": self.item_arn, "End": True}},
        }
        state: dict[str, Any] = {
            "Type": "Map",
            "ItemReader": reader
            or {
                "Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "JSON"},
                "Parameters": {"Bucket": self.bucket, "Key.$": "$.key"},
            },
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": execution_type},
                **processor,
            },
            **fields,
        }
        if writer:
            state["ResultWriter"] = {
                "Resource": "arn:aws:states:::s3:putObject",
                "Parameters": {"Bucket": self.bucket, "Prefix": "results"},
            }
        return state

    def machine(self, map_state: dict[str, Any], *, then_read: bool = False) -> str:
        map_state = {**map_state, "End": True}
        states: dict[str, Any] = {"Fan": map_state}
        if then_read:
            map_state.pop("End")
            map_state["Next"] = "Read"
            states["Read"] = {"Type": "Task", "Resource": self.read_arn, "End": True}
        definition = {"StartAt": "Fan", "States": states}
        return str(
            self.sfn.create_state_machine(
                name=f"dmap-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=ROLE
            )["stateMachineArn"]
        )

    def run(self, machine: str, items: list[Any], **extra: Any) -> tuple[dict[str, Any], str]:
        arn = self.stack.start_execution(machine, {"key": self.put_items(items), **extra})
        return self.stack.wait_execution(arn, timeout=60), arn

    def map_run(self, execution_arn: str) -> dict[str, Any]:
        [listed] = self.sfn.list_map_runs(executionArn=execution_arn)["mapRuns"]
        described = dict(self.sfn.describe_map_run(mapRunArn=listed["mapRunArn"]))
        described.pop("ResponseMetadata", None)
        return described

    def read(self, key: str) -> Any:
        return json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def results(self, output: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        details = output["ResultWriterDetails"]
        manifest = self.read(details["Key"])
        return {
            status: [entry for f in listed for entry in self.read(f["Key"])]
            for status, listed in manifest["ResultFiles"].items()
        }


@pytest.fixture
def maps(stack: LocalStack) -> Maps:
    return Maps(stack)


def numbered(count: int, **fields: Any) -> list[dict[str, Any]]:
    return [{"n": n, **fields} for n in range(count)]


# -- 1. reading items from S3, children on the in-process Lambdas -------------------------------


@pytest.mark.parametrize("execution_type", ["STANDARD", "EXPRESS"])
def test_an_s3_json_array_runs_one_child_per_item_on_the_local_functions(
    maps: Maps, item_fn: Any, execution_type: str
) -> None:
    # Given a Distributed Map over an S3 JSON array whose children get the map's input through $
    machine = maps.machine(
        maps.map_state(
            execution_type=execution_type,
            ItemSelector={"n.$": "$$.Map.Item.Value.n", "run.$": "$.run"},
        )
    )

    # When it runs over five items
    described, _arn = maps.run(machine, numbered(5), run="r1")

    # Then each item ran once in a child, on the stack's own function, with the map's input
    assert described["status"] == "SUCCEEDED", described
    assert sorted(call["n"] for call in item_fn.CALLS) == [0, 1, 2, 3, 4]
    assert {call["run"] for call in item_fn.CALLS} == {"r1"}
    succeeded = maps.results(json.loads(described["output"]))["SUCCEEDED"]
    outputs = [json.loads(entry["Output"]) for entry in succeeded]
    assert [o["n"] for o in outputs] == [0, 1, 2, 3, 4]
    assert {o["function"] for o in outputs} == {maps.stack.physical_id("ItemFunction")}


@pytest.mark.parametrize(
    ("field", "value", "refused"),
    [
        ("ReaderConfig", {"InputType": "JSONL"}, "JSONL"),
        ("ItemBatcher", {"MaxItemsPerBatch": 10}, "ItemBatcher"),
    ],
)
def test_jsonl_items_and_an_item_batcher_are_refused_at_create(
    maps: Maps, field: str, value: Any, refused: str
) -> None:
    state = maps.map_state()
    if field == "ReaderConfig":
        state["ItemReader"]["ReaderConfig"] = value
    else:
        state[field] = value
    with pytest.raises(ClientError) as raised:
        maps.machine(state)
    assert refused in str(raised.value)


# -- 2. the ResultWriter --------------------------------------------------------------------------


def test_the_result_writer_writes_a_manifest_and_result_files_a_later_task_reads(
    maps: Maps, item_fn: Any
) -> None:
    # Given a map whose results go to S3, one item failing (tolerated), and a Task after it
    machine = maps.machine(maps.map_state(ToleratedFailureCount=1), then_read=True)

    # When it runs
    described, arn = maps.run(machine, [{"n": 0}, {"n": 1, "fail": True}, {"n": 2}])

    # Then the Task read the manifest naming both files, in AWS's shapes
    assert described["status"] == "SUCCEEDED", described
    read = json.loads(described["output"])
    manifest = read["manifest"]
    [listed_run] = maps.sfn.list_map_runs(executionArn=arn)["mapRuns"]
    map_run_arn = listed_run["mapRunArn"]
    run_id = map_run_arn.split(":")[-1]
    assert manifest["MapRunArn"] == map_run_arn
    assert manifest["DestinationBucket"] == maps.bucket
    assert [f["Key"] for f in manifest["ResultFiles"]["SUCCEEDED"]] == [f"results/{run_id}/SUCCEEDED_0.json"]
    assert [f["Key"] for f in manifest["ResultFiles"]["FAILED"]] == [f"results/{run_id}/FAILED_0.json"]
    assert manifest["ResultFiles"]["PENDING"] == []
    for listed in manifest["ResultFiles"]["SUCCEEDED"] + manifest["ResultFiles"]["FAILED"]:
        head = maps.s3.head_object(Bucket=maps.bucket, Key=listed["Key"])
        assert head["ContentLength"] == listed["Size"]
    succeeded, failed = read["files"]["SUCCEEDED"], read["files"]["FAILED"]
    assert [json.loads(e["Input"])["n"] for e in succeeded] == [0, 2]
    assert [json.loads(e["Output"])["n"] for e in succeeded] == [0, 2]
    assert {e["Status"] for e in succeeded} == {"SUCCEEDED"}
    [bad] = failed
    assert bad["Status"] == "FAILED"
    assert json.loads(bad["Input"]) == {"n": 1, "fail": True}
    assert bad["Error"] == "ItemFailed"
    assert json.loads(bad["Cause"])["errorMessage"] == "item 1 asked to fail"
    assert "Output" not in bad
    for entry in succeeded + failed:
        assert entry["StateMachineArn"] == listed_run["stateMachineArn"]
        assert entry["ExecutionArn"].endswith(":" + entry["Name"])
        assert entry["StartDate"] <= entry["StopDate"]


def test_the_result_writer_reads_its_bucket_and_prefix_from_the_map_input(maps: Maps, item_fn: Any) -> None:
    # Given a ResultWriter whose Parameters are paths into the Map state's input
    state = maps.map_state()
    state["ResultWriter"]["Parameters"] = {"Bucket.$": "$.out.bucket", "Prefix.$": "$.out.prefix"}
    machine = maps.machine(state)

    # When it runs
    described, _arn = maps.run(machine, numbered(2), out={"bucket": maps.bucket, "prefix": "by-path/run-1"})

    # Then the results went where the input said (moto read the paths from the children's outputs)
    assert described["status"] == "SUCCEEDED", described
    details = json.loads(described["output"])["ResultWriterDetails"]
    assert details["Bucket"] == maps.bucket
    assert details["Key"].startswith("by-path/run-1/")
    assert len(maps.results(json.loads(described["output"]))["SUCCEEDED"]) == 2


# -- 3. concurrency and failures ------------------------------------------------------------------


def test_max_concurrency_bounds_the_children_running_at_once(maps: Maps, item_fn: Any) -> None:
    # Given children that each wait until three are running together
    item_fn.BARRIER = threading.Barrier(3)
    machine = maps.machine(maps.map_state(MaxConcurrency=3))

    # When nine items run at MaxConcurrency 3
    described, _arn = maps.run(machine, numbered(9))

    # Then three ran at once (the barrier opened three times) and never more
    assert described["status"] == "SUCCEEDED", described
    assert len(item_fn.CALLS) == 9
    assert item_fn.IN_FLIGHT["max"] == 3


def test_one_failing_child_fails_the_map_when_nothing_is_tolerated(maps: Maps, item_fn: Any) -> None:
    # Given a map with no tolerated failures (the default)
    machine = maps.machine(maps.map_state(MaxConcurrency=1))

    # When one child fails
    described, arn = maps.run(machine, [{"n": 0}, {"n": 1, "fail": True}, {"n": 2}])

    # Then the map run fails, and with it the execution (moto alone swallowed the failure)
    assert described["status"] == "FAILED"
    assert described["error"] == "States.ExceedToleratedFailureThreshold"
    run = maps.map_run(arn)
    assert run["status"] == "FAILED"
    assert run["itemCounts"]["failed"] == 1
    assert [call["n"] for call in item_fn.CALLS] == [0, 1]  # no child started after the failure


def test_a_failing_child_within_the_tolerated_percentage_is_reported_not_fatal(
    maps: Maps, item_fn: Any
) -> None:
    # Given a map tolerating 20 % (an integer, as AWS accepts it)
    machine = maps.machine(maps.map_state(ToleratedFailurePercentage=20, MaxConcurrency=2))

    # When one child of ten fails
    items = numbered(10)
    items[4]["fail"] = True
    described, arn = maps.run(machine, items)

    # Then the map succeeds and the failure is visible: in FAILED_0.json and in the map run's counts
    assert described["status"] == "SUCCEEDED", described
    results = maps.results(json.loads(described["output"]))
    assert [json.loads(e["Input"])["n"] for e in results["FAILED"]] == [4]
    assert len(results["SUCCEEDED"]) == 9
    run = maps.map_run(arn)
    assert run["toleratedFailurePercentage"] == 20.0
    counts = run["itemCounts"]
    assert (counts["total"], counts["succeeded"], counts["failed"], counts["running"]) == (10, 9, 1, 0)
    assert counts["resultsWritten"] == 9
    assert run["executionCounts"]["running"] == 0
    assert run["executionCounts"]["failed"] == 1


def test_no_child_starts_once_the_tolerated_count_is_exceeded(maps: Maps, item_fn: Any) -> None:
    # Given a map tolerating two failures, one child at a time
    machine = maps.machine(maps.map_state(ToleratedFailureCount=2, MaxConcurrency=1))

    # When every item fails
    described, arn = maps.run(machine, numbered(10, fail=True))

    # Then the third failure fails the map run and no fourth child starts
    assert described["status"] == "FAILED"
    assert described["error"] == "States.ExceedToleratedFailureThreshold"
    assert len(item_fn.CALLS) == 3
    assert maps.map_run(arn)["itemCounts"]["failed"] == 3


def test_a_catch_inside_the_child_turns_its_failure_into_a_result(maps: Maps, item_fn: Any) -> None:
    # Given children that catch their task's failure and report it
    child = {
        "StartAt": "Work",
        "States": {
            "Work": {
                "Type": "Task",
                "Resource": maps.item_arn,
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Report"}],
                "End": True,
            },
            "Report": {
                "Type": "Pass",
                "Parameters": {"n.$": "$.n", "failed": True, "error.$": "$.error.Error"},
                "End": True,
            },
        },
    }
    machine = maps.machine(maps.map_state(child=child))

    # When one item fails (nothing tolerated)
    described, _arn = maps.run(machine, [{"n": 0}, {"n": 1, "fail": True}])

    # Then the map succeeds and the failure is the item's result
    assert described["status"] == "SUCCEEDED", described
    results = maps.results(json.loads(described["output"]))
    assert results["FAILED"] == []
    outputs = sorted((json.loads(e["Output"]) for e in results["SUCCEEDED"]), key=lambda o: o["n"])
    assert outputs[1] == {"n": 1, "failed": True, "error": "ItemFailed"}


# -- 4. the parent's history and the children ----------------------------------------------------


def test_the_parent_history_does_not_grow_with_the_items(maps: Maps, item_fn: Any) -> None:
    machine = maps.machine(maps.map_state(MaxConcurrency=10))
    lengths = {}
    for count in (5, 40):
        described, arn = maps.run(machine, numbered(count))
        assert described["status"] == "SUCCEEDED", described
        lengths[count] = [e["type"] for e in maps.stack.execution_history(arn)]
    assert lengths[5] == lengths[40]
    assert lengths[40] == [
        "ExecutionStarted",
        "MapStateEntered",
        "MapStateStarted",
        "MapRunStarted",
        "MapRunSucceeded",
        "MapStateSucceeded",
        "MapStateExited",
        "ExecutionSucceeded",
    ]
    assert len(item_fn.CALLS) == 45


def test_standard_children_are_executions_with_their_own_history(maps: Maps, item_fn: Any) -> None:
    # Given a map over three items, one of which fails within the tolerated percentage
    machine = maps.machine(maps.map_state(ToleratedFailurePercentage=50))
    described, arn = maps.run(machine, [{"n": 0}, {"n": 1, "fail": True}, {"n": 2}])
    assert described["status"] == "SUCCEEDED", described
    map_run_arn = maps.map_run(arn)["mapRunArn"]

    # When its children are listed by the map run, a page at a time
    first = maps.sfn.list_executions(mapRunArn=map_run_arn, maxResults=2)
    rest = maps.sfn.list_executions(mapRunArn=map_run_arn, nextToken=first["nextToken"])
    listed = first["executions"] + rest["executions"]

    # Then there are three, each under the map run's state machine, and each one described and
    # its history read as an execution's: started with its item, its task, its end
    assert len(listed) == 3
    assert "nextToken" not in rest
    assert {c["mapRunArn"] for c in listed} == {map_run_arn}
    assert all(c["executionArn"].startswith(machine.replace(":stateMachine:", ":execution:")) for c in listed)
    by_status = {c["status"] for c in listed}
    assert by_status == {"SUCCEEDED", "FAILED"}
    for child in listed:
        one = maps.sfn.describe_execution(executionArn=child["executionArn"])
        history = maps.stack.execution_history(child["executionArn"])
        types = [e["type"] for e in history]
        item = json.loads(one["input"])
        assert json.loads(history[0]["executionStartedEventDetails"]["input"]) == item
        assert types[0] == "ExecutionStarted"
        assert "LambdaFunctionScheduled" in types
        if item.get("fail"):
            assert one["status"] == "FAILED"
            assert types[-1] == "ExecutionFailed"
        else:
            assert one["status"] == "SUCCEEDED"
            assert types[-1] == "ExecutionSucceeded"
            assert json.loads(one["output"])["n"] == item["n"]
    # and the parent's history holds none of their events
    assert "LambdaFunctionScheduled" not in [e["type"] for e in maps.stack.execution_history(arn)]


def test_express_children_are_listed_nowhere(maps: Maps, item_fn: Any) -> None:
    # as on AWS: an EXPRESS child's history is not kept; its result reaches the ResultWriter only
    machine = maps.machine(maps.map_state(execution_type="EXPRESS"))
    described, arn = maps.run(machine, numbered(2))
    assert described["status"] == "SUCCEEDED", described
    map_run_arn = maps.map_run(arn)["mapRunArn"]
    assert maps.sfn.list_executions(mapRunArn=map_run_arn)["executions"] == []
    assert len(maps.results(json.loads(described["output"]))["SUCCEEDED"]) == 2


# -- 5. waits and stops ---------------------------------------------------------------------------


def test_waits_and_retries_inside_children_are_scaled(maps: Maps, item_fn: Any) -> None:
    # Given children that wait an hour, then retry a failing task every hour (waits instant here)
    child = {
        "StartAt": "Hold",
        "States": {
            "Hold": {"Type": "Wait", "Seconds": 3600, "Next": "Work"},
            "Work": {
                "Type": "Task",
                "Resource": maps.item_arn,
                "Retry": [{"ErrorEquals": ["ItemFailed"], "IntervalSeconds": 3600, "MaxAttempts": 2}],
                "End": True,
            },
        },
    }
    machine = maps.machine(maps.map_state(child=child, ToleratedFailureCount=2))

    # When two items run, one failing every attempt
    described, _arn = maps.run(machine, [{"n": 0}, {"n": 1, "fail": True}])

    # Then the run ends within the test's wait (an unscaled hour would not), with every retry made
    assert described["status"] == "SUCCEEDED", described
    assert sorted(call["n"] for call in item_fn.CALLS) == [0, 1, 1, 1]


def test_stopping_the_parent_stops_its_children(maps: Maps, item_fn: Any) -> None:
    # Given a run whose first child is held inside its task, one child at a time
    item_fn.GATE = threading.Event()
    machine = maps.machine(maps.map_state(MaxConcurrency=1))
    arn = maps.stack.start_execution(machine, {"key": maps.put_items(numbered(5))})
    with item_fn.ARRIVED:
        assert item_fn.ARRIVED.wait_for(lambda: len(item_fn.CALLS) == 1, timeout=30)

    # When the parent is stopped (as the local stack does on close) and the held task returns
    maps.sfn.stop_execution(executionArn=arn, error="Stopped", cause="test")
    item_fn.GATE.set()
    described = maps.stack.wait_execution(arn, timeout=60)

    # Then the execution is aborted and no other child started
    assert described["status"] == "ABORTED"
    assert len(item_fn.CALLS) == 1
