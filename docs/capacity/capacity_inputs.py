"""The capacity model's inputs, read and checked: a benchmark's saved figures, the prices, the
assumptions (JSON files), and the few facts of template.yaml the model prices (each function's
MemorySize and the architecture, the parameters' defaults, the alarms and dashboards).

The contract:

- :class:`Source` is one JSON input. Every field the model uses is asked for by its dotted name
  (``lambda_ms_per_invocation.probe``); a missing field, or one of the wrong kind (a number that is a
  bool, negative or not finite; an object that is not one), raises :class:`InputError` naming the file
  and the field. Nothing is defaulted silently: an optional field is asked for as such.
- A benchmark's file that holds ``"_placeholder": true`` is not a measurement yet (written by hand
  until the benchmark prints the field); ``_placeholder_fields`` may name which of its fields are
  guesses. :attr:`Source.placeholders` says so; the model prints them and ``--check`` refuses them.
- :func:`read_template` reads template.yaml line by line (standard library only, so no YAML parser:
  CloudFormation's short tags are opaque to it anyway). It knows the file's layout (two-space
  indents, one resource per key under ``Resources:``) and raises :class:`InputError` when what it
  needs is not where that layout puts it.

Standard library only.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["InputError", "Source", "Template", "read_json", "read_template"]


class InputError(Exception):
    """An input the model cannot use: the message names the file and the field (exit 2)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path


def read_json(path: Path, shown: str) -> Source:
    """The JSON object in ``path`` (``shown``: the name messages use)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(
            shown, "missing (run its benchmark through `make bench`, or restore the file)"
        ) from None
    except OSError as exc:
        raise InputError(shown, f"unreadable: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(shown, f"not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise InputError(shown, "not a JSON object (a benchmark's last line is one)")
    return Source(shown, data)


@dataclass(frozen=True)
class Source:
    """One JSON input, by the name messages give it."""

    name: str
    data: Mapping[str, Any]
    #: every field a table used, in the order first used, with its value (the inputs table lists them)
    read: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def _lookup(self, dotted: str) -> Any:
        value: Any = self.data
        for part in dotted.split("."):
            if not isinstance(value, Mapping) or part not in value:
                raise InputError(self.name, f"field {dotted!r} is missing")
            value = value[part]
        return value

    def has(self, dotted: str) -> bool:
        try:
            self._lookup(dotted)
        except InputError:
            return False
        return True

    def number(self, dotted: str) -> float:
        """A finite, non-negative number."""
        value = self._lookup(dotted)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InputError(self.name, f"field {dotted!r} is {json.dumps(value)}, not a number")
        if value < 0:
            raise InputError(self.name, f"field {dotted!r} is {value}, below 0")
        self.read.setdefault(dotted, float(value))
        return float(value)

    def optional_number(self, dotted: str) -> float | None:
        return self.number(dotted) if self.has(dotted) else None

    def mapping(self, dotted: str) -> Mapping[str, Any]:
        value = self._lookup(dotted)
        if not isinstance(value, Mapping) or not value:
            raise InputError(self.name, f"field {dotted!r} is {json.dumps(value)}, not a non-empty object")
        return value

    def numbers(self, dotted: str) -> dict[str, float]:
        """An object of numbers (``{"plan": 75, ...}``), each checked."""
        return {key: self.number(f"{dotted}.{key}") for key in self.mapping(dotted)}

    def text(self, dotted: str) -> str:
        value = self._lookup(dotted)
        if not isinstance(value, str) or not value:
            raise InputError(self.name, f"field {dotted!r} is {json.dumps(value)}, not a text")
        return value

    @property
    def placeholders(self) -> tuple[str, ...] | None:
        """None for a measurement; else the fields named as guesses (all: ``("*",)``)."""
        if self.data.get("_placeholder") is not True:
            return None
        named = self.data.get("_placeholder_fields")
        if isinstance(named, list) and named and all(isinstance(f, str) for f in named):
            return tuple(named)
        return ("*",)


# --- template.yaml ---------------------------------------------------------------------------------

#: (indent, key) of what is kept of a resource: its Type and Condition, a function's MemorySize, Timeout
_RESOURCE_KEYS = {(4, "Type"), (4, "Condition"), (6, "MemorySize"), (6, "Timeout")}
_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_]+):(?:\s+(?P<value>.*?))?\s*(?:#.*)?$")


@dataclass
class Template:
    """What the model reads from template.yaml."""

    name: str
    defaults: dict[str, str] = field(default_factory=dict)  # parameter -> Default
    global_memory_mb: int = 128
    architecture: str = "x86_64"
    resources: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> Type, MemorySize, ...
    alarm_metrics: dict[str, int] = field(default_factory=dict)  # alarm -> metrics it reads

    def default(self, parameter: str) -> float:
        raw = self.defaults.get(parameter)
        if raw is None:
            raise InputError(self.name, f"parameter {parameter!r} has no Default")
        try:
            return float(raw.strip("\"'"))
        except ValueError:
            raise InputError(
                self.name, f"parameter {parameter!r} has Default {raw!r}, not a number"
            ) from None

    def memory_mb(self, function: str) -> int:
        props = self._resource(function, "AWS::Serverless::Function")
        return int(props.get("MemorySize", self.global_memory_mb))

    def timeout_s(self, function: str) -> float:
        props = self._resource(function, "AWS::Serverless::Function")
        return float(props.get("Timeout", self.defaults.get("_GlobalTimeout", "3")))

    def count(self, resource_type: str, *, conditional: bool) -> int:
        return sum(
            1
            for r in self.resources.values()
            if r.get("Type") == resource_type and ("Condition" in r) == conditional
        )

    def _resource(self, name: str, resource_type: str) -> dict[str, str]:
        props = self.resources.get(name)
        if props is None or props.get("Type") != resource_type:
            raise InputError(self.name, f"resource {name!r} ({resource_type}) is missing")
        return props


def read_template(path: Path, shown: str) -> Template:
    """The parameters' defaults, the Globals' function MemorySize/Timeout/Architectures, and per
    resource its Type, Condition and (functions) MemorySize/Timeout; per alarm the metrics it reads
    (each ``MetricName``)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(shown, f"unreadable: {exc.strerror or exc}") from None
    template = Template(shown)
    section, current, in_globals_function = "", "", False
    for line in lines:
        match = _KEY.match(line)
        if match is None:
            continue
        indent, key, value = len(match["indent"]), match["key"], match["value"] or ""
        if indent == 0:
            section, current = key, ""
            continue
        if section == "Parameters":
            if indent == 2:
                current = key
            elif indent == 4 and key == "Default" and current:
                template.defaults[current] = value
        elif section == "Globals":
            if indent == 2:
                in_globals_function = key == "Function"
            elif indent == 4 and in_globals_function:
                if key == "MemorySize":
                    template.global_memory_mb = int(value)
                elif key == "Timeout":
                    template.defaults["_GlobalTimeout"] = value
                elif key == "Architectures":
                    template.architecture = value.strip("[] ")
        elif section == "Resources":
            if indent == 2:
                current = key
                template.resources[current] = {}
            elif current and (indent, key) in _RESOURCE_KEYS:
                template.resources[current][key] = value
            if current and key == "MetricName":
                template.alarm_metrics[current] = template.alarm_metrics.get(current, 0) + 1
    if not template.resources:
        raise InputError(shown, "no Resources found (is this the SAM template?)")
    return template
