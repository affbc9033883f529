"""The pure parts of the reconcile steps: plan and summarize."""

from __future__ import annotations

import json

import pytest

from cognigy_webhooks.errors import CognigyThrottled, InvalidSpec
from cognigy_webhooks.reconcile import plan, summarize, throttled_for_state_machine

SECRET = "s3cr3t-value-that-is-long-enough-0123456789"


def _ep(name: str, **extra: object) -> dict[str, object]:
    return {"name": name, "url": f"https://{name}.example.com/hook", **extra}


def _plan(execution_input: dict[str, object], recorded: list[str] | None = None):
    return plan(
        execution_input,
        recorded_names=lambda: list(recorded or []),
        load_desired=lambda ref: {"endpoints": [_ep("from-bucket")]},
        execution_id="arn:exec:1",
    )


def test_valid_endpoints_become_apply_items_in_order() -> None:
    result = _plan({"desired": {"endpoints": [_ep("alpha"), _ep("beta")]}, "source": "api"})
    assert [(i.action, i.endpoint["name"]) for i in result.items] == [("apply", "alpha"), ("apply", "beta")]
    assert result.source == "api"
    assert result.invalid == []
    # the state carries camelCase specs with defaults filled in
    assert result.items[0].endpoint["timeoutMs"] == 10000


def test_one_bad_spec_never_stops_the_others() -> None:
    result = _plan({"desired": {"endpoints": [_ep("good"), {"name": "bad", "url": "http://x"}, _ep("good")]}})
    assert [i.endpoint["name"] for i in result.items] == ["good"]
    reasons = {(i["name"], i["reason"]) for i in result.invalid}
    assert reasons == {("bad", "invalid_spec"), ("good", "invalid_spec")}
    assert any("url" in i["detail"] for i in result.invalid)


def test_plain_secret_in_execution_input_is_refused_and_never_echoed() -> None:
    spec = _ep("signed", signatureHeader="X-Sig", signatureSecret=SECRET)
    result = _plan({"desired": {"endpoints": [spec]}})
    assert result.items == []
    assert "Secrets Manager" in result.invalid[0]["detail"]
    assert SECRET not in json.dumps(result.model_dump(mode="json"))


def test_prune_lists_recorded_names_no_longer_desired() -> None:
    result = _plan({"desired": {"endpoints": [_ep("keep")]}, "prune": True}, recorded=["keep", "gone", "old"])
    deletions = [i.endpoint["name"] for i in result.items if i.action == "delete"]
    assert deletions == ["gone", "old"]


def test_without_prune_nothing_is_deleted() -> None:
    result = _plan({"desired": {"endpoints": []}}, recorded=["gone"])
    assert result.items == []


def test_desired_ref_is_loaded() -> None:
    result = _plan({"desiredRef": {"key": "desired/endpoints.json", "versionId": "v1"}})
    assert [i.endpoint["name"] for i in result.items] == ["from-bucket"]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({}, "desired"),
        ({"desired": {"endpoints": "nope"}}, "desired.endpoints"),
        ({"desired": {"endpoints": []}, "prune": "yes"}, "prune"),
        ({"desiredRef": {}}, "desiredRef"),
    ],
)
def test_malformed_input_names_the_field(bad: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        _plan(bad)
    assert info.value.errors[0]["field"] == field


def test_summarize_groups_outcomes() -> None:
    results = [
        {"name": "a", "outcome": "created", "webhookId": "1"},
        {"name": "b", "outcome": "unchanged"},
        {"name": "c", "outcome": "failed", "reason": "probe_tls_version_unsupported"},
        {"name": "d", "outcome": "deleted"},
        {"name": "e", "outcome": "updated"},
        {"garbage": True},
    ]
    invalid = [{"name": "f", "outcome": "failed", "reason": "invalid_spec", "detail": "url: must use https"}]
    summary = summarize(results, invalid, execution_id="x", source="cli")
    assert summary.created == ["a"]
    assert summary.unchanged == ["b"]
    assert summary.deleted == ["d"]
    assert summary.updated == ["e"]
    assert [f["name"] for f in summary.failed] == ["c", "?", "f"]
    assert summary.counts == {"created": 1, "updated": 1, "unchanged": 1, "deleted": 1, "failed": 3}


@pytest.mark.parametrize(("retry_after", "seconds"), [(None, 5), (0.2, 1), (2.0, 2), (2.1, 3)])
def test_throttle_restated_with_whole_seconds_for_the_wait_state(
    retry_after: float | None, seconds: int
) -> None:
    restated = throttled_for_state_machine(CognigyThrottled("429 on POST", retry_after=retry_after))
    payload = json.loads(str(restated))
    assert payload["retryAfterSeconds"] == seconds
    assert type(restated).__name__ == "CognigyThrottled"


def test_resolve_for_cognigy_fills_secret_headers_and_basic_auth() -> None:
    from cognigy_webhooks.models import WebhookEndpoint
    from cognigy_webhooks.reconcile import resolve_for_cognigy
    from cognigy_webhooks.secrets import secret_reference

    store = {"arn:tok": "t0ken-value", "arn:pw": "pa55word"}
    spec = WebhookEndpoint.model_validate(
        _ep(
            "resolved",
            headers={"X-Api-Token": secret_reference("arn:tok"), "X-Team": "ops"},
            basicAuth={"username": "cognigy", "passwordArn": "arn:pw"},
        )
    )
    resolved = resolve_for_cognigy(spec, store.__getitem__)
    assert resolved.headers["X-Api-Token"] == "t0ken-value"
    assert resolved.headers["X-Team"] == "ops"
    assert resolved.headers["Authorization"] == "Basic Y29nbmlneTpwYTU1d29yZA=="
    # deliveries carry our loop-prevention headers, the same on every run
    assert resolved.headers["X-Cogwh-Origin"] == "cognigy-webhooks"
    assert resolved.headers["X-Cogwh-Hop"] == "1"
    assert resolve_for_cognigy(spec, store.__getitem__).spec_hash() == resolved.spec_hash()
    # the spec itself keeps only the references, and a rotated value is drift
    assert spec.headers["X-Api-Token"] == "{{resolve:secretsmanager:arn:tok}}"
    rotated = resolve_for_cognigy(spec, {**store, "arn:pw": "new-pass"}.__getitem__)
    assert rotated.spec_hash() != resolved.spec_hash()
    assert "pa55word" not in repr(resolved)
    assert "t0ken-value" not in repr(resolved)


def test_basic_auth_and_an_authorization_header_are_exclusive() -> None:
    from cognigy_webhooks.models import parse_endpoint

    with pytest.raises(InvalidSpec) as info:
        parse_endpoint(
            _ep(
                "both", headers={"authorization": "Bearer x"}, basicAuth={"username": "u", "passwordArn": "a"}
            )
        )
    assert info.value.errors[0]["field"] == "basicAuth"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"headers": {"Authorization": "Bearer " + SECRET}}, "headers.Authorization"),
        ({"basicAuth": {"username": "u", "password": SECRET}}, "basicAuth.password"),
    ],
)
def test_credentials_in_clear_are_refused_before_they_reach_state(
    extra: dict[str, object], field: str
) -> None:
    result = _plan({"desired": {"endpoints": [_ep("clear", **extra)]}})
    assert result.items == []
    assert result.invalid[0]["detail"].startswith(field)
    assert SECRET not in json.dumps(result.model_dump(mode="json"))


def test_credential_headers_by_reference_pass() -> None:
    ref = "{{resolve:secretsmanager:arn:aws:secretsmanager:us-east-1:1:secret:x}}"
    endpoint = _ep("by-ref", headers={"Authorization": ref, "X-Team": "a"}, publicHeaders=["X-Team"])
    result = _plan({"desired": {"endpoints": [endpoint]}})
    assert [i.endpoint["headers"]["Authorization"] for i in result.items] == [ref]
    assert [i.endpoint["headers"]["X-Team"] for i in result.items] == ["a"]


@pytest.mark.parametrize(
    "name", ["X-Functions-Key", "Ocp-Apim-Subscription-Key", "X-Auth-Key", "Api_Key", "X-Team"]
)
def test_every_header_in_clear_is_refused_unless_declared_public(name: str) -> None:
    value = "clear-" + SECRET
    refused = _plan({"desired": {"endpoints": [_ep("clear", headers={name: value})]}})
    assert refused.items == []
    assert refused.invalid[0]["detail"].startswith(f"headers.{name}")
    assert value not in json.dumps(refused.model_dump(mode="json"))

    declared = _plan({"desired": {"endpoints": [_ep("clear", headers={name: value}, publicHeaders=[name])]}})
    assert [i.endpoint["headers"][name] for i in declared.items] == [value]
