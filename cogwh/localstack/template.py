"""Read a SAM template and resolve it the way CloudFormation would, for the local stack.

Covers what the local stack needs and refuses the rest by name: Parameters (defaults, overrides,
constraints), Conditions, Globals, Mappings, the pseudo parameters and the intrinsic functions Ref,
Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select, Fn::Split, Fn::If, Fn::Equals/Not/And/Or, Fn::FindInMap,
Fn::Base64, Fn::GetAZs, Fn::ToJsonString and Fn::Length. Resources are resolved in dependency
order: the stack registers each resource's Ref value and attributes as it creates it."""

from __future__ import annotations

import base64
import copy
import datetime
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from cfnlint.decode import cfn_yaml

from cogwh.localstack.errors import LocalStackError


class _NoValue:
    """``Ref: AWS::NoValue``: the property (or list item) it stands for is removed."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Final = _NoValue()

# The property that names each resource type, and the longest name AWS accepts for it. Without the
# property, the physical name is f"{stack_name}-{LogicalId}" (cut to the limit).
NAME_PROPERTIES: Final[dict[str, tuple[str, int]]] = {
    "AWS::DynamoDB::Table": ("TableName", 255),
    "AWS::Serverless::SimpleTable": ("TableName", 255),
    "AWS::S3::Bucket": ("BucketName", 63),
    "AWS::SQS::Queue": ("QueueName", 80),
    "AWS::SNS::Topic": ("TopicName", 256),
    "AWS::Events::EventBus": ("Name", 256),
    "AWS::Events::Rule": ("Name", 64),
    "AWS::SecretsManager::Secret": ("Name", 512),
    "AWS::Serverless::Function": ("FunctionName", 64),
    "AWS::Lambda::Function": ("FunctionName", 64),
    "AWS::Serverless::StateMachine": ("Name", 80),
    "AWS::StepFunctions::StateMachine": ("StateMachineName", 80),
    "AWS::IAM::Role": ("RoleName", 64),
    "AWS::IAM::ManagedPolicy": ("ManagedPolicyName", 128),
    "AWS::Logs::LogGroup": ("LogGroupName", 512),
    "AWS::Serverless::LayerVersion": ("LayerName", 140),
    "AWS::Lambda::LayerVersion": ("LayerName", 140),
    "AWS::CloudWatch::Alarm": ("AlarmName", 255),
    "AWS::CloudWatch::Dashboard": ("DashboardName", 255),
    "AWS::Serverless::Api": ("Name", 1024),
    "AWS::Serverless::HttpApi": ("Name", 1024),
}

# Globals section -> the resource type it applies to (SAM).
GLOBAL_SECTIONS: Final[dict[str, str]] = {
    "Function": "AWS::Serverless::Function",
    "StateMachine": "AWS::Serverless::StateMachine",
    "SimpleTable": "AWS::Serverless::SimpleTable",
    "Api": "AWS::Serverless::Api",
    "HttpApi": "AWS::Serverless::HttpApi",
    "LayerVersion": "AWS::Serverless::LayerVersion",
}

_SUB_VARIABLE = re.compile(r"\$\{(!?)([^}]*)\}")


def load_template_file(path: Path) -> dict[str, Any]:
    """The template as plain dicts, lists and scalars; short-form tags become ``Fn::`` dicts."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LocalStackError(f"{path}: cannot be read ({exc.strerror})") from exc
    try:
        data = cfn_yaml.loads(text, str(path))
    except Exception as exc:  # cfn-lint raises yaml and its own parse errors; report them as one kind
        raise LocalStackError(f"{path}: not a valid template: {exc}") from exc
    plain = _plain(data)
    if not isinstance(plain, dict):
        raise LocalStackError(f"{path}: not a valid template: the top level is not a mapping")
    return plain


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def is_intrinsic(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) != 1:
        return False
    key = next(iter(value))
    return key == "Ref" or key.startswith("Fn::")


def as_text(value: Any, where: str) -> str:
    """A resolved scalar as CloudFormation turns it into a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise LocalStackError(f"{where}: expected a string, got {type(value).__name__}")


def merge_globals(global_value: Any, local_value: Any) -> Any:
    """SAM's Globals rule: maps merge (local keys win), lists append, anything else the local wins."""
    if is_intrinsic(global_value) or is_intrinsic(local_value):
        return copy.deepcopy(local_value)
    if isinstance(global_value, dict) and isinstance(local_value, dict):
        merged = copy.deepcopy(global_value)
        for key, value in local_value.items():
            merged[key] = merge_globals(merged[key], value) if key in merged else copy.deepcopy(value)
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return copy.deepcopy(global_value) + copy.deepcopy(local_value)
    return copy.deepcopy(local_value)


def apply_globals(resources: Mapping[str, Any], globals_section: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(globals_section) - set(GLOBAL_SECTIONS))
    if unknown:
        raise LocalStackError(f"Globals: unknown section(s) {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or not isinstance(resource.get("Type"), str):
            raise LocalStackError(f"Resources.{logical_id}: a resource needs a Type")
        resource = copy.deepcopy(resource)
        for section, resource_type in GLOBAL_SECTIONS.items():
            if resource["Type"] == resource_type and section in globals_section:
                properties = resource.get("Properties") or {}
                resource["Properties"] = merge_globals(globals_section[section], properties)
        out[logical_id] = resource
    return out


def resolve_parameters(
    declared: Mapping[str, Any], overrides: Mapping[str, str]
) -> tuple[dict[str, str | list[str]], set[str]]:
    """Each parameter's value (defaults, then overrides) and the names marked NoEcho. Overrides the
    template does not declare, missing values and broken constraints are refused; no message ever
    carries a NoEcho parameter's value."""
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        known = ", ".join(sorted(declared)) or "none"
        raise LocalStackError(
            f"parameter override(s) {', '.join(unknown)} not declared by the template (declared: {known})"
        )
    values: dict[str, str | list[str]] = {}
    no_echo: set[str] = set()
    for name, decl in declared.items():
        where = f"Parameters.{name}"
        if not isinstance(decl, dict):
            raise LocalStackError(f"{where}: not a mapping")
        secret = str(decl.get("NoEcho", "false")).lower() == "true"
        if secret:
            no_echo.add(name)
        if name in overrides:
            raw = overrides[name]
        elif "Default" in decl:
            default = decl["Default"]
            if isinstance(default, list):
                raw = ",".join(as_text(v, where) for v in default)
            else:
                raw = as_text(default, where)
        else:
            raise LocalStackError(f"{where}: no Default and no override given")
        if not isinstance(raw, str):
            raise LocalStackError(f"{where}: an override must be a string")
        shown = "the value" if secret else repr(raw)
        kind = str(decl.get("Type", "String"))
        if kind.startswith("AWS::SSM::Parameter::Value"):
            raise LocalStackError(
                f"{where}: type {kind} needs SSM, which the local stack has not; override it"
            )
        allowed = decl.get("AllowedValues")
        if allowed is not None and raw not in [as_text(v, where) for v in allowed]:
            raise LocalStackError(f"{where}: {shown} is not one of AllowedValues")
        pattern = decl.get("AllowedPattern")
        if pattern is not None and re.fullmatch(str(pattern), raw) is None:
            raise LocalStackError(f"{where}: {shown} does not match AllowedPattern")
        if "MinLength" in decl and len(raw) < int(decl["MinLength"]):
            raise LocalStackError(f"{where}: {shown} is shorter than MinLength")
        if "MaxLength" in decl and len(raw) > int(decl["MaxLength"]):
            raise LocalStackError(f"{where}: {shown} is longer than MaxLength")
        if kind == "Number":
            try:
                number = float(raw)
            except ValueError:
                raise LocalStackError(f"{where}: {shown} is not a Number") from None
            if "MinValue" in decl and number < float(decl["MinValue"]):
                raise LocalStackError(f"{where}: {shown} is below MinValue")
            if "MaxValue" in decl and number > float(decl["MaxValue"]):
                raise LocalStackError(f"{where}: {shown} is above MaxValue")
        if kind == "CommaDelimitedList" or kind.startswith("List<"):
            values[name] = raw.split(",") if raw else []
        else:
            values[name] = raw
    return values, no_echo


class Template:
    """A SAM template with its parameters, conditions and Globals applied, and a resolver for the
    intrinsic functions in its resources and outputs."""

    def __init__(
        self,
        path: Path,
        *,
        stack_name: str,
        region: str,
        account_id: str,
        parameters: Mapping[str, str] | None = None,
    ) -> None:
        self.path = path
        self.root = path.parent
        self.data = load_template_file(path)
        resources = self.data.get("Resources")
        if not isinstance(resources, dict) or not resources:
            raise LocalStackError(f"{path.name}: the template has no Resources")
        partition = "aws-cn" if region.startswith("cn-") else "aws"
        stack_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"cogwh-local/{region}/{account_id}/{stack_name}")
        self.stack_id = (
            f"arn:{partition}:cloudformation:{region}:{account_id}:stack/{stack_name}/{stack_uuid}"
        )
        self.pseudo: dict[str, Any] = {
            "AWS::Region": region,
            "AWS::AccountId": account_id,
            "AWS::StackName": stack_name,
            "AWS::StackId": self.stack_id,
            "AWS::Partition": partition,
            "AWS::URLSuffix": "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com",
            "AWS::NotificationARNs": [],
        }
        self.stack_name = stack_name
        self.region = region
        self.account_id = account_id
        self.partition = partition
        self.parameters, self.no_echo = resolve_parameters(
            self.data.get("Parameters") or {}, parameters or {}
        )
        self._mappings: dict[str, Any] = self.data.get("Mappings") or {}
        self._condition_defs: dict[str, Any] = self.data.get("Conditions") or {}
        self._conditions: dict[str, bool] = {}
        self._evaluating: set[str] = set()
        self.resources: dict[str, dict[str, Any]] = apply_globals(resources, self.data.get("Globals") or {})
        self.outputs_section: dict[str, Any] = self.data.get("Outputs") or {}
        self._refs: dict[str, Any] = {}
        self._attrs: dict[str, dict[str, Any]] = {}

    # -- resources -----------------------------------------------------------------------------

    def resource_type(self, logical_id: str) -> str:
        return str(self.resources[logical_id]["Type"])

    def properties(self, logical_id: str) -> dict[str, Any]:
        props = self.resources[logical_id].get("Properties") or {}
        if not isinstance(props, dict):
            raise LocalStackError(f"Resources.{logical_id}.Properties: not a mapping")
        return props

    def is_active(self, logical_id: str) -> bool:
        name = self.resources[logical_id].get("Condition")
        return True if name is None else self.condition(str(name), f"Resources.{logical_id}.Condition")

    def register(self, logical_id: str, ref: Any, attributes: Mapping[str, Any] | None = None) -> None:
        """Record a created (or implicit) resource's Ref value and its Fn::GetAtt attributes."""
        self._refs[logical_id] = ref
        self._attrs[logical_id] = dict(attributes or {})

    def ref_value(self, logical_id: str) -> Any:
        if logical_id not in self._refs:
            raise LocalStackError(f"no resource {logical_id!r} in the local stack")
        return self._refs[logical_id]

    def attribute(self, logical_id: str, name: str) -> Any:
        return self._getatt(logical_id, name, f"{logical_id}.{name}")

    def physical_name(self, logical_id: str) -> str:
        """The resource's own name property if set, else f"{stack_name}-{LogicalId}"."""
        kind = self.resource_type(logical_id)
        prop, limit = NAME_PROPERTIES.get(kind, ("", 255))
        props = self.properties(logical_id)
        if prop and prop in props:
            return as_text(
                self.resolve(props[prop], f"Resources.{logical_id}.Properties.{prop}"),
                f"Resources.{logical_id}.Properties.{prop}",
            )
        suffix = ""
        if kind == "AWS::SQS::Queue" and str(props.get("FifoQueue", "false")).lower() == "true":
            suffix = ".fifo"
        name = f"{self.stack_name}-{logical_id}"[: limit - len(suffix)] + suffix
        return name.lower() if kind == "AWS::S3::Bucket" else name

    def dependencies(self, logical_id: str, value: Any) -> set[str]:
        """The template resources ``value`` refers to (Ref, Fn::GetAtt, Fn::Sub), plus DependsOn."""
        names: set[str] = set()
        _collect_references(value, names)
        depends_on = self.resources[logical_id].get("DependsOn") or []
        names.update([depends_on] if isinstance(depends_on, str) else [str(d) for d in depends_on])
        return {n for n in names if n in self.resources and n != logical_id}

    # -- conditions ----------------------------------------------------------------------------

    def condition(self, name: str, where: str) -> bool:
        if name in self._conditions:
            return self._conditions[name]
        if name not in self._condition_defs:
            raise LocalStackError(f"{where}: unknown condition {name!r}")
        if name in self._evaluating:
            raise LocalStackError(f"Conditions.{name}: refers to itself")
        self._evaluating.add(name)
        try:
            value = self._evaluate(self._condition_defs[name], f"Conditions.{name}")
        finally:
            self._evaluating.discard(name)
        self._conditions[name] = value
        return value

    def _evaluate(self, expr: Any, where: str) -> bool:
        if isinstance(expr, bool):
            return expr
        if isinstance(expr, dict) and len(expr) == 1:
            key, arg = next(iter(expr.items()))
            if key == "Condition":
                return self.condition(str(arg), where)
            if key == "Fn::Equals":
                if not isinstance(arg, list) or len(arg) != 2:
                    raise LocalStackError(f"{where}: Fn::Equals takes two values")
                left, right = (self.resolve(v, f"{where}.Fn::Equals") for v in arg)
                return _comparable(left) == _comparable(right)
            if key == "Fn::Not":
                if not isinstance(arg, list) or len(arg) != 1:
                    raise LocalStackError(f"{where}: Fn::Not takes one condition")
                return not self._evaluate(arg[0], f"{where}.Fn::Not")
            if key in ("Fn::And", "Fn::Or"):
                if not isinstance(arg, list) or not arg:
                    raise LocalStackError(f"{where}: {key} takes a list of conditions")
                results = [self._evaluate(v, f"{where}.{key}") for v in arg]
                return all(results) if key == "Fn::And" else any(results)
        raise LocalStackError(f"{where}: not a condition the local stack can evaluate")

    # -- intrinsic functions -------------------------------------------------------------------

    def resolve(self, value: Any, where: str) -> Any:
        """``value`` with every intrinsic function replaced by its value (NO_VALUE removes keys)."""
        if isinstance(value, dict):
            if is_intrinsic(value):
                key, arg = next(iter(value.items()))
                return self._ref(arg, where) if key == "Ref" else self._function(key, arg, where)
            out: dict[str, Any] = {}
            for key, item in value.items():
                resolved = self.resolve(item, f"{where}.{key}")
                if resolved is not NO_VALUE:
                    out[key] = resolved
            return out
        if isinstance(value, list):
            items = [self.resolve(item, f"{where}[{i}]") for i, item in enumerate(value)]
            return [item for item in items if item is not NO_VALUE]
        return value

    def _ref(self, name: Any, where: str) -> Any:
        if not isinstance(name, str):
            raise LocalStackError(f"{where}: Ref takes a name")
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name.startswith("AWS::"):
            raise LocalStackError(f"{where}: pseudo parameter {name} is not available locally")
        if name in self.parameters:
            return self.parameters[name]
        return self._resource_ref(name, where)

    def _resource_ref(self, name: str, where: str) -> Any:
        if name in self.resources and not self.is_active(name):
            raise LocalStackError(f"{where}: Ref to {name}, which its Condition leaves out")
        if name not in self._refs:
            if name in self.resources:
                raise LocalStackError(f"{where}: Ref to {name} before it was created (circular reference?)")
            raise LocalStackError(f"{where}: Ref to unknown name {name!r}")
        return self._refs[name]

    def _getatt(self, logical_id: str, attribute: str, where: str) -> Any:
        self._resource_ref(logical_id, where)
        attrs = self._attrs.get(logical_id, {})
        if attribute not in attrs:
            known = ", ".join(sorted(attrs)) or "none"
            raise LocalStackError(
                f"{where}: Fn::GetAtt {logical_id}.{attribute} is not available locally (available: {known})"
            )
        return attrs[attribute]

    def _function(self, key: str, arg: Any, where: str) -> Any:
        here = f"{where}.{key}"
        if key == "Fn::GetAtt":
            if isinstance(arg, str):
                logical_id, _, attribute = arg.partition(".")
            elif isinstance(arg, list) and len(arg) == 2:
                logical_id = as_text(self.resolve(arg[0], here), here)
                attribute = as_text(self.resolve(arg[1], here), here)
            else:
                raise LocalStackError(f"{here}: takes [LogicalId, Attribute]")
            return self._getatt(logical_id, attribute, here)
        if key == "Fn::Sub":
            return self._sub(arg, here)
        if key == "Fn::Join":
            if not isinstance(arg, list) or len(arg) != 2:
                raise LocalStackError(f"{here}: takes [delimiter, [values]]")
            delimiter = as_text(self.resolve(arg[0], here), here)
            items = self.resolve(arg[1], here)
            if not isinstance(items, list):
                raise LocalStackError(f"{here}: the values to join are not a list")
            return delimiter.join(as_text(item, here) for item in items)
        if key == "Fn::Select":
            if not isinstance(arg, list) or len(arg) != 2:
                raise LocalStackError(f"{here}: takes [index, [values]]")
            index_text = as_text(self.resolve(arg[0], here), here)
            items = self.resolve(arg[1], here)
            if not index_text.isdigit() or not isinstance(items, list) or int(index_text) >= len(items):
                raise LocalStackError(f"{here}: index {index_text} is not in the list")
            return items[int(index_text)]
        if key == "Fn::Split":
            if not isinstance(arg, list) or len(arg) != 2:
                raise LocalStackError(f"{here}: takes [delimiter, string]")
            delimiter = as_text(self.resolve(arg[0], here), here)
            return as_text(self.resolve(arg[1], here), here).split(delimiter)
        if key == "Fn::If":
            if not isinstance(arg, list) or len(arg) != 3:
                raise LocalStackError(f"{here}: takes [condition, value if true, value if false]")
            chosen = arg[1] if self.condition(str(arg[0]), here) else arg[2]
            return self.resolve(chosen, here)
        if key in ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or"):
            return self._evaluate({key: arg}, where)
        if key == "Fn::FindInMap":
            if not isinstance(arg, list) or len(arg) not in (3, 4):
                raise LocalStackError(f"{here}: takes [map, top-level key, second-level key]")
            path = [as_text(self.resolve(part, here), here) for part in arg[:3]]
            try:
                return self._mappings[path[0]][path[1]][path[2]]
            except (KeyError, TypeError):
                if len(arg) == 4 and isinstance(arg[3], dict) and "DefaultValue" in arg[3]:
                    return self.resolve(arg[3]["DefaultValue"], here)
                raise LocalStackError(f"{here}: no mapping {'.'.join(path)}") from None
        if key == "Fn::Base64":
            return base64.b64encode(as_text(self.resolve(arg, here), here).encode()).decode()
        if key == "Fn::GetAZs":
            return [f"{self.region}{zone}" for zone in "abc"]
        if key == "Fn::ToJsonString":
            return json.dumps(self.resolve(arg, here), separators=(",", ":"))
        if key == "Fn::Length":
            items = self.resolve(arg, here)
            if not isinstance(items, list):
                raise LocalStackError(f"{here}: takes a list")
            return len(items)
        if key == "Fn::ImportValue":
            raise LocalStackError(f"{here}: imports from other stacks are not available locally")
        raise LocalStackError(f"{here}: intrinsic function {key} is not supported by the local stack")

    def _sub(self, arg: Any, where: str) -> str:
        if isinstance(arg, str):
            text, local_vars = arg, {}
        elif isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str) and isinstance(arg[1], dict):
            text = arg[0]
            local_vars = {k: self.resolve(v, f"{where}.{k}") for k, v in arg[1].items()}
        else:
            raise LocalStackError(f"{where}: takes a string or [string, {{variables}}]")

        def substitute(match: re.Match[str]) -> str:
            literal, name = match.group(1), match.group(2).strip()
            if literal:
                return "${" + match.group(2) + "}"
            if name in local_vars:
                return as_text(local_vars[name], f"{where}.${{{name}}}")
            if "." in name and not name.startswith("AWS::"):
                logical_id, _, attribute = name.partition(".")
                return as_text(self._getatt(logical_id, attribute, f"{where}.${{{name}}}"), where)
            return as_text(self._ref(name, f"{where}.${{{name}}}"), f"{where}.${{{name}}}")

        return _SUB_VARIABLE.sub(substitute, text)

    # -- outputs -------------------------------------------------------------------------------

    def outputs(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, output in self.outputs_section.items():
            where = f"Outputs.{name}"
            if not isinstance(output, dict) or "Value" not in output:
                raise LocalStackError(f"{where}: an output needs a Value")
            condition = output.get("Condition")
            if condition is not None and not self.condition(str(condition), where):
                continue
            out[name] = self.resolve(output["Value"], f"{where}.Value")
        return out


def _comparable(value: Any) -> Any:
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if isinstance(value, bool | int | float | str):
        return as_text(value, "Fn::Equals")
    return value


def _collect_references(value: Any, names: set[str]) -> None:
    if isinstance(value, list):
        for item in value:
            _collect_references(item, names)
        return
    if not isinstance(value, dict):
        return
    if is_intrinsic(value):
        key, arg = next(iter(value.items()))
        if key == "Ref" and isinstance(arg, str):
            names.add(arg)
            return
        if key == "Fn::GetAtt":
            if isinstance(arg, str):
                names.add(arg.partition(".")[0])
                return
            if isinstance(arg, list) and arg and isinstance(arg[0], str):
                names.add(arg[0])
            _collect_references(arg, names)
            return
        if key == "Fn::Sub":
            text, local_vars = (arg, {}) if isinstance(arg, str) else _sub_parts(arg)
            for match in _SUB_VARIABLE.finditer(text):
                name = match.group(2).strip()
                if not match.group(1) and name not in local_vars and not name.startswith("AWS::"):
                    names.add(name.partition(".")[0])
            _collect_references(list(local_vars.values()), names)
            return
    for item in value.values():
        _collect_references(item, names)


def _sub_parts(arg: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str) and isinstance(arg[1], dict):
        return arg[0], arg[1]
    return "", {}


def topological_order(nodes: Iterable[str], edges: Mapping[str, set[str]]) -> list[str]:
    """Nodes ordered so each comes after what it depends on (ties keep the template's order)."""
    order: list[str] = []
    pending = list(nodes)
    done: set[str] = set()
    while pending:
        ready = [n for n in pending if edges.get(n, set()) <= done]
        if not ready:
            cycle = ", ".join(sorted(pending))
            raise LocalStackError(f"Resources: circular references among {cycle}")
        for node in ready:
            order.append(node)
            done.add(node)
        pending = [n for n in pending if n not in done]
    return order
