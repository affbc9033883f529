"""The reconcile state machine's Retry/Catch contract, read from the shipped ASL and template.yaml: every
error name it matches is an exception class the library raises (the class name is the contract),
every Retry backs off with jitter and none retries everything, the claimed-endpoint error is retried
with patience, and the create claim's lease outlives the register function (a holder still running
never loses its claim)."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from typing import Any

from cfnlint.decode.cfn_yaml import loads

from cognigy_webhooks import errors, store
from cognigy_webhooks.reconcile import CREATE_CLAIM_LEASE_SECONDS
from cogwh.demo import ROOT

PLACEHOLDER = re.compile(r"\$\{[^}]*\}")
RUNTIME_ERRORS = ("States.", "Lambda.")


def _definition() -> dict[str, Any]:
    text = (ROOT / "statemachine" / "reconcile.asl.json").read_text(encoding="utf-8")
    return dict(json.loads(PLACEHOLDER.sub("1", text)))


def _states(scope: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in scope["States"].items():
        yield name, state
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from _states(processor)


def _template() -> dict[str, Any]:
    return dict(loads((ROOT / "template.yaml").read_text(encoding="utf-8"), str(ROOT / "template.yaml")))


def _timeout(logical_id: str) -> int:
    template = _template()
    props = template["Resources"][logical_id]["Properties"]
    return int(props.get("Timeout", template["Globals"]["Function"]["Timeout"]))


def test_every_error_name_is_an_exception_class_of_the_library() -> None:
    classes = {
        name
        for module in (errors, store)
        for name, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, Exception)
    }
    for name, state in _states(_definition()):
        for rule in [*state.get("Retry", []), *state.get("Catch", [])]:
            for error in rule["ErrorEquals"]:
                if not error.startswith(RUNTIME_ERRORS):
                    assert error in classes, f"{name}: {error} names no exception class of the library"


def test_every_retry_backs_off_with_jitter_and_none_retries_everything() -> None:
    retries = [(name, rule) for name, state in _states(_definition()) for rule in state.get("Retry", [])]
    assert retries
    for name, rule in retries:
        assert "States.ALL" not in rule["ErrorEquals"], name
        assert rule.get("BackoffRate", 1) >= 2, name
        assert rule.get("JitterStrategy") == "FULL", name


def test_a_claimed_endpoint_is_retried_with_patience_then_recorded() -> None:
    states = dict(_states(_definition()))
    register = states["Register"]
    [claimed] = [r for r in register["Retry"] if "EndpointClaimed" in r["ErrorEquals"]]
    # the holder may need a few seconds (a look-up, a create, a commit, maybe paced by the budget)
    waits = [
        min(claimed["IntervalSeconds"] * claimed["BackoffRate"] ** n, claimed.get("MaxDelaySeconds", 1e9))
        for n in range(claimed["MaxAttempts"])
    ]
    assert sum(waits) >= 60
    # once the retries are spent, the error goes to RecordFailure like any other
    [catch_all] = [c for c in register["Catch"] if c["ErrorEquals"] == ["States.ALL"]]
    assert catch_all["Next"] == "RecordFailure"


def test_the_record_tasks_retry_a_transient_store_error_and_a_live_claim() -> None:
    states = dict(_states(_definition()))
    for name in ("RecordFailure", "RecordProbeFailure"):
        retried = {error for rule in states[name]["Retry"] for error in rule["ErrorEquals"]}
        assert {"StoreError", "RecordConflict"} <= retried, name


def test_the_claim_lease_outlives_the_register_function() -> None:
    assert _timeout("RegisterFunction") < CREATE_CLAIM_LEASE_SECONDS


def test_the_plan_listing_is_bounded_inside_the_plan_function_timeout() -> None:
    tree = ast.parse((ROOT / "functions" / "plan" / "app.py").read_text(encoding="utf-8"))
    [budget] = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "LISTING_BUDGET_SECONDS" for t in node.targets)
        and isinstance(node.value, ast.Constant)
    ]
    assert isinstance(budget, int | float)
    assert budget + 15 <= _timeout("PlanFunction")


def test_every_map_item_carries_what_the_listing_saw_to_the_register_task() -> None:
    states = dict(_states(_definition()))
    assert states["ApplyEach"]["ItemSelector"]["cognigy.$"] == "$$.Map.Item.Value.cognigy"
    assert states["Register"]["Parameters"]["cognigy.$"] == "$.cognigy"
