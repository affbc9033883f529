"""cognigy_webhooks.ops without AWS: the page cursors, a desired set's check (fields named with their
endpoint), the plan with no side effect, the refusal that stores nothing, an execution's id and
cause, and the history read as steps (a failed probe never shown as passed) and as a summary so far.
Stand-ins for the stores where one is needed; nothing here reaches AWS."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from cognigy_webhooks.dal import cursors
from cognigy_webhooks.dal.executions import Executions, ExecutionStatus
from cognigy_webhooks.errors import InvalidInput, InvalidSpec, NotFound
from cognigy_webhooks.models.records import EndpointRecord
from cognigy_webhooks.ops import (
    StackAccess,
    check_desired,
    plan_desired,
    start_execution,
    step_of,
    summary_so_far,
)
from cognigy_webhooks.ops.executions import _view

SM_ARN = "arn:aws:states:eu-central-1:123456789012:stateMachine:stack-Reconcile"


# --- cursors -------------------------------------------------------------------------------------------


def test_a_cursor_gives_back_its_position() -> None:
    token = cursors.encode("audit", {"n": "orders", "s": "2025-01-01T00:00:00.000000Z#abc"})

    assert "=" not in token
    assert cursors.decode("audit", token, ("n", "s")) == {
        "n": "orders",
        "s": "2025-01-01T00:00:00.000000Z#abc",
    }


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not base64 at all!",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        cursors.encode("records", {"n": "orders"}),  # another listing's
        cursors.encode("audit", {"n": "orders"}),  # a field missing
        base64.urlsafe_b64encode(json.dumps({"k": "audit", "n": 1, "s": "x"}).encode()).decode(),
        "A" * (cursors.MAX_CURSOR_LENGTH + 1),
    ],
)
def test_anything_else_is_refused_naming_the_cursor(token: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        cursors.decode("audit", token, ("n", "s"))

    assert [e["field"] for e in refused.value.errors] == ["cursor"]
    assert token[:20] not in str(refused.value) or not token


# --- a desired set checked --------------------------------------------------------------------------


def test_each_field_at_fault_is_named_under_desired_set_with_its_endpoint() -> None:
    desired = {
        "endpoints": [
            {"name": "good-one", "url": "https://a.example.com/h"},
            {"name": "bad-one", "url": "http://a.example.com/h", "signatureSecret": "short-secret"},
        ]
    }

    with pytest.raises(InvalidSpec) as refused:
        check_desired(desired)

    fields = {(e["field"], e.get("endpoint")) for e in refused.value.errors}
    assert ("desiredSet.endpoints.1.url", "bad-one") in fields
    assert "short-secret" not in str(refused.value)
    with pytest.raises(InvalidSpec) as whole:
        check_desired(["not", "a", "mapping"])
    assert whole.value.errors == [{"field": "desiredSet", "message": "must be an object with endpoints"}]


# --- the plan, with stand-in stores ----------------------------------------------------------------------


@dataclass
class _Store:
    records: list[EndpointRecord] = field(default_factory=list)

    def iter_records(self) -> list[EndpointRecord]:
        return self.records


class _Refuse:
    """A store the test forbids: any use of it fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"{name} used: something was stored or read")


def _access(records: list[EndpointRecord], dialect: Any = "tutorial") -> StackAccess:
    def no_secrets_manager() -> Any:
        raise AssertionError("Secrets Manager used")

    return StackAccess(
        store=_Store(records),  # type: ignore[arg-type]
        desired_sets=_Refuse(),  # type: ignore[arg-type]
        executions=_Refuse(),  # type: ignore[arg-type]
        secretsmanager=no_secrets_manager,
        stack_name="stack",
        dialect=dialect,
    )


def test_a_plan_creates_deletes_with_prune_and_refuses_what_the_dialect_cannot_take() -> None:
    recorded = [EndpointRecord(name="old-hook", status="registered", webhook_id="w1")]
    desired = {
        "cognigy": {"projectId": "proj1"},
        "endpoints": [
            {
                "name": "new-hook",
                "url": "https://a.example.com/h",
                "basicAuth": {"username": "u", "password": "p" * 20},
            },
            {"name": "xml-hook", "url": "https://b.example.com/h", "payloadFormat": "XML"},
        ],
    }

    plan = plan_desired(_access(recorded, "endpoints"), desired, prune=True)

    entries = {e.name: e for e in plan.entries}
    assert (entries["new-hook"].action, entries["new-hook"].secrets) == ("create", ["basicAuth.password"])
    assert entries["xml-hook"].action == "refused"
    assert [(e.field, e.endpoint) for e in entries["xml-hook"].errors] == [("payloadFormat", "xml-hook")]
    assert entries["old-hook"].action == "delete"
    assert plan.deletions == ["old-hook"]
    assert plan.counts == {"create": 1, "update": 0, "unchanged": 0, "delete": 1, "refused": 1}
    assert "p" * 20 not in plan.model_dump_json()
    without = plan_desired(_access(recorded, "endpoints"), desired, prune=False)
    assert without.deletions == []


def test_a_refused_set_stores_nothing_not_even_its_secrets() -> None:
    desired = {"endpoints": [{"name": "bad", "url": "http://x.example.com", "signatureSecret": "s" * 40}]}

    with pytest.raises(InvalidSpec):
        start_execution(_access([]), desired, prune=False)  # the stand-ins fail the test if touched


# --- executions ------------------------------------------------------------------------------------------


def test_an_execution_is_named_by_its_id_or_its_own_arn_only() -> None:
    executions = Executions(object(), SM_ARN)
    own = SM_ARN.replace(":stateMachine:", ":execution:") + ":cli-abc"

    assert executions.arn_of("cli-abc") == own
    assert executions.arn_of(own) == own
    with pytest.raises(NotFound):
        executions.arn_of(own.replace("stack-Reconcile", "another-machine"))
    with pytest.raises(InvalidInput) as bad:
        executions.arn_of("not an id")
    assert bad.value.errors[0]["field"] == "executionId"


def test_a_failure_s_cause_is_its_message_without_the_stack_trace() -> None:
    cause = json.dumps(
        {"errorMessage": "the API key was refused", "errorType": "X", "stackTrace": ["File a.py"]}
    )
    status = ExecutionStatus(
        execution_arn=SM_ARN.replace(":stateMachine:", ":execution:") + ":api-" + "0" * 32,
        status="FAILED",
        error="CognigyAuthError",
        cause=cause,
        input=json.dumps({"desiredRef": {"versionId": "v1"}, "prune": True}),
    )

    view = _view(status)

    assert (view.execution_id, view.source, view.prune, view.desired_version) == (
        "api-" + "0" * 32,
        "api",
        True,
        "v1",
    )
    assert view.cause == "the API key was refused"


# --- the history, read ------------------------------------------------------------------------------------


def _exited(state: str, output: Any) -> dict[str, Any]:
    return {"stateExitedEventDetails": {"name": state, "output": json.dumps(output)}}


def _entered(state: str, doc: Any) -> dict[str, Any]:
    return {"stateEnteredEventDetails": {"name": state, "input": json.dumps(doc)}}


def test_a_failed_probe_is_shown_failed_and_the_choice_states_not_at_all() -> None:
    failed_probe = {
        "endpoint": {"name": "legacy"},
        "probe": {"passed": False, "reason": "tls_version_unsupported"},
    }
    passed_probe = {
        "endpoint": {"name": "orders"},
        "probe": {
            "passed": True,
            "reason": "ok",
            "primary": {"tlsVersion": "TLSv1.3", "timingsMs": {"total": 12.4}},
        },
    }

    steps = [
        step_of(_entered("Probe", failed_probe)),
        step_of(_exited("Probe", failed_probe)),
        step_of(_entered("ProbePassed", failed_probe)),
        step_of(_exited("Probe", passed_probe)),
        step_of(_entered("Register", {"action": "delete", "endpoint": {"name": "gone"}})),
        step_of(
            _exited("RecordProbeFailure", {"name": "legacy", "outcome": "failed", "reason": "probe_tls"})
        ),
        step_of({"executionFailedEventDetails": {"error": "CognigyAuthError"}}),
    ]

    shown = [(s.endpoint, s.what, s.detail) if s else None for s in steps]
    assert shown == [
        ("legacy", "probing", None),
        ("legacy", "probe failed", "tls_version_unsupported"),
        None,
        ("orders", "probe passed", "TLSv1.3, 12 ms"),
        ("gone", "deleting", None),
        ("legacy", "failed", "probe_tls"),
        ("*", "execution failed", "CognigyAuthError"),
    ]


def test_what_an_execution_did_so_far_is_summarized_from_its_history() -> None:
    events = [
        _exited(
            "Plan",
            {
                "items": [],
                "invalid": [{"name": "bad", "outcome": "failed", "reason": "invalid_spec"}],
                "source": "cli",
            },
        ),
        _exited("Register", {"name": "orders", "outcome": "created"}),
        _exited("Probe", {"endpoint": {"name": "x"}, "probe": {"passed": True}}),
        {"executionFailedEventDetails": {"error": "CognigyAuthError"}},
    ]

    summary = summary_so_far(events, execution_id="arn:x")

    assert summary.created == ["orders"]
    assert [f["name"] for f in summary.failed] == ["bad"]
    assert summary.counts["created"] == 1
    assert summary.source == "cli"
