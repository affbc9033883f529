"""A copy of the real template and ASL, broken in one place, is refused by the local stack with a
LocalStackError naming the place - never run with a placeholder left in or a state graph that cannot
end. (cfn-lint never opens the ASL file, so this is the check that catches these.)"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from cogwh.demo import ROOT, LocalWorld
from cogwh.localstack import LocalStack, LocalStackError
from tests.integration.reconcile.harness import stack_parameters

ASL = "statemachine/reconcile.asl.json"
TEMPLATE = "template.yaml"


def _copy(tmp_path: Path) -> Path:
    """template.yaml and the ASL copied (to break them); functions and the layer linked as they are."""
    root = tmp_path / "app"
    root.mkdir()
    shutil.copy(ROOT / TEMPLATE, root / TEMPLATE)
    shutil.copytree(ROOT / "statemachine", root / "statemachine")
    for folder in ("functions", "shared"):
        (root / folder).symlink_to(ROOT / folder, target_is_directory=True)
    return root


def _break(root: Path, file: str, old: str, new: str) -> None:
    path = root / file
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not once in {file}: the test needs updating"
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        pytest.param(
            ASL,
            '"ToleratedFailurePercentage": ${ToleratedFailurePercentage}',
            '"ToleratedFailurePercentage": ${ToleratedFailurePercentag}',
            r"ReconcileStateMachine .*unresolved placeholder\(s\) \$\{ToleratedFailurePercentag\}",
            id="asl-placeholder-without-substitution",
        ),
        pytest.param(
            TEMPLATE,
            "        ThrottleRounds: !Ref ThrottleRounds\n",
            "",
            r"unresolved placeholder\(s\) \$\{ThrottleRounds\}.*add them to DefinitionSubstitutions",
            id="template-substitution-removed",
        ),
        pytest.param(
            ASL,
            '"Next": "CognigyKeyRefused"',
            '"Next": "CognigyKeyRefusd"',
            r"Register: transition to 'CognigyKeyRefusd', which is not a state",
            id="asl-catch-to-a-missing-state",
        ),
        pytest.param(
            ASL,
            '"Next": "Register"\n          },\n          "RecordProbeFailure"',
            '"Next": "WaitRetryAfter"\n          },\n          "RecordProbeFailure"',
            r"WaitRetryAfter: no path from here ever ends",
            id="asl-wait-loop-without-exit",
        ),
        pytest.param(
            TEMPLATE,
            "CodeUri: functions/register/\n      Handler: app.lambda_handler",
            "CodeUri: functions/register/\n      Handler: app.handle",
            r"RegisterFunction.Properties.Handler: .*app.py has no function 'handle'",
            id="handler-function-missing",
        ),
        pytest.param(
            TEMPLATE,
            "CodeUri: functions/probe/",
            "CodeUri: functions/prob/",
            r"ProbeFunction.Properties.CodeUri: 'functions/prob/' is not a directory",
            id="code-uri-missing",
        ),
    ],
)
def test_a_broken_copy_is_refused_naming_the_fault(
    tmp_path: Path, world: LocalWorld, file: str, old: str, new: str, message: str
) -> None:
    root = _copy(tmp_path)
    _break(root, file, old, new)

    with pytest.raises(LocalStackError) as refused, LocalStack(root, parameters=stack_parameters(world)):
        pytest.fail("the local stack started on a broken copy")

    assert re.search(message, str(refused.value), re.DOTALL), str(refused.value)
    assert world.api_key not in str(refused.value)


def test_the_unbroken_copy_starts(tmp_path: Path, world: LocalWorld) -> None:
    # the control: the copying itself breaks nothing
    root = _copy(tmp_path)
    with LocalStack(root, parameters=stack_parameters(world)) as stack:
        arn = stack.outputs["ReconcileStateMachineArn"]
        assert arn.endswith(":stateMachine:cogwh-local-reconcile")  # its Name: <stack>-reconcile
