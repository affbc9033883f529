"""The sample events under events/ for the plan, register, summarize and deploy-trigger functions,
each given to its handler as Lambda would (through the local stack: template.yaml's environment, the
tables and bucket on moto, Cognigy as the simulator over TLS).

The samples are what `sam local invoke -e events/<name>.json <Function>` sends, and the shapes the
state machine and EventBridge really deliver (the register ones are the ASL's task Parameters)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cognigy_webhooks.dal.desired_sets import DesiredSetStore
from cognigy_webhooks.reconcile import RegisterResult
from tests.integration.reconcile.harness import Harness

ROOT = Path(__file__).resolve().parents[3]
EVENTS = ROOT / "events"


def sample(name: str) -> dict[str, Any]:
    loaded = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


# --- plan ------------------------------------------------------------------------------------------


def planned_items(h: Harness, output: dict[str, Any]) -> list[dict[str, Any]]:
    """The items the plan wrote to the config bucket (its output carries itemsRef in their place)."""
    ref = output["itemsRef"]
    assert "items" not in output
    body = h.stack.client("s3").get_object(Bucket=ref["bucket"], Key=ref["key"])["Body"].read()
    items = json.loads(body)
    assert ref["count"] == len(items)
    assert ref["concurrency"] >= 1
    return list(items)


def test_plan_sample_plans_every_desired_endpoint_and_prunes_what_is_no_longer_desired(h: Harness) -> None:
    # Given an endpoint recorded by an earlier reconcile that the sample's desired set no longer has
    h.apply([h.endpoint("old-survey-webhook")])
    event = sample("plan.json")

    # When the plan task gets the sample
    output = h.stack.invoke("PlanFunction", event)

    # Then both desired endpoints are applied, the old one deleted, nothing invalid
    items = planned_items(h, output)
    actions = [(item["action"], item["endpoint"]["name"]) for item in items]
    assert actions == [
        ("apply", "orders-bot-webhook"),
        ("apply", "handover-webhook"),
        ("delete", "old-survey-webhook"),
    ]
    assert output["invalid"] == []
    assert output["executionId"] == event["executionId"]
    assert (output["source"], output["prune"]) == ("cli", True)
    handover = items[1]["endpoint"]
    assert handover["signatureSecretArn"].startswith("arn:aws:secretsmanager:")  # an ARN, never the secret


def test_plan_sample_reads_the_same_from_the_config_bucket(h: Harness) -> None:
    event = sample("plan.json")
    store = DesiredSetStore(h.stack.client("s3"), h.stack.outputs["ConfigBucketName"])
    version = store.put(event["input"]["desired"])
    by_reference = {
        "input": {"desiredRef": {"key": store.KEY, "versionId": version}, "prune": False, "source": "cli"},
        "executionId": event["executionId"],
    }

    output = h.stack.invoke("PlanFunction", by_reference)

    assert [item["endpoint"]["name"] for item in planned_items(h, output)] == [
        "orders-bot-webhook",
        "handover-webhook",
    ]


# --- register: the four actions ----------------------------------------------------------------------


def test_register_samples_create_record_fail_and_delete_the_endpoint(h: Harness) -> None:
    name = sample("register_apply.json")["endpoint"]["name"]

    # apply: created in Cognigy and recorded; the same event again changes nothing
    created = RegisterResult.model_validate(h.stack.invoke("RegisterFunction", sample("register_apply.json")))
    again = RegisterResult.model_validate(h.stack.invoke("RegisterFunction", sample("register_apply.json")))
    assert (created.name, created.outcome, created.status_code) == (name, "created", 201)
    assert again.outcome == "unchanged"
    [webhook] = h.sim.webhooks.values()
    assert webhook["name"] == name
    assert webhook["headers"]["X-Team"] == "orders"
    assert webhook["headers"]["X-Cogwh-Origin"] == "cognigy-webhooks"  # the project's loop marks
    record = h.record(name)
    assert record is not None
    assert record.webhook_id == created.webhook_id

    # probe_failed: recorded as a failure with the probe's reason, Cognigy untouched
    probe_failed = h.stack.invoke("RegisterFunction", sample("register_probe_failed.json"))
    assert (probe_failed["outcome"], probe_failed["reason"]) == ("failed", "probe_tls_version_unsupported")

    # fail: the ASL's caught error (Error and Cause) becomes the recorded reason and detail
    failed = h.stack.invoke("RegisterFunction", sample("register_fail.json"))
    assert (failed["outcome"], failed["reason"]) == ("failed", "cognigy_unavailable")
    assert "503" in failed["detail"]
    assert len(h.sim.webhooks) == 1

    # delete: gone from Cognigy and from the records
    deleted = h.stack.invoke("RegisterFunction", sample("register_delete.json"))
    assert (deleted["outcome"], deleted["webhookId"]) == ("deleted", created.webhook_id)
    assert h.sim.webhooks == {}
    assert h.record(name) is None
    assert [e.action for e in h.audit(name)] == ["register", "unchanged", "probe", "failure", "delete"]


# --- summarize ---------------------------------------------------------------------------------------


def test_summarize_sample_counts_every_outcome(h: Harness) -> None:
    # Given what the map run's ResultWriter and the plan wrote (events/summarize_results.json), in
    # the stack's config bucket where the sample names them
    event = sample("summarize.json")
    written = sample("summarize_results.json")
    s3, bucket = h.stack.client("s3"), h.stack.outputs["ConfigBucketName"]
    event["resultWriterDetails"]["Bucket"] = event["itemsRef"]["bucket"] = bucket
    manifest_key = event["resultWriterDetails"]["Key"]
    succeeded_key = manifest_key.replace("manifest.json", "SUCCEEDED_0.json")
    s3.put_object(Bucket=bucket, Key=succeeded_key, Body=json.dumps(written["succeeded"]).encode())
    manifest = {"ResultFiles": {"SUCCEEDED": [{"Key": succeeded_key}], "FAILED": [], "PENDING": []}}
    s3.put_object(Bucket=bucket, Key=manifest_key, Body=json.dumps(manifest).encode())
    s3.put_object(
        Bucket=bucket, Key=event["itemsRef"]["invalidKey"], Body=json.dumps(written["invalid"]).encode()
    )

    # When the summarize task gets the sample
    output = h.stack.invoke("SummarizeFunction", event)

    assert output["counts"] == {"created": 1, "updated": 0, "unchanged": 1, "deleted": 1, "failed": 2}
    assert output["created"] == ["orders-bot-webhook"]
    assert [f["name"] for f in output["failed"]] == ["legacy-crm", "#4"]
    assert output["executionId"] == event["executionId"]
    # and the whole summary is beside the results
    ref = output["summaryRef"]
    whole = json.loads(s3.get_object(Bucket=ref["bucket"], Key=ref["key"])["Body"].read())
    assert whole["counts"] == output["counts"]
    assert len(whole["results"]) == 5


# --- deploy trigger ------------------------------------------------------------------------------------


def _empty_config_bucket(h: Harness) -> None:
    s3 = h.stack.client("s3")
    bucket = h.stack.outputs["ConfigBucketName"]
    versions = s3.list_object_versions(Bucket=bucket)
    for item in [*versions.get("Versions", []), *versions.get("DeleteMarkers", [])]:
        s3.delete_object(Bucket=bucket, Key=item["Key"], VersionId=item["VersionId"])


def test_deploy_trigger_sample_reconciles_the_latest_desired_set_once(h: Harness) -> None:
    event = sample("deploy_trigger.json")
    _empty_config_bucket(h)

    # Given no desired set yet: nothing to do
    assert h.stack.invoke("DeployTriggerFunction", event) == {"started": False, "reason": "no_desired_set"}

    # When a desired set is stored and the stack reports UPDATE_COMPLETE (the sample)
    DesiredSetStore(h.stack.client("s3"), h.stack.outputs["ConfigBucketName"]).put(
        {"endpoints": [h.endpoint("deploy-hook")]}
    )
    first = h.stack.invoke("DeployTriggerFunction", event)

    # Then a reconcile of that version runs and registers it
    assert first["started"] is True
    assert h.stack.wait_execution(first["executionArn"])["status"] == "SUCCEEDED"
    assert [w["name"] for w in h.sim.webhooks.values()] == ["deploy-hook"]

    # And the same version is reconciled once: a later deploy event starts nothing new
    again = h.stack.invoke("DeployTriggerFunction", event)
    assert again == {"started": False, "executionArn": first["executionArn"]}
    sfn = h.stack.client("stepfunctions")
    machine = first["executionArn"].replace(":execution:", ":stateMachine:").rsplit(":", 1)[0]
    names = [e["name"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]]
    assert names.count(first["executionArn"].rsplit(":", 1)[1]) == 1


def test_deploy_trigger_sample_is_what_the_templates_rule_matches() -> None:
    from cfnlint.decode.cfn_yaml import loads

    template = loads((ROOT / "template.yaml").read_text(encoding="utf-8"), "template.yaml")
    pattern = template["Resources"]["DeployTriggerFunction"]["Properties"]["Events"]["StackDeployed"][
        "Properties"
    ]["Pattern"]
    event = sample("deploy_trigger.json")

    assert event["source"] in pattern["source"]
    assert event["detail-type"] in pattern["detail-type"]
    assert event["detail"]["status-details"]["status"] in pattern["detail"]["status-details"]["status"]
    assert event["resources"] == [event["detail"]["stack-id"]]  # the rule matches on the stack's own id
