"""State machine definitions for the local stack: DefinitionSubstitutions applied the way
CloudFormation applies them (text replacement of ``${name}``), then the state graph checked, because
neither cfn-lint nor moto opens the ASL files: every Next, Default and Catch target must exist, every
state must be reachable, every path must be able to end, recursively inside Map and Parallel."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any, Final

from cogwh.localstack.errors import LocalStackError
from cogwh.localstack.template import as_text

log = logging.getLogger("cogwh.localstack")

_PLACEHOLDER: Final = re.compile(r"\$\{[^}]*\}")
STATE_TYPES: Final = frozenset({"Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"})
_TERMINAL_TYPES: Final = frozenset({"Succeed", "Fail"})


def substitute(text: str, substitutions: Mapping[str, Any], where: str) -> str:
    """Replace each ``${key}`` with its value as text; refuse when any ``${...}`` is left."""
    for key, value in substitutions.items():
        text = text.replace("${" + key + "}", as_text(value, f"{where}.DefinitionSubstitutions.{key}"))
    left = sorted(set(_PLACEHOLDER.findall(text)))
    if left:
        raise LocalStackError(
            f"{where}: unresolved placeholder(s) {', '.join(left)} in the definition "
            "(add them to DefinitionSubstitutions)"
        )
    return text


def parse(text: str, where: str) -> dict[str, Any]:
    try:
        definition = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LocalStackError(
            f"{where}: the definition is not valid JSON after substitution: {exc}"
        ) from None
    if not isinstance(definition, dict):
        raise LocalStackError(f"{where}: the definition is not a JSON object")
    return definition


def check(definition: Mapping[str, Any], where: str) -> None:
    """Raise one LocalStackError listing every problem in the state graph, or return."""
    problems: list[str] = []
    if definition.get("QueryLanguage") == "JSONata":
        problems.append(f"{where}: QueryLanguage JSONata is not supported locally (use JSONPath)")
    _check_scope(definition, where, problems)
    if problems:
        raise LocalStackError("broken state machine definition:\n  " + "\n  ".join(problems))


def _check_scope(scope: Mapping[str, Any], where: str, problems: list[str]) -> None:
    states = scope.get("States")
    start = scope.get("StartAt")
    if not isinstance(states, dict) or not states:
        problems.append(f"{where}: no States")
        return
    if start not in states:
        problems.append(f"{where}: StartAt {start!r} is not a state")
    edges: dict[str, list[str]] = {}
    can_end: set[str] = set()
    for name, state in states.items():
        here = f"{where} > {name}"
        if not isinstance(state, dict):
            problems.append(f"{here}: not an object")
            continue
        edges[name] = _transitions(state, here, problems, can_end, name)
        for target in edges[name]:
            if target not in states:
                problems.append(f"{here}: transition to {target!r}, which is not a state")
                can_end.add(target)  # reported once: the loop check below would only repeat it
        if state.get("QueryLanguage") == "JSONata":
            problems.append(f"{here}: QueryLanguage JSONata is not supported locally (use JSONPath)")
        if state.get("Type") == "Map":
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if not isinstance(processor, dict):
                problems.append(f"{here}: a Map needs an ItemProcessor")
            else:
                _check_scope(processor, f"{here} (ItemProcessor)", problems)
        if state.get("Type") == "Parallel":
            branches = state.get("Branches")
            if not isinstance(branches, list) or not branches:
                problems.append(f"{here}: a Parallel needs Branches")
            else:
                for index, branch in enumerate(branches):
                    _check_scope(branch, f"{here} (branch {index})", problems)
    if start not in states:
        return
    reachable = _reach({str(start)}, edges)
    for name in states:
        if name not in reachable:
            problems.append(f"{where} > {name}: unreachable from StartAt")
    reverse: dict[str, list[str]] = {}
    for name, targets in edges.items():
        for target in targets:
            reverse.setdefault(target, []).append(name)
    ending = _reach(can_end, reverse)
    for name in states:
        if name in reachable and name not in ending:
            problems.append(f"{where} > {name}: no path from here ever ends (a loop without an exit)")


def _transitions(
    state: Mapping[str, Any], here: str, problems: list[str], can_end: set[str], name: str
) -> list[str]:
    kind = state.get("Type")
    targets: list[str] = []
    if kind not in STATE_TYPES:
        problems.append(f"{here}: unknown Type {kind!r}")
        return targets
    if kind in _TERMINAL_TYPES:
        can_end.add(name)
    elif kind == "Choice":
        choices = state.get("Choices")
        if not isinstance(choices, list) or not choices:
            problems.append(f"{here}: a Choice needs Choices")
            choices = []
        for index, rule in enumerate(choices):
            if not isinstance(rule, dict) or not isinstance(rule.get("Next"), str):
                problems.append(f"{here}: Choices[{index}] has no Next")
            else:
                targets.append(rule["Next"])
        if "Default" in state:
            targets.append(str(state["Default"]))
        else:
            can_end.add(name)  # no rule matching ends the execution with States.NoChoiceMatched
    elif state.get("End") is True:
        if "Next" in state:
            problems.append(f"{here}: has both Next and End")
        can_end.add(name)
    elif isinstance(state.get("Next"), str):
        targets.append(state["Next"])
    else:
        problems.append(f"{here}: has neither Next nor End")
        can_end.add(name)
    for index, catcher in enumerate(state.get("Catch") or []):
        if not isinstance(catcher, dict) or not isinstance(catcher.get("Next"), str):
            problems.append(f"{here}: Catch[{index}] has no Next")
        else:
            targets.append(catcher["Next"])
    return targets


def _reach(start: set[str], edges: Mapping[str, list[str]]) -> set[str]:
    seen = set(start)
    todo = list(start)
    while todo:
        for target in edges.get(todo.pop(), []):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen
