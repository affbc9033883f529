"""The local stack runs the fixture template: resources from the template's own properties, handlers
in this process, the state machine from its ASL file on moto's interpreter, waits instant."""

from __future__ import annotations

import json
import os
import threading
import uuid

import pytest
from cfnlint.decode import cfn_yaml

from cogwh.localstack import ApiRoute, LocalStack, LocalStackError
from tests.integration.localstack.helpers import FIXTURES, events_of, output_of, unique

TEMPLATE = cfn_yaml.loads((FIXTURES / "template.yaml").read_text(), "template.yaml")


def run_flow(stack: LocalStack, items: list[dict[str, object]]) -> tuple[dict, list[dict]]:
    arn = stack.start_execution("FlowStateMachine", {"items": items})
    described = stack.wait_execution(arn, timeout=30)
    return described, stack.execution_history(arn)


# -- resources from the template ----------------------------------------------------------------


def test_tables_are_built_from_the_templates_own_properties(stack: LocalStack) -> None:
    declared = TEMPLATE["Resources"]["ItemsTable"]["Properties"]
    dynamodb = stack.client("dynamodb")

    table = dynamodb.describe_table(TableName=stack.physical_id("ItemsTable"))["Table"]

    assert table["KeySchema"] == [dict(k) for k in declared["KeySchema"]]
    assert sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == sorted(
        (dict(a) for a in declared["AttributeDefinitions"]), key=lambda a: a["AttributeName"]
    )
    assert table["BillingModeSummary"]["BillingMode"] == declared["BillingMode"]
    (declared_gsi,) = declared["GlobalSecondaryIndexes"]
    (gsi,) = table["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == declared_gsi["IndexName"]
    assert gsi["KeySchema"] == [dict(k) for k in declared_gsi["KeySchema"]]
    assert gsi["Projection"]["ProjectionType"] == declared_gsi["Projection"]["ProjectionType"]
    assert table["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": declared["StreamSpecification"]["StreamViewType"],
    }
    assert table["LatestStreamArn"] == stack.attribute("ItemsTable", "StreamArn")
    assert table["SSEDescription"]["Status"] == "ENABLED"
    ttl = dynamodb.describe_time_to_live(TableName=table["TableName"])["TimeToLiveDescription"]
    assert ttl == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": declared["TimeToLiveSpecification"]["AttributeName"],
    }
    backups = dynamodb.describe_continuous_backups(TableName=table["TableName"])
    pitr = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert pitr["PointInTimeRecoveryStatus"] == "ENABLED"


def test_names_outputs_and_conditions_resolve(stack: LocalStack) -> None:
    # Given the physical names: the name property when set, else f"{stack_name}-{LogicalId}"
    assert stack.physical_id("ItemsTable") == "lsfix-ItemsTable"
    assert stack.physical_id("StreamLogTable") == "lsfix-stream-log"  # !Sub "${AWS::StackName}-stream-log"
    assert stack.physical_id("ConfigBucket") == "lsfix-configbucket"  # bucket names are lower case

    # Then the outputs are resolved, and the ones whose Condition is false are left out
    assert stack.outputs["ItemsTableName"] == "lsfix-ItemsTable"
    assert stack.outputs["FlowArn"] == stack.physical_id("FlowStateMachine")
    assert stack.outputs["BucketArn"] == "arn:aws:s3:::lsfix-configbucket"
    assert stack.outputs["LocalOnly"] == "local-b"
    assert "ProdOnly" not in stack.outputs
    assert stack.outputs["ApiUrl"].startswith("https://")
    assert stack.outputs["ApiUrl"].endswith(".execute-api.us-east-1.amazonaws.com/Prod/")
    with pytest.raises(LocalStackError, match="ProdOnlyQueue"):
        stack.physical_id("ProdOnlyQueue")

    # and the resources behind them exist as declared
    versioning = stack.client("s3").get_bucket_versioning(Bucket=stack.physical_id("ConfigBucket"))
    assert versioning["Status"] == "Enabled"
    sqs = stack.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=stack.outputs["QueueUrl"], AttributeNames=["All"])
    redrive = json.loads(attributes["Attributes"]["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == stack.attribute("DeadLetterQueue", "Arn")
    assert int(redrive["maxReceiveCount"]) == 3
    assert attributes["Attributes"]["VisibilityTimeout"] == "60"
    machines = stack.client("stepfunctions").list_state_machines()["stateMachines"]
    assert stack.outputs["FlowArn"] in [m["stateMachineArn"] for m in machines]


def test_globals_merge_into_each_function(stack: LocalStack) -> None:
    config = stack.client("lambda").get_function_configuration(FunctionName=stack.physical_id("WorkFunction"))

    assert config["Runtime"] == "python3.13"
    assert config["Timeout"] == 20
    assert config["MemorySize"] == 256
    assert config["Architectures"] == ["arm64"]
    assert config["Environment"]["Variables"] == {
        "ITEMS_TABLE": "lsfix-ItemsTable",
        "STAGE": "local",
        "WORK_MODE": "fixture",
        "API_TOKEN": "fixture-token-value",  # a NoEcho parameter's value
    }
    # each function's code sees its own variables (and only its own) over the process environment
    with stack.as_function("WorkFunction"):
        for name in ("ITEMS_TABLE", "STAGE", "WORK_MODE"):
            assert os.environ[name] == stack.environment("WorkFunction")[name]
        assert "STREAM_LOG_TABLE" not in os.environ
    assert stack.environment("StreamLogFunction")["STREAM_LOG_TABLE"] == "lsfix-stream-log"


def test_a_no_echo_value_stays_out_of_reprs_and_outputs(stack: LocalStack) -> None:
    secret = "fixture-token-value"

    with stack.as_function("WorkFunction"):
        assert os.environ["API_TOKEN"] == secret  # the function gets it
        assert secret not in repr(os.environ)
    assert secret not in repr(stack.functions["WorkFunction"])
    assert secret not in repr(stack.functions)
    assert secret not in json.dumps(stack.outputs)
    assert secret not in repr(stack)


def test_api_events_and_schedules_are_recorded_not_fired(stack: LocalStack) -> None:
    assert stack.api_routes == [ApiRoute("Api", "GET", "/items/{key}", "WorkFunction", "ServerlessRestApi")]

    result = stack.fire_schedule("WorkFunction")

    assert result["key"] == "tick"  # the schedule's Input
    with pytest.raises(LocalStackError, match="0 schedules match"):
        stack.fire_schedule("StreamLogFunction")


def test_a_schedule_rule_fires_each_target_with_its_input(stack: LocalStack) -> None:
    work, execution_arn = stack.fire_schedule("NightlyRule")

    assert work["key"] == "nightly"  # the target's constant Input
    described = stack.wait_execution(execution_arn)
    received = json.loads(described["input"])
    assert received["kind"] == "Scheduled Event"  # InputTransformer over EventBridge's scheduled event
    assert received["when"].endswith("Z")
    assert described["status"] == "SUCCEEDED"


# -- handlers in process -------------------------------------------------------------------------


def test_invoke_calls_the_handler_in_this_process_with_a_realistic_context(stack: LocalStack) -> None:
    key = unique("direct")

    result = stack.invoke("WorkFunction", {"key": key})

    assert result["pid"] == os.getpid()
    assert result["function"] == stack.physical_id("WorkFunction")
    assert result["arn"] == stack.attribute("WorkFunction", "Arn")
    assert result["memory"] == 256
    assert 0 < result["remainingMs"] <= 20_000
    assert uuid.UUID(result["requestId"])
    assert (result["stage"], result["workMode"]) == ("local", "fixture")


def test_invoke_raises_the_handlers_own_exception(stack: LocalStack) -> None:
    with pytest.raises(Exception, match="rejected") as caught:
        stack.invoke("WorkFunction", {"key": unique("reject"), "mode": "reject"})

    assert type(caught.value).__name__ == "RejectedError"


def test_a_state_machine_task_runs_the_handler_in_process(stack: LocalStack) -> None:
    key = unique("task")

    described, history = run_flow(stack, [{"key": key}])

    assert described["status"] == "SUCCEEDED"
    (item,) = output_of(described)["results"]
    assert item["outcome"] == "done"
    assert item["result"]["pid"] == os.getpid()
    assert item["result"]["function"] == stack.physical_id("WorkFunction")
    assert len(events_of(history, "TaskScheduled")) == 1


# -- Retry, Catch, Wait, Map ---------------------------------------------------------------------


def test_retry_matches_the_handlers_exception_class_name(stack: LocalStack) -> None:
    # Given a handler that raises TransientError twice (Retry: IntervalSeconds 1, BackoffRate 2:
    # three seconds of waiting in real time, none at time_factor 0)
    key = unique("flaky")

    described, history = run_flow(stack, [{"key": key, "mode": "flaky", "failures": 2}])

    # Then the Retry on ["TransientError"] caught both, and the third attempt succeeded
    assert described["status"] == "SUCCEEDED"
    failures = events_of(history, "TaskFailed")
    assert [f["taskFailedEventDetails"]["error"] for f in failures] == ["TransientError", "TransientError"]
    cause = json.loads(failures[0]["taskFailedEventDetails"]["cause"])
    assert cause["errorType"] == "TransientError"
    assert cause["errorMessage"] == f"attempt 1 for {key} failed"
    assert "lambda_handler" in "".join(cause["stackTrace"])
    assert len(events_of(history, "TaskScheduled")) == 3
    (item,) = output_of(described)["results"]
    assert (item["outcome"], item["result"]["attempt"]) == ("done", 3)


def test_retries_exhausted_fall_through_to_catch(stack: LocalStack) -> None:
    described, history = run_flow(stack, [{"key": unique("hopeless"), "mode": "flaky", "failures": 9}])

    assert described["status"] == "SUCCEEDED"
    assert len(events_of(history, "TaskScheduled")) == 4  # the attempt and MaxAttempts 3 retries
    (item,) = output_of(described)["results"]
    assert item == {"key": item["key"], "outcome": "failed", "error": "TransientError"}


def test_catch_then_wait_for_the_seconds_the_error_carries(stack: LocalStack) -> None:
    described, history = run_flow(
        stack, [{"key": unique("throttled"), "mode": "throttle", "failures": 2, "retryAfter": 7}]
    )

    assert described["status"] == "SUCCEEDED"
    waits = events_of(history, "WaitStateEntered")
    assert len(waits) == 2
    for wait in waits:
        waited = json.loads(wait["stateEnteredEventDetails"]["input"])
        assert waited["throttleWait"]["value"]["retryAfter"] == 7
    assert [f["taskFailedEventDetails"]["error"] for f in events_of(history, "TaskFailed")] == [
        "ThrottledError",
        "ThrottledError",
    ]
    (item,) = output_of(described)["results"]
    assert (item["outcome"], item["result"]["attempt"]) == ("done", 3)


def test_map_runs_every_item_and_keeps_their_order(stack: LocalStack) -> None:
    items = [
        {"key": unique("m-ok")},
        {"key": unique("m-flaky"), "mode": "flaky", "failures": 1},
        {"key": unique("m-reject"), "mode": "reject"},
        {"key": unique("m-throttle"), "mode": "throttle", "failures": 1, "retryAfter": 30},
        {"key": unique("m-ok2")},
    ]

    described, history = run_flow(stack, items)

    assert described["status"] == "SUCCEEDED"
    results = output_of(described)["results"]
    assert [r["key"] for r in results] == [i["key"] for i in items]
    assert [r["outcome"] for r in results] == ["done", "done", "failed", "done", "done"]
    assert results[2]["error"] == "RejectedError"
    assert len(events_of(history, "MapIterationStarted")) == len(items)
    assert len(events_of(history, "MapIterationSucceeded")) == len(items)


# -- streams, queues, EventBridge ----------------------------------------------------------------


def stream_log(stack: LocalStack, pk: str) -> list[dict]:
    # a test-only scan of the tiny log table the fixture's stream consumer writes
    scanned = stack.client("dynamodb").scan(TableName=stack.physical_id("StreamLogTable"))["Items"]
    return [item for item in scanned if item["pk"]["S"] == pk]


def test_the_stream_consumer_receives_every_change(stack: LocalStack) -> None:
    dynamodb = stack.client("dynamodb")
    table = stack.physical_id("ItemsTable")
    key = {"pk": {"S": unique("streamed")}, "sk": {"S": "v"}}

    dynamodb.put_item(TableName=table, Item={**key, "kind": {"S": "a"}})
    dynamodb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET kind = :k",
        ExpressionAttributeValues={":k": {"S": "b"}},
    )
    dynamodb.delete_item(TableName=table, Key=key)

    # delivered after each write, as Lambda polls a stream (moto delivered inside the write)
    stack.drain_streams()
    records = stream_log(stack, key["pk"]["S"])
    assert sorted(r["eventName"]["S"] for r in records) == ["INSERT", "MODIFY", "REMOVE"]
    assert {r["source"]["S"] for r in records} == {stack.attribute("ItemsTable", "StreamArn")}


def test_an_update_that_creates_an_item_is_one_insert(stack: LocalStack) -> None:
    pk = unique("created-by-update")

    stack.client("dynamodb").update_item(
        TableName=stack.physical_id("ItemsTable"),
        Key={"pk": {"S": pk}, "sk": {"S": "v"}},
        UpdateExpression="SET kind = :k",
        ExpressionAttributeValues={":k": {"S": "a"}},
    )

    stack.drain_streams()
    assert [r["eventName"]["S"] for r in stream_log(stack, pk)] == ["INSERT"]


def test_a_transaction_streams_its_writes_once_it_commits_and_none_when_cancelled(stack: LocalStack) -> None:
    dynamodb = stack.client("dynamodb")
    table = stack.physical_id("ItemsTable")
    kept, cancelled = unique("tx-kept"), unique("tx-cancelled")

    def write(pk: str, *, condition_holds: bool) -> None:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": {"pk": {"S": pk}, "sk": {"S": "record"}}}},
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": pk}, "sk": {"S": "audit"}},
                        "UpdateExpression": "SET kind = :k",
                        "ConditionExpression": "attribute_not_exists(pk)"
                        if condition_holds
                        else "attribute_exists(pk)",
                        "ExpressionAttributeValues": {":k": {"S": "audit"}},
                    }
                },
            ]
        )

    write(kept, condition_holds=True)
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        write(cancelled, condition_holds=False)

    stack.drain_streams()
    assert sorted(r["sk"]["S"] for r in stream_log(stack, kept)) == ["audit", "record"]
    assert {r["eventName"]["S"] for r in stream_log(stack, kept)} == {"INSERT"}
    assert stream_log(stack, cancelled) == []
    assert "Item" not in dynamodb.get_item(
        TableName=table, Key={"pk": {"S": cancelled}, "sk": {"S": "record"}}
    )


def test_a_cancelled_transaction_puts_back_every_item_it_touched_and_leaves_the_others(
    stack: LocalStack,
) -> None:
    # the local stack backs up only the items a transaction names (moto copied whole tables)
    dynamodb = stack.client("dynamodb")
    table = stack.physical_id("ItemsTable")
    pk = unique("tx-rollback")
    dynamodb.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": "kept"}, "v": {"N": "1"}})
    dynamodb.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": "other"}, "v": {"N": "7"}})

    # When a transaction updates one item, puts a new one, then fails its last condition
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": pk}, "sk": {"S": "kept"}},
                        "UpdateExpression": "SET v = :v",
                        "ExpressionAttributeValues": {":v": {"N": "2"}},
                    }
                },
                {"Put": {"TableName": table, "Item": {"pk": {"S": pk}, "sk": {"S": "new"}}}},
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": {"pk": {"S": pk}, "sk": {"S": "absent"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )

    # Then the updated item is as it was, the new one is not there, the untouched one unchanged
    def item(sk: str) -> dict[str, object] | None:
        return dynamodb.get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item")

    assert item("kept") == {"pk": {"S": pk}, "sk": {"S": "kept"}, "v": {"N": "1"}}
    assert item("new") is None
    assert item("other") == {"pk": {"S": pk}, "sk": {"S": "other"}, "v": {"N": "7"}}


def test_an_sqs_event_source_delivers_to_the_handler(stack: LocalStack) -> None:
    key = unique("queued")

    stack.client("sqs").send_message(QueueUrl=stack.outputs["QueueUrl"], MessageBody=json.dumps({"key": key}))

    found = stack.client("dynamodb").query(
        TableName=stack.physical_id("ItemsTable"),
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"sqs#{key}"}},
    )
    assert found["Count"] == 1


def executions(stack: LocalStack) -> list[dict]:
    listed = stack.client("stepfunctions").list_executions(
        stateMachineArn=stack.physical_id("FlowStateMachine")
    )
    return list(listed["executions"])


def test_an_eventbridge_rule_starts_the_state_machine_with_its_input_path(stack: LocalStack) -> None:
    key = unique("bus")
    before = {e["executionArn"] for e in executions(stack)}

    stack.put_events(
        [
            {
                "EventBusName": "Bus",  # a logical id; put_events maps it to the bus's name
                "Source": "fixture.tests",
                "DetailType": "RunFlow",
                "Detail": {"items": [{"key": key}]},
            }
        ]
    )

    (started,) = [e for e in executions(stack) if e["executionArn"] not in before]
    described = stack.wait_execution(started["executionArn"])
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["input"]) == {"items": [{"key": key}]}  # InputPath: $.detail
    assert output_of(described)["results"][0]["result"]["key"] == key


def test_events_the_pattern_does_not_match_start_nothing(stack: LocalStack) -> None:
    before = len(executions(stack))

    stack.put_events(
        [{"EventBusName": "Bus", "Source": "fixture.tests", "DetailType": "Other", "Detail": {"items": []}}]
    )
    stack.put_events(
        [{"Source": "fixture.tests", "DetailType": "RunFlow", "Detail": {"items": []}}]
    )  # default bus

    assert len(executions(stack)) == before


def test_a_stack_status_event_reaches_a_rule_with_an_input_transformer(stack: LocalStack) -> None:
    before = {e["executionArn"] for e in executions(stack)}

    stack.put_stack_status_event("UPDATE_COMPLETE")

    (started,) = [e for e in executions(stack) if e["executionArn"] not in before]
    described = stack.wait_execution(started["executionArn"])
    assert json.loads(described["input"]) == {
        "items": [{"key": "deploy-UPDATE_COMPLETE"}],
        "source": "deploy",
    }
    assert described["status"] == "SUCCEEDED"


def test_unnamed_executions_get_distinct_names(stack: LocalStack) -> None:
    sfn = stack.client("stepfunctions")
    flow = stack.physical_id("FlowStateMachine")

    first = sfn.start_execution(stateMachineArn=flow, input='{"items": []}')["executionArn"]
    second = sfn.start_execution(stateMachineArn=flow, input='{"items": []}')["executionArn"]

    assert first != second
    assert not first.endswith(":None")
    assert stack.wait_execution(first)["status"] == stack.wait_execution(second)["status"] == "SUCCEEDED"


def test_concurrent_writers_get_exactly_one_stream_delivery_each(stack: LocalStack) -> None:
    # Given Map workers writing concurrently (each attempt is counted in the items table)
    batch = unique("burst")
    items = [{"key": f"{batch}-{n}"} for n in range(30)]

    described, _ = run_flow(stack, items)
    stack.drain_streams()

    # Then the stream consumer saw each write exactly once (moto's shard is not thread-safe alone)
    assert described["status"] == "SUCCEEDED"
    scanned = stack.client("dynamodb").scan(TableName=stack.physical_id("StreamLogTable"))["Items"]
    delivered = sorted(r["pk"]["S"] for r in scanned if r["pk"]["S"].startswith(f"attempts#{batch}-"))
    assert delivered == sorted(f"attempts#{i['key']}" for i in items)


def test_secrets_are_created_and_read_from_many_threads_at_once(stack: LocalStack) -> None:
    # moto's secret store scans every secret per lookup: a read racing a create raised "dictionary
    # changed size during iteration" (registers storing URLTokens at a Map's concurrency did)
    secrets = stack.client("secretsmanager")
    prefix = unique("threads")
    failures: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(40):  # fewer did not make moto's race show
                arn = secrets.create_secret(Name=f"{prefix}/{worker}/{i}", SecretString=f"v{worker}-{i}")[
                    "ARN"
                ]
                assert secrets.get_secret_value(SecretId=arn)["SecretString"] == f"v{worker}-{i}"
                assert secrets.describe_secret(SecretId=f"{prefix}/{worker}/{i}")["ARN"] == arn
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    # a partial ARN (no random suffix) is still found, by moto's own scan
    arn = secrets.describe_secret(SecretId=f"{prefix}/0/0")["ARN"]
    assert secrets.get_secret_value(SecretId=arn[:-7])["SecretString"] == "v0-0"
