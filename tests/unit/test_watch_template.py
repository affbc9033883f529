"""The watch's template contract: each health-rule parameter's default is the rules' own default, the
watch function reads each one, the watch state machine runs on an EventBridge Scheduler schedule at
the WatchIntervalMinutes rate, and its fan-out is a Distributed Map of EXPRESS children over the
config bucket, with the tolerated percentage a parameter and the IAM a Distributed Map needs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from cfnlint.decode.cfn_yaml import loads

from cognigy_webhooks.models.watch import HealthRules
from cognigy_webhooks.settings import WatchSettings

ROOT = Path(__file__).resolve().parents[2]


def _template() -> dict[str, Any]:
    return dict(loads((ROOT / "template.yaml").read_text(encoding="utf-8"), str(ROOT / "template.yaml")))


RULE_PARAMETERS = {
    "WatchUnhealthyAfter": ("WATCH_UNHEALTHY_AFTER", "unhealthy_after"),
    "WatchDeactivateAfterHours": ("WATCH_DEACTIVATE_AFTER_HOURS", "deactivate_after_hours"),
    "WatchRecoverAfter": ("WATCH_RECOVER_AFTER", "recover_after"),
    "WatchDeactivateOnGone": ("WATCH_DEACTIVATE_ON_GONE", "deactivate_on_gone"),
    "WatchCertificateThresholds": ("WATCH_CERT_THRESHOLDS", "certificate_thresholds"),
}


def test_each_rule_parameter_defaults_to_the_rules_own_default_and_reaches_the_watch_function() -> None:
    template = _template()
    env = template["Resources"]["WatchFunction"]["Properties"]["Environment"]["Variables"]
    defaults = HealthRules()
    given = {}
    for parameter, (variable, field) in RULE_PARAMETERS.items():
        assert env[variable] == {"Ref": parameter}
        given[variable] = str(template["Parameters"][parameter]["Default"])
        assert (
            WatchSettings.variable(field if field != "certificate_thresholds" else "cert_thresholds")
            == variable
        )
    settings = WatchSettings.from_env(
        {
            **given,
            "ENDPOINTS_TABLE": "endpoints",
            "AUDIT_TABLE": "audit",
            "RATE_LIMIT_TABLE": "limits",
            "COGNIGY_BASE_URL": "https://api-trial.cognigy.ai",
            "COGNIGY_API_KEY_SECRET": "cognigy-key",
            "OPERATIONS_BUS_NAME": "ops",
            "CONFIG_BUCKET": "config",
        }
    )
    assert settings.thresholds == defaults.certificate_thresholds
    assert (settings.unhealthy_after, settings.recover_after) == (
        defaults.unhealthy_after,
        defaults.recover_after,
    )
    assert settings.deactivate_after_hours == defaults.deactivate_after_hours
    assert settings.deactivate_on_gone is defaults.deactivate_on_gone


def test_the_watch_runs_on_an_eventbridge_scheduler_schedule_at_the_interval_parameter() -> None:
    template = _template()
    machine = template["Resources"]["WatchStateMachine"]["Properties"]
    assert machine["DefinitionUri"] == "statemachine/watch.asl.json"
    (event,) = machine["Events"].values()
    assert event["Type"] == "ScheduleV2"
    expression = event["Properties"]["ScheduleExpression"]["Fn::If"]
    assert expression[0] == "WatchEveryMinute"
    assert expression[1] == "rate(1 minute)"  # AWS refuses "rate(1 minutes)"
    assert expression[2] == {"Fn::Sub": "rate(${WatchIntervalMinutes} minutes)"}
    assert template["Parameters"]["WatchIntervalMinutes"]["Default"] == 15
    assert event["Properties"]["State"] == {"Ref": "WatchScheduleState"}


def test_a_bad_threshold_list_stops_the_cold_start_naming_the_variable() -> None:
    import pytest

    from cognigy_webhooks.errors import InvalidSettings

    with pytest.raises(InvalidSettings) as refused:
        WatchSettings.from_env(
            {
                "ENDPOINTS_TABLE": "endpoints",
                "AUDIT_TABLE": "audit",
                "RATE_LIMIT_TABLE": "limits",
                "COGNIGY_BASE_URL": "https://api-trial.cognigy.ai",
                "COGNIGY_API_KEY_SECRET": "cognigy-key",
                "OPERATIONS_BUS_NAME": "ops",
                "CONFIG_BUCKET": "config",
                "WATCH_CERT_THRESHOLDS": "30,fourteen",
            }
        )
    assert "WATCH_CERT_THRESHOLDS" in str(refused.value)


def _asl() -> dict[str, Any]:
    text = (ROOT / "statemachine" / "watch.asl.json").read_text(encoding="utf-8")
    return dict(json.loads(re.sub(r"\$\{[^}]*\}", "1", text)))


def test_the_fan_out_is_a_distributed_map_of_express_children_over_the_config_bucket() -> None:
    states = _asl()["States"]
    fan = states["WatchEach"]
    assert fan["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"}
    assert fan["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert fan["ItemReader"]["Parameters"] == {"Bucket.$": "$.itemsRef.bucket", "Key.$": "$.itemsRef.key"}
    assert fan["ResultWriter"]["Parameters"] == {
        "Bucket.$": "$.itemsRef.bucket",
        "Prefix.$": "$.itemsRef.resultsPrefix",
    }
    assert "ItemsPath" not in fan  # the items are never in the state
    summarize = states["Summarize"]["Parameters"]
    assert summarize["resultWriterDetails.$"] == "$.watched.ResultWriterDetails"
    assert states["ListTargets"]["Parameters"]["executionName.$"] == "$$.Execution.Name"
    assert summarize["executionName.$"] == "$$.Execution.Name"  # both steps name the same run folder
    # every expected failure is caught inside the child: only a broken child fails as a whole
    children = fan["ItemProcessor"]["States"]
    for name in ("Probe", "Judge"):
        assert [c["ErrorEquals"] for c in children[name]["Catch"]] == [["States.ALL"]]
        assert 0 < children[name]["TimeoutSeconds"] < 300  # well inside Express's 5 minutes


def test_the_tolerated_failure_percentage_is_a_parameter_defaulting_to_5() -> None:
    template = _template()
    parameter = template["Parameters"]["WatchToleratedFailurePercentage"]
    assert (parameter["Default"], parameter["MinValue"], parameter["MaxValue"]) == (5, 0, 100)
    machine = template["Resources"]["WatchStateMachine"]["Properties"]
    substitutions = machine["DefinitionSubstitutions"]
    assert substitutions["WatchToleratedFailurePercentage"] == {"Ref": "WatchToleratedFailurePercentage"}
    assert substitutions["WatchConcurrency"] == {"Ref": "WatchConcurrency"}
    text = (ROOT / machine["DefinitionUri"]).read_text(encoding="utf-8")
    assert '"MaxConcurrency": ${WatchConcurrency}' in text
    # the list step is told it, and hands the map its figure for this many children
    assert '"toleratedFailurePercentage": ${WatchToleratedFailurePercentage}' in text
    fan = _asl()["States"]["WatchEach"]
    assert fan["ToleratedFailurePercentagePath"] == "$.itemsRef.toleratedFailurePercentage"
    assert "ToleratedFailurePercentage" not in fan


def _statements(policies: list[Any]) -> list[dict[str, Any]]:
    return [s for p in policies if isinstance(p, dict) for s in p.get("Statement", [])]


def _allowed(statements: list[dict[str, Any]], action: str) -> list[str]:
    """Every resource (its !Sub text) the statements allow ``action`` on."""
    found = []
    for statement in statements:
        if action in statement["Action"]:
            resources = statement["Resource"]
            for resource in resources if isinstance(resources, list) else [resources]:
                found.append(resource["Fn::Sub"] if isinstance(resource, dict) else resource)
    return found


def test_the_state_machine_may_run_its_own_children_and_read_and_write_the_watch_s_objects() -> None:
    template = _template()
    machine = template["Resources"]["WatchStateMachine"]["Properties"]
    assert machine["Name"] == {"Fn::Sub": "${AWS::StackName}-watch"}
    statements = _statements(machine["Policies"])
    arn = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
    assert _allowed(statements, "states:StartExecution") == [f"{arn}:stateMachine:${{AWS::StackName}}-watch"]
    for action in ("states:DescribeExecution", "states:StopExecution"):
        assert f"{arn}:execution:${{AWS::StackName}}-watch/*" in _allowed(statements, action)
        assert f"{arn}:express:${{AWS::StackName}}-watch/*" in _allowed(statements, action)
    assert _allowed(statements, "states:DescribeMapRun") == [f"{arn}:mapRun:${{AWS::StackName}}-watch/*"]
    assert _allowed(statements, "s3:GetObject") == ["${ConfigBucket.Arn}/watch/*"]
    assert _allowed(statements, "s3:PutObject") == ["${ConfigBucket.Arn}/watch/*"]
    # the watch function writes the targets and the summary and reads the result files, under watch/ only
    function = _statements(template["Resources"]["WatchFunction"]["Properties"]["Policies"])
    for action in ("s3:GetObject", "s3:PutObject"):
        assert _allowed(function, action) == ["${ConfigBucket.Arn}/watch/*"]
    # and the API's GET /watches/{id} reads a big watch's whole summary
    api = _statements(template["Resources"]["ApiFunction"]["Properties"]["Policies"])
    assert "${ConfigBucket.Arn}/watch/*" in _allowed(api, "s3:GetObject")
