"""Every function's settings on one base: each variable named once (its field's Env), the template's
Environment blocks and the settings agreeing on those names, one error (InvalidSettings) naming each
variable at fault and never echoing a value, and the receiver's settings free of pydantic."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode.cfn_yaml import loads

from cognigy_webhooks import settings as pydantic_settings
from cognigy_webhooks.errors import InvalidSettings, InvalidSpec
from cognigy_webhooks.settings_base import Env, declared, integer, parsed
from cognigy_webhooks.settings_receive import ReceiveSettings

ROOT = Path(__file__).resolve().parents[2]
PYDANTIC = (
    "ProbeSettings",
    "PlanSettings",
    "SummarizeSettings",
    "RegisterSettings",
    "WatchSettings",
    "DeployTriggerSettings",
    "AuditSyncSettings",
    "ApiSettings",
)
SETTINGS_CLASSES: dict[str, Any] = {name: getattr(pydantic_settings, name) for name in PYDANTIC} | {
    "ReceiveSettings": ReceiveSettings
}
# What a function's Environment may set that no settings class reads (Powertools reads its own).
NOT_SETTINGS = frozenset({"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"})
RECEIVE_ENV = {
    "ENDPOINTS_TABLE": "endpoints-table",
    "AUDIT_TABLE": "audit-table",
    "DELIVERIES_TABLE": "deliveries-table",
    "DELIVERY_BUS_NAME": "deliveries-bus",
}


def variables_of(cls: Any) -> dict[str, str]:
    """Field -> variable of a settings class (either kind)."""
    if cls is ReceiveSettings:
        return {field: ReceiveSettings.variable(field) for field in ReceiveSettings._fields}
    return {field: env.name for field, env in cls.variables().items()}


def required_of(cls: Any) -> set[str]:
    if cls is ReceiveSettings:
        return {ReceiveSettings.variable(f) for f in ReceiveSettings._fields if f not in cls._field_defaults}
    return {env.name for field, env in cls.variables().items() if cls.model_fields[field].is_required()}


def _template() -> dict[str, Any]:
    return dict(loads((ROOT / "template.yaml").read_text(encoding="utf-8"), str(ROOT / "template.yaml")))


def _settings_used_by(handler: Path) -> set[str]:
    """The settings classes a handler builds at import (``XSettings.from_env()``)."""
    tree = ast.parse(handler.read_text(encoding="utf-8"))
    return {
        node.func.value.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "from_env"
        and isinstance(node.func.value, ast.Name)
    }


def test_each_variable_is_named_once_per_settings_class() -> None:
    for name, cls in SETTINGS_CLASSES.items():
        names = list(variables_of(cls).values())
        assert len(names) == len(set(names)), name
        assert not [n for n in names if n.startswith("RECEIVE_")], name  # one environment per function


def test_the_template_and_each_function_s_settings_agree_on_the_variable_names() -> None:
    template = _template()
    global_vars = set(template["Globals"]["Function"]["Environment"]["Variables"])
    functions = {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    checked = set()
    for logical_id, resource in functions.items():
        props = resource["Properties"]
        own = set(((props.get("Environment") or {}).get("Variables")) or {})
        used = _settings_used_by(ROOT / props["CodeUri"] / "app.py")
        assert used <= set(SETTINGS_CLASSES), (logical_id, used)
        read = set().union(*(variables_of(SETTINGS_CLASSES[u]).values() for u in used)) if used else set()
        required = set().union(*(required_of(SETTINGS_CLASSES[u]) for u in used)) if used else set()
        # every variable the function's own block sets is one its settings read (no stale name left)
        assert own - read == set(), logical_id
        # and every variable its settings require is set for it (its own block or the Globals)
        assert required - own - global_vars == set(), logical_id
        checked |= used
    assert checked == set(SETTINGS_CLASSES)  # every settings class belongs to a function
    assert global_vars - NOT_SETTINGS - {"STACK_NAME"} <= set().union(
        *(variables_of(cls).values() for cls in SETTINGS_CLASSES.values())
    )


def test_the_receiver_s_settings_raise_invalid_settings_still_caught_as_invalid_spec() -> None:
    env = {**RECEIVE_ENV, "MAX_BODY_BYTES": "lots-of-bytes", "RECORD_CACHE_SECONDS": "nan"}
    del env["AUDIT_TABLE"]

    with pytest.raises(InvalidSettings) as refused:
        ReceiveSettings.from_env(env)

    assert isinstance(refused.value, InvalidSpec)  # what its callers caught before
    assert refused.value.reason == "invalid_settings"
    assert [e["variable"] for e in refused.value.errors] == [
        "AUDIT_TABLE",
        "MAX_BODY_BYTES",
        "RECORD_CACHE_SECONDS",
    ]
    assert all(e["field"] == e["variable"] for e in refused.value.errors)
    assert str(refused.value).startswith("AUDIT_TABLE: is required; MAX_BODY_BYTES: must be an integer 1..")
    assert "lots-of-bytes" not in str(refused.value)


def test_empty_variables_count_as_unset_for_both_kinds() -> None:
    blank = dict.fromkeys(v for v in variables_of(ReceiveSettings).values() if v not in RECEIVE_ENV)
    receive = ReceiveSettings.from_env({**RECEIVE_ENV, **{k: "" for k in blank}})
    assert receive == ReceiveSettings.from_env(RECEIVE_ENV)
    assert receive.max_body_bytes == 256 * 1024

    probe = pydantic_settings.ProbeSettings.from_env({"PROBE_CA_BUNDLE": "", "PROBE_CERT_WARNING_DAYS": ""})
    assert (probe.ca_bundle, probe.cert_warning_days) == (None, 21)


def test_the_template_s_names_reach_the_receiver_s_fields() -> None:
    settings = ReceiveSettings.from_env(
        {
            **RECEIVE_ENV,
            "MAX_BODY_BYTES": "1000",
            "SIGNATURE_TOLERANCE_SECONDS": "60",
            "DELIVERY_RETENTION_DAYS": "7",
            "SECRET_MAX_AGE_SECONDS": "5",
            "DELIVERY_EVENT_SOURCE": "my.source",
            "RECEIVE_MAX_BODY_BYTES": "2000",  # the old prefixed name is read no more
        }
    )

    assert (settings.max_body_bytes, settings.tolerance_seconds, settings.retention_days) == (1000, 60, 7)
    assert (settings.secret_max_age, settings.event_source) == (5, "my.source")


def test_a_pydantic_settings_error_names_the_variable_not_the_field() -> None:
    with pytest.raises(InvalidSettings) as refused:
        pydantic_settings.RegisterSettings.from_env({"COGNIGY_BURST": "0", "COGNIGY_BASE_URL": "ftp://x"})

    named = [e["variable"] for e in refused.value.errors]
    assert named == [
        "ENDPOINTS_TABLE",
        "AUDIT_TABLE",
        "RATE_LIMIT_TABLE",
        "COGNIGY_BASE_URL",
        "COGNIGY_API_KEY_SECRET",
        "COGNIGY_BURST",
    ]
    assert not isinstance(refused.value, InvalidSpec)


def test_a_field_without_a_variable_is_a_mistake_named_at_once() -> None:
    with pytest.raises(TypeError, match=r"Broken\.orphan: declare its variable"):
        declared("Broken", {"fine": (Env("FINE"),), "orphan": ()})
    assert parsed({"n": Env("N", integer(1, 5))}, ["n"], {"N": " 4 "}) == {"n": 4}


def test_the_receiver_s_settings_import_no_pydantic() -> None:
    code = "import sys, cognigy_webhooks.settings_receive; print('pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
