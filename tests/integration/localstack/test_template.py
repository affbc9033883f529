"""The template reader resolves parameters, conditions, Globals and intrinsic functions as
CloudFormation does (no AWS involved: these run on the parsed template alone)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cogwh.localstack import LocalStackError
from cogwh.localstack.asl import check, substitute
from cogwh.localstack.template import NO_VALUE, Template, merge_globals
from tests.integration.localstack.helpers import make_project

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  Env: {Type: String, Default: dev, AllowedValues: [dev, prod]}
  Zones: {Type: CommaDelimitedList, Default: "a,b,c"}
  Size: {Type: Number, Default: 5, MaxValue: 10}
Mappings:
  Sizes:
    dev: {memory: 256}
    prod: {memory: 1024}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  IsDev: !Not [!Condition IsProd]
  Both: !And [!Condition IsDev, !Equals [!Ref Size, 5]]
Globals:
  Function:
    Timeout: 10
    Layers: [global-layer]
    Environment:
      Variables: {A: global, B: global}
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 30
      Layers: [local-layer]
      Environment:
        Variables: {B: local, C: local}
  Queue:
    Type: AWS::SQS::Queue
"""


@pytest.fixture
def template(tmp_path: Path) -> Template:
    root = make_project(tmp_path, TEMPLATE)
    tpl = Template(root / "template.yaml", stack_name="st", region="eu-west-1", account_id="111122223333")
    tpl.register("Queue", "https://queue-url", {"Arn": "arn:aws:sqs:eu-west-1:111122223333:st-Queue"})
    return tpl


def test_sub_in_both_forms_with_literals_pseudo_parameters_and_attributes(template: Template) -> None:
    assert template.resolve({"Fn::Sub": "${AWS::StackName}-${Env}-${AWS::Region}"}, "x") == "st-dev-eu-west-1"
    assert template.resolve({"Fn::Sub": "${Queue.Arn}|${Queue}"}, "x") == (
        "arn:aws:sqs:eu-west-1:111122223333:st-Queue|https://queue-url"
    )
    assert template.resolve({"Fn::Sub": "${!Literal} stays"}, "x") == "${Literal} stays"
    assert template.resolve({"Fn::Sub": ["${Name}-${AWS::AccountId}", {"Name": {"Ref": "Env"}}]}, "x") == (
        "dev-111122223333"
    )


def test_join_select_split_findinmap_and_lists(template: Template) -> None:
    assert template.resolve({"Ref": "Zones"}, "x") == ["a", "b", "c"]
    assert template.resolve({"Fn::Select": [2, {"Ref": "Zones"}]}, "x") == "c"
    assert template.resolve({"Fn::Join": ["/", [{"Ref": "Env"}, {"Ref": "Size"}, "z"]]}, "x") == "dev/5/z"
    assert template.resolve({"Fn::Split": ["-", "x-y"]}, "x") == ["x", "y"]
    assert template.resolve({"Fn::FindInMap": ["Sizes", {"Ref": "Env"}, "memory"]}, "x") == 256
    assert template.resolve({"Fn::GetAZs": ""}, "x")[0] == "eu-west-1a"


def test_conditions_if_and_no_value(template: Template) -> None:
    assert template.condition("IsDev", "x") is True
    assert template.condition("Both", "x") is True
    resolved = template.resolve(
        {
            "kept": {"Fn::If": ["IsDev", "yes", "no"]},
            "dropped": {"Fn::If": ["IsProd", "yes", {"Ref": "AWS::NoValue"}]},
            "list": ["a", {"Ref": "AWS::NoValue"}, "b"],
        },
        "x",
    )
    assert resolved == {"kept": "yes", "list": ["a", "b"]}
    assert template.resolve({"Ref": "AWS::NoValue"}, "x") is NO_VALUE


def test_globals_merge_maps_append_lists_and_let_the_function_win(template: Template) -> None:
    props = template.properties("Fn")

    assert props["Timeout"] == 30
    assert props["Layers"] == ["global-layer", "local-layer"]
    assert props["Environment"]["Variables"] == {"A": "global", "B": "local", "C": "local"}
    assert merge_globals({"Fn::If": ["c", 1, 2]}, {"X": 1}) == {"X": 1}


def test_parameters_take_overrides_and_check_them(tmp_path: Path) -> None:
    root = make_project(tmp_path, TEMPLATE)

    tpl = Template(
        root / "template.yaml", stack_name="s", region="us-east-1", account_id="1", parameters={"Env": "prod"}
    )
    assert tpl.condition("IsProd", "x") is True
    with pytest.raises(LocalStackError, match=r"Parameters.Size: '11' is above MaxValue"):
        Template(
            root / "template.yaml",
            stack_name="s",
            region="us-east-1",
            account_id="1",
            parameters={"Size": "11"},
        )
    with pytest.raises(LocalStackError, match=r"Parameters.Size: 'five' is not a Number"):
        Template(
            root / "template.yaml",
            stack_name="s",
            region="us-east-1",
            account_id="1",
            parameters={"Size": "five"},
        )


def test_unknown_conditions_and_functions_are_refused_with_their_place(template: Template) -> None:
    with pytest.raises(LocalStackError, match=r"Resources.X.Properties.Y.Fn::If: unknown condition 'Nope'"):
        template.resolve({"Fn::If": ["Nope", 1, 2]}, "Resources.X.Properties.Y")
    with pytest.raises(LocalStackError, match=r"here.Fn::Cidr: intrinsic function Fn::Cidr is not supported"):
        template.resolve({"Fn::Cidr": ["10.0.0.0/16", 2, 8]}, "here")
    with pytest.raises(LocalStackError, match=r"pseudo parameter AWS::Unknown is not available"):
        template.resolve({"Ref": "AWS::Unknown"}, "here")


def test_substitution_is_textual_so_numbers_can_be_unquoted() -> None:
    text = '{"MaxConcurrency": ${N}, "Resource": "${Arn}", "Flag": ${On}}'

    assert substitute(text, {"N": "5", "Arn": "arn:x", "On": True}, "M") == (
        '{"MaxConcurrency": 5, "Resource": "arn:x", "Flag": true}'
    )


def test_the_graph_check_follows_parallel_branches_and_catch_targets() -> None:
    good = {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}},
                    {"StartAt": "B", "States": {"B": {"Type": "Fail", "Error": "X"}}},
                ],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Recover"}],
                "Next": "Done",
            },
            "Recover": {"Type": "Pass", "Next": "Done"},
            "Done": {"Type": "Succeed"},
        },
    }
    check(good, "good")  # no error

    bad = {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Missing", "States": {"A": {"Type": "Pass", "Next": "A", "End": True}}}
                ],
                "End": True,
            }
        },
    }
    with pytest.raises(LocalStackError) as refused:
        check(bad, "bad")
    message = str(refused.value)
    assert "bad > Both (branch 0): StartAt 'Missing' is not a state" in message
    assert "bad > Both (branch 0) > A: has both Next and End" in message
    with pytest.raises(LocalStackError, match="JSONata is not supported locally"):
        check({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Succeed"}}}, "jsonata")
