"""template.yaml as shipped: cfn-lint clean, every Handler names a file and a function that exist, every
DefinitionSubstitution is used and every placeholder of every ASL file has one, and the local stack
runs the state machine with all of them resolved."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from cfnlint.decode.cfn_yaml import loads

from cogwh.demo import ROOT, LocalWorld
from cogwh.localstack import LocalStack
from tests.integration.reconcile.harness import stack_parameters

PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def _template() -> dict[str, Any]:
    return dict(loads((ROOT / "template.yaml").read_text(encoding="utf-8"), str(ROOT / "template.yaml")))


def _resources(kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in _template()["Resources"].items() if v["Type"] == kind}


def test_cfn_lint_finds_nothing() -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    done = subprocess.run(
        [str(cfn_lint), "--format", "parseable", "template.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_every_handler_names_an_existing_file_and_function() -> None:
    template = _template()
    globals_function = (template.get("Globals") or {}).get("Function") or {}
    functions = _resources("AWS::Serverless::Function")
    assert {"PlanFunction", "ProbeFunction", "RegisterFunction", "SummarizeFunction"} <= set(functions)
    for logical_id, resource in functions.items():
        props = {**globals_function, **resource["Properties"]}
        module, _, function = props["Handler"].rpartition(".")
        path = ROOT / props["CodeUri"] / (module.replace(".", "/") + ".py")
        assert path.is_file(), f"{logical_id}: {path} does not exist"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defined = {
            node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        } | {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        assert function in defined, f"{logical_id}: {path.name} defines no {function!r}"


def test_every_placeholder_has_a_substitution_and_every_substitution_is_used() -> None:
    machines = _resources("AWS::Serverless::StateMachine")
    assert "ReconcileStateMachine" in machines
    for logical_id, resource in machines.items():
        props = resource["Properties"]
        text = (ROOT / props["DefinitionUri"]).read_text(encoding="utf-8")
        placeholders = set(PLACEHOLDER.findall(text))
        substitutions = set(props.get("DefinitionSubstitutions") or {})
        assert placeholders == substitutions, f"{logical_id}: {placeholders ^ substitutions} unmatched"
        json.loads(PLACEHOLDER.sub("1", text))  # and the file is JSON once they are filled


def test_the_local_stack_runs_the_template_with_every_substitution_resolved(world: LocalWorld) -> None:
    parameters = {
        **stack_parameters(world),
        "MapConcurrency": "7",
        "ThrottleRounds": "2",
        "ReconcileToleratedFailurePercentage": "15",
    }
    with LocalStack(ROOT, parameters=parameters, time_factor=0.0) as stack:
        sfn = stack.client("stepfunctions")
        described = sfn.describe_state_machine(stateMachineArn=stack.outputs["ReconcileStateMachineArn"])
        text = described["definition"]
        assert "${" not in text
        definition = json.loads(text)
        states = definition["States"]
        assert states["ApplyEach"]["MaxConcurrencyPath"] == "$.itemsRef.concurrency"  # the plan's
        assert states["ApplyEach"]["ToleratedFailurePercentage"] == 15
        assert stack.environment("PlanFunction")["MAP_CONCURRENCY"] == "7"  # the most the plan runs
        # what the runs leave in the config bucket expires (the template's lifecycle rules, applied)
        rules = stack.client("s3").get_bucket_lifecycle_configuration(
            Bucket=stack.outputs["ConfigBucketName"]
        )
        expiring = {r["Filter"]["Prefix"]: r["Expiration"]["Days"] for r in rules["Rules"]}
        assert expiring == {"watch/": 14, "reconcile/": 90}
        inner = states["ApplyEach"]["ItemProcessor"]["States"]
        [too_many] = inner["TooManyThrottles"]["Choices"]
        assert too_many["NumericGreaterThan"] == 2
        for state, function in (
            (states["Plan"], "PlanFunction"),
            (inner["Probe"], "ProbeFunction"),
            (inner["Register"], "RegisterFunction"),
            (inner["RecordFailure"], "RegisterFunction"),
            (states["Summarize"], "SummarizeFunction"),
        ):
            assert state["Resource"] == stack.attribute(function, "Arn")
        # and every function's handler was imported and is callable
        reconcile_functions = {"PlanFunction", "ProbeFunction", "RegisterFunction", "SummarizeFunction"}
        assert reconcile_functions <= set(stack.functions)
        for spec in stack.functions.values():
            assert spec.handler_file().is_file()
