"""The watch's template contract: each health-rule parameter's default is the rules' own default, the
watch function reads each one, and the watch state machine runs on an EventBridge Scheduler schedule
at the WatchIntervalMinutes rate."""

from __future__ import annotations

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
                "WATCH_CERT_THRESHOLDS": "30,fourteen",
            }
        )
    assert "WATCH_CERT_THRESHOLDS" in str(refused.value)
