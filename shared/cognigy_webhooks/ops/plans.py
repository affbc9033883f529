"""A desired set checked (:func:`check_desired`) and planned with NO side effect (:func:`plan_desired`):
what applying it would create, update, leave unchanged, delete (with prune) or refuse.

:func:`check_desired` is the request's validation (``POST /plans``, ``POST /executions``): the whole
set against the models (``DesiredSet``), each field at fault named under ``desiredSet.`` with the
endpoint it is in. A set it refuses is refused whole: nothing is stored for it.

:func:`plan_desired` builds on the reconcile's own plan (:func:`cognigy_webhooks.reconcile.plan.plan`:
the same per-endpoint checks, the same deletions under prune) and compares each declared endpoint with
its record the way the register step will: the digest of what Cognigy would be told
(:func:`expected_digest`) against the record's ``specHash``, and the status. Secrets given in clear are
never stored here: each counts as "moved to Secrets Manager" (``secrets`` names the field, never the
value) and is compared by its digest with what the record was made from; the ARN it would get is the
one its secret already has under the stack's prefix (DescribeSecret, only for a recorded endpoint
that gives a secret in clear). A secret named by ARN is read to compare it, never shown.
Cognigy itself is not called: drift made outside the product is found by the apply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cognigy_webhooks.dal.secretsmanager import secret_name
from cognigy_webhooks.errors import InvalidSpec
from cognigy_webhooks.models import DesiredSet, WebhookEndpoint, parse_desired_set, parse_endpoint
from cognigy_webhooks.models.records import EndpointRecord
from cognigy_webhooks.models.spec import with_cognigy_defaults
from cognigy_webhooks.models.watch import WatchState
from cognigy_webhooks.ops.access import StackAccess
from cognigy_webhooks.ops.shapes import PLAN_ACTIONS, FieldError, PlanEntry, PlanView
from cognigy_webhooks.reconcile.plan import Dialect, check_endpoint, plan
from cognigy_webhooks.reconcile.register import standing_watch, told_to_cognigy
from cognigy_webhooks.secrets import move_spec_secrets, plain_secret_fields

__all__ = ["check_desired", "expected_digest", "plan_desired"]


class _Unreadable(Exception):
    """A secret named by ARN could not be read: the digest cannot be told before the apply."""


def check_desired(desired: Any, *, prefix: str = "desiredSet") -> DesiredSet:
    """``desired`` validated as a whole (``{"endpoints": [...], "cognigy": {...}}``), or
    :class:`InvalidSpec` naming each field at fault under ``prefix`` (``desiredSet.endpoints.0.url``)
    with the endpoint it is in (its name, when it has one)."""
    if not isinstance(desired, Mapping):
        raise InvalidSpec([{"field": prefix, "message": "must be an object with endpoints"}])
    try:
        return parse_desired_set(dict(desired))
    except InvalidSpec as exc:
        endpoints = desired.get("endpoints")
        located: list[dict[str, str]] = []
        for error in exc.errors:
            field = error["field"]
            entry = {"field": prefix if field == "spec" else f"{prefix}.{field}", "message": error["message"]}
            parts = field.split(".")
            if (
                parts[0] == "endpoints"
                and len(parts) > 1
                and parts[1].isdigit()
                and isinstance(endpoints, list)
            ):
                index = int(parts[1])
                raw = endpoints[index] if index < len(endpoints) else None
                if isinstance(raw, Mapping) and isinstance(raw.get("name"), str):
                    entry["endpoint"] = raw["name"]
            located.append(entry)
        raise InvalidSpec(located) from None


def expected_digest(
    spec: WebhookEndpoint,
    resolve: Callable[[str], str],
    *,
    dialect: Dialect,
    watch: WatchState | None = None,
) -> str:
    """The ``specHash`` the register step records for ``spec`` (secrets resolved by ``resolve``; as
    the watch has it served, ``watch``): the register step's own
    :func:`~cognigy_webhooks.reconcile.register.told_to_cognigy` (one computation for the plan's
    preview and the apply)."""
    return told_to_cognigy(spec, resolve, endpoints=dialect == "endpoints", watch=watch)[2]


class _Secrets:
    """The secrets a plan compares: the values given in clear (by the ARN or placeholder that stands
    for them) and the ARNs of the stack's existing secrets by name (read once each, on first need)."""

    def __init__(self, access: StackAccess) -> None:
        self._access = access
        self._given: dict[str, str] = {}
        self._existing: dict[str, str | None] = {}

    def _existing_arn(self, name: str) -> str | None:
        """The ARN of the stack's secret ``name`` (DescribeSecret: no value read), None when there is
        none or it cannot be told (then the value counts as a new secret)."""
        if name not in self._existing:
            try:
                self._existing[name] = str(
                    self._access.secretsmanager().describe_secret(SecretId=name)["ARN"]
                )
            except (ClientError, BotoCoreError, KeyError):
                self._existing[name] = None
        return self._existing[name]

    def standing_for(self, endpoint: str, *, recorded: bool) -> Callable[[str, str], str]:
        """A ``put(kind, value)`` for :func:`move_spec_secrets` that stores nothing: the value is kept
        here under the ARN its secret already has (a recorded endpoint's), else a placeholder."""

        def put(kind: str, value: str) -> str:
            name = secret_name(self._access.stack_name, endpoint, kind)
            arn = self._existing_arn(name) if recorded else None
            standing = arn or f"pending:{len(self._given)}"
            self._given[standing] = value
            return standing

        return put

    def resolve(self, arn: str) -> str:
        if arn in self._given:
            return self._given[arn]
        try:
            value = self._access.secretsmanager().get_secret_value(SecretId=arn).get("SecretString")
        except (ClientError, BotoCoreError):
            raise _Unreadable(arn) from None
        if not isinstance(value, str):
            raise _Unreadable(arn)
        self._given[arn] = value
        return value


def _changes(recorded: Mapping[str, Any], desired: Mapping[str, Any]) -> list[str]:
    """The fields (two levels deep: ``headers.X-Team``, ``retryPolicy.maxRetries``) in which two
    public views of a spec differ."""
    changed: list[str] = []
    for key in sorted(set(recorded) | set(desired)):
        old, new = recorded.get(key), desired.get(key)
        if old == new:
            continue
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            changed.extend(
                f"{key}.{sub}" for sub in sorted(set(old) | set(new)) if old.get(sub) != new.get(sub)
            )
        else:
            changed.append(key)
    return changed


def _entry(
    name: str,
    spec: WebhookEndpoint,
    record: EndpointRecord | None,
    secrets: _Secrets,
    fields: list[str],
    dialect: Dialect,
) -> PlanEntry:
    if record is None or not record.webhook_id:
        return PlanEntry(name=name, action="create", secrets=fields)
    status = "registered" if spec.is_active else "inactive"
    changes = _changes(record.spec, spec.public_view())
    if record.status != status:
        changes.append("status")
    try:
        watch = standing_watch(record, spec)
        same = expected_digest(spec, secrets.resolve, dialect=dialect, watch=watch) == record.spec_hash
    except _Unreadable:
        return PlanEntry(
            name=name, action="update", changes=[*changes, "secrets (unreadable: compared when applied)"]
        )
    if same and record.status == status:
        return PlanEntry(name=name, action="unchanged", secrets=fields)
    if not changes:
        changes = ["secret values"]
    return PlanEntry(name=name, action="update", changes=changes, secrets=fields)


def plan_desired(access: StackAccess, desired: Mapping[str, Any], *, prune: bool) -> PlanView:
    """What applying ``desired`` would do, with no side effect (see the module's docstring).
    :class:`InvalidSpec` when the set itself is invalid (:func:`check_desired`)."""
    check_desired(desired)
    defaults = desired.get("cognigy")
    raw_endpoints = [with_cognigy_defaults(raw, defaults) for raw in desired["endpoints"]]
    records = {r.name: r for r in access.store.iter_records()}
    secrets = _Secrets(access)
    standing: list[dict[str, Any]] = []
    given: dict[str, list[str]] = {}
    originals: dict[str, dict[str, Any]] = {}
    for raw in raw_endpoints:
        name = str(raw["name"])
        originals[name] = raw
        given[name] = plain_secret_fields(raw)
        standing.append(move_spec_secrets(raw, secrets.standing_for(name, recorded=name in records)))
    planned = plan(
        {"desired": {"endpoints": standing}, "prune": prune, "source": "plan"},
        recorded_names=lambda: list(records),
        load_desired=lambda _ref: {},
        dialect=access.dialect,
    )
    by_name: dict[str, PlanEntry] = {}
    for invalid in planned.invalid:
        name = str(invalid["name"])
        errors: list[FieldError] = []
        try:
            check_endpoint(originals.get(name), dialect=access.dialect, allow_plain_secrets=True)
        except InvalidSpec as exc:
            errors = [FieldError(field=e["field"], message=e["message"], endpoint=name) for e in exc.errors]
        by_name[name] = PlanEntry(name=name, action="refused", errors=errors, secrets=given.get(name, []))
    deletions: list[PlanEntry] = []
    for item in planned.items:
        name = str(item.endpoint["name"])
        if item.action == "delete":
            deletions.append(PlanEntry(name=name, action="delete"))
            continue
        spec = parse_endpoint(item.endpoint)
        by_name[name] = _entry(name, spec, records.get(name), secrets, given[name], access.dialect)
    entries = [by_name[str(raw["name"])] for raw in raw_endpoints if str(raw["name"]) in by_name]
    entries.extend(deletions)
    counts = {action: sum(1 for e in entries if e.action == action) for action in PLAN_ACTIONS}
    return PlanView(prune=prune, dialect=access.dialect, entries=entries, counts=counts)
