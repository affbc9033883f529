"""The state machines' Retry/Catch contract, read from the shipped ASL and template.yaml: every error
name they match is an exception class of cognigy_webhooks.errors that the targeted task's code raises
(the class name is the contract), every Retry backs off with jitter and none retries everything, the
claimed-endpoint error is retried with patience, and the create claim's lease outlives the register
function (a holder still running never loses its claim)."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cfnlint.decode.cfn_yaml import loads

from cognigy_webhooks import errors
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
        for module in (errors,)
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


# --- every ErrorEquals name, in every state machine, against the task that raises it -------------------

LIBRARY = ROOT / "shared"
BARE_PLACEHOLDER = re.compile(r'(?<!")\$\{[^}]*\}(?!")')
# A state machine not wired into template.yaml yet, checked with the substitutions of the one it replaces
NOT_WIRED_YET: dict[str, str] = {}


def _machines() -> list[tuple[Path, dict[str, Any]]]:
    """Every statemachine/*.asl.json with the substitutions its template resource gives it."""
    resources = _template()["Resources"]
    found = []
    for path in sorted((ROOT / "statemachine").glob("*.asl.json")):
        relative = path.relative_to(ROOT).as_posix()
        relative = NOT_WIRED_YET.get(relative, relative)
        [props] = [
            r["Properties"]
            for r in resources.values()
            if isinstance(r.get("Properties"), dict) and r["Properties"].get("DefinitionUri") == relative
        ]
        found.append((path, dict(props.get("DefinitionSubstitutions") or {})))
    assert found
    return found


def _task_handler(state: dict[str, Any], substitutions: dict[str, Any]) -> Path:
    """The handler file a Task state invokes (its Resource, or lambda:invoke's FunctionName)."""
    target = state.get("Parameters", {}).get("FunctionName") or state["Resource"]
    match = re.fullmatch(r"\$\{(\w+)\}(?::\$LATEST)?", str(target))
    assert match, f"a task resource that is no substituted function: {target}"
    [logical_id, _attribute] = substitutions[match.group(1)]["Fn::GetAtt"]
    props = _template()["Resources"][logical_id]["Properties"]
    module = str(props["Handler"]).rpartition(".")[0]
    return ROOT / str(props["CodeUri"]) / f"{module.replace('.', '/')}.py"


def _module_file(name: str) -> Path | None:
    base = LIBRARY.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported(tree: ast.AST, package: str) -> set[str]:
    """The cognigy_webhooks modules a file imports, anywhere in it (lazy imports included), with the
    packages they sit in."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # a submodule, if it is one
    closed = set()
    for name in names:
        parts = name.split(".")
        closed.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return {n for n in closed if n.split(".")[0] == "cognigy_webhooks" and _module_file(n) is not None}


def _constructed(handler: Path) -> set[str]:
    """Every name a task's code calls (``X(...)``, ``X.from_aws(...)``) or raises bare, across the
    handler and every library module it imports, directly or not."""
    seen: set[str] = set()
    files = [(handler, "")]
    names: set[str] = set()
    while files:
        path, package = files.pop()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            func = node.func if isinstance(node, ast.Call) else None
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                names.add(func.value.id)
            if isinstance(func, ast.Name):
                names.add(func.id)
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Name):
                names.add(node.exc.id)
        for module in _imported(tree, package) - seen:
            seen.add(module)
            file = _module_file(module)
            assert file is not None
            files.append((file, module if file.name == "__init__.py" else module.rpartition(".")[0]))
    return names


def _task_rules() -> Iterator[tuple[str, str, Path]]:
    """(state, error name, the task's handler) for every ErrorEquals name the tasks' rules match."""
    for path, substitutions in _machines():
        # a quoted placeholder (a function's ARN) is kept to be resolved; a bare one (a number) is a 1
        definition = json.loads(BARE_PLACEHOLDER.sub("1", path.read_text(encoding="utf-8")))
        for name, state in _states(definition):
            rules = [*state.get("Retry", []), *state.get("Catch", [])]
            if not rules:
                continue
            assert state["Type"] in ("Task", "Map", "Parallel"), name
            handler = _task_handler(state, substitutions) if state["Type"] == "Task" else None
            for rule in rules:
                for error in rule["ErrorEquals"]:
                    if not error.startswith(RUNTIME_ERRORS):
                        assert handler is not None, (
                            f"{path.name} {name}: {error} on a state that runs no code"
                        )
                        yield f"{path.name} {name}", error, handler


def test_every_error_name_is_an_errors_class_the_task_raises() -> None:
    rules = list(_task_rules())
    assert {error for _, error, _ in rules} >= {"CognigyUnavailable", "StoreError", "RecordConflict"}
    raised: dict[Path, set[str]] = {}
    for where, error, handler in rules:
        cls = getattr(errors, error, None)
        assert isinstance(cls, type), f"{where}: {error} is no class of cognigy_webhooks.errors"
        assert cls.__module__ == errors.__name__, f"{where}: {error} is defined in {cls.__module__}"
        assert issubclass(cls, errors.CognigyWebhooksError), f"{where}: {error}"
        assert "reason" in vars(cls), f"{where}: {error} has no reason code of its own"
        if handler not in raised:
            raised[handler] = _constructed(handler)
        # Step Functions matches the raised class's exact name: the class itself must be raised
        assert error in raised[handler], f"{where}: {handler.relative_to(ROOT)} never raises {error}"


def test_the_contract_check_sees_what_a_task_does_not_raise(tmp_path: Path) -> None:
    # a handler that only names the errors module raises none of its classes
    handler = tmp_path / "app.py"
    handler.write_text("from cognigy_webhooks.errors import StoreError\n\ndef f(e):\n    return e\n")
    assert "StoreError" not in _constructed(handler)
    handler.write_text("from cognigy_webhooks.dal.records import Store\n")
    assert {"StoreError", "RecordConflict", "EndpointClaimed"} <= _constructed(handler)
    # the probe task raises no record conflict: it writes no record
    probe = ROOT / "functions" / "probe" / "app.py"
    assert "InvalidSpec" in _constructed(probe)
    assert "RecordConflict" not in _constructed(probe)
