"""What every function's settings share: each variable named once, read at cold start, refused by name.

A settings class declares each field as ``Annotated[type, Env("VARIABLE", rule)]``: the only place the
variable's name is written. ``from_env`` (one per kind of settings class, both built on :func:`present`
and :func:`refuse`) reads the declared variables and nothing else from the environment (default
``os.environ``); an empty variable counts as unset (SAM templates pass ``""`` for an optional
parameter). Every missing or bad value is named in one
:class:`~cognigy_webhooks.errors.InvalidSettings` (``errors``: ``variable`` and ``message``; ``field``
repeats the variable for callers of :class:`~cognigy_webhooks.errors.InvalidSpec`), never echoing a
value.

Two kinds of settings class use it. The receiver's (settings_receive.py) is a NamedTuple whose ``Env``
rules parse the text (:func:`integer`, :func:`number`, :func:`name`): standard library only, because
its cold start is measured against ``import boto3`` alone and pydantic would cost more than the whole
budget (bench/receive.py). The other functions' (settings.py) are pydantic models: their ``Env`` names
the variable and pydantic checks the value.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cognigy_webhooks.errors import CognigyWebhooksError, InvalidSettings, InvalidSpec

__all__ = [
    "Env",
    "InvalidReceiveSettings",
    "Rule",
    "declared",
    "env_of",
    "integer",
    "name",
    "number",
    "parsed",
    "present",
    "refuse",
]


class Rule:
    """How a variable's text becomes its value: ``parse`` raises ValueError (or OverflowError) for a
    bad one; ``text`` says what a good one is, for the message."""

    __slots__ = ("parse", "text")

    def __init__(self, parse: Callable[[str], Any], text: str) -> None:
        self.parse = parse
        self.text = text


class Env:
    """The environment variable a settings field is read from, and (for settings without pydantic)
    the rule its text must follow."""

    __slots__ = ("name", "rule")

    def __init__(self, name: str, rule: Rule | None = None) -> None:
        self.name = name
        self.rule = rule

    def __repr__(self) -> str:
        return f"Env({self.name!r})"


def env_of(metadata: Iterable[object]) -> Env | None:
    """The :class:`Env` among a field's ``Annotated`` metadata, if any."""
    return next((item for item in metadata if isinstance(item, Env)), None)


def declared(owner: str, fields: Mapping[str, Iterable[object]]) -> dict[str, Env]:
    """Field -> :class:`Env` for each field (name -> its ``Annotated`` metadata); a field without one
    is a mistake in the settings class."""
    variables: dict[str, Env] = {}
    for field, metadata in fields.items():
        env = env_of(metadata)
        if env is None:
            raise TypeError(f"{owner}.{field}: declare its variable with Annotated[..., Env(NAME)]")
        variables[field] = env
    return variables


def integer(low: int, high: int, text: str | None = None) -> Rule:
    """An integer from ``low`` to ``high``."""

    def parse(raw: str) -> int:
        value = int(raw.strip())
        if not low <= value <= high:
            raise ValueError
        return value

    return Rule(parse, text or f"an integer {low}..{high}")


def number(low: float, high: float, text: str | None = None) -> Rule:
    """A number from ``low`` to ``high`` (never NaN)."""

    def parse(raw: str) -> float:
        value = float(raw.strip())
        if not low <= value <= high:  # also refuses NaN
            raise ValueError
        return value

    return Rule(parse, text or f"a number {low:g}..{high:g}")


def name(text: str, min_length: int = 3) -> Rule:
    """A name (a table's, a bus's...) of at least ``min_length`` characters, surrounding blanks cut."""

    def parse(raw: str) -> str:
        value = raw.strip()
        if len(value) < min_length:
            raise ValueError
        return value

    return Rule(parse, text)


def present(variables: Mapping[str, Env], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Field -> text of each declared variable that is set and not empty (``environ`` defaults to
    ``os.environ``, read at the call)."""
    source = os.environ if environ is None else environ
    values: dict[str, str] = {}
    for field, env in variables.items():
        raw = source.get(env.name)
        if raw is not None and raw != "":
            values[field] = raw
    return values


def parsed(
    variables: Mapping[str, Env],
    required: Iterable[str],
    environ: Mapping[str, str] | None = None,
    error: type[InvalidSettings] = InvalidSettings,
) -> dict[str, Any]:
    """Field -> value of each declared variable that is set, by its rule. Raises ``error`` naming every
    required variable unset and every value its rule refuses."""
    texts = present(variables, environ)
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    needed = set(required)
    for field, env in variables.items():
        if field not in texts:
            if field in needed:
                problems.append((env.name, "is required"))
            continue
        if env.rule is None:
            raise TypeError(f"{env.name}: no rule to parse it by")
        try:
            values[field] = env.rule.parse(texts[field])
        except (ValueError, OverflowError):
            problems.append((env.name, f"must be {env.rule.text}"))
    if problems:
        raise refuse(problems, error)
    return values


class InvalidReceiveSettings(InvalidSettings, InvalidSpec):
    """The receiver's settings error: an :class:`InvalidSettings` that is also the
    :class:`InvalidSpec` its callers caught before (its errors carry ``field`` too)."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        CognigyWebhooksError.__init__(self, "; ".join(f"{e['variable']}: {e['message']}" for e in errors))


def refuse(
    problems: Iterable[tuple[str, str]], error: type[InvalidSettings] = InvalidSettings
) -> InvalidSettings:
    """The error naming each (variable, message) problem, to raise."""
    return error([{"variable": var, "field": var, "message": message} for var, message in problems])
