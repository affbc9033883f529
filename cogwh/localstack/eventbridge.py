"""EventBridge delivery the way AWS shapes it, for the targets moto does not deliver to (Step
Functions state machines and Lambda functions): the event as a target receives it, and the target's
Input, InputPath or InputTransformer applied to it."""

from __future__ import annotations

import datetime
import json
import re
import uuid
from collections.abc import Mapping
from typing import Any, Final

from cogwh.localstack.errors import LocalStackError

_PATH_TOKEN: Final = re.compile(r"\.([A-Za-z0-9_\-$@]+)|\['([^']*)'\]|\[(\d+)\]")
_PLACEHOLDER: Final = re.compile(r"<([A-Za-z0-9_.\-]+)>")


def aws_event(moto_event: Mapping[str, Any]) -> dict[str, Any]:
    """moto's internal event message as AWS delivers it (ISO time, no ingestion time)."""
    event = {k: v for k, v in moto_event.items() if k != "ingestion-time"}
    when = event.get("time")
    if isinstance(when, int | float):
        event["time"] = iso_time(datetime.datetime.fromtimestamp(when, datetime.UTC))
    elif isinstance(when, datetime.datetime):
        event["time"] = iso_time(when)
    return event


def iso_time(when: datetime.datetime) -> str:
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def scheduled_event(rule_arn: str, region: str, account_id: str) -> dict[str, Any]:
    """The event an EventBridge schedule rule sends its targets."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": iso_time(datetime.datetime.now(datetime.UTC)),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


def json_path(document: Any, path: str, where: str) -> Any:
    """A simple JSONPath (``$``, ``.name``, ``['name']``, ``[0]``); None when the path is absent."""
    if not path.startswith("$"):
        raise LocalStackError(f"{where}: {path!r} is not a JSONPath")
    rest = path[1:]
    value = document
    position = 0
    while position < len(rest):
        match = _PATH_TOKEN.match(rest, position)
        if match is None:
            raise LocalStackError(f"{where}: {path!r} is not a JSONPath the local stack reads")
        position = match.end()
        name = match.group(1) if match.group(1) is not None else match.group(2)
        if name is not None:
            value = value.get(name) if isinstance(value, dict) else None
        else:
            index = int(match.group(3))
            value = value[index] if isinstance(value, list) and index < len(value) else None
        if value is None:
            return None
    return value


def target_input(target: Mapping[str, Any], event: Mapping[str, Any], rule_name: str) -> Any:
    """What the target receives for ``event``: Input, InputPath, InputTransformer or the event."""
    where = f"rule {rule_name} target {target.get('Id')}"
    if target.get("Input") is not None:
        try:
            return json.loads(str(target["Input"]))
        except ValueError:
            raise LocalStackError(f"{where}: Input is not JSON") from None
    if target.get("InputPath") is not None:
        return json_path(event, str(target["InputPath"]), where)
    transformer = target.get("InputTransformer")
    if transformer:
        return _transform(transformer, event, rule_name, where)
    return dict(event)


def _transform(transformer: Mapping[str, Any], event: Mapping[str, Any], rule_name: str, where: str) -> Any:
    template = transformer.get("InputTemplate")
    if not isinstance(template, str):
        raise LocalStackError(f"{where}: InputTransformer needs an InputTemplate")
    values: dict[str, Any] = {
        name: json_path(event, str(path), where)
        for name, path in (transformer.get("InputPathsMap") or {}).items()
    }
    values.setdefault("aws.events.rule-name", rule_name)
    values.setdefault("aws.events.event.json", dict(event))
    values.setdefault("aws.events.event", dict(event))

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        value = values[name]
        if isinstance(value, str):
            return json.dumps(value)[1:-1]  # strings go in bare; the template quotes them
        return json.dumps(value)

    text = _PLACEHOLDER.sub(substitute, template)
    try:
        return json.loads(text)
    except ValueError:
        return text
