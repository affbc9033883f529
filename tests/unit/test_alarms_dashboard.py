"""template.yaml's alarms and dashboard, resolved as CloudFormation would (the local stack's own
template reader, every resource given a made-up physical id): each alarm names a registry metric with
its dimensions (or an AWS metric of one of this stack's resources), says what to do, chooses its
missing-data treatment, and notifies AlarmTopicArn only when one is given; the dashboard body is JSON
whose widgets name only registry metrics and show every alarm, with and without the audit sync."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cognigy_webhooks.metric_names import METRICS, METRICS_NAMESPACE, SERVICE, MetricName
from cogwh.localstack import LocalStackError
from cogwh.localstack.template import Template

ROOT = Path(__file__).resolve().parents[2]
STACK = "cwh-test"
REGION = "eu-central-1"
ACCOUNT = "123456789012"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:oncall"
REQUIRED = {"CognigyApiKeySecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:cognigy-key"}
AUDIT_SYNC = {"MonitoringUrl": "https://monitoring.example.test/ingest"}

#: What a person must act on (issue 12, item 3), by alarm.
ALARMS = {
    "EndpointsDeactivatedAlarm",
    "CertificateExpiringAlarm",
    "ReceiverCrashAlarm",
    "ReceiverServerErrorsAlarm",
    "CognigyAuthFailuresAlarm",
    "AuditSyncDeadLetterAlarm",
}
#: What the dashboard must show besides the alarms.
SHOWN = {
    "ProbeLatency",
    "ProbeResult",
    "CognigyCalls",
    "CognigyThrottles",
    "Deliveries",
    "LoopStops",
    "Replays",
    "WatchTransitions",
    "EndpointsDeactivated",
    "CertificateMinDaysLeft",
    "CognigyAuthFailures",
}
_SEARCH = re.compile(r"SEARCH\('\{([^}]*)\}\s+(.*?)',\s*'(\w+)',\s*(\d+)\)")
_TERM = re.compile(r'(\w+)="([^"]*)"')


def template(**parameters: str) -> Template:
    tpl = Template(
        ROOT / "template.yaml",
        stack_name=STACK,
        region=REGION,
        account_id=ACCOUNT,
        parameters={**REQUIRED, **parameters},
    )
    for lid in tpl.resources:
        if tpl.is_active(lid):
            tpl.register(
                lid, f"{lid}-id", {"Arn": f"arn:aws:x:{REGION}:{ACCOUNT}:{lid}", "QueueName": f"{lid}-q"}
            )
    return tpl


def resolved(tpl: Template, lid: str) -> dict[str, Any]:
    props = tpl.resolve(tpl.properties(lid), f"Resources.{lid}.Properties")
    assert isinstance(props, dict)
    return props


def alarms(tpl: Template) -> dict[str, dict[str, Any]]:
    return {
        lid: resolved(tpl, lid)
        for lid in tpl.resources
        if tpl.resource_type(lid) == "AWS::CloudWatch::Alarm" and tpl.is_active(lid)
    }


def dashboard(tpl: Template) -> dict[str, Any]:
    [lid] = [lid for lid in tpl.resources if tpl.resource_type(lid) == "AWS::CloudWatch::Dashboard"]
    body = resolved(tpl, lid)["DashboardBody"]
    assert isinstance(body, str)
    parsed = json.loads(body)
    assert isinstance(parsed, dict)
    return parsed


@pytest.fixture(params=["without the audit sync", "with the audit sync"])
def tpl(request: pytest.FixtureRequest) -> Template:
    return template(**(AUDIT_SYNC if "with" in request.param else {}))


# --- what a metric reference must be -----------------------------------------------------------------


def _own(tpl: Template) -> dict[str, str]:
    """The AWS metrics of this stack's resources: their dimension -> the only value allowed."""
    receive_api = resolved(tpl, "ReceiveApi")["Name"]
    own = {"ApiName": receive_api, "FunctionName": "ReceiveFunction-id"}
    if tpl.is_active("AuditSyncDeadLetterQueue"):
        own["QueueName"] = "AuditSyncDeadLetterQueue-q"
    return own


def check_reference(tpl: Template, namespace: str, name: str, dims: dict[str, str], where: str) -> None:
    if namespace != METRICS_NAMESPACE:
        assert namespace in ("AWS/ApiGateway", "AWS/Lambda", "AWS/SQS"), where
        own = _own(tpl)
        assert dims, where
        for key, value in dims.items():
            assert own.get(key) == value, f"{where}: {namespace} {name} {key}={value} is not this stack's"
        return
    assert name in METRICS, f"{where}: {name} is not in the registry"
    spec = METRICS[MetricName(name)]
    assert set(dims) == {"service", "stack", *spec.dimensions}, f"{where}: {name} dimensions {sorted(dims)}"
    assert dims["service"] == SERVICE, where
    assert dims["stack"] == STACK, where


def alarm_references(props: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, str]]]:
    if "MetricName" in props:
        yield props["Namespace"], props["MetricName"], {d["Name"]: d["Value"] for d in props["Dimensions"]}
    for query in props.get("Metrics", []):
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            yield metric["Namespace"], metric["MetricName"], dims


def widget_references(widget: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, str]]]:
    """(namespace, metric, dimensions) of each line of a metric widget; for a SEARCH, the dimensions
    of its schema, each with the value the search pins ("*" when it leaves one open)."""
    for line in widget["properties"].get("metrics", []):
        if isinstance(line[0], dict):
            found = _SEARCH.fullmatch(line[0]["expression"])
            assert found, line[0]["expression"]
            schema = [part.strip() for part in found.group(1).split(",")]
            terms = dict(_TERM.findall(found.group(2)))
            name = terms.pop("MetricName")
            assert set(terms) <= set(schema[1:]), line
            yield schema[0], name, {dim: terms.get(dim, "*") for dim in schema[1:]}
            continue
        parts = [p for p in line if not isinstance(p, dict)]
        namespace, name, rest = parts[0], parts[1], parts[2:]
        assert len(rest) % 2 == 0, line
        yield namespace, name, dict(zip(rest[::2], rest[1::2], strict=True))


def _open_own_dimensions(name: str, dims: dict[str, str]) -> dict[str, str]:
    """A SEARCH may leave only the metric's own dimensions open (to show each value)."""
    own = METRICS[MetricName(name)].dimensions if name in METRICS else ()
    return {k: ("any" if v == "*" and k in own else v) for k, v in dims.items()}


# --- the alarms -------------------------------------------------------------------------------------


def test_the_alarms_are_the_ones_a_person_must_act_on() -> None:
    assert set(alarms(template(**AUDIT_SYNC))) == ALARMS
    assert set(alarms(template())) == ALARMS - {"AuditSyncDeadLetterAlarm"}


def test_every_alarm_names_a_registry_metric_or_one_of_this_stacks_aws_metrics(tpl: Template) -> None:
    for lid, props in alarms(tpl).items():
        refs = list(alarm_references(props))
        assert refs, lid
        for namespace, name, dims in refs:
            check_reference(tpl, namespace, name, dims, lid)


def test_every_alarm_says_what_it_means_and_what_to_do_and_chooses_its_missing_data(tpl: Template) -> None:
    for lid, props in alarms(tpl).items():
        description = props["AlarmDescription"]
        assert len(description) > 120, lid
        assert "${" not in description, lid
        assert props["TreatMissingData"] in ("breaching", "notBreaching", "ignore", "missing"), lid
        assert int(props["EvaluationPeriods"]) >= 1, lid
    chosen = {lid: p["TreatMissingData"] for lid, p in alarms(template(**AUDIT_SYNC)).items()}
    # a certificate does not get better because no watch ran: keep the last verdict
    assert chosen["CertificateExpiringAlarm"] == "ignore"
    # counts of events: no data means none happened
    for lid in ALARMS - {"CertificateExpiringAlarm"}:
        assert chosen[lid] == "notBreaching", lid


def test_the_thresholds_are_the_ones_the_issue_names() -> None:
    found = alarms(template(**AUDIT_SYNC))
    deactivated = found["EndpointsDeactivatedAlarm"]
    assert (deactivated["Statistic"], deactivated["ComparisonOperator"], float(deactivated["Threshold"])) == (
        "Sum",
        "GreaterThanThreshold",
        0.0,
    )
    certificate = found["CertificateExpiringAlarm"]
    assert (certificate["Statistic"], certificate["ComparisonOperator"], float(certificate["Threshold"])) == (
        "Minimum",
        "LessThanOrEqualToThreshold",
        7.0,
    )
    auth = found["CognigyAuthFailuresAlarm"]
    assert (auth["MetricName"], auth["Statistic"], float(auth["Threshold"])) == (
        "CognigyAuthFailures",
        "Sum",
        0.0,
    )
    # the receiver's 5xx leave out the 508s it answers on purpose (loop stops)
    errors = found["ReceiverServerErrorsAlarm"]
    [expression] = [m for m in errors["Metrics"] if m.get("ReturnData", True) is True]
    by_id = {m["Id"]: m for m in errors["Metrics"]}
    assert expression["Expression"] == "FILL(answered, 0) - FILL(loops, 0)"
    assert by_id["answered"]["MetricStat"]["Metric"]["MetricName"] == "5XXError"
    assert by_id["loops"]["MetricStat"]["Metric"]["MetricName"] == "LoopStops"
    crash = found["ReceiverCrashAlarm"]
    assert (crash["Namespace"], crash["MetricName"], crash["Dimensions"]) == (
        "AWS/Lambda",
        "Errors",
        [{"Name": "FunctionName", "Value": "ReceiveFunction-id"}],
    )
    dlq = found["AuditSyncDeadLetterAlarm"]
    assert (dlq["Namespace"], dlq["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")


@pytest.mark.parametrize("audit_sync", [False, True], ids=["without the audit sync", "with the audit sync"])
def test_alarm_actions_go_to_the_topic_only_when_one_is_given(audit_sync: bool) -> None:
    extra = AUDIT_SYNC if audit_sync else {}
    for lid, props in alarms(template(**extra)).items():
        assert "AlarmActions" not in props, lid
        assert "OKActions" not in props, lid
    for lid, props in alarms(template(AlarmTopicArn=TOPIC, **extra)).items():
        assert props["AlarmActions"] == [TOPIC], lid
        assert props["OKActions"] == [TOPIC], lid


def test_the_alarm_topic_parameter_is_the_last_one_empty_by_default_and_checked() -> None:
    tpl = template()
    declared = tpl.data["Parameters"]
    assert list(declared)[-1] == "AlarmTopicArn"
    assert declared["AlarmTopicArn"]["Default"] == ""
    assert tpl.parameters["AlarmTopicArn"] == ""
    assert template(AlarmTopicArn=TOPIC).parameters["AlarmTopicArn"] == TOPIC
    assert template(AlarmTopicArn="arn:aws-cn:sns:cn-north-1:123456789012:ops_pager").condition(
        "HasAlarmTopic", "t"
    )
    for bad in ("oncall", f"arn:aws:sqs:{REGION}:{ACCOUNT}:q", f"arn:aws:sns:{REGION}:12345:x", TOPIC + " "):
        with pytest.raises(LocalStackError, match=r"AlarmTopicArn: .* does not match AllowedPattern"):
            template(AlarmTopicArn=bad)
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    assert text.index("# --- alarms ---") > text.index("  MonitoringCaBundle:")
    assert text.index("# --- alarms ---") < text.index("\nConditions:")


def test_the_receive_api_is_named_so_its_metrics_can_be_found() -> None:
    assert resolved(template(), "ReceiveApi")["Name"] == f"{STACK}-receive"


# --- the dashboard ----------------------------------------------------------------------------------


def test_the_dashboard_body_is_json_whose_widgets_name_only_registry_metrics(tpl: Template) -> None:
    body = dashboard(tpl)
    widgets = body["widgets"]
    assert widgets
    for index, widget in enumerate(widgets):
        assert {"type", "x", "y", "width", "height", "properties"} <= set(widget), index
        assert widget["x"] >= 0, index
        assert widget["x"] + widget["width"] <= 24, index
        if widget["type"] != "metric":
            continue
        assert widget["properties"]["region"] == REGION, index
        for namespace, name, dims in widget_references(widget):
            if namespace == METRICS_NAMESPACE:
                dims = _open_own_dimensions(name, dims)
            check_reference(
                tpl, namespace, name, dims, f"widget {index} ({widget['properties'].get('title')})"
            )


def test_the_dashboard_shows_every_alarm_and_the_metrics_behind_them(tpl: Template) -> None:
    body = dashboard(tpl)
    shown_alarms = [a for w in body["widgets"] if w["type"] == "alarm" for a in w["properties"]["alarms"]]
    expected = {f"arn:aws:x:{REGION}:{ACCOUNT}:{lid}" for lid in alarms(tpl)}
    assert sorted(shown_alarms) == sorted(expected)
    named = {name for w in body["widgets"] if w["type"] == "metric" for _, name, _ in widget_references(w)}
    assert named >= SHOWN
    if tpl.is_active("AuditSyncDeadLetterQueue"):
        assert "ApproximateNumberOfMessagesVisible" in named
    else:
        assert "ApproximateNumberOfMessagesVisible" not in named


def test_widgets_do_not_overlap(tpl: Template) -> None:
    taken: set[tuple[int, int]] = set()
    for widget in dashboard(tpl)["widgets"]:
        cells = {
            (x, y)
            for x in range(widget["x"], widget["x"] + widget["width"])
            for y in range(widget["y"], widget["y"] + widget["height"])
        }
        assert not cells & taken, widget["properties"].get("title")
        taken |= cells


def test_the_outputs_give_the_dashboards_name_and_url() -> None:
    tpl = template()
    tpl.register("OperationsDashboard", STACK)
    outputs = tpl.outputs()
    assert outputs["DashboardName"] == STACK
    assert outputs["DashboardUrl"].endswith(f"#dashboards/dashboard/{STACK}")
    assert f"region={REGION}" in outputs["DashboardUrl"]
    assert resolved(tpl, "OperationsDashboard")["DashboardName"] == STACK
