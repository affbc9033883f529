"""The local stack refuses what it cannot run faithfully, with the resource and property named, and
leaves the process as it found it (environment, moto, the one-stack-at-a-time slot)."""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

import pytest

from cogwh.localstack import LocalStack, LocalStackError
from tests.integration.localstack.helpers import (
    FIXTURES,
    HANDLER,
    isolation_project,
    make_project,
    module_of,
    unique,
)


def state_machine_project(tmp_path: Path, definition: str, substitutions: str = "{}") -> Path:
    template = f"""
    Transform: AWS::Serverless-2016-10-31
    Resources:
      Fn:
        Type: AWS::Serverless::Function
        Properties: {{CodeUri: functions/fn/, Handler: app.lambda_handler, Runtime: python3.13}}
      Machine:
        Type: AWS::Serverless::StateMachine
        Properties:
          DefinitionUri: statemachine/machine.asl.json
          DefinitionSubstitutions: {substitutions}
    """
    return make_project(
        tmp_path, template, {"functions/fn/app.py": HANDLER, "statemachine/machine.asl.json": definition}
    )


def assert_left_clean(variables: tuple[str, ...] = ()) -> None:
    """Nothing of a refused stack stays behind: env restored, moto unpatched, slot free."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    for name in variables:
        assert name not in os.environ
    assert LambdaSimpleBackend.invoke.__qualname__ == "LambdaSimpleBackend.invoke"
    assert not [m for m in sys.modules if m.startswith("cogwh_fn_")]
    with LocalStack(FIXTURES, stack_name="after-refusal") as stack:  # the slot is free again
        assert stack.physical_id("ItemsTable") == "after-refusal-ItemsTable"


def test_a_placeholder_left_after_substitution_is_refused(tmp_path: Path) -> None:
    definition = '{"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "${FnArn}", "Next": "B"},'
    definition += ' "B": {"Type": "Wait", "Seconds": ${WaitSeconds}, "End": true}}}'
    root = state_machine_project(tmp_path, definition, "{FnArn: !GetAtt Fn.Arn}")

    with pytest.raises(LocalStackError) as refused:
        LocalStack(root, stack_name="placeholder").start()

    message = str(refused.value)
    assert "Resources.Machine" in message
    assert "statemachine/machine.asl.json" in message
    assert "${WaitSeconds}" in message
    assert "${FnArn}" not in message  # that one was substituted
    assert_left_clean()


def test_a_broken_state_graph_is_refused_with_every_problem_named(tmp_path: Path) -> None:
    definition = """
    {
      "StartAt": "Each",
      "States": {
        "Each": {
          "Type": "Map",
          "ItemProcessor": {
            "StartAt": "Work",
            "States": {
              "Work": {"Type": "Task", "Resource": "${FnArn}", "Next": "Recrod",
                       "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handle"}]},
              "Record": {"Type": "Pass", "End": true}
            }
          },
          "Next": "Decide"
        },
        "Decide": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": true, "Next": "Loop1"}],
                   "Default": "Done"},
        "Loop1": {"Type": "Pass", "Next": "Loop2"},
        "Loop2": {"Type": "Pass", "Next": "Loop1"},
        "Dangling": {"Type": "Pass"},
        "Done": {"Type": "Succeed"}
      }
    }
    """
    root = state_machine_project(tmp_path, definition, "{FnArn: !GetAtt Fn.Arn}")

    with pytest.raises(LocalStackError) as refused:
        LocalStack(root, stack_name="graph").start()

    message = str(refused.value)
    assert "Each (ItemProcessor) > Work: transition to 'Recrod', which is not a state" in message
    assert "Each (ItemProcessor) > Work: transition to 'Handle', which is not a state" in message
    assert "Each (ItemProcessor) > Record: unreachable from StartAt" in message
    assert "> Loop1: no path from here ever ends" in message
    assert "> Dangling: has neither Next nor End" in message
    assert "> Dangling: unreachable from StartAt" in message
    assert "Decide" not in message  # a Choice with an exit is fine
    assert_left_clean()


def test_an_unknown_parameter_override_is_refused() -> None:
    with pytest.raises(LocalStackError, match=r"MapConcurency not declared.*MapConcurrency"):
        LocalStack(FIXTURES, parameters={"MapConcurency": "4"}).start()
    assert_left_clean()


def test_a_no_echo_parameter_is_checked_without_showing_its_value() -> None:
    with pytest.raises(LocalStackError) as refused:
        LocalStack(FIXTURES, parameters={"ApiToken": "tiny7"}).start()

    assert "Parameters.ApiToken" in str(refused.value)
    assert "MinLength" in str(refused.value)
    assert "tiny7" not in str(refused.value)


def test_a_value_outside_allowed_values_is_refused() -> None:
    with pytest.raises(LocalStackError, match=r"Parameters.Stage: 'staging' is not one of AllowedValues"):
        LocalStack(FIXTURES, parameters={"Stage": "staging"}).start()


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        (
            "  Box:\n    Type: AWS::EC2::Instance\n    Properties: {ImageId: ami-1}\n",
            "Resources.Box: type AWS::EC2::Instance is not supported",
        ),
        (
            "  T:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      BillingMode: PAY_PER_REQUEST\n"
            "      KeySchema: [{AttributeName: pk, KeyType: HASH}]\n"
            "      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]\n"
            "  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !GetAtt T.StreamArn\n",
            "Resources.Q.Properties.QueueName.Fn::GetAtt: Fn::GetAtt T.StreamArn is not available locally "
            "(available: Arn)",
        ),
        (
            "  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !Ref Nowhere\n",
            "Resources.Q.Properties.QueueName: Ref to unknown name 'Nowhere'",
        ),
        (
            "  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !ImportValue shared-name\n",
            "Fn::ImportValue: imports from other stacks are not available locally",
        ),
        (
            "  A:\n    Type: AWS::SQS::Queue\n    Properties: {QueueName: !GetAtt B.QueueName}\n"
            "  B:\n    Type: AWS::SQS::Queue\n    Properties: {QueueName: !GetAtt A.QueueName}\n",
            "circular references among A, B",
        ),
        (
            "  F:\n    Type: AWS::Serverless::Function\n"
            "    Properties: {CodeUri: functions/fn/, Handler: missing.lambda_handler,"
            " Runtime: python3.13}\n",
            "Resources.F.Properties.Handler: 'missing.lambda_handler' names no file missing.py",
        ),
        (
            "  F:\n    Type: AWS::Serverless::Function\n"
            "    Properties: {CodeUri: functions/fn/, Handler: app.nothing_here, Runtime: python3.13}\n",
            "has no function 'nothing_here'",
        ),
        (
            "  F:\n    Type: AWS::Serverless::Function\n"
            "    Properties: {CodeUri: functions/fn/, Handler: app.lambda_handler, Runtime: nodejs22.x}\n",
            "Resources.F.Properties.Runtime: nodejs22.x",
        ),
    ],
    ids=[
        "unsupported-type",
        "missing-attribute",
        "unknown-ref",
        "import-value",
        "cycle",
        "no-file",
        "no-function",
        "runtime",
    ],
)
def test_what_cannot_be_resolved_is_refused_by_name(tmp_path: Path, resources: str, expected: str) -> None:
    root = make_project(tmp_path, "Resources:\n" + resources, {"functions/fn/app.py": HANDLER})

    with pytest.raises(LocalStackError) as refused:
        LocalStack(root, stack_name="refused").start()

    assert expected in str(refused.value)


def test_a_handler_that_fails_to_import_is_refused(tmp_path: Path) -> None:
    template = """
    Resources:
      F:
        Type: AWS::Serverless::Function
        Properties: {CodeUri: functions/fn/, Handler: app.lambda_handler, Runtime: python3.13}
    """
    root = make_project(tmp_path, template, {"functions/fn/app.py": "import module_that_does_not_exist\n"})

    with pytest.raises(LocalStackError, match=r"Resources.F: importing the handler .*ModuleNotFoundError"):
        LocalStack(root, stack_name="import").start()
    assert_left_clean()


def test_only_one_local_stack_is_open_at_a_time() -> None:
    with LocalStack(FIXTURES, stack_name="first") as first:
        with pytest.raises(LocalStackError, match=r"another local stack \(first\) is open"):
            LocalStack(FIXTURES, stack_name="second").start()
        assert first.physical_id("ItemsTable") == "first-ItemsTable"  # still running
        assert first.invoke("WorkFunction", {"key": "still-there"})["key"] == "still-there"


def test_closing_restores_moto_the_environment_and_the_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.awslambda.models import LambdaFunction
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.dynamodb.models.table import StreamShard
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    originals = (LambdaSimpleBackend.invoke, LambdaFunction.invoke, StreamShard.add, retrier_decl.time)
    monkeypatch.setenv("STAGE", "outer-value")
    monkeypatch.setenv("AWS_PROFILE", "someone-elses-profile")
    monkeypatch.delenv("WORK_MODE", raising=False)

    with LocalStack(FIXTURES, stack_name="restore") as stack:
        with stack.as_function("WorkFunction"):
            assert os.environ["STAGE"] == "local"
        assert "AWS_PROFILE" not in os.environ
        assert "cogwh_fn_WorkFunction" in sys.modules
        assert stack.invoke("WorkFunction", {"key": "k"})["stage"] == "local"

    assert (
        LambdaSimpleBackend.invoke,
        LambdaFunction.invoke,
        StreamShard.add,
        retrier_decl.time,
    ) == originals
    assert os.environ["STAGE"] == "outer-value"
    assert os.environ["AWS_PROFILE"] == "someone-elses-profile"
    assert "WORK_MODE" not in os.environ
    assert "cogwh_fn_WorkFunction" not in sys.modules
    with pytest.raises(LocalStackError, match="not running"):
        stack.physical_id("ItemsTable")
    with pytest.raises(LocalStackError, match="not running"):
        stack.client("dynamodb")

    # and the same stack object can start again
    with stack:
        assert stack.invoke("WorkFunction", {"key": "again"})["attempt"] == 1  # a fresh mock


def test_stopping_aborts_and_closing_stops_what_still_runs() -> None:
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    # Given two executions told to wait ten minutes on the real clock
    stack = LocalStack(FIXTURES, stack_name="lsclose", time_factor=1.0).start()
    try:
        item = {"mode": "throttle", "retryAfter": 600}
        stopped = stack.start_execution("FlowStateMachine", {"items": [{**item, "key": unique("stop")}]})
        left = stack.start_execution("FlowStateMachine", {"items": [{**item, "key": unique("left")}]})
        execution = stepfunctions_parser_backends["123456789012"]["us-east-1"].describe_execution(left)

        # When one is stopped through the API, it ends ABORTED (not FAILED by its aborted Map)
        stack.client("stepfunctions").stop_execution(executionArn=stopped, error="Test", cause="stopped")
        assert stack.wait_execution(stopped, timeout=30)["status"] == "ABORTED"
        assert execution.status == "RUNNING"
    finally:
        # and when the stack closes with the other still waiting
        stack.close()

    # Then close stopped it (and waited for it to end) instead of leaving it to run on
    assert execution.status == "ABORTED"


def test_a_stack_inside_an_outer_moto_mock_works() -> None:
    from moto import mock_aws

    with mock_aws(), LocalStack(FIXTURES, stack_name="nested") as stack:
        result = stack.invoke("WorkFunction", {"key": "nested"})
        assert result["attempt"] == 1
        arn = stack.start_execution("FlowStateMachine", {"items": [{"key": "nested-run"}]})
        assert stack.wait_execution(arn)["status"] == "SUCCEEDED"


def test_the_embedded_stack_has_no_endpoint_url() -> None:
    with (
        LocalStack(FIXTURES, stack_name="embedded") as stack,
        pytest.raises(LocalStackError, match="server mode"),
    ):
        _ = stack.endpoint_url


class _OpenOnDrop(logging.Handler):
    """Opens the consumer's gate once the closing stack has dropped what was queued."""

    def __init__(self, gate: threading.Event) -> None:
        super().__init__()
        self.gate = gate

    def emit(self, record: logging.LogRecord) -> None:
        if "dropped" in record.getMessage():
            self.gate.set()


def test_closing_finishes_the_batch_in_hand_drops_the_queued_and_restores_os_environ(tmp_path: Path) -> None:
    real_environ, real_start = os.environ, threading.Thread.start
    stack = LocalStack(isolation_project(tmp_path), stack_name="lsisoclose").start()
    local_log = logging.getLogger("cogwh.localstack")
    opener = _OpenOnDrop(module_of(stack, "Consumer").GATE)
    level = local_log.level
    try:
        assert os.environ is not real_environ
        module = module_of(stack, "Consumer")
        module.GATE.clear()
        items = stack.physical_id("Items")
        dynamodb = stack.client("dynamodb")
        dynamodb.put_item(TableName=items, Item={"pk": {"S": "in-hand"}})
        assert module.ARRIVED.wait(timeout=30)  # the consumer holds it at its gate
        dynamodb.put_item(TableName=items, Item={"pk": {"S": "queued"}})
        local_log.addHandler(opener)
        local_log.setLevel(logging.INFO)
    finally:
        stack.close()
        local_log.removeHandler(opener)
        local_log.setLevel(level)

    assert [s["pk"] for s in module.SEEN] == ["in-hand"]  # finished; the queued one dropped
    assert os.environ is real_environ
    assert threading.Thread.start is real_start
    for name in ("SETTING", "ONLY_FIRST", "EVERYONE"):
        assert name not in os.environ
